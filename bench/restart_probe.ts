// Restore time of a big partition state, in its own process, phase by phase:
//   node dist/bench/restart_probe.js '{"events":200,"layout":{...},"holds":1000000}'
// Builds the events and active 1-seat holds straight through apply (hold_created records, no
// decide: the fill is not what is measured), then times snapshot() -> msgpackr pack -> unpack ->
// restore() -> check_invariants. Prints one JSON line. What bench/sections/restart.ts measures end
// to end (spawn -> serving) includes these plus LMDB reads and the journal tail.
import { performance } from 'node:perf_hooks';
import { event_spec, seats_of, type Layout } from './common.js';

interface Args { events: number; layout: Layout; holds: number }

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const actor = (file: string): string => new URL(`../src/actors/${file}`, import.meta.url).href;
  const ps = await import(actor('partition_state.js'));
  const inv = await import(actor('inventory.js'));
  const snap = await import(actor('snapshot.js'));
  const invariants = await import(actor('invariants.js'));
  const { packr } = await import(new URL('../src/runtime/codec.js', import.meta.url).href);
  const seats_per_event = seats_of(args.layout);
  const state = ps.create_state(0);
  for (let e = 0; e < args.events; e++) {
    inv.apply(state, { t: 'event_created', spec: event_spec(`rs-e${e}`, args.layout, 100) });
  }
  const now = Date.now();
  const rand = (k: number): string => Buffer.from(Uint32Array.of(k, k * 7, k * 13, 0xfeed).buffer).toString('base64url');
  for (let k = 0; k < args.holds; k++) {
    const e = k % args.events;
    const ev = state.events.get(`rs-e${e}`);
    inv.apply(state, {
      t: 'hold_created', hold_id: `hold_0_${rand(k)}`, hold_no: ev.next_hold_no, event_id: `rs-e${e}`,
      user_id: `u${k % 100_003}`, seats: [Math.floor(k / args.events) % seats_per_event], at_ms: now,
      expires_at_ms: now + 3_600_000 + (k % 1000), trace_id: (k * 2654435761 >>> 0).toString(16).padStart(32, '0'),
    });
  }
  const t: Record<string, number> = {};
  let at = performance.now();
  const lap = (name: string): void => { const n = performance.now(); t[name] = n - at; at = n; };
  const s = snap.snapshot(state);
  lap('snapshot_ms');
  const bytes = packr.pack({ seq: 1, state: s });
  lap('pack_ms');
  const decoded = packr.unpack(bytes);
  lap('unpack_ms');
  const restored = snap.restore(0, decoded.state);
  lap('restore_ms');
  invariants.check_invariants(restored);
  lap('check_invariants_ms');
  if (restored.active_holds !== args.holds) throw new Error('holds lost in restore');
  process.stdout.write(JSON.stringify({
    events: args.events, seats: args.events * seats_per_event, holds: args.holds,
    snapshot_bytes: bytes.length, ...t,
  }) + '\n');
}

main().catch((error: unknown) => {
  process.stderr.write(`restart_probe: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
