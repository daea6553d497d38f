// Memory per seat of the inventory state, measured in its own process:
//   node --expose-gc dist/bench/memory_probe.js '{"events":20,"layout":{...},"holds":100000}'
// Creates the events straight through decide_create_event + apply on create_state (no worker,
// no LMDB, no gRPC), then optionally active 1-seat holds through decide_reserve + apply.
// Prints one JSON line. The actor module is imported dynamically so a change of its exports
// breaks this probe at run time (reported), never the project's build.
import { randomBytes } from 'node:crypto';
import { event_spec, seat_id, seats_of, type Layout } from './common.js';

interface Args { events: number; layout: Layout; holds: number }

interface InventoryModule {
  create_state(partition: number): unknown;
  decide_create_event(state: unknown, input: unknown): { records: unknown[] };
  decide_reserve(state: unknown, req: unknown, ctx: unknown): { records: unknown[] };
  apply(state: unknown, record: unknown): void;
}

const gc = (globalThis as { gc?: () => void }).gc;

function settle(): NodeJS.MemoryUsage {
  if (gc === undefined) throw new Error('run with node --expose-gc');
  for (let i = 0; i < 4; i++) gc();
  return process.memoryUsage();
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const actor = (file: string): string => new URL(`../src/actors/${file}`, import.meta.url).href;
  const mod = {
    ...(await import(actor('partition_state.js'))), ...(await import(actor('inventory.js'))),
  } as Partial<InventoryModule>;
  for (const name of ['create_state', 'decide_create_event', 'decide_reserve', 'apply'] as const) {
    if (typeof mod[name] !== 'function') {
      throw new Error(`dist/src/actors/{partition_state,inventory}.js no longer export ${name}()`);
    }
  }
  const inv = mod as InventoryModule;
  const seats_per_event = seats_of(args.layout);
  // Build the specs before the baseline, so only the state is measured.
  const specs = Array.from({ length: args.events }, (_, i) => event_spec(`mem-e${String(i).padStart(3, '0')}`, args.layout, 100));
  const state = inv.create_state(0);
  const before = settle();
  for (const spec of specs) {
    const decision = inv.decide_create_event(state, spec);
    for (const record of decision.records) inv.apply(state, record);
  }
  const after = settle();
  const seats = args.events * seats_per_event;
  const heap_delta = after.heapUsed - before.heapUsed;
  const ab_delta = after.arrayBuffers - before.arrayBuffers;
  const external_delta = after.external - before.external;

  // Active holds (1 seat each): what 100k holds cost in memory, for the restart scenario.
  let holds_result: Record<string, number> | undefined;
  if (args.holds > 0) {
    const users = 10_007;
    const ctx = { partition: 0, now_ms: Date.now(), random_bytes: (n: number) => randomBytes(n) };
    const requests = Array.from({ length: args.holds }, (_, k) => ({
      event_id: specs[k % args.events]!.event_id,
      seat_ids: [seat_id(args.layout, Math.floor(k / args.events) % seats_per_event)],
      hold_ttl_seconds: 3600,
      user_id: `u${k % users}`,
      trace_id: '0123456789abcdef0123456789abcdef',
    }));
    const h0 = settle();
    for (const req of requests) {
      const decision = inv.decide_reserve(state, req, ctx);
      for (const record of decision.records) inv.apply(state, record);
    }
    // The requests stay alive until measured: freeing them before h1 subtracted their own
    // memory (~150 B a request) from what the holds cost.
    const h1 = settle();
    requests.length = 0;
    const d = h1.heapUsed - h0.heapUsed + (h1.arrayBuffers - h0.arrayBuffers);
    holds_result = { holds: args.holds, bytes_total: d, bytes_per_hold: d / args.holds };
  }

  process.stdout.write(JSON.stringify({
    events: args.events,
    seats,
    heap_used_delta: heap_delta,
    array_buffers_delta: ab_delta,
    external_delta,
    bytes_per_seat: (heap_delta + ab_delta) / seats,
    heap_bytes_per_seat: heap_delta / seats,
    array_buffer_bytes_per_seat: ab_delta / seats,
    holds: holds_result,
    // Keep the state reachable until measured.
    kept: (state as { events: Map<string, unknown> }).events.size,
  }) + '\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`memory_probe: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
