// Section "queue" (issue 16, the waiting room), through one server and the same closed-loop
// client, side by side in rounds so that machine noise falls on both sides alike:
// - Join/s against ReserveTickets/s (target: joins at least the hold rate, ratio >= 1);
// - ReserveTickets with an admission token (the partition verifies its MAC and journals its use
//   in the hold's decision) against ReserveTickets on an event without a queue (target >= 0.9x).
// Memory per queued entry at 1,000,000 entries: bench/queue_probe.ts, in-process (queue_memory.ts).
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  catalog_proto, client_ctor, event_wire, inventory_proto, load_protos, seat_id, seats_of,
  type Layout,
} from '../common.js';
import { quick } from '../config.js';
import { log, mint_token, sleep, start_ours, terminate } from '../harness/processes.js';
import { f, fmt_int, type Report } from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';
import { run_queue_probe, type QueueProbe } from './queue_memory.js';

const layout: Layout = { sections: 10, rows: 50, seats_per_row: 100 }; // 50,000 seats
const concurrency = 32;
const calls_per_round = quick ? 1000 : 3000;
const rounds = 2;
const join_target_ratio = 1;
const token_target_ratio = 0.9;
const bytes_per_entry_target = 200;
/** Admitted per minute on the token event: everyone joined is admitted within one tick. */
const admit_per_minute_max = 1_000_000;
/** Polls of the last joiner's position while waiting for the admission tick (1 s each). */
const admission_polls_max = 60;

type Call = (request: unknown, extra?: Record<string, string>) => Promise<Record<string, unknown>>;

function caller(client: grpc.Client, method: string, bearer: string): Call {
  const fn = (client as unknown as Record<string, Function>)[method]!;
  return (request, extra = {}) => new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${bearer}`);
    for (const [k, v] of Object.entries(extra)) metadata.set(k, v);
    fn.call(client, request, metadata, { deadline: Date.now() + 30_000 },
      (error: grpc.ServiceError | null, reply: Record<string, unknown>) =>
        (error ? reject(error) : resolve(reply)));
  });
}

/** `count` calls, `concurrency` in flight; calls/s over the whole run. */
async function closed_loop(
  count: number, call: (i: number) => Promise<unknown>,
): Promise<{ per_s: number; errors: number; first_error: string }> {
  let next = 0;
  let errors = 0;
  let first_error = '';
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await call(i).catch((e: grpc.ServiceError) => {
        errors++;
        first_error ||= `${grpc.status[e.code]}: ${e.details}`;
      });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { per_s: count / ((performance.now() - started) / 1000), errors, first_error };
}

interface Rpcs {
  create: Call; configure: Call; join: Call; position: Call; reserve: Call; close(): void;
}

function rpcs(target: string, svc: string, admin: string): Rpcs {
  const root = load_protos([inventory_proto, catalog_proto, 'ticketing/queue/v1/queue.proto']);
  const creds = grpc.credentials.createInsecure();
  const options = { 'grpc.max_send_message_length': 16 * 1024 * 1024 };
  const make = (path: string) => new (client_ctor(root, path))(target, creds, options);
  const inventory = make('ticketing.inventory.v1.InventoryService');
  const catalog = make('ticketing.catalog.v1.CatalogService');
  const queue = make('ticketing.queue.v1.QueueService');
  return {
    create: caller(catalog, 'CreateEvent', admin),
    configure: caller(queue, 'ConfigureQueue', admin),
    join: caller(queue, 'Join', svc), position: caller(queue, 'GetPosition', svc),
    reserve: caller(inventory, 'ReserveTickets', svc),
    close() {
      for (const c of [inventory, catalog, queue]) c.close();
    },
  };
}

/** The i-th hold of a round: one seat of its own, for a user with at most 5 holds. */
const hold_of = (event_id: string, base: number, i: number, prefix: string) => ({
  event_id, seat_ids: [seat_id(layout, base + i)], hold_ttl_seconds: 3600,
  user_id: `${prefix}-${Math.floor((base + i) / 5)}`,
});

interface Measured {
  joins: number[]; reserves: number[]; with_token: number[]; without_token: number[];
  errors: number; first_error: string;
}

/** Joins `count` users of event_id and returns their admission tokens once admitted. */
async function admitted_tokens(r: Rpcs, event_id: string, users: string[]): Promise<string[]> {
  const tickets: string[] = new Array<string>(users.length);
  const joined = await closed_loop(users.length, async (i) => {
    const reply = await r.join({ event_id, user_id: users[i], device_id: 'bench' });
    tickets[i] = String(reply['ticket_id']);
  });
  if (joined.errors > 0) throw new Error(`joining ${event_id}: ${joined.first_error}`);
  const last = tickets[tickets.length - 1]!;
  for (let poll = 0; poll < admission_polls_max; poll++) {
    const p = await r.position({ ticket_id: last });
    if (p['admitted'] === true) break;
    await sleep(1000);
  }
  const tokens: string[] = new Array<string>(users.length);
  const read = await closed_loop(users.length, async (i) => {
    const p = await r.position({ ticket_id: tickets[i] });
    if (p['admission_token'] === '') throw new Error(`${users[i]} not admitted`);
    tokens[i] = String(p['admission_token']);
  });
  if (read.errors > 0) throw new Error(`tokens of ${event_id}: ${read.first_error}`);
  return tokens;
}

async function setup(r: Rpcs): Promise<{ tokens: string[]; users: string[] }> {
  for (const event_id of ['q-join', 'q-free', 'q-token', 'q-plain']) {
    await r.create({ event: event_wire(event_id, layout, 100) });
  }
  const now_s = Math.floor(Date.now() / 1000);
  // q-join's sale starts in an hour: every join of the rounds is an early one (the draw's input).
  await r.configure({
    event_id: 'q-join', opens_at_unix: String(now_s), sale_starts_at_unix: String(now_s + 3600),
    admit_per_minute: 1000, admission_ttl_seconds: 3600,
  });
  // q-token's sale starts in 2 s at the highest rate: everyone is admitted at the first tick.
  await r.configure({
    event_id: 'q-token', opens_at_unix: String(now_s), sale_starts_at_unix: String(now_s + 2),
    admit_per_minute: admit_per_minute_max, admission_ttl_seconds: 3600,
  });
  const users = Array.from({ length: rounds * calls_per_round }, (_, i) => `t-${i}`);
  return { tokens: await admitted_tokens(r, 'q-token', users), users };
}

async function measure(r: Rpcs): Promise<Measured> {
  const { tokens, users } = await setup(r);
  log(`queue: ${fmt_int(tokens.length)} buyers of q-token admitted, tokens read`);
  const m: Measured = {
    joins: [], reserves: [], with_token: [], without_token: [], errors: 0, first_error: '',
  };
  const count = (x: { errors: number; first_error: string }): void => {
    m.errors += x.errors;
    m.first_error ||= x.first_error;
  };
  for (let round = 0; round < rounds; round++) {
    const base = round * calls_per_round;
    const j = await closed_loop(calls_per_round, (i) => r.join({
      event_id: 'q-join', user_id: `j-${base + i}`, device_id: 'bench',
    }));
    const h = await closed_loop(calls_per_round, (i) => r.reserve(hold_of('q-free', base, i, 'h')));
    // The token's user holds one seat; the same shape, another event, no queue.
    const t = await closed_loop(calls_per_round, (i) => r.reserve(
      { ...hold_of('q-token', base, i, 'x'), user_id: users[base + i] },
      { 'admission-token': tokens[base + i]! },
    ));
    const p = await closed_loop(calls_per_round, (i) => r.reserve(
      { ...hold_of('q-plain', base, i, 'x'), user_id: users[base + i] },
    ));
    m.joins.push(j.per_s);
    m.reserves.push(h.per_s);
    m.with_token.push(t.per_s);
    m.without_token.push(p.per_s);
    for (const x of [j, h, t, p]) count(x);
  }
  return m;
}

async function run({ root, secret, report }: SectionContext): Promise<void> {
  if (seats_of(layout) < rounds * calls_per_round) throw new Error('layout too small');
  const data_dir = join(root, 'data-queue');
  const server = await start_ours('ticketing-queue', data_dir, secret);
  let m: Measured;
  try {
    const r = rpcs(server.grpc, mint_token('bench-service', 'service', data_dir, secret),
      mint_token('bench-admin', 'admin', data_dir, secret));
    try {
      m = await measure(r);
    } finally {
      r.close();
    }
  } finally {
    await terminate(server.proc);
  }
  const probe = await run_queue_probe();
  report_queue(report, m, probe);
}

function report_queue(report: Report, m: Measured, probe: QueueProbe): void {
  const sum = (xs: number[]) => xs.reduce((a, x) => a + x, 0);
  const join_ratio = sum(m.joins) / sum(m.reserves);
  const token_ratio = sum(m.with_token) / sum(m.without_token);
  const mean = (xs: number[]) => sum(xs) / xs.length;
  report.results['queue'] = {
    concurrency, calls_per_round, rounds, ...m, join_ratio, token_ratio, probe,
  };
  report.check({
    order: 110, check: `Queue Join (C=${concurrency})`, ours: `${fmt_int(mean(m.joins))} calls/s`,
    reference: `ReserveTickets ${fmt_int(mean(m.reserves))} calls/s`, value: `${f(join_ratio)}x`,
    target: `>= ${join_target_ratio}x`,
  }, join_ratio >= join_target_ratio && m.errors === 0);
  report.check({
    order: 111, check: 'ReserveTickets with admission token',
    ours: `${fmt_int(mean(m.with_token))} calls/s`,
    reference: `without queue ${fmt_int(mean(m.without_token))} calls/s`,
    value: `${f(token_ratio)}x`,
    target: `>= ${token_target_ratio}x`,
  }, token_ratio >= token_target_ratio && m.errors === 0);
  const per_entry = probe.bytes_per_entry_after_draw;
  report.check({
    order: 112, check: `Memory per queued entry (${fmt_int(probe.entries)} entries, drawn)`,
    ours: `${fmt_int(per_entry * probe.entries)} B`,
    reference: `${f(probe.bytes_per_entry, 1)} B/entry before the draw`,
    value: `${f(per_entry, 1)} B/entry`, target: `<= ${bytes_per_entry_target} B`,
  }, per_entry <= bytes_per_entry_target);
  const rounds_of = (xs: number[]) => xs.map((x) => fmt_int(x)).join(' / ');
  report.detail(`queue: rounds join ${rounds_of(m.joins)}, reserve ${rounds_of(m.reserves)}, ` +
    `with token ${rounds_of(m.with_token)}, without ${rounds_of(m.without_token)} calls/s; ` +
    `${m.errors} errors${m.first_error === '' ? '' : ` (first: ${m.first_error})`}`);
}

export const queue_section: Section = { key: 'queue', name: 'queue', order: 110, run };
