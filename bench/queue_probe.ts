// Memory per queued entry of the waiting room, measured in its own process:
//   node --expose-gc dist/bench/queue_probe.js '{"entries":1000000}'
// Creates an event and its queue, then `entries` joins on create_state (no worker, no LMDB, no
// gRPC), then the draw (the partition timer at the sale start), and prints one JSON line: heap +
// arrayBuffers grown per entry. The first `decided` joins go through decide_join_queue + apply;
// the rest apply the queue_joined records a journal replay would (the same state without signing
// a receipt per entry: decide runs ~3,000/s here, so 1,000,000 decided joins took minutes). The user ids are
// made inside the loop, so the strings the queue keeps (its Map<user_id, seq>) are counted. The
// actor modules are imported dynamically, as memory_probe.ts does: a change of their exports
// breaks this probe at run time (reported), never the build.
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { event_spec } from './common.js';

interface Args { entries: number; decided: number }

interface Decision { records: unknown[] }
interface Crypto {
  user_hash_of(event_id: string, user_id: string, device_id: string): Buffer;
  ticket_id_of(partition: number, key: Uint8Array, queue_no: number, seq: number): string;
  receipt_body_head(event_id: string, ticket_id: string, seq: number, at_ms: number, user_hash: string): string;
  chain_next(previous: Uint8Array, head: string): Buffer;
}
interface Joined { t: string; chain: Uint8Array }
interface Configured { t: string; queue_no: number; keys: { ticket_key: Uint8Array } }
interface QueueModule {
  create_state(partition: number): unknown;
  decide_create_event(state: unknown, input: unknown): Decision;
  apply(state: unknown, record: unknown): void;
  decide_configure_queue(state: unknown, req: unknown, ctx: unknown): Decision;
  decide_join_queue(state: unknown, req: unknown, ctx: unknown): Decision;
  decide_queue_timers(state: unknown, ctx: unknown): Decision;
}

const gc = (globalThis as { gc?: () => void }).gc;

function settle(): NodeJS.MemoryUsage {
  if (gc === undefined) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage();
}

const names = [
  'create_state', 'decide_create_event', 'apply', 'decide_configure_queue', 'decide_join_queue',
  'decide_queue_timers',
] as const;

async function load(): Promise<QueueModule & Crypto> {
  const actor = (file: string): string => new URL(`../src/actors/${file}`, import.meta.url).href;
  const mod = {
    ...(await import(actor('partition_state.js'))), ...(await import(actor('inventory.js'))),
    ...(await import(actor('queue.js'))), ...(await import(actor('queue_crypto.js'))),
  } as Partial<QueueModule & Crypto>;
  const all = [...names, 'user_hash_of', 'ticket_id_of', 'receipt_body_head', 'chain_next'] as const;
  for (const name of all) {
    if (typeof mod[name] !== 'function') throw new Error(`dist/src/actors no longer export ${name}()`);
  }
  return mod as QueueModule & Crypto;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const q = await load();
  const run = (state: unknown, d: Decision) => { for (const r of d.records) q.apply(state, r); };
  const state = q.create_state(0);
  run(state, q.decide_create_event(state, event_spec('q-mem', { sections: 1, rows: 1, seats_per_row: 10 }, 10)));
  const start_ms = Date.now();
  const ctx = (now_ms: number) => ({ partition: 0, now_ms, random_bytes: (n: number) => randomBytes(n) });
  const configure = q.decide_configure_queue(state, {
    event_id: 'q-mem', opens_at_ms: start_ms - 1000, sale_starts_at_ms: start_ms + 3_600_000,
    admit_per_minute: 1000, admission_ttl_seconds: 600, service_bypass: false, trace_id: '',
  }, ctx(start_ms));
  const configured = configure.records[0] as Configured;
  run(state, configure);
  const before = settle();
  const t0 = performance.now();
  // 12-character user ids, one device each: a realistic account id is longer, not shorter.
  const user_of = (i: number) => `user-${String(i).padStart(7, '0')}`;
  let chain: Uint8Array = new Uint8Array(32);
  for (let i = 0; i < Math.min(args.decided, args.entries); i++) {
    const d = q.decide_join_queue(state, {
      event_id: 'q-mem', user_id: user_of(i), device_id: 'phone', trace_id: '',
    }, ctx(start_ms + i));
    chain = (d.records.find((r) => (r as Joined).t === 'queue_joined') as Joined).chain;
    run(state, d);
  }
  for (let i = args.decided; i < args.entries; i++) {
    const seq = i + 1;
    const user_id = user_of(i);
    const user_hash = q.user_hash_of('q-mem', user_id, 'phone');
    const ticket_id = q.ticket_id_of(0, configured.keys.ticket_key, configured.queue_no, seq);
    chain = q.chain_next(chain, q.receipt_body_head('q-mem', ticket_id, seq, start_ms + i, user_hash.toString('hex')));
    q.apply(state, { t: 'queue_joined', event_id: 'q-mem', seq, user_id, user_hash, chain, joined_at_ms: start_ms + i });
  }
  const join_s = (performance.now() - t0) / 1000;
  const joined = settle();
  run(state, q.decide_queue_timers(state, ctx(start_ms + 3_600_000)));
  const drawn = settle();
  const grown = (m: NodeJS.MemoryUsage) => m.heapUsed - before.heapUsed + m.arrayBuffers - before.arrayBuffers;
  process.stdout.write(JSON.stringify({
    entries: args.entries, bytes_total: grown(drawn), bytes_per_entry: grown(drawn) / args.entries,
    bytes_per_entry_before_draw: grown(joined) / args.entries,
    heap_used_delta: drawn.heapUsed - before.heapUsed,
    array_buffers_delta: drawn.arrayBuffers - before.arrayBuffers,
    decide_join_per_s: args.entries / join_s,
    // Keep the state reachable until measured.
    kept: (state as { events: Map<string, unknown> }).events.size,
  }) + '\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`queue_probe: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
