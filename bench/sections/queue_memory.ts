// The queue section's memory probe: bench/queue_probe.ts (lane wr-actor's) in an isolated
// --expose-gc process, joins applied as a journal replay would (the state a decided join leaves,
// without signing a receipt per entry: 1,000,000 decided joins take minutes).
import { quick } from '../config.js';
import { log, run_json_probe } from '../harness/processes.js';
import { fmt_int } from '../harness/report.js';

/** The figure: memory per queued entry at 1,000,000 entries (BENCH_QUICK: 200,000). */
export const probe_entries = quick ? 200_000 : 1_000_000;

/** The figures queue_probe.js prints that this section reads (results.json keeps them all). */
export interface QueueProbe {
  entries: number;
  /** Before the draw. */
  bytes_per_entry: number;
  /** After it (the draw's order column added): the figure held against the target. */
  bytes_per_entry_after_draw: number;
}

export function run_queue_probe(): Promise<QueueProbe> {
  log(`queue memory probe: ${fmt_int(probe_entries)} entries in an isolated process`);
  return run_json_probe<QueueProbe>(
    'queue_probe.js', { entries: probe_entries, via: 'apply' }, 'queue probe',
  );
}
