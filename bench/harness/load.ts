// Running a generator process (loadgen.js, purchase_gen.js) against a server while measuring
// that server's CPU, and pooling the rounds of a phase into one figure.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { summarize, type LatencySummary, type LoadResult, type LoadSpec } from '../common.js';
import { cfg } from '../config.js';
import { avg_cpu, machine_busy_s, proc_cpu, type CpuUse } from './metrics.js';
import { bench_dir, track, wait_exit } from './processes.js';

type SpecCore = Pick<LoadSpec, 'label' | 'target' | 'token' | 'event_ids' | 'layout'>;

/** A closed-loop reserve+release spec at the configured concurrency, with `overrides`. */
export function load_spec(overrides: Partial<LoadSpec> & SpecCore): LoadSpec {
  return {
    mode: 'closed',
    op: 'reserve_release',
    concurrency: cfg.concurrency,
    rate: 0,
    warmup_s: cfg.warmup_s,
    duration_s: cfg.phase_s,
    total_ops: 0,
    max_in_flight: 2000,
    seat_pick: 'random',
    seats_min: 1,
    seats_max: 2,
    user_prefix: 'bench-u',
    user_count: 100_000,
    hold_ttl_seconds: 300,
    seed: 42,
    deadline_ms: 10_000,
    return_latencies: false,
    ...overrides,
  };
}

export interface Measured { result: LoadResult; cpu: CpuUse | undefined }
interface GenResult { ok_ops_total: number; loadgen_cpu: number; elapsed_s: number }

/** Runs one loadgen process against `server_pid`'s server, measuring that server's CPU. */
export function run_load(spec: LoadSpec, server_pid: number): Promise<Measured> {
  const max_s = spec.mode === 'count' ? 600 : spec.warmup_s + spec.duration_s + 60;
  return run_generator<LoadResult>('loadgen.js', spec, max_s, server_pid);
}

/**
 * Runs generator `script` (spec as argv JSON, one result JSON line out) against `server_pid`'s
 * server, measuring that server's CPU around it.
 */
export async function run_generator<R extends GenResult>(
  script: string, spec: { label: string }, max_s: number, server_pid: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ result: R; cpu: CpuUse | undefined }> {
  const cpu0 = proc_cpu(server_pid);
  const busy0 = machine_busy_s();
  const t0 = performance.now();
  const proc = track(spawn(process.execPath, [join(bench_dir, script), JSON.stringify(spec)], {
    env, stdio: ['ignore', 'pipe', 'pipe'],
  }));
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const finished = await wait_exit(proc, max_s * 1000);
  if (!finished) {
    proc.kill('SIGKILL');
    throw new Error(`${script} ${spec.label} did not finish within ${max_s} s`);
  }
  const wall_s = (performance.now() - t0) / 1000;
  const cpu1 = proc_cpu(server_pid);
  const busy1 = machine_busy_s();
  if (proc.exitCode !== 0) {
    throw new Error(`${script} ${spec.label} failed (exit ${proc.exitCode}): ${err.trim()}`);
  }
  const result = JSON.parse(out.trim().split('\n').pop()!) as R;
  let cpu: CpuUse | undefined;
  if (cpu0 !== undefined && cpu1 !== undefined) {
    const total = cpu1.total_s - cpu0.total_s;
    const main = cpu1.main_s - cpu0.main_s;
    const span = Math.max(result.elapsed_s, 1e-3);
    const machine = busy0 !== undefined && busy1 !== undefined ? (busy1 - busy0) / wall_s : NaN;
    const loadgen_cores = (result.loadgen_cpu * result.elapsed_s) / wall_s;
    cpu = {
      cores_total: total / span,
      cores_main: main / span,
      cores_other: (total - main) / span,
      cpu_us_per_op: result.ok_ops_total > 0 ? (total / result.ok_ops_total) * 1e6 : NaN,
      machine_cores: machine,
      bystander_cores: Math.max(0, machine - total / wall_s - loadgen_cores),
    };
  }
  return { result, cpu };
}

export interface Pooled {
  rounds: Measured[];
  ops_per_s: number;
  latency: LatencySummary;
  reserve_p99_ms: number;
  release_p99_ms: number;
  errors: Record<string, number>;
  error_count: number;
  loadgen_cpu: number;
  cpu: CpuUse | undefined;
}

/** Combines rounds: throughput = all ok ops / all windows; percentiles over all latencies. */
export function pool(rounds: Measured[]): Pooled {
  const latencies: number[] = [];
  let ok = 0;
  let window = 0;
  const errors: Record<string, number> = {};
  let error_count = 0;
  for (const { result } of rounds) {
    for (const x of result.latencies_ms ?? []) latencies.push(x);
    ok += result.ok_ops;
    window += result.window_s;
    for (const [k, v] of Object.entries(result.errors)) errors[k] = (errors[k] ?? 0) + v;
    error_count += result.error_count;
  }
  return {
    rounds,
    ops_per_s: ok / window,
    latency: summarize(latencies),
    reserve_p99_ms: Math.max(...rounds.map((r) => r.result.reserve.p99_ms)),
    release_p99_ms: Math.max(...rounds.map((r) => r.result.release.p99_ms)),
    errors,
    error_count,
    loadgen_cpu: rounds.reduce((a, r) => a + r.result.loadgen_cpu, 0) / rounds.length,
    cpu: avg_cpu(rounds.map((r) => r.cpu)),
  };
}

/** `p` for results.json: each round without its raw latencies, with its server CPU. */
export function strip(p: Pooled) {
  return {
    ...p,
    rounds: p.rounds.map((r) => {
      const { latencies_ms: _, ...rest } = r.result;
      return { ...rest, server_cpu: r.cpu };
    }),
  };
}
