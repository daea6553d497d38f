// The report every section writes into: table rows (a check against a target, or info),
// detail lines printed under the table, and the figures for bench/results.json.
import type { LatencySummary } from '../common.js';
import type { CpuUse } from './metrics.js';

export type Status = 'ok' | 'MISSED' | 'info' | 'ERROR';
export interface Row {
  order: number;
  check: string;
  ours: string;
  reference: string;
  value: string;
  target: string;
  status: Status;
}

export class Report {
  readonly rows: Row[] = [];
  readonly details: string[] = [];
  /** bench/results.json: the run's own keys first, then each section's, in the order written. */
  readonly results: Record<string, unknown> = {};

  /** A row; `pass` undefined: info only, true/false: the target was met or MISSED. */
  check(row: Omit<Row, 'status'>, pass: boolean | undefined): void {
    this.rows.push({ ...row, status: pass === undefined ? 'info' : pass ? 'ok' : 'MISSED' });
  }

  detail(...lines: string[]): void {
    this.details.push(...lines);
  }

  sorted_rows(): Row[] {
    return [...this.rows].sort((a, b) => a.order - b.order);
  }

  table(): string {
    const cols = ['check', 'ours', 'reference', 'value', 'target', 'status'] as const;
    type Line = Record<(typeof cols)[number], string>;
    const header: Line = {
      check: 'check', ours: 'ours', reference: 'reference', value: 'result', target: 'target',
      status: 'status',
    };
    const all = [header, ...this.sorted_rows()];
    const width = Object.fromEntries(
      cols.map((c) => [c, Math.max(...all.map((r) => r[c].length))]),
    ) as Record<(typeof cols)[number], number>;
    const line = (r: Line) => cols.map((c) => r[c].padEnd(width[c])).join(' | ').trimEnd();
    const rule = cols.map((c) => '-'.repeat(width[c])).join('-+-');
    return [line(header), rule, ...all.slice(1).map(line)].join('\n');
  }
}

// ---------------------------------------------------------------------------------------------
// Formatting

export const f = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
export const ms = (x: number) => `${f(x, 2)} ms`;
export const fmt_int = (x: number) =>
  (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : String(x));
export const lat = (l: LatencySummary) => `p50 ${ms(l.p50_ms)} p99 ${ms(l.p99_ms)}`;

/** "ratio R (rounds r1, r2, ...)": a pooled ratio and the ratio of each round. */
export const ratio_text = (ratio: number, rounds: number[]) =>
  `ratio ${f(ratio)} (rounds ${rounds.map((x) => f(x)).join(', ')})`;

export function cpu_line(name: string, cpu: CpuUse | undefined, loadgen_cpu: number): string {
  if (cpu === undefined) return `${name}: server CPU n/a`;
  return `${name}: server ${f(cpu.cores_total)} cores (main thread ${f(cpu.cores_main)}, ` +
    `other threads ${f(cpu.cores_other)}), ${f(cpu.cpu_us_per_op, 0)} us CPU/op; ` +
    `loadgen ${f(loadgen_cpu)} cores; other processes ${f(cpu.bystander_cores)} cores`;
}

export function errors_line(name: string, e: Record<string, number>): string {
  const list = Object.entries(e).map(([k, v]) => `${k}=${v}`).join(', ');
  return `errors ${name}: ${Object.keys(e).length === 0 ? 'none' : list}`;
}
