// What the bench reads off a server besides the generators' own figures: its Prometheus
// metrics (group commit, server-side latency) and its CPU time from Linux /proc.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

export type Scrape = Map<string, number>;

export async function scrape(http_port: number): Promise<Scrape> {
  const text = await (await fetch(`http://127.0.0.1:${http_port}/metrics`)).text();
  const values: Scrape = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line === '') continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const key = m[1]! + (m[2] ?? '');
    values.set(key, Number(m[3]));
  }
  return values;
}

export function metric(s: Scrape, name: string): number {
  return s.get(name) ?? 0;
}

/** metric `name` in `after` less the same in `before`. */
export function metric_delta(before: Scrape, after: Scrape, name: string): number {
  return metric(after, name) - metric(before, name);
}

/**
 * Server-side quantile of a histogram between two scrapes, as the upper bound of the bucket the
 * quantile falls in (prom-client buckets, so coarse). `labels` must all appear in the series.
 */
export function hist_quantile(
  before: Scrape, after: Scrape, name: string, labels: string[], q: number,
): number {
  const buckets: { le: number; count: number }[] = [];
  for (const [key, value] of after) {
    if (!key.startsWith(`${name}_bucket{`) || !labels.every((l) => key.includes(l))) continue;
    const le = /le="([^"]+)"/.exec(key)?.[1];
    if (le === undefined) continue;
    const count = value - (before.get(key) ?? 0);
    buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total === 0) return NaN;
  return buckets.find((b) => b.count >= q * total)!.le;
}

export interface CommitStats {
  commits: number;
  records: number;
  records_per_commit: number;
  mean_commit_ms: number;
}

export function commit_delta(before: Scrape, after: Scrape): CommitStats {
  const delta = (name: string) => metric_delta(before, after, name);
  const records = delta('ticketing_journal_batch_size_sum');
  const commits = delta('ticketing_journal_batch_size_count');
  const commit_s = delta('ticketing_journal_commit_duration_seconds_sum');
  const commit_n = delta('ticketing_journal_commit_duration_seconds_count');
  return {
    commits,
    records,
    records_per_commit: commits > 0 ? records / commits : NaN,
    mean_commit_ms: commit_n > 0 ? (commit_s / commit_n) * 1000 : NaN,
  };
}

export function sum_commits(xs: CommitStats[]): CommitStats {
  const commits = xs.reduce((a, x) => a + x.commits, 0);
  const records = xs.reduce((a, x) => a + x.records, 0);
  const commit_ms = xs.reduce(
    (a, x) => a + (Number.isFinite(x.mean_commit_ms) ? x.mean_commit_ms * x.commits : 0), 0);
  return {
    commits,
    records,
    records_per_commit: commits > 0 ? records / commits : NaN,
    mean_commit_ms: commits > 0 ? commit_ms / commits : NaN,
  };
}

// ---------------------------------------------------------------------------------------------
// CPU

let clk_tck = 100;
try {
  clk_tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100
}

/**
 * CPU seconds of a process (all threads, dead ones included) and of its main thread
 * (Linux /proc).
 */
export function proc_cpu(pid: number): { total_s: number; main_s: number } | undefined {
  const read = (path: string): number => {
    const stat = readFileSync(path, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / clk_tck;
  };
  try {
    return { total_s: read(`/proc/${pid}/stat`), main_s: read(`/proc/${pid}/task/${pid}/stat`) };
  } catch {
    return undefined;
  }
}

/** Busy CPU seconds of the whole machine (every process, ours or not), from /proc/stat. */
export function machine_busy_s(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, x) => a + x, 0);
    return (total - v[3]! - v[4]!) / clk_tck;
  } catch {
    return undefined;
  }
}

export interface CpuUse {
  cores_total: number;
  cores_main: number;
  cores_other: number;
  cpu_us_per_op: number;
  /**
   * Whole machine busy cores during the run, and what neither the server nor the generator used
   * (noise).
   */
  machine_cores: number;
  bystander_cores: number;
}

export function avg_cpu(all: (CpuUse | undefined)[]): CpuUse | undefined {
  const cpus = all.filter((c): c is CpuUse => c !== undefined);
  const avg = (f: (c: CpuUse) => number) => cpus.reduce((a, c) => a + f(c), 0) / cpus.length;
  return cpus.length === 0 ? undefined : {
    cores_total: avg((c) => c.cores_total), cores_main: avg((c) => c.cores_main),
    cores_other: avg((c) => c.cores_other), cpu_us_per_op: avg((c) => c.cpu_us_per_op),
    machine_cores: avg((c) => c.machine_cores), bystander_cores: avg((c) => c.bystander_cores),
  };
}

/** Bytes on disk under `path` (allocated blocks, as du counts them). */
export function du_bytes(path: string): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) total += du_bytes(p);
    else if (entry.isFile()) total += statSync(p).blocks * 512;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Several servers (a cluster's nodes)

/** One scrape of several servers: the same series added up (counters, histogram buckets). */
export function merge_scrapes(all: Scrape[]): Scrape {
  const merged: Scrape = new Map();
  for (const s of all) {
    for (const [key, value] of s) merged.set(key, (merged.get(key) ?? 0) + value);
  }
  return merged;
}

/** Bucket counts of histogram `name` between two scrapes, every label set added up per `le`. */
function buckets_by_le(
  before: Scrape, after: Scrape, name: string,
): { le: number; count: number }[] {
  const by_le = new Map<number, number>();
  for (const [key, value] of after) {
    if (!key.startsWith(`${name}_bucket{`)) continue;
    const le_text = /le="([^"]+)"/.exec(key)?.[1];
    if (le_text === undefined) continue;
    const le = le_text === '+Inf' ? Infinity : Number(le_text);
    by_le.set(le, (by_le.get(le) ?? 0) + value - (before.get(key) ?? 0));
  }
  return [...by_le].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le);
}

export interface HistogramDelta {
  count: number;
  sum: number;
  mean: number;
  p50: number;
  p99: number;
}

/**
 * Histogram `name` between two scrapes over all its label sets: count, sum, mean, and p50/p99 as
 * the upper bound of the bucket each falls in (prom-client buckets, so coarse; Infinity when it
 * falls in the last, open bucket). NaN quantiles when nothing was observed.
 */
export function hist_delta(before: Scrape, after: Scrape, name: string): HistogramDelta {
  let count = 0;
  let sum = 0;
  for (const [key, value] of after) {
    const base = key.replace(/\{.*$/, '');
    if (base === `${name}_count`) count += value - (before.get(key) ?? 0);
    if (base === `${name}_sum`) sum += value - (before.get(key) ?? 0);
  }
  const buckets = buckets_by_le(before, after, name);
  const total = buckets[buckets.length - 1]?.count ?? 0;
  const quantile = (q: number) =>
    total === 0 ? NaN : buckets.find((b) => b.count >= q * total)!.le;
  const mean = count > 0 ? sum / count : NaN;
  return { count, sum, mean, p50: quantile(0.5), p99: quantile(0.99) };
}

/** Counter `name` between two scrapes, per label set (the `{...}` text) and in total. */
export function counter_delta(
  before: Scrape, after: Scrape, name: string,
): { total: number; by_labels: Record<string, number> } {
  const by_labels: Record<string, number> = {};
  let total = 0;
  for (const [key, value] of after) {
    if (key !== name && !key.startsWith(`${name}{`)) continue;
    const d = value - (before.get(key) ?? 0);
    by_labels[key.slice(name.length) || '{}'] = d;
    total += d;
  }
  return { total, by_labels };
}

/** CPU seconds (all threads) of the processes `pids` added up; a process gone counts 0. */
export function pids_cpu_s(pids: number[]): number {
  return pids.reduce((a, pid) => a + (proc_cpu(pid)?.total_s ?? 0), 0);
}
