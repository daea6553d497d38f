// What the behaviour's check costs on recovery of a big partition, in its own process:
//   node dist/bench/check_probe.js '{"events":1,"layout":{...},"holds":60000,"seats_per_hold":2}'
// Builds the partition through the ticketing behaviour's decide + apply (no worker, no LMDB),
// holds of `seats_per_hold` seats, every `confirm_every`th one confirmed; then times snapshot,
// restore (what recovery does before replaying the tail) and check (what it does after).
// Prints one JSON line. The behaviour is imported dynamically, as in memory_probe.ts, so a change
// of src breaks this probe at run time (reported), never the project's build.
import { randomBytes } from 'node:crypto';
import { event_spec, seat_id, seats_of, type Layout } from './common.js';

interface Args {
  events: number; layout: Layout; holds: number; seats_per_hold: number; confirm_every: number;
}

interface Behaviour {
  create(partition: number): unknown;
  decide(state: unknown, request: unknown, ctx: unknown): { records: unknown[]; reply: unknown };
  apply(state: unknown, record: unknown): void;
  snapshot(state: unknown): unknown;
  restore(partition: number, snapshot: unknown): unknown;
  check?(state: unknown): void;
}

function timed_ms(run: () => void): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function build(b: Behaviour, args: Args): unknown {
  const state = b.create(0);
  const ctx = { partition: 0, now_ms: Date.now(), random_bytes: (n: number) => randomBytes(n) };
  const run = (request: unknown): unknown => {
    const decision = b.decide(state, request, ctx);
    for (const record of decision.records) b.apply(state, record);
    return decision.reply;
  };
  const ids = Array.from({ length: args.events }, (_, i) => `chk-e${String(i).padStart(3, '0')}`);
  for (const id of ids) run({ k: 'create_event', spec: event_spec(id, args.layout, 100) });
  const seats = seats_of(args.layout);
  const per_event = Math.ceil(args.holds / args.events);
  if (per_event * args.seats_per_hold > seats) throw new Error('more held seats than seats');
  for (let k = 0; k < args.holds; k++) {
    const e = k % args.events;
    const first = Math.floor(k / args.events) * args.seats_per_hold;
    const seat_ids = Array.from({ length: args.seats_per_hold },
      (_, i) => seat_id(args.layout, first + i));
    // holds_per_user_max is 10: a user per 5 holds keeps every reserve accepted.
    const reply = run({
      k: 'reserve', event_id: ids[e], seat_ids, hold_ttl_seconds: 3600,
      user_id: `u${Math.floor(k / 5)}`, trace_id: '0123456789abcdef0123456789abcdef',
    }) as { hold_id: string };
    if (k % args.confirm_every !== 0) continue;
    run({ k: 'confirm', hold_id: reply.hold_id, order_id: `o${k}` });
  }
  return state;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const url = new URL('../src/actors/behaviour.js', import.meta.url).href;
  const b = ((await import(url)) as { behaviour?: Behaviour }).behaviour;
  if (b === undefined || typeof b.check !== 'function') {
    throw new Error('dist/src/actors/behaviour.js no longer exports a behaviour with check()');
  }
  const built_started = performance.now();
  const state = build(b, args);
  const build_ms = performance.now() - built_started;
  let snapshot: unknown;
  const snapshot_ms = timed_ms(() => { snapshot = b.snapshot(state); });
  let restored: unknown;
  const restore_ms = timed_ms(() => { restored = b.restore(0, snapshot); });
  const checks = Array.from({ length: 5 }, () => timed_ms(() => b.check!(restored)));
  process.stdout.write(JSON.stringify({
    events: args.events, seats: args.events * seats_of(args.layout), holds: args.holds,
    seats_per_hold: args.seats_per_hold, confirmed: Math.ceil(args.holds / args.confirm_every),
    build_ms: Math.round(build_ms), snapshot_ms: Math.round(snapshot_ms),
    restore_ms: Math.round(restore_ms),
    check_ms_first: Math.round(checks[0]!), check_ms_median: Math.round(median(checks)),
  }) + '\n');
}

main().catch((error: unknown) => {
  const text = error instanceof Error ? error.stack ?? error.message : String(error);
  process.stderr.write(`check_probe: ${text}\n`);
  process.exit(1);
});
