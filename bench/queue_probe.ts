// Memory per queued entry of the waiting room, and the draw's time, in its own process:
//   node --expose-gc dist/bench/queue_probe.js '{"entries":1000000,"via":"apply"}'
// Builds one partition with one event and its queue, then `entries` joins before the sale start:
// via "apply", queue_joined records made here (the hashes of a real join, the signature left
// out: it is not kept) applied straight to the state; via "decide", each join decided by
// decide_join_queue (signing its receipt) and applied, which also times the join decision. Then
// the draw at the sale start (apply of queue_drawn: 1 sha256 per early joiner and the sort) and
// one snapshot of the queue (msgpackr-packed as the store packs it, and restored). Prints one
// JSON line. No worker, no LMDB, no gRPC.
import { randomBytes } from 'node:crypto';
import { behaviour } from '../src/actors/behaviour.js';
import type { PartitionRecord } from '../src/actors/inventory.js';
import type { PartitionState } from '../src/actors/partition_state.js';
import type { TicketingRequest } from '../src/actors/protocol.js';
import { decide_join_queue } from '../src/actors/queue.js';
import { chain_next, receipt_body_head, ticket_id_of, user_hash_of } from '../src/actors/queue_crypto.js';
import { restore_queue, snapshot_queue, type QueueSnapshot } from '../src/actors/queue_records.js';
import { packr } from '../src/runtime/codec.js';
import { event_spec } from './common.js';

interface Args { entries: number; via: 'apply' | 'decide' }

const gc = (globalThis as { gc?: () => void }).gc;

function settle(): NodeJS.MemoryUsage {
  if (gc === undefined) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage();
}

const EVENT = 'queue-probe';
const T0 = 1_900_000_000_000;

function setup(): PartitionState {
  const state = behaviour.create(0);
  const ctx = { partition: 0, now_ms: T0, random_bytes: (n: number) => randomBytes(n) };
  const run = (request: TicketingRequest): void => {
    const d = behaviour.decide(state, request, ctx);
    for (const r of d.records) behaviour.apply(state, r);
  };
  run({ k: 'create_event', event_id: EVENT, spec: event_spec(EVENT, { sections: 1, rows: 10, seats_per_row: 10 }, 100) });
  run({
    k: 'configure_queue', event_id: EVENT, opens_at_ms: T0, sale_starts_at_ms: T0 + 3_600_000,
    admit_per_minute: 1000, admission_ttl_seconds: 600, service_bypass: false, trace_id: '',
  });
  return state;
}

function user_of(i: number): string {
  return `buyer-${String(i).padStart(7, '0')}`;
}

function join_by_apply(state: PartitionState, i: number): void {
  const queue = state.queues.by_event.get(EVENT)!;
  const seq = queue.count + 1;
  const at = T0 + i;
  const user_hash = user_hash_of(EVENT, user_of(i), 'device');
  const ticket = ticket_id_of(0, queue.keys.ticket_key, queue.queue_no, seq);
  const previous = queue.entries.chain.subarray(queue.count * 32, queue.count * 32 + 32);
  const chain = chain_next(previous, receipt_body_head(EVENT, ticket, seq, at, user_hash.toString('hex')));
  const record: PartitionRecord = { t: 'queue_joined', event_id: EVENT, seq, user_id: user_of(i), user_hash, chain, joined_at_ms: at };
  behaviour.apply(state, record);
}

function join_by_decide(state: PartitionState, i: number): void {
  const ctx = { partition: 0, now_ms: T0 + i, random_bytes: (n: number) => randomBytes(n) };
  const d = decide_join_queue(state, { event_id: EVENT, user_id: user_of(i), device_id: 'device', trace_id: '' }, ctx);
  for (const r of d.records) behaviour.apply(state, r);
}

function main(): void {
  const args = JSON.parse(process.argv[2] ?? '{}') as Partial<Args>;
  const entries = args.entries ?? 1_000_000;
  const via = args.via ?? 'apply';
  const state = setup();
  // The user ids exist in any case (they arrive in requests); the state keeps them, so they are
  // counted: made inside the loop, after the baseline.
  const before = settle();
  const t_join = process.hrtime.bigint();
  for (let i = 0; i < entries; i++) (via === 'apply' ? join_by_apply : join_by_decide)(state, i);
  const join_s = Number(process.hrtime.bigint() - t_join) / 1e9;
  const after = settle();
  const queue = state.queues.by_event.get(EVENT)!;
  // Columns are grown by doubling: report the bytes in use and the capacity held.
  const heap = after.heapUsed - before.heapUsed;
  const buffers = after.arrayBuffers - before.arrayBuffers;
  const t_draw = process.hrtime.bigint();
  behaviour.apply(state, { t: 'queue_drawn', event_id: EVENT, early_count: queue.count, at_ms: T0 + 3_600_000 });
  const draw_s = Number(process.hrtime.bigint() - t_draw) / 1e9;
  const drawn = settle();
  const t_snap = process.hrtime.bigint();
  const snap = snapshot_queue(queue);
  const bytes = packr.pack(snap);
  const snapshot_s = Number(process.hrtime.bigint() - t_snap) / 1e9;
  const t_restore = process.hrtime.bigint();
  const restored = restore_queue(packr.unpack(bytes) as QueueSnapshot);
  const restore_s = Number(process.hrtime.bigint() - t_restore) / 1e9;
  if (restored.count !== queue.count) throw new Error('the snapshot restores every entry');
  behaviour.check?.(state);
  console.log(JSON.stringify({
    entries, via, capacity: queue.entries.joined_at_ms.length,
    heap_bytes_per_entry: +(heap / entries).toFixed(1),
    array_buffer_bytes_per_entry: +(buffers / entries).toFixed(1),
    bytes_per_entry: +((heap + buffers) / entries).toFixed(1),
    bytes_per_entry_after_draw: +((drawn.heapUsed + drawn.arrayBuffers - before.heapUsed - before.arrayBuffers) / entries).toFixed(1),
    joins_per_s: Math.round(entries / join_s), draw_s: +draw_s.toFixed(3),
    snapshot_s: +snapshot_s.toFixed(3), snapshot_bytes_per_entry: +(bytes.length / entries).toFixed(1),
    restore_s: +restore_s.toFixed(3),
    snapshot_users: snap.user.length - 1,
  }));
}

main();
