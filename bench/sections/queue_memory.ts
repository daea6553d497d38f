// The queue section's memory probe: bench/queue_probe.ts in an isolated --expose-gc process.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { quick } from '../config.js';
import { bench_dir, log, track } from '../harness/processes.js';
import { fmt_int } from '../harness/report.js';

/** The figure: memory per queued entry at 1,000,000 entries (BENCH_QUICK: 200,000). */
export const probe_entries = quick ? 200_000 : 1_000_000;

export interface QueueProbe {
  entries: number;
  bytes_total: number;
  bytes_per_entry: number;
  bytes_per_entry_before_draw: number;
  decide_join_per_s: number;
}

export function run_queue_probe(): Promise<QueueProbe> {
  log(`queue memory probe: ${fmt_int(probe_entries)} entries in an isolated process`);
  const argv = ['--expose-gc', join(bench_dir, 'queue_probe.js'), JSON.stringify({ entries: probe_entries, decided: 2_000 })];
  return new Promise<QueueProbe>((resolve, reject) => {
    const proc = track(spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    proc.once('exit', (code) => {
      if (code !== 0) reject(new Error(`queue probe failed: ${err.trim()}`));
      else resolve(JSON.parse(out.trim()) as QueueProbe);
    });
  });
}
