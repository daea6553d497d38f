// The box office and operator page. It calls the node's own services over the Connect protocol
// (@connectrpc/connect-web), the very RPCs a gRPC client calls, with the bearer token in the
// Authorization header. Messages are handled in the protos' JSON form (lowerCamelCase, int64 as
// strings). `/#event=ID&token=T` opens an event signed in: a fragment never reaches a server.
//
// The map is DOM: one element per seat, carrying data-seat and data-state (the contract tests
// and assistive technology read), in one grid with a roving tabindex (one tab stop; arrows move).
// A live update touches only the changed seats' elements.
import {
  createFileRegistry, fromBinary, fromJson, toJson, type DescMethod, type DescMethodServerStreaming,
  type DescMethodUnary, type JsonObject, type JsonValue,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { ConnectError } from '@connectrpc/connect';
import { createConnectTransport } from '@connectrpc/connect-web';
import { descriptor_set_base64 } from '../build/web/descriptors.js';

type State = 'free' | 'held' | 'sold';
const states: readonly State[] = ['free', 'held', 'sold'];
/** Longest a hold is asked for, and what Extend adds. */
const hold_ttl_seconds = 600;
const extend_seconds = 300;
/** Waiting before a watch that ended is opened again (grows to the max). */
const rewatch_ms_min = 500;
const rewatch_ms_max = 10_000;
/** The operator's sales rate: sold counts of the last minute. */
const rate_window_ms = 60_000;
const outbox_poll_ms = 1_000;
/** The map is built in slices of about a frame (60 Hz), so input and paint go on between them. */
const frame_budget_ms = 16;

const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema,
  Uint8Array.from(atob(descriptor_set_base64), (ch) => ch.charCodeAt(0))));
const transport = createConnectTransport({ baseUrl: location.origin });

interface Perf {
  render_ms: number; longest_slice_ms: number; update_ms: number; updates: number; seats: number;
}
interface Session {
  token: string; user_id: string; role: string; event_id: string;
  seat_ids: string[]; elements: HTMLElement[]; state: Uint8Array; index: Map<string, number>;
  picked: Set<number>; focus: number; hold: Hold | undefined; rows: number[][];
  sections: { name: string; first: number; count: number }[];
  sold_samples: { at_ms: number; sold: number }[];
  watch: AbortController | undefined;
}
interface Hold { hold_id: string; seat_ids: string[]; expires_at_unix: number }

declare global {
  interface Window { ticketing_perf: Perf; ticketing_ready: boolean }
}
window.ticketing_perf = { render_ms: 0, longest_slice_ms: 0, update_ms: 0, updates: 0, seats: 0 };
window.ticketing_ready = false;

const $ = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`page has no #${id}`);
  return element as T;
};

function method(path: string): DescMethod {
  const [service, name] = path.split('/');
  const found = registry.getService(`ticketing.${service}`)?.methods.find((m) => m.name === name);
  if (found === undefined) throw new Error(`no RPC ${path}`);
  return found;
}

function auth(token: string): Headers {
  return new Headers({ authorization: `Bearer ${token}` });
}

/** One unary call: "catalog.v1.CatalogService/GetEvent" with JSON in and out. */
async function call(path: string, request: JsonObject, token: string): Promise<JsonObject> {
  const m = method(path) as DescMethodUnary;
  const answer = await transport.unary(m, undefined, 15_000, auth(token),
    fromJson(m.input, request), undefined);
  return toJson(m.output, answer.message, { alwaysEmitImplicit: true }) as JsonObject;
}

function show_status(text: string, error = false): void {
  const status = $('status');
  status.textContent = text;
  status.classList.toggle('error', error);
}

function explain(error: unknown): string {
  const e = ConnectError.from(error);
  return `${codeName(e.code)}: ${e.rawMessage}`;
}

function codeName(code: number): string {
  const names = ['ok', 'cancelled', 'unknown', 'invalid argument', 'deadline exceeded',
    'not found', 'already exists', 'permission denied', 'resource exhausted',
    'failed precondition', 'aborted', 'out of range', 'unimplemented', 'internal',
    'unavailable', 'data loss', 'unauthenticated'];
  return names[code] ?? `code ${code}`;
}

function claims(token: string): { user_id: string; role: string } {
  try {
    const payload = token.split('.')[1] ?? '';
    const json = JSON.parse(atob(payload.replace(/-/g, '+').replace(/_/g, '/'))) as
      { sub?: unknown; role?: unknown };
    return { user_id: String(json.sub ?? ''), role: String(json.role ?? '') };
  } catch {
    return { user_id: '', role: '' };
  }
}

let session: Session | undefined;

async function open_event(event_id: string, token: string): Promise<void> {
  session?.watch?.abort();
  const { user_id, role } = claims(token);
  show_status(`Opening ${event_id}…`);
  const event = await call('catalog.v1.CatalogService/GetEvent', { eventId: event_id }, token);
  const s: Session = {
    token, user_id, role, event_id, seat_ids: [], elements: [], state: new Uint8Array(0),
    index: new Map(), picked: new Set(), focus: 0, hold: undefined, rows: [], sections: [],
    sold_samples: [], watch: undefined,
  };
  session = s;
  $('who').textContent = `Signed in as ${user_id || '?'} (${role || 'unknown role'})`;
  $('event-name').textContent = `${String(event['name'])} — ${event_id}`;
  $('main').hidden = false;
  $('ops').hidden = role !== 'admin';
  render_areas(event);
  await render_map(s, event);
  watch(s, rewatch_ms_min);
  if (role === 'admin') poll_outbox(s);
  show_status(`${event_id}: ${s.seat_ids.length} seats`);
}

interface WireRow { name: string; seats: number }
interface WireSection { name: string; rows: WireRow[] }

/** Builds every seat's element in GetEvent's order (the order WatchAvailability indexes), one
 *  section's markup at a time, yielding to the browser once a slice has run frame_budget_ms:
 *  a big map never blocks input or painting for long. Sections off screen skip layout and paint
 *  (content-visibility: auto in app.css). */
async function render_map(s: Session, event: JsonObject): Promise<void> {
  const started = performance.now();
  let slice_started = started;
  let longest_slice_ms = 0;
  const map = $('map');
  map.replaceChildren();
  const sections = (event['sections'] ?? []) as unknown as WireSection[];
  for (const section of sections) {
    const box = document.createElement('div');
    box.className = 'section';
    box.setAttribute('role', 'rowgroup');
    const first = s.seat_ids.length;
    box.innerHTML = `<h3>Section ${escape_html(section.name)}</h3>`
      + section.rows.map((row) => row_html(s, section.name, row)).join('');
    for (const seat of box.querySelectorAll<HTMLElement>('.seat')) s.elements.push(seat);
    s.sections.push({ name: section.name, first, count: s.seat_ids.length - first });
    map.append(box);
    const now = performance.now();
    if (now - slice_started >= frame_budget_ms) {
      longest_slice_ms = Math.max(longest_slice_ms, now - slice_started);
      await new Promise((resolve) => setTimeout(resolve, 0));
      slice_started = performance.now();
    }
  }
  s.state = new Uint8Array(s.seat_ids.length);
  const focused = s.elements[0];
  if (focused !== undefined) focused.tabIndex = 0;
  void map.offsetHeight; // the layout, inside the measurement
  const perf = window.ticketing_perf;
  perf.render_ms = performance.now() - started;
  perf.longest_slice_ms = Math.max(longest_slice_ms, performance.now() - slice_started);
  perf.seats = s.seat_ids.length;
}

function escape_html(text: string): string {
  return text.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function row_html(s: Session, section: string, row: WireRow): string {
  const indices: number[] = [];
  let html = `<div class="row" role="row" aria-label="Row ${escape_html(row.name)}">`;
  for (let n = 1; n <= row.seats; n++) {
    const id = `${section}-${row.name}-${n}`;
    const index = s.seat_ids.length;
    s.index.set(id, index);
    s.seat_ids.push(id);
    indices.push(index);
    const safe = escape_html(id);
    html += `<span class="seat" role="gridcell" tabindex="-1" data-seat="${safe}" `
      + `data-state="free" aria-label="${safe} free"></span>`;
  }
  s.rows.push(indices);
  return `${html}</div>`;
}

function render_areas(event: JsonObject): void {
  const areas = (event['areas'] ?? []) as unknown as { name: string; capacity: number }[];
  const box = $('areas');
  box.replaceChildren();
  for (const area of areas) {
    const p = document.createElement('p');
    p.className = 'area';
    p.dataset['area'] = area.name;
    p.textContent = `Standing area ${area.name}: ${area.capacity} places`;
    box.append(p);
  }
}

function set_state(s: Session, index: number, state: number): void {
  const element = s.elements[index];
  const name = states[state];
  if (element === undefined || name === undefined || s.state[index] === state) return;
  s.state[index] = state;
  element.dataset['state'] = name;
  element.setAttribute('aria-label', `${s.seat_ids[index]} ${name}`);
  if (state !== 0 && s.picked.delete(index)) {
    element.classList.remove('selected');
    show_selection(s);
  }
}

function base64_bytes(value: JsonValue | undefined): Uint8Array {
  return Uint8Array.from(atob(typeof value === 'string' ? value : ''), (ch) => ch.charCodeAt(0));
}

/** One AvailabilityUpdate: a whole picture or the changes, then the counts. */
function apply_update(s: Session, update: JsonObject): void {
  const started = performance.now();
  if (update['full'] === true) {
    const picture = base64_bytes(update['seatStates']);
    for (let i = 0; i < picture.length && i < s.elements.length; i++) set_state(s, i, picture[i]!);
  } else {
    const seats = (update['changedSeats'] ?? []) as number[];
    const changed = base64_bytes(update['changedStates']);
    seats.forEach((index, k) => set_state(s, index, changed[k] ?? 0));
  }
  show_counts(s, update);
  const perf = window.ticketing_perf;
  perf.update_ms = performance.now() - started;
  perf.updates++;
}

function show_counts(s: Session, update: JsonObject): void {
  const free = Number(update['free'] ?? 0);
  const held = Number(update['held'] ?? 0);
  const sold = Number(update['sold'] ?? 0);
  $('totals').textContent = `${free} free · ${held} held · ${sold} sold`;
  const areas = (update['areas'] ?? []) as unknown as Record<string, string>[];
  for (const area of areas) {
    const name = CSS.escape(area['name'] ?? '');
    const p = document.querySelector<HTMLElement>(`[data-area="${name}"]`);
    if (p !== null) {
      p.textContent = `Standing area ${area['name']}: ${area['free']} free, ${area['held']} held, `
        + `${area['sold']} sold of ${area['capacity']}`;
    }
  }
  if (s.role !== 'admin') return;
  const now = Date.now();
  s.sold_samples.push({ at_ms: now, sold });
  const since_ms = now - rate_window_ms;
  while (s.sold_samples.length > 1 && s.sold_samples[0]!.at_ms < since_ms) s.sold_samples.shift();
  const oldest = s.sold_samples[0]!;
  const minutes = Math.max((now - oldest.at_ms) / 60_000, 1 / 60);
  $('ops-sold').textContent = String(sold);
  $('ops-held').textContent = String(held);
  $('ops-free').textContent = String(free);
  $('ops-rate').textContent = ((sold - oldest.sold) / minutes).toFixed(1);
  render_heat((update['sections'] ?? []) as unknown as Record<string, string>[]);
}

/** Cividis-like ramp (readable with colour-vision deficiencies): pale yellow → dark blue. */
function heat_colour(share: number): string {
  const stops = [[255, 234, 70], [124, 123, 120], [0, 32, 81]];
  const x = Math.min(Math.max(share, 0), 1) * 2;
  const i = Math.min(Math.floor(x), 1);
  const t = x - i;
  const mix = stops[i]!.map((a, k) => Math.round(a + (stops[i + 1]![k]! - a) * t));
  return `rgb(${mix.join(',')})`;
}

function render_heat(sections: Record<string, string>[]): void {
  const heat = $('heat');
  const tiles = sections.map((section) => {
    const free = Number(section['free']);
    const held = Number(section['held']);
    const sold = Number(section['sold']);
    const total = Math.max(free + held + sold, 1);
    const tile = document.createElement('div');
    tile.className = 'tile';
    tile.setAttribute('role', 'listitem');
    tile.dataset['section'] = section['name'];
    tile.style.background = heat_colour(sold / total);
    tile.classList.toggle('dark', sold / total > 0.5);
    const percent = Math.round((100 * sold) / total);
    tile.textContent = `${section['name']}: ${percent}% sold, ${held} held`;
    return tile;
  });
  heat.replaceChildren(...tiles);
}

/** WatchAvailability, opened again after it ends (the node restarted, the stream was slow). */
function watch(s: Session, wait_ms: number): void {
  const leave = new AbortController();
  s.watch = leave;
  const m = method('catalog.v1.CatalogService/WatchAvailability') as DescMethodServerStreaming;
  async function* request() {
    yield fromJson(m.input, { eventId: s.event_id });
  }
  (async () => {
    const answer = await transport.stream(m, leave.signal, undefined, auth(s.token), request(),
      undefined);
    for await (const update of answer.message) {
      apply_update(s, toJson(m.output, update, { alwaysEmitImplicit: true }) as JsonObject);
      window.ticketing_ready = true;
      wait_ms = rewatch_ms_min;
    }
  })().catch((error: unknown) => {
    if (leave.signal.aborted) return;
    show_status(`live updates interrupted (${explain(error)}); reconnecting`, true);
  }).finally(() => {
    if (leave.signal.aborted || session !== s) return;
    setTimeout(() => watch(s, Math.min(wait_ms * 2, rewatch_ms_max)), wait_ms);
  });
}

function poll_outbox(s: Session): void {
  const tick = async (): Promise<void> => {
    if (session !== s) return;
    try {
      const answer = await fetch('/ops/figures', { headers: auth(s.token) });
      if (answer.ok) {
        const body = (await answer.json()) as {
          pending: number; lag_seconds: number; queue_length: number;
        };
        $('ops-outbox').textContent = String(body.pending);
        $('ops-lag').textContent = body.lag_seconds.toFixed(1);
        $('ops-queue').textContent = String(body.queue_length);
      }
    } finally {
      setTimeout(() => void tick(), outbox_poll_ms);
    }
  };
  void tick();
}

function toggle_pick(s: Session, index: number): void {
  const element = s.elements[index];
  if (element === undefined) return;
  if (s.picked.has(index)) {
    s.picked.delete(index);
    element.classList.remove('selected');
  } else if (s.state[index] === 0) {
    s.picked.add(index);
    element.classList.add('selected');
  } else {
    show_status(`${s.seat_ids[index]} is ${states[s.state[index]!]}: pick a free seat`, true);
  }
  element.setAttribute('aria-selected', String(s.picked.has(index)));
  show_selection(s);
}

function show_selection(s: Session): void {
  const ids = [...s.picked].map((i) => s.seat_ids[i]);
  $('selection').textContent = ids.length === 0 ? 'No seats picked.' : `Picked: ${ids.join(', ')}`;
  $<HTMLButtonElement>('hold-picked').disabled = ids.length === 0;
}

function move_focus(s: Session, index: number): void {
  const from = s.elements[s.focus];
  const to = s.elements[index];
  if (to === undefined) return;
  if (from !== undefined) from.tabIndex = -1;
  to.tabIndex = 0;
  to.focus();
  s.focus = index;
}

/** Arrow keys move through rows and seats; Space picks; Enter holds what is picked. */
function on_map_key(s: Session, event: KeyboardEvent): void {
  const row = s.rows.findIndex((r) => r[0]! <= s.focus && s.focus <= r[r.length - 1]!);
  const seats = s.rows[row] ?? [];
  const at = s.focus - (seats[0] ?? 0);
  const row_at = (r: number): number | undefined => {
    const target = s.rows[r];
    return target === undefined ? undefined : target[Math.min(at, target.length - 1)];
  };
  let next: number | undefined;
  if (event.key === 'ArrowRight') next = s.focus + 1;
  else if (event.key === 'ArrowLeft') next = s.focus - 1;
  else if (event.key === 'ArrowDown') next = row_at(row + 1);
  else if (event.key === 'ArrowUp') next = row_at(row - 1);
  else if (event.key === 'Home') next = seats[0];
  else if (event.key === 'End') next = seats[seats.length - 1];
  else if (event.key === ' ') toggle_pick(s, s.focus);
  else if (event.key === 'Enter') void hold_picked(s);
  else return;
  event.preventDefault();
  if (next !== undefined && next >= 0 && next < s.elements.length) move_focus(s, next);
}

async function hold_picked(s: Session): Promise<void> {
  const seat_ids = [...s.picked].map((i) => s.seat_ids[i]!);
  if (seat_ids.length === 0) return;
  await act(async () => {
    const reply = await call('inventory.v1.InventoryService/ReserveTickets', {
      eventId: s.event_id, seatIds: seat_ids, holdTtlSeconds: hold_ttl_seconds, userId: s.user_id,
    }, s.token);
    start_hold(s, { hold_id: String(reply['holdId']), seat_ids,
      expires_at_unix: Number(reply['expiresAtUnix']) });
  });
}

async function hold_best(s: Session): Promise<void> {
  const quantity = Number($<HTMLInputElement>('best-n').value);
  await act(async () => {
    const reply = await call('inventory.v1.SeatSelectionService/ReserveBestAvailable', {
      eventId: s.event_id, userId: s.user_id, quantity, holdTtlSeconds: hold_ttl_seconds,
    }, s.token);
    start_hold(s, { hold_id: String(reply['holdId']), seat_ids: reply['seatIds'] as string[],
      expires_at_unix: Number(reply['expiresAtUnix']) });
  });
}

function start_hold(s: Session, hold: Hold): void {
  for (const i of s.picked) s.elements[i]?.classList.remove('selected');
  s.picked.clear();
  show_selection(s);
  s.hold = hold;
  for (const id of hold.seat_ids) s.elements[s.index.get(id) ?? -1]?.classList.add('mine');
  $('hold').hidden = false;
  $('hold-seats').textContent = `Hold ${hold.hold_id}: ${hold.seat_ids.join(', ')}`;
  show_status(`Held ${hold.seat_ids.length} seat(s)`);
  tick_countdown(s, hold);
  $('checkout').focus();
}

function tick_countdown(s: Session, hold: Hold): void {
  if (s.hold !== hold) return;
  const left_s = Math.max(0, Math.round(hold.expires_at_unix - Date.now() / 1000));
  $('countdown').textContent = `${Math.floor(left_s / 60)}:${String(left_s % 60).padStart(2, '0')}`;
  if (left_s === 0) {
    end_hold(s, 'Your hold expired');
    return;
  }
  setTimeout(() => tick_countdown(s, hold), 1000);
}

function end_hold(s: Session, message: string): void {
  for (const id of s.hold?.seat_ids ?? []) {
    s.elements[s.index.get(id) ?? -1]?.classList.remove('mine');
  }
  s.hold = undefined;
  $('hold').hidden = true;
  show_status(message);
}

async function extend(s: Session): Promise<void> {
  const hold = s.hold;
  if (hold === undefined) return;
  await act(async () => {
    const reply = await call('inventory.v1.SeatSelectionService/ExtendHold', {
      holdId: hold.hold_id, extendSeconds: String(extend_seconds),
    }, s.token);
    hold.expires_at_unix = Number(reply['expiresAtUnix']);
    show_status(`Hold extended; ${String(reply['extensionsLeft'])} extension(s) left`);
  });
}

async function release(s: Session): Promise<void> {
  const hold = s.hold;
  if (hold === undefined) return;
  await act(async () => {
    await call('inventory.v1.InventoryService/ReleaseHold', { holdId: hold.hold_id }, s.token);
    end_hold(s, 'Hold released');
  });
}

/** Draft from the hold, authorize the sandbox card, confirm; then the order as the node has it. */
async function checkout(s: Session): Promise<void> {
  const hold = s.hold;
  if (hold === undefined) return;
  await act(async () => {
    const key = `web-${hold.hold_id}`;
    const draft = await call('order.v1.CheckoutService/CreateDraftFromHold', {
      holdId: hold.hold_id, promoCode: '', idempotencyKey: key,
    }, s.token);
    const order_id = String(draft['id']);
    const payment = await call('payment.v1.PaymentService/Authorize', {
      orderId: order_id, amount: draft['total'] ?? null,
      paymentToken: $<HTMLSelectElement>('card').value,
    }, s.token);
    if (payment['status'] !== 'AUTHORIZED') throw new Error(`payment ${String(payment['status'])}`);
    const order = await call('order.v1.OrderService/ConfirmOrder', {
      orderId: order_id, paymentId: payment['paymentId'] ?? '',
    }, s.token);
    end_hold(s, `Order ${order_id} ${String(order['status'])}`);
    show_order(order, hold.seat_ids);
  });
}

function show_order(order: JsonObject, seat_ids: string[]): void {
  const total = (order['total'] ?? {}) as { amountMicros?: string; currency?: string };
  $('order').hidden = false;
  $('order-id').textContent = String(order['id']);
  $('order-status').textContent = String(order['status']);
  const amount = (Number(total.amountMicros ?? 0) / 1e6).toFixed(2);
  $('order-total').textContent = `${amount} ${total.currency ?? ''}`;
  $('order-seats').textContent = seat_ids.join(', ');
  $('order-h').focus();
}

async function act(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    show_status(explain(error), true);
  }
}

async function mint_dev_token(): Promise<void> {
  const user = $<HTMLInputElement>('dev-user').value;
  const answer = await fetch(`/dev/token?user=${encodeURIComponent(user)}`);
  if (!answer.ok) {
    show_status(`dev tokens: ${answer.status} ${(await answer.text()).trim()}`, true);
    return;
  }
  const { token } = (await answer.json()) as { token: string };
  $<HTMLInputElement>('token').value = token;
  show_status(`Token minted for ${user}`);
}

function from_fragment(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  const event_id = params.get('event');
  const token = params.get('token');
  if (event_id !== null) $<HTMLInputElement>('event-id').value = event_id;
  if (token !== null) $<HTMLInputElement>('token').value = token;
  if (event_id !== null && token !== null) {
    open_event(event_id, token).catch((error: unknown) => show_status(explain(error), true));
  }
}

function wire(): void {
  $('signin').addEventListener('submit', (event) => {
    event.preventDefault();
    const event_id = $<HTMLInputElement>('event-id').value.trim();
    const token = $<HTMLInputElement>('token').value.trim();
    open_event(event_id, token).catch((error: unknown) => show_status(explain(error), true));
  });
  const map = $('map');
  map.addEventListener('click', (event) => {
    const s = session;
    const seat = (event.target as HTMLElement).closest<HTMLElement>('[data-seat]');
    if (s === undefined || seat === null) return;
    const index = s.index.get(seat.dataset['seat'] ?? '');
    if (index === undefined) return;
    move_focus(s, index);
    toggle_pick(s, index);
  });
  map.addEventListener('keydown', (event) => {
    if (session !== undefined) on_map_key(session, event);
  });
  const on = (id: string, run: (s: Session) => Promise<void>): void => {
    $(id).addEventListener('click', () => {
      if (session !== undefined) void run(session);
    });
  };
  on('hold-picked', hold_picked);
  on('hold-best', hold_best);
  on('extend', extend);
  on('release', release);
  on('checkout', checkout);
  $('dev-mint').addEventListener('click', () => void mint_dev_token());
  fetch('/web-config.json').then((r) => r.json()).then((c: { dev_tokens?: boolean }) => {
    $('dev').hidden = c.dev_tokens !== true;
  }, () => undefined);
  window.addEventListener('hashchange', from_fragment);
  $('order-h').tabIndex = -1;
  from_fragment();
}

wire();
