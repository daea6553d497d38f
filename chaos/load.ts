// The load: simulated users, each a loop of its own seeded choices, through real gRPC clients.
// A user holds seats and releases them, sells a hold (ConfirmAllocation), lets holds lapse, or
// buys: CreateDraft, ScoreTransaction, Authorize with any sandbox token, ConfirmOrder, Capture,
// Refund. A call whose outcome is unknown is retried with the same idempotency key (CreateDraft
// field, idempotency-key metadata), as the API's retry notes say; some calls are repeated after
// an answer on purpose, to check that a repeat changes nothing.
import type { Role } from '../src/auth/token.js';
import type { NodeClients, Tokens } from './clients.js';
import type { Call, History, JsonObject, Rpc } from './history.js';
import { Prng } from './prng.js';
import { num, obj, str } from './checker_state.js';
import { sleep } from './processes.js';

/** Retries of a call whose outcome is unknown (each is recorded). */
export const unknown_retries_max = 3;
export const sandbox_tokens = [
  'tok_visa',
  'tok_mastercard',
  'tok_chargeDeclined',
  'tok_insufficientFunds',
  'tok_gatewayTimeout',
] as const;
/** The seat layout of every chaos event: sections S1.., rows R1.., seats 1... */
export const layout = { sections: 8, rows: 10, seats: 25 };
/** A new event every 30 s: a user may hold 10 holds per event (holds_per_user_max; drafts count)
 *  and the load sells an event's 2 000 seats in minutes: a fresh event keeps most calls
 *  accepted. */
export const event_span_ms = 30_000;

export interface World {
  history: History;
  nodes: NodeClients[];
  tokens: Tokens;
  events: string[];
  started_ms: number;
  /** While set, every Authorize uses tok_gatewayTimeout (the nemesis' gateway outage). */
  gateway_down: boolean;
  stopping: boolean;
}

const rpc_method: Record<Rpc, [Parameters<NodeClients['call']>[0], string]> = {
  reserve: ['inventory', 'ReserveTickets'],
  release: ['inventory', 'ReleaseHold'],
  confirm_allocation: ['inventory', 'ConfirmAllocation'],
  create_draft: ['order', 'CreateDraft'],
  score: ['fraud', 'ScoreTransaction'],
  authorize: ['payment', 'Authorize'],
  confirm_order: ['order', 'ConfirmOrder'],
  capture: ['payment', 'Capture'],
  refund: ['payment', 'Refund'],
  advance: ['clock', 'Advance'],
  get_order: ['order_query', 'GetOrder'],
};

/** One recorded call to a node; `node` picks the node (a cluster spreads its users). */
export async function invoke(
  world: World,
  user: string,
  role: Role,
  rpc: Rpc,
  request: JsonObject,
  opts: { key?: string; metadata_key?: boolean; node?: number } = {},
): Promise<Call> {
  const key = opts.key ?? '';
  const node = world.nodes[(opts.node ?? 0) % world.nodes.length]!;
  const [service, method] = rpc_method[rpc];
  const extra: Record<string, string> =
    opts.metadata_key === true && key !== '' ? { 'idempotency-key': key } : {};
  return world.history.record(user, rpc, request, key, () =>
    node.call(service, method, request, world.tokens.of(user, role), extra),
  );
}

/** Calls, and calls again with the same request and key while the outcome is unknown. */
async function with_retries(
  world: World,
  user: string,
  role: Role,
  rpc: Rpc,
  request: JsonObject,
  opts: { key?: string; metadata_key?: boolean; node?: number } = {},
): Promise<Call> {
  let c = await invoke(world, user, role, rpc, request, opts);
  for (let i = 0; i < unknown_retries_max && c.result === 'unknown' && !world.stopping; i++) {
    await sleep(100 + 200 * i);
    c = await invoke(world, user, role, rpc, request, opts);
  }
  return c;
}

export function current_event(world: World): string {
  const i = Math.floor((Date.now() - world.started_ms) / event_span_ms);
  return world.events[Math.min(i, world.events.length - 1)]!;
}

function pick_seats(prng: Prng): string[] {
  const s = prng.int(1, layout.sections);
  const r = prng.int(1, layout.rows);
  const n = prng.int(1, 4);
  const first = prng.int(1, layout.seats - n + 1);
  return Array.from({ length: n }, (_, i) => `S${s}-R${r}-${first + i}`);
}

class User {
  private purchases = 0;
  constructor(
    readonly name: string,
    private readonly prng: Prng,
    private readonly world: World,
    private readonly node: number,
  ) {}

  private call(
    rpc: Rpc,
    role: Role,
    request: JsonObject,
    key = '',
    metadata_key = false,
  ): Promise<Call> {
    return with_retries(
      this.world,
      role === 'customer' ? this.name : 'load-service',
      role,
      rpc,
      request,
      { key, metadata_key, node: this.node },
    );
  }

  async hold_flow(): Promise<void> {
    const p = this.prng;
    const event_id = current_event(this.world);
    const request = {
      event_id,
      seat_ids: pick_seats(p),
      hold_ttl_seconds: p.int(30, 120),
      user_id: this.name,
    };
    // No idempotency key on ReserveTickets: an unknown reserve is not retried (a retry would be
    // a second hold); its hold may exist, and the checker allows for it.
    const c = await invoke(this.world, this.name, 'customer', 'reserve', request, {
      node: this.node,
    });
    if (c.result !== 'ok') return;
    const hold_id = str(c.reply, 'hold_id');
    await sleep(p.int(0, 300));
    const r = p.next();
    if (r < 0.45) {
      const release = await this.call('release', 'customer', { hold_id });
      if (p.chance(0.15) && release.result === 'ok')
        await this.call('release', 'customer', { hold_id });
    } else if (r < 0.65) {
      await this.call('confirm_allocation', 'service', { order_id: `ext-${hold_id}`, hold_id });
    }
  }

  async purchase_flow(): Promise<void> {
    const p = this.prng;
    const key = `${this.name}-p${++this.purchases}`;
    const draft = await this.call(
      'create_draft',
      'customer',
      {
        user_id: this.name,
        event_id: current_event(this.world),
        seat_ids: pick_seats(p),
        promo_code: '',
        idempotency_key: key,
      },
      key,
    );
    if (draft.result !== 'ok') return;
    if (p.chance(0.1)) await this.call('create_draft', 'customer', draft.request, key); // a repeat
    const order_id = str(draft.reply, 'id');
    const total = obj(draft.reply, 'total');
    await this.call('score', 'service', {
      order_id,
      user_id: this.name,
      ip: `198.51.100.${p.int(1, 200)}`,
      device_id: `dev-${this.name}`,
    });
    if (p.chance(0.1)) return; // abandoned: the draft lapses
    for (let attempt = 1; attempt <= 2; attempt++) {
      const token = this.world.gateway_down
        ? 'tok_gatewayTimeout'
        : attempt === 2
          ? 'tok_visa'
          : p.pick(sandbox_tokens);
      const auth = await this.call(
        'authorize',
        'customer',
        { order_id, amount: total, payment_token: token },
        `${key}-a${attempt}`,
        true,
      );
      if (auth.result !== 'ok') return;
      if (str(auth.reply, 'status') === 'AUTHORIZED')
        return this.confirm_flow(key, order_id, str(auth.reply, 'payment_id'), total);
      if (!p.chance(0.6)) return;
    }
  }

  private async confirm_flow(
    key: string,
    order_id: string,
    payment_id: string,
    total: JsonObject,
  ): Promise<void> {
    const p = this.prng;
    await sleep(p.int(0, 200));
    const confirm = await this.call('confirm_order', 'customer', { order_id, payment_id });
    if (confirm.result !== 'ok' || str(confirm.reply, 'status') !== 'CONFIRMED') return;
    if (p.chance(0.5)) await this.call('capture', 'customer', { payment_id });
    if (!p.chance(0.35)) return;
    const whole = num(total, 'amount_micros');
    const first = p.chance(0.5) ? Math.floor(whole / 2) : whole;
    const money = (micros: number): JsonObject => ({
      amount_micros: String(micros),
      currency: str(total, 'currency'),
    });
    const refund = await this.call(
      'refund',
      'service',
      { payment_id, amount: money(first) },
      `${key}-r1`,
      true,
    );
    if (refund.result !== 'ok') return;
    if (p.chance(0.2)) await this.call('refund', 'service', refund.request, `${key}-r1`, true); // a repeat
    // A second refund: the rest (allowed) or the whole again (beyond the capture: refused).
    if (p.chance(0.3))
      await this.call(
        'refund',
        'service',
        { payment_id, amount: money(p.chance(0.5) ? whole - first || 1 : whole) },
        `${key}-r2`,
        true,
      );
  }

  async run(): Promise<void> {
    while (!this.world.stopping) {
      try {
        if (this.prng.chance(0.45)) await this.hold_flow();
        else await this.purchase_flow();
      } catch (error) {
        // Only a non-gRPC error reaches here: a bug of the harness, not an outcome.
        this.world.stopping = true;
        throw error;
      }
      await sleep(this.prng.int(20, 250));
    }
  }
}

/** Starts `users` users; resolves when all have stopped (after world.stopping is set). */
export async function run_load(world: World, users: number, seed: number): Promise<void> {
  const root = new Prng(seed);
  root.fork(); // the schedule's stream (schedule.ts) comes first
  const all = Array.from({ length: users }, (_, i) =>
    new User(`user-${i}`, root.fork(), world, i).run(),
  );
  await Promise.all(all);
}
