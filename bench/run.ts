// `npm run bench`: measures the ticketing node against its targets, side by side in one run.
// Every figure that depends on machine speed is a ratio against something measured in the same
// run (a no-op gRPC server, or the same server under a different load shape). The bench measures;
// it never fails on a missed target (exit 0, MISSED in the report). Exit 1 only when it could
// not measure at all. Everything it starts (servers, generators, temp dirs) is removed on exit.
//
// Knobs (environment): BENCH_QUICK=1 (short phases, for trying the bench out),
// BENCH_CONCURRENCY (closed-loop calls in flight, default 64), BENCH_WORKERS (server --workers, default 1),
// BENCH_ONLY=memory,load,restart,kafka,purchase (run some sections only).
import * as grpc from '@grpc/grpc-js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  catalog_proto, client_ctor, event_wire, load_protos, partition_of, repo_root, seats_of, summarize,
  type BenchOrder, type Layout, type LatencySummary, type LoadResult, type LoadSpec, type PurchaseResult, type PurchaseSpec, type PurchaseStep,
} from './common.js';
import { LagProbe, start_bench_broker } from './kafka.js';

const quick = process.env['BENCH_QUICK'] === '1';
const cfg = {
  workers: Number(process.env['BENCH_WORKERS'] ?? 1),
  concurrency: Number(process.env['BENCH_CONCURRENCY'] ?? 64),
  warmup_s: 1,
  phase_s: quick ? 1.5 : 3,
  rounds: quick ? 1 : 3,
  open_s: quick ? 2 : 6,
  events: 100,
  small_layout: { sections: 2, rows: 10, seats_per_row: 100 } satisfies Layout, // 2,000 seats
  big_events: 20,
  big_layout: { sections: 5, rows: 10, seats_per_row: 1000 } satisfies Layout, // 50,000 seats
  fill_holds: quick ? 20_000 : 100_000,
  fill_users: 10_007,
  fill_concurrency: 256,
  max_seats_per_user: 100,
  purchase_event: 'bench-sale',
  purchase_layout: { sections: 4, rows: 50, seats_per_row: 1000 } satisfies Layout, // 200,000 seats, the most one event may have
  stats_wait_ms: 1500,
  overall_timeout_ms: 15 * 60_000, // every section, purchase (about 3 min) included
};

const targets = {
  throughput_ratio: 0.6,
  open_p99_ms: 10,
  hot_ratio: 0.8,
  records_per_commit: 20,
  bytes_per_seat: 64,
  restart_s: 3,
  purchase_rpc_ratio: 0.5,
  kafka_throughput_ratio: 0.9,
  kafka_records_per_send: 50,
};

const bench_dir = fileURLToPath(new URL('./', import.meta.url)); // dist/bench/
const results_path = join(repo_root, 'bench', 'results.json');
const cli = join(repo_root, 'bin', 'ticketing.js');

// ---------------------------------------------------------------------------------------------
// Process and temp-dir bookkeeping: everything is torn down on exit, error or signal.

const children = new Set<ChildProcess>();
const temp_dirs = new Set<string>();

function alive(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

function cleanup_sync(): void {
  for (const proc of children) {
    if (alive(proc) && proc.pid !== undefined) {
      try {
        proc.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  }
  children.clear();
  for (const dir of temp_dirs) rmSync(dir, { recursive: true, force: true });
  temp_dirs.clear();
}

process.on('exit', cleanup_sync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
    cleanup_sync();
    process.exit(130);
  });
}

function track(proc: ChildProcess): ChildProcess {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

function wait_exit(proc: ChildProcess, timeout_ms: number): Promise<boolean> {
  if (!alive(proc)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeout_ms);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function terminate(proc: ChildProcess, timeout_ms = 15_000): Promise<void> {
  if (!alive(proc)) return;
  proc.kill('SIGTERM');
  if (!(await wait_exit(proc, timeout_ms))) {
    proc.kill('SIGKILL');
    await wait_exit(proc, 5000);
  }
}

function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Servers

interface Running {
  name: string;
  proc: ChildProcess;
  pid: number;
  grpc: string;
  http_port: number | undefined;
  spawn_to_serving_ms: number;
  recovery_ms: number | undefined;
  log_tail: string[];
}

/** Spawns `args` and resolves when a JSON log line with msg "serving" appears on stdout. */
function start_process(name: string, args: string[], env: NodeJS.ProcessEnv, timeout_ms = 60_000): Promise<Running> {
  const started = performance.now();
  const proc = track(spawn(process.execPath, args, { cwd: repo_root, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  const tail: string[] = [];
  let recovery_ms: number | undefined;
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 50) tail.shift();
  };
  return new Promise<Running>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => fail(new Error(`${name}: no "serving" line within ${timeout_ms} ms`)), timeout_ms);
    function fail(error: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (alive(proc)) proc.kill('SIGKILL');
      reject(new Error(`${error.message}\n--- ${name} output (last lines) ---\n${tail.join('\n')}`));
    }
    let buffered = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        remember(line);
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        if (parsed['msg'] === 'partitions recovered' && typeof parsed['recovery_ms'] === 'number') recovery_ms = parsed['recovery_ms'];
        if (parsed['msg'] === 'serving' && !settled) {
          const spawn_to_serving_ms = performance.now() - started;
          settled = true;
          clearTimeout(timer);
          const http = typeof parsed['http'] === 'string' ? Number(parsed['http'].split(':').pop()) : undefined;
          resolve({
            name, proc, pid: proc.pid!, grpc: String(parsed['grpc']), http_port: http, spawn_to_serving_ms, recovery_ms, log_tail: tail,
          });
        }
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line !== '') remember(`[stderr] ${line}`);
    });
    proc.once('exit', (code, signal) => fail(new Error(`${name} exited (code ${code}, signal ${signal}) before serving`)));
    proc.once('error', (error) => fail(error));
  });
}

function start_ours(name: string, data_dir: string, secret: string, extra: string[] = []): Promise<Running> {
  return start_process(name, [
    cli, 'serve', '--data', data_dir, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--workers', String(cfg.workers), ...extra,
  ], { ...process.env, TICKETING_AUTH_SECRET: secret });
}

function mint_token(user: string, role: string, data_dir: string, secret: string): string {
  return execFileSync(process.execPath, [cli, 'token', '--user', user, '--role', role, '--data', data_dir], {
    cwd: repo_root, env: { ...process.env, TICKETING_AUTH_SECRET: secret }, encoding: 'utf8',
  }).trim();
}

async function create_events(server: Running, admin_token: string, ids: string[], layout: Layout): Promise<void> {
  const root = load_protos([catalog_proto]);
  const Catalog = client_ctor(root, 'ticketing.catalog.v1.CatalogService');
  const client = new Catalog(server.grpc, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 16 * 1024 * 1024 });
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${admin_token}`);
  try {
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < ids.length) {
        const event_id = ids[next++]!;
        await new Promise<void>((resolve, reject) => {
          (client as unknown as Record<string, Function>)['CreateEvent']!.call(
            client, { event: event_wire(event_id, layout, cfg.max_seats_per_user) }, metadata, { deadline: Date.now() + 30_000 },
            (error: grpc.ServiceError | null, reply: { seat_count: string }) => {
              if (error) reject(new Error(`CreateEvent ${event_id}: ${grpc.status[error.code]}: ${error.details}`));
              else if (Number(reply.seat_count) !== seats_of(layout)) reject(new Error(`CreateEvent ${event_id}: seat_count ${reply.seat_count}`));
              else resolve();
            },
          );
        });
      }
    }));
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Metrics and CPU

type Scrape = Map<string, number>;

async function scrape(http_port: number): Promise<Scrape> {
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

function metric(s: Scrape, name: string): number {
  return s.get(name) ?? 0;
}

/**
 * Server-side quantile of a histogram between two scrapes, as the upper bound of the bucket the
 * quantile falls in (prom-client buckets, so coarse). `labels` must all appear in the series.
 */
function hist_quantile(before: Scrape, after: Scrape, name: string, labels: string[], q: number): number {
  const buckets: { le: number; count: number }[] = [];
  for (const [key, value] of after) {
    if (!key.startsWith(`${name}_bucket{`) || !labels.every((l) => key.includes(l))) continue;
    const le = /le="([^"]+)"/.exec(key)?.[1];
    if (le === undefined) continue;
    buckets.push({ le: le === '+Inf' ? Infinity : Number(le), count: value - (before.get(key) ?? 0) });
  }
  buckets.sort((a, b) => a.le - b.le);
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total === 0) return NaN;
  return buckets.find((b) => b.count >= q * total)!.le;
}

interface CommitStats { commits: number; records: number; records_per_commit: number; mean_commit_ms: number }

function commit_delta(before: Scrape, after: Scrape): CommitStats {
  const records = metric(after, 'ticketing_journal_batch_size_sum') - metric(before, 'ticketing_journal_batch_size_sum');
  const commits = metric(after, 'ticketing_journal_batch_size_count') - metric(before, 'ticketing_journal_batch_size_count');
  const commit_s = metric(after, 'ticketing_journal_commit_duration_seconds_sum') - metric(before, 'ticketing_journal_commit_duration_seconds_sum');
  const commit_n = metric(after, 'ticketing_journal_commit_duration_seconds_count') - metric(before, 'ticketing_journal_commit_duration_seconds_count');
  return {
    commits,
    records,
    records_per_commit: commits > 0 ? records / commits : NaN,
    mean_commit_ms: commit_n > 0 ? (commit_s / commit_n) * 1000 : NaN,
  };
}

let clk_tck = 100;
try {
  clk_tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100
}

/** CPU seconds of a process (all threads, dead ones included) and of its main thread (Linux /proc). */
function proc_cpu(pid: number): { total_s: number; main_s: number } | undefined {
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
function machine_busy_s(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, x) => a + x, 0);
    return (total - v[3]! - v[4]!) / clk_tck;
  } catch {
    return undefined;
  }
}

interface CpuUse {
  cores_total: number;
  cores_main: number;
  cores_other: number;
  cpu_us_per_op: number;
  /** Whole machine busy cores during the run, and what neither the server nor the generator used (noise). */
  machine_cores: number;
  bystander_cores: number;
}

// ---------------------------------------------------------------------------------------------
// Load

function load_spec(overrides: Partial<LoadSpec> & Pick<LoadSpec, 'label' | 'target' | 'token' | 'event_ids' | 'layout'>): LoadSpec {
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

interface Measured { result: LoadResult; cpu: CpuUse | undefined }
interface GenResult { ok_ops_total: number; loadgen_cpu: number; elapsed_s: number }

/** Runs one loadgen process against `server_pid`'s server, measuring that server's CPU around it. */
function run_load(spec: LoadSpec, server_pid: number): Promise<Measured> {
  return run_generator<LoadResult>('loadgen.js', spec, spec.mode === 'count' ? 600 : spec.warmup_s + spec.duration_s + 60, server_pid);
}

/** Runs generator `script` (spec as argv JSON, one result JSON line out) against `server_pid`'s server, measuring that server's CPU around it. */
async function run_generator<R extends GenResult>(
  script: string, spec: { label: string }, max_s: number, server_pid: number, env: NodeJS.ProcessEnv = process.env,
): Promise<{ result: R; cpu: CpuUse | undefined }> {
  const cpu0 = proc_cpu(server_pid);
  const busy0 = machine_busy_s();
  const t0 = performance.now();
  const proc = track(spawn(process.execPath, [join(bench_dir, script), JSON.stringify(spec)], { env, stdio: ['ignore', 'pipe', 'pipe'] }));
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
  if (proc.exitCode !== 0) throw new Error(`${script} ${spec.label} failed (exit ${proc.exitCode}): ${err.trim()}`);
  const result = JSON.parse(out.trim().split('\n').pop()!) as R;
  let cpu: CpuUse | undefined;
  if (cpu0 !== undefined && cpu1 !== undefined) {
    const total = cpu1.total_s - cpu0.total_s;
    const main = cpu1.main_s - cpu0.main_s;
    const span = Math.max(result.elapsed_s, 1e-3);
    const machine = busy0 !== undefined && busy1 !== undefined ? (busy1 - busy0) / wall_s : NaN;
    cpu = {
      cores_total: total / span,
      cores_main: main / span,
      cores_other: (total - main) / span,
      cpu_us_per_op: result.ok_ops_total > 0 ? (total / result.ok_ops_total) * 1e6 : NaN,
      machine_cores: machine,
      bystander_cores: Math.max(0, machine - total / wall_s - (result.loadgen_cpu * result.elapsed_s) / wall_s),
    };
  }
  return { result, cpu };
}

interface Pooled {
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
function pool(rounds: Measured[]): Pooled {
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

function avg_cpu(all: (CpuUse | undefined)[]): CpuUse | undefined {
  const cpus = all.filter((c): c is CpuUse => c !== undefined);
  const avg = (f: (c: CpuUse) => number) => cpus.reduce((a, c) => a + f(c), 0) / cpus.length;
  return cpus.length === 0 ? undefined : {
    cores_total: avg((c) => c.cores_total), cores_main: avg((c) => c.cores_main),
    cores_other: avg((c) => c.cores_other), cpu_us_per_op: avg((c) => c.cpu_us_per_op),
    machine_cores: avg((c) => c.machine_cores), bystander_cores: avg((c) => c.bystander_cores),
  };
}

function strip(p: Pooled) {
  return {
    ...p,
    rounds: p.rounds.map((r) => {
      const { latencies_ms: _, ...rest } = r.result;
      return { ...rest, server_cpu: r.cpu };
    }),
  };
}

function du_bytes(path: string): number {
  let total = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, entry.name);
    if (entry.isDirectory()) total += du_bytes(p);
    else if (entry.isFile()) total += statSync(p).blocks * 512;
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// Report

type Status = 'ok' | 'MISSED' | 'info' | 'ERROR';
interface Row { order: number; check: string; ours: string; reference: string; value: string; target: string; status: Status }

const rows: Row[] = [];
const details: string[] = [];
const f = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
const ms = (x: number) => `${f(x, 2)} ms`;
const fmt_int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : String(x));
const lat = (l: LatencySummary) => `p50 ${ms(l.p50_ms)} p99 ${ms(l.p99_ms)}`;

function check(row: Omit<Row, 'status'>, pass: boolean | undefined): void {
  rows.push({ ...row, status: pass === undefined ? 'info' : pass ? 'ok' : 'MISSED' });
}

function print_table(): string {
  const cols = ['check', 'ours', 'reference', 'value', 'target', 'status'] as const;
  const header: Record<(typeof cols)[number], string> = { check: 'check', ours: 'ours', reference: 'reference', value: 'result', target: 'target', status: 'status' };
  const all = [header, ...[...rows].sort((a, b) => a.order - b.order)];
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(...all.map((r) => r[c].length))])) as Record<(typeof cols)[number], number>;
  const line = (r: Record<(typeof cols)[number], string>) => cols.map((c) => r[c].padEnd(width[c])).join(' | ').trimEnd();
  return [line(header), cols.map((c) => '-'.repeat(width[c])).join('-+-'), ...all.slice(1).map(line)].join('\n');
}

const cpu_line = (name: string, cpu: CpuUse | undefined, loadgen_cpu: number) => cpu === undefined ? `${name}: server CPU n/a` :
  `${name}: server ${f(cpu.cores_total)} cores (main thread ${f(cpu.cores_main)}, other threads ${f(cpu.cores_other)}), ${f(cpu.cpu_us_per_op, 0)} us CPU/op; loadgen ${f(loadgen_cpu)} cores; other processes ${f(cpu.bystander_cores)} cores`;
const errors_line = (name: string, e: Record<string, number>) =>
  `errors ${name}: ${Object.keys(e).length === 0 ? 'none' : Object.entries(e).map(([k, v]) => `${k}=${v}`).join(', ')}`;

const results: Record<string, unknown> = {};

// ---------------------------------------------------------------------------------------------
// 7a. Memory per seat, in an isolated --expose-gc process

async function section_memory(): Promise<void> {
  log(`memory probe: ${cfg.big_events} events x ${seats_of(cfg.big_layout)} seats (+ ${cfg.fill_holds} holds) in an isolated process`);
  const mem = await new Promise<Record<string, any>>((resolve, reject) => {
    const proc = track(spawn(process.execPath, ['--expose-gc', join(bench_dir, 'memory_probe.js'),
      JSON.stringify({ events: cfg.big_events, layout: cfg.big_layout, holds: cfg.fill_holds })], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    proc.once('exit', (code) => {
      if (code !== 0) reject(new Error(`memory probe failed: ${err.trim()}`));
      else resolve(JSON.parse(out.trim()) as Record<string, any>);
    });
  });
  results['memory'] = mem;
  check({ order: 50, check: 'Memory per seat (heap + arrayBuffers)', ours: `${fmt_int(mem['heap_used_delta'] + mem['array_buffers_delta'])} B / ${fmt_int(mem['seats'])} seats`, reference: '-', value: `${f(mem['bytes_per_seat'], 1)} B/seat`, target: `<= ${targets.bytes_per_seat} B` }, mem['bytes_per_seat'] <= targets.bytes_per_seat);
  if (mem['holds'] !== undefined) {
    check({ order: 51, check: 'Memory per active 1-seat hold', ours: `${fmt_int(mem['holds'].bytes_total)} B / ${fmt_int(mem['holds'].holds)} holds`, reference: '-', value: `${f(mem['holds'].bytes_per_hold, 0)} B/hold`, target: 'info' }, undefined);
  }
  details.push(`memory: heapUsed +${fmt_int(mem['heap_used_delta'])} B, arrayBuffers +${fmt_int(mem['array_buffers_delta'])} B for ${fmt_int(mem['seats'])} seats`);
}

// ---------------------------------------------------------------------------------------------
// A, B, C and group commit: one server (fresh data dir, 100 events) and the no-op server

async function section_load(root: string, secret: string): Promise<void> {
  const data_a = join(root, 'data-a');
  log(`starting our server (--workers ${cfg.workers}) and the no-op server`);
  const ours = await start_ours('ticketing', data_a, secret);
  const noop = await start_process('noop', [join(bench_dir, 'noop_server.js')], process.env);
  try {
    const service_token = mint_token('bench-service', 'service', data_a, secret);
    const admin_token = mint_token('bench-admin', 'admin', data_a, secret);
    const partition_count = (JSON.parse(readFileSync(join(data_a, 'node.json'), 'utf8')) as { partition_count: number }).partition_count;
    const event_ids = Array.from({ length: cfg.events }, (_, i) => `bench-e${String(i).padStart(3, '0')}`);
    const hot_event = event_ids[0]!;
    log(`creating ${cfg.events} events x ${seats_of(cfg.small_layout)} seats`);
    await create_events(ours, admin_token, event_ids, cfg.small_layout);
    const spread_partitions = new Set(event_ids.map((id) => partition_of(id, partition_count))).size;
    results['setup'] = { partition_count, spread_partitions, workers: cfg.workers, concurrency: cfg.concurrency };
    details.push(`server --workers ${cfg.workers}, ${partition_count} partitions; ${cfg.events} events of ${seats_of(cfg.small_layout)} seats land on ${spread_partitions} partitions`);
    details.push(`closed loop: C=${cfg.concurrency} in flight, ${cfg.rounds} alternating rounds x ${cfg.phase_s} s (+${cfg.warmup_s} s warmup); op = ReserveTickets(1-2 seats) + ReleaseHold of that hold; ops/s counts ops`);
    const port = ours.http_port!;
    const spread_spec = (label: string, target: string, token: string | null) =>
      load_spec({ label, target, token, event_ids, layout: cfg.small_layout, return_latencies: true });

    // A. Throughput vs the no-op server, alternating rounds.
    const before_a = await scrape(port);
    const a_ours: Measured[] = [];
    const a_noop: Measured[] = [];
    for (let r = 0; r < cfg.rounds; r++) {
      log(`A round ${r + 1}/${cfg.rounds}: ours`);
      a_ours.push(await run_load({ ...spread_spec(`A-ours-${r}`, ours.grpc, service_token), seed: 100 + r }, ours.pid));
      log(`A round ${r + 1}/${cfg.rounds}: no-op`);
      a_noop.push(await run_load({ ...spread_spec(`A-noop-${r}`, noop.grpc, service_token), seed: 100 + r }, noop.pid));
    }
    await sleep(cfg.stats_wait_ms);
    const after_a = await scrape(port);
    const A = { ours: pool(a_ours), noop: pool(a_noop), commit: commit_delta(before_a, after_a) };
    const a_ratio = A.ours.ops_per_s / A.noop.ops_per_s;
    const a_round_ratios = a_ours.map((m, i) => m.result.ops_per_s / a_noop[i]!.result.ops_per_s);
    results['A_throughput'] = { ratio: a_ratio, round_ratios: a_round_ratios, ours: strip(A.ours), noop: strip(A.noop), group_commit: A.commit };
    check({ order: 10, check: 'A throughput (ops/s, closed loop)', ours: fmt_int(A.ours.ops_per_s), reference: `no-op ${fmt_int(A.noop.ops_per_s)}`, value: `ratio ${f(a_ratio)} (rounds ${a_round_ratios.map((x) => f(x)).join(', ')})`, target: `>= ${targets.throughput_ratio}` }, a_ratio >= targets.throughput_ratio && A.ours.error_count === 0);
    check({ order: 11, check: `A latency per op (C=${cfg.concurrency})`, ours: lat(A.ours.latency), reference: `no-op ${lat(A.noop.latency)}`, value: `p99 x${f(A.ours.latency.p99_ms / A.noop.latency.p99_ms, 1)} no-op`, target: 'info' }, undefined);
    check({ order: 40, check: 'Group commit records/commit (A)', ours: `${fmt_int(A.commit.records)} rec / ${fmt_int(A.commit.commits)} commits`, reference: '-', value: f(A.commit.records_per_commit, 1), target: `>= ${targets.records_per_commit}` }, A.commit.records_per_commit >= targets.records_per_commit);
    details.push(cpu_line('A ours  ', A.ours.cpu, A.ours.loadgen_cpu), cpu_line('A no-op ', A.noop.cpu, A.noop.loadgen_cpu));
    details.push(`A ours per call: ReserveTickets p99 ${ms(A.ours.reserve_p99_ms)}, ReleaseHold p99 ${ms(A.ours.release_p99_ms)} (worst round); mean LMDB commit incl. fsync ${ms(A.commit.mean_commit_ms)}`);
    details.push(errors_line('A ours', A.ours.errors), errors_line('A no-op', A.noop.errors));

    // B. Open loop at half of A's throughput.
    const rate = Math.max(1, Math.floor(A.ours.ops_per_s / 2));
    log(`B: open loop at ${rate} ops/s for ${cfg.open_s} s`);
    const before_b = await scrape(port);
    const B = await run_load({
      ...spread_spec('B-open', ours.grpc, service_token), mode: 'open', rate, duration_s: cfg.open_s, seed: 200, return_latencies: false,
    }, ours.pid);
    await sleep(cfg.stats_wait_ms);
    const after_b = await scrape(port);
    const B_commit = commit_delta(before_b, after_b);
    const server_p99 = (method: string) => hist_quantile(before_b, after_b, 'ticketing_grpc_request_duration_seconds', [`method="${method}"`], 0.99) * 1000;
    const B_server = { reserve_p99_ms_le: server_p99('ReserveTickets'), release_p99_ms_le: server_p99('ReleaseHold') };
    // Reference: the same open-loop schedule against the no-op server (generator + transport tail).
    log(`B reference: same schedule against the no-op server`);
    const B_noop = await run_load({
      ...spread_spec('B-open-noop', noop.grpc, service_token), mode: 'open', rate, duration_s: cfg.open_s, seed: 200, return_latencies: false,
    }, noop.pid);
    results['B_open_loop'] = { rate, ...B.result, server_cpu: B.cpu, group_commit: B_commit, server_side: B_server, noop: { ...B_noop.result, server_cpu: B_noop.cpu } };
    check({ order: 20, check: 'B p99 per op, open loop at A/2', ours: `${fmt_int(rate)} ops/s offered, ${fmt_int(B.result.ops_per_s)} done`, reference: `no-op ${lat(B_noop.result.latency)}`, value: `p50 ${ms(B.result.latency.p50_ms)} p99 ${ms(B.result.latency.p99_ms)}`, target: `<= ${targets.open_p99_ms} ms` }, B.result.latency.p99_ms <= targets.open_p99_ms && B.result.error_count === 0);
    check({ order: 42, check: 'Group commit records/commit (B)', ours: `${fmt_int(B_commit.records)} rec / ${fmt_int(B_commit.commits)} commits`, reference: '-', value: f(B_commit.records_per_commit, 1), target: 'info' }, undefined);
    details.push(`B: ${fmt_int(B.result.ok_ops)} ops in ${cfg.open_s} s (latency from each op's scheduled start): p90 ${ms(B.result.latency.p90_ms)}, p99.9 ${ms(B.result.latency.p999_ms)}, max ${ms(B.result.latency.max_ms)}; ReserveTickets p99 ${ms(B.result.reserve.p99_ms)}, ReleaseHold p99 ${ms(B.result.release.p99_ms)}; mean commit ${ms(B_commit.mean_commit_ms)}`);
    details.push(`B server-side p99 (server histogram, bucket bound): ReserveTickets <= ${ms(B_server.reserve_p99_ms_le)}, ReleaseHold <= ${ms(B_server.release_p99_ms_le)}; same schedule on the no-op server: p50 ${ms(B_noop.result.latency.p50_ms)} p99 ${ms(B_noop.result.latency.p99_ms)} max ${ms(B_noop.result.latency.max_ms)}`);
    details.push(cpu_line('B       ', B.cpu, B.result.loadgen_cpu), errors_line('B', B.result.errors));

    // C. One hot event (one partition) vs the same load over 100 events, alternating.
    const c_hot: Measured[] = [];
    const c_spread: Measured[] = [];
    const hot_commits: CommitStats[] = [];
    const spread_commits: CommitStats[] = [];
    for (let r = 0; r < cfg.rounds; r++) {
      log(`C round ${r + 1}/${cfg.rounds}: hot (1 event)`);
      let s0 = await scrape(port);
      c_hot.push(await run_load({ ...spread_spec(`C-hot-${r}`, ours.grpc, service_token), event_ids: [hot_event], seed: 300 + r }, ours.pid));
      await sleep(cfg.stats_wait_ms);
      let s1 = await scrape(port);
      hot_commits.push(commit_delta(s0, s1));
      log(`C round ${r + 1}/${cfg.rounds}: spread (${cfg.events} events)`);
      s0 = s1;
      c_spread.push(await run_load({ ...spread_spec(`C-spread-${r}`, ours.grpc, service_token), seed: 300 + r }, ours.pid));
      await sleep(cfg.stats_wait_ms);
      s1 = await scrape(port);
      spread_commits.push(commit_delta(s0, s1));
    }
    const C = { hot: pool(c_hot), spread: pool(c_spread), hot_commit: sum_commits(hot_commits), spread_commit: sum_commits(spread_commits) };
    const c_ratio = C.hot.ops_per_s / C.spread.ops_per_s;
    results['C_hot_vs_spread'] = {
      ratio: c_ratio, round_ratios: c_hot.map((m, i) => m.result.ops_per_s / c_spread[i]!.result.ops_per_s),
      hot_event, hot_partition: partition_of(hot_event, partition_count),
      hot: strip(C.hot), spread: strip(C.spread), hot_group_commit: C.hot_commit, spread_group_commit: C.spread_commit,
    };
    check({ order: 30, check: 'C hot event / spread (ops/s)', ours: `hot ${fmt_int(C.hot.ops_per_s)}`, reference: `spread ${fmt_int(C.spread.ops_per_s)}`, value: `ratio ${f(c_ratio)}`, target: `>= ${targets.hot_ratio}` }, c_ratio >= targets.hot_ratio && C.hot.error_count === 0);
    check({ order: 31, check: 'C latency per op', ours: `hot ${lat(C.hot.latency)}`, reference: `spread ${lat(C.spread.latency)}`, value: '-', target: 'info' }, undefined);
    check({ order: 41, check: 'Group commit records/commit (C)', ours: `hot ${f(C.hot_commit.records_per_commit, 1)}`, reference: `spread ${f(C.spread_commit.records_per_commit, 1)}`, value: '-', target: 'info' }, undefined);
    details.push(cpu_line('C hot   ', C.hot.cpu, C.hot.loadgen_cpu), cpu_line('C spread', C.spread.cpu, C.spread.loadgen_cpu));
    details.push(`C mean LMDB commit incl. fsync: hot ${ms(C.hot_commit.mean_commit_ms)}, spread ${ms(C.spread_commit.mean_commit_ms)}`);
    details.push(errors_line('C hot', C.hot.errors), errors_line('C spread', C.spread.errors));
    results['server_warnings'] = ours.log_tail.filter((l) => !l.includes('"level":30')).slice(-20);
    details.push(`mailbox rejections (whole A-C run): ${metric(await scrape(port), 'ticketing_mailbox_rejections_total')}`);
  } finally {
    await terminate(ours.proc);
    await terminate(noop.proc);
    rmSync(data_a, { recursive: true, force: true });
  }
}

function sum_commits(xs: CommitStats[]): CommitStats {
  const commits = xs.reduce((a, x) => a + x.commits, 0);
  const records = xs.reduce((a, x) => a + x.records, 0);
  const commit_ms = xs.reduce((a, x) => a + (Number.isFinite(x.mean_commit_ms) ? x.mean_commit_ms * x.commits : 0), 0);
  return { commits, records, records_per_commit: commits > 0 ? records / commits : NaN, mean_commit_ms: commits > 0 ? commit_ms / commits : NaN };
}

// ---------------------------------------------------------------------------------------------
// 7b. Restart after kill -9 with 20 x 50,000 seats and 100,000 active holds

async function section_restart(root: string, secret: string): Promise<void> {
  const data_r = join(root, 'data-r');
  log(`restart: server with ${cfg.big_events} events x ${seats_of(cfg.big_layout)} seats, filling ${cfg.fill_holds} holds`);
  const first = await start_ours('ticketing-r1', data_r, secret);
  let fill: Measured;
  let holds_before: number;
  let fill_commit: CommitStats;
  let create_ms: number;
  try {
    const r_service = mint_token('bench-service', 'service', data_r, secret);
    const r_admin = mint_token('bench-admin', 'admin', data_r, secret);
    const big_ids = Array.from({ length: cfg.big_events }, (_, i) => `bench-big${String(i).padStart(2, '0')}`);
    const t_create = performance.now();
    await create_events(first, r_admin, big_ids, cfg.big_layout);
    create_ms = performance.now() - t_create;
    fill = await run_load(load_spec({
      label: 'restart-fill', target: first.grpc, token: r_service, event_ids: big_ids, layout: cfg.big_layout,
      mode: 'count', op: 'reserve', concurrency: cfg.fill_concurrency, total_ops: cfg.fill_holds, warmup_s: 0, duration_s: 0,
      seat_pick: 'sequential', user_prefix: 'fill-u', user_count: cfg.fill_users, hold_ttl_seconds: 3600, seed: 400, deadline_ms: 30_000,
    }), first.pid);
    await sleep(cfg.stats_wait_ms);
    const fill_scrape = await scrape(first.http_port!);
    holds_before = metric(fill_scrape, 'ticketing_seat_holds_active');
    fill_commit = commit_delta(new Map(), fill_scrape);
    log(`restart: ${fmt_int(fill.result.ok_ops)} holds in ${f(fill.result.window_s, 1)} s; kill -9`);
  } finally {
    first.proc.kill('SIGKILL');
    await wait_exit(first.proc, 10_000);
  }
  const data_bytes = du_bytes(data_r);
  const second = await start_ours('ticketing-r2', data_r, secret);
  let holds_after: number;
  try {
    log(`restart: serving after ${f(second.spawn_to_serving_ms, 0)} ms (recovery_ms ${second.recovery_ms})`);
    await sleep(cfg.stats_wait_ms);
    holds_after = metric(await scrape(second.http_port!), 'ticketing_seat_holds_active');
  } finally {
    await terminate(second.proc);
  }
  // Same data dir after a clean stop, and an empty data dir: what a start costs anyway.
  const third = await start_ours('ticketing-r3', data_r, secret);
  await terminate(third.proc);
  const data_e = join(root, 'data-empty');
  const empty = await start_ours('ticketing-empty', data_e, secret);
  await terminate(empty.proc);
  rmSync(data_r, { recursive: true, force: true });
  rmSync(data_e, { recursive: true, force: true });
  results['restart'] = {
    events: cfg.big_events, seats_per_event: seats_of(cfg.big_layout), create_events_ms: create_ms,
    fill: { ...fill.result, server_cpu: fill.cpu, group_commit: fill_commit },
    holds_active_before_kill: holds_before, holds_active_after_restart: holds_after,
    data_dir_bytes: data_bytes,
    spawn_to_serving_ms: second.spawn_to_serving_ms, recovery_ms: second.recovery_ms,
    clean_restart_spawn_to_serving_ms: third.spawn_to_serving_ms, clean_restart_recovery_ms: third.recovery_ms,
    empty_spawn_to_serving_ms: empty.spawn_to_serving_ms, empty_recovery_ms: empty.recovery_ms,
  };
  const restart_s = second.spawn_to_serving_ms / 1000;
  check({ order: 60, check: `Restart after kill -9 (${fmt_int(holds_before)} holds)`, ours: `spawn->serving ${f(restart_s)} s`, reference: `empty dir ${f(empty.spawn_to_serving_ms / 1000)} s`, value: `recovery_ms ${second.recovery_ms}`, target: `<= ${targets.restart_s} s` }, restart_s <= targets.restart_s);
  check({ order: 61, check: 'Restart: active holds recovered', ours: fmt_int(holds_after), reference: `before kill ${fmt_int(holds_before)}`, value: holds_after === holds_before ? 'all' : 'MISMATCH', target: 'equal' }, holds_after === holds_before && holds_before === cfg.fill_holds);
  check({ order: 62, check: `Fill holds (ReserveTickets only, C=${cfg.fill_concurrency})`, ours: `${fmt_int(fill.result.ops_per_s)} holds/s`, reference: '-', value: `${f(fill_commit.records_per_commit, 1)} rec/commit`, target: 'info' }, undefined);
  details.push(`restart: data dir ${f(data_bytes / 2 ** 20, 1)} MiB; spawn->serving after kill -9 ${f(second.spawn_to_serving_ms, 0)} ms (recovery ${second.recovery_ms} ms), after clean stop ${f(third.spawn_to_serving_ms, 0)} ms (recovery ${third.recovery_ms} ms), empty dir ${f(empty.spawn_to_serving_ms, 0)} ms (recovery ${empty.recovery_ms} ms)`);
  details.push(`restart fill: ${cfg.big_events} events created in ${f(create_ms, 0)} ms; ${fmt_int(fill.result.ok_ops)} holds in ${f(fill.result.window_s, 1)} s, ReserveTickets p50 ${ms(fill.result.latency.p50_ms)} p99 ${ms(fill.result.latency.p99_ms)}; mean commit ${ms(fill_commit.mean_commit_ms)}`);
  details.push(cpu_line('fill    ', fill.cpu, fill.result.loadgen_cpu), errors_line('fill', fill.result.errors));
}

// ---------------------------------------------------------------------------------------------
// 7d. Kafka: the same load with the emitter on (a real broker on this machine) and off

async function section_kafka(root: string, secret: string): Promise<void> {
  log('kafka: starting a broker (first run downloads it from Maven Central)');
  const broker = await start_bench_broker(join(root, 'kafka'));
  const data_on = join(root, 'data-kafka-on');
  const data_off = join(root, 'data-kafka-off');
  let on: Running | undefined;
  let off: Running | undefined;
  let probe: LagProbe | undefined;
  try {
    on = await start_ours('ticketing-kafka', data_on, secret, ['--kafka', broker.brokers]);
    off = await start_ours('ticketing-no-kafka', data_off, secret);
    const event_ids = Array.from({ length: cfg.events }, (_, i) => `bench-k${String(i).padStart(3, '0')}`);
    const token_on = mint_token('bench-service', 'service', data_on, secret);
    const token_off = mint_token('bench-service', 'service', data_off, secret);
    await create_events(on, mint_token('bench-admin', 'admin', data_on, secret), [...event_ids, 'bench-probe'], cfg.small_layout);
    await create_events(off, mint_token('bench-admin', 'admin', data_off, secret), event_ids, cfg.small_layout);
    const port = on.http_port!;
    // Warm up: the producer connects and creates the topics at the first send (and a broker that
    // just started may refuse producer ids for a moment); the rounds measure steady state.
    probe = new LagProbe(broker.brokers, on.grpc, token_on, 'bench-probe', cfg.small_layout);
    await probe.warm_up();
    for (let i = 0; i < 600 && metric(await scrape(port), 'ticketing_kafka_records_sent_total') < 1; i++) await sleep(100);
    const spec = (label: string, target: string, token: string, seed: number) =>
      load_spec({ label, target, token, event_ids, layout: cfg.small_layout, return_latencies: true, seed });
    details.push(`kafka: broker on this machine (same cores as the server); each op = ReserveTickets + ReleaseHold = 2 events (HoldCreated, HoldReleased)`);

    // Throughput, emitter on vs off, alternating rounds.
    const rounds_on: Measured[] = [];
    const rounds_off: Measured[] = [];
    const before = await scrape(port);
    for (let r = 0; r < cfg.rounds; r++) {
      log(`kafka round ${r + 1}/${cfg.rounds}: emitter on`);
      rounds_on.push(await run_load(spec(`K-on-${r}`, on.grpc, token_on, 500 + r), on.pid));
      log(`kafka round ${r + 1}/${cfg.rounds}: emitter off`);
      rounds_off.push(await run_load(spec(`K-off-${r}`, off.grpc, token_off, 500 + r), off.pid));
    }
    // Drain: every event of the rounds acknowledged by the broker.
    const drain_started = performance.now();
    let after = await scrape(port);
    for (let i = 0; i < 600 && metric(after, 'ticketing_outbox_pending') > 0; i++) {
      await sleep(100);
      after = await scrape(port);
    }
    await sleep(cfg.stats_wait_ms);
    after = await scrape(port);
    const drain_ms = performance.now() - drain_started;
    const K = { on: pool(rounds_on), off: pool(rounds_off) };
    const ratio = K.on.ops_per_s / K.off.ops_per_s;
    const sends = metric(after, 'ticketing_kafka_send_records_count') - metric(before, 'ticketing_kafka_send_records_count');
    const sent = metric(after, 'ticketing_kafka_send_records_sum') - metric(before, 'ticketing_kafka_send_records_sum');
    const send_s = metric(after, 'ticketing_kafka_send_duration_seconds_sum') - metric(before, 'ticketing_kafka_send_duration_seconds_sum');
    const errors = metric(after, 'ticketing_kafka_publish_errors_total') - metric(before, 'ticketing_kafka_publish_errors_total');
    const per_send = sends > 0 ? sent / sends : NaN;
    const pending_after = metric(after, 'ticketing_outbox_pending');

    // Lag from reply to readable on the topic: an idle node, then during a saturating round.
    log('kafka: lag probe (idle)');
    await probe.start();
    await sleep(1000); // the consumer's first fetch fixes its start offset
    await probe.run(quick ? 50 : 200, 20);
    const idle = await probe.collect();
    log('kafka: lag probe during a saturating round');
    let loaded_done = false;
    await Promise.all([
      run_load(spec('K-lag-load', on.grpc, token_on, 600), on.pid).finally(() => (loaded_done = true)),
      (async () => {
        await sleep(cfg.warmup_s * 1000);
        await probe!.run(1_000_000, 20, () => loaded_done);
      })(),
    ]);
    const loaded = await probe.collect();

    results['kafka'] = {
      ratio, round_ratios: rounds_on.map((m, i) => m.result.ops_per_s / rounds_off[i]!.result.ops_per_s),
      on: strip(K.on), off: strip(K.off),
      producer: { sends, records: sent, records_per_send: per_send, mean_send_ms: sends > 0 ? (send_s / sends) * 1000 : NaN, publish_errors: errors, drain_ms, pending_after },
      lag_idle: idle, lag_loaded: loaded,
    };
    check({ order: 70, check: 'Kafka: throughput emitter on / off', ours: `on ${fmt_int(K.on.ops_per_s)} ops/s`, reference: `off ${fmt_int(K.off.ops_per_s)} ops/s`, value: `ratio ${f(ratio)} (rounds ${rounds_on.map((m, i) => f(m.result.ops_per_s / rounds_off[i]!.result.ops_per_s)).join(', ')})`, target: `>= ${targets.kafka_throughput_ratio}` }, ratio >= targets.kafka_throughput_ratio && K.on.error_count === 0);
    check({ order: 71, check: 'Kafka: records per producer send (saturation)', ours: `${fmt_int(sent)} records / ${fmt_int(sends)} sends`, reference: '-', value: f(per_send, 1), target: `>= ${targets.kafka_records_per_send}` }, per_send >= targets.kafka_records_per_send);
    check({ order: 72, check: 'Kafka: reply -> readable on topic (idle)', ours: lat(idle.lag), reference: '-', value: `${idle.lag.n} events, ${idle.missing} missing`, target: 'info' }, undefined);
    check({ order: 73, check: 'Kafka: reply -> readable on topic (saturated)', ours: lat(loaded.lag), reference: '-', value: `${loaded.lag.n} events, ${loaded.missing} missing`, target: 'info' }, undefined);
    details.push(cpu_line('K on    ', K.on.cpu, K.on.loadgen_cpu), cpu_line('K off   ', K.off.cpu, K.off.loadgen_cpu));
    details.push(`kafka producer: mean send (to acks from all in-sync replicas) ${ms(sends > 0 ? (send_s / sends) * 1000 : NaN)}; publish errors ${errors}; outbox drained ${f(drain_ms, 0)} ms after the last round (pending then: ${pending_after})`);
    details.push(`kafka lag idle: p90 ${ms(idle.lag.p90_ms)} max ${ms(idle.lag.max_ms)}; saturated: p90 ${ms(loaded.lag.p90_ms)} max ${ms(loaded.lag.max_ms)}`);
    details.push(errors_line('K on', K.on.errors), errors_line('K off', K.off.errors));
  } finally {
    await probe?.stop().catch(() => undefined);
    if (on !== undefined) await terminate(on.proc);
    if (off !== undefined) await terminate(off.proc);
    await broker.stop().catch(() => undefined);
    rmSync(data_on, { recursive: true, force: true });
    rmSync(data_off, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Purchase: the whole flow for fresh users (CreateDraft, ScoreTransaction, Authorize,
// ConfirmOrder), and each of those RPCs alone at saturation, on ours and on the no-op server.

const rpc_of = { draft: 'CreateDraft', score: 'ScoreTransaction', authorize: 'Authorize', confirm: 'ConfirmOrder' } as const;
type RpcStep = keyof typeof rpc_of;
interface PurchaseMeasured { result: PurchaseResult; cpu: CpuUse | undefined }

/** Combines rounds: throughput = all ok ops / all windows; percentiles over all latencies, per RPC. */
function pool_purchase(rounds: PurchaseMeasured[]) {
  const latencies: Record<string, number[]> = {};
  const errors: Record<string, number> = {};
  for (const { result } of rounds) {
    for (const [name, xs] of Object.entries(result.latencies_ms)) for (const x of xs) (latencies[name] ??= []).push(x);
    for (const [k, v] of Object.entries(result.errors)) errors[k] = (errors[k] ?? 0) + v;
  }
  const window_s = rounds.reduce((a, m) => a + m.result.window_s, 0);
  return {
    ops_per_s: rounds.reduce((a, m) => a + m.result.ok_ops, 0) / window_s,
    round_ops_per_s: rounds.map((m) => m.result.ops_per_s),
    window_s,
    short_windows: rounds.filter((m) => m.result.exhausted).map((m) => `${m.result.label} ${f(m.result.window_s, 1)} s`),
    latency: Object.fromEntries(Object.entries(latencies).map(([name, xs]) => [name, summarize(xs)])) as Record<string, LatencySummary>,
    errors,
    error_count: rounds.reduce((a, m) => a + m.result.error_count, 0),
    loadgen_cpu: rounds.reduce((a, m) => a + m.result.loadgen_cpu, 0) / rounds.length,
    cpu: avg_cpu(rounds.map((m) => m.cpu)),
  };
}

async function section_purchase(root: string, secret: string): Promise<void> {
  const data_p = join(root, 'data-p');
  log(`purchase: starting our server (--workers ${cfg.workers}) and the no-op server`);
  const ours = await start_ours('ticketing-p', data_p, secret);
  const noop = await start_process('noop', [join(bench_dir, 'noop_server.js')], process.env);
  try {
    const service_token = mint_token('bench-orders', 'service', data_p, secret);
    await create_events(ours, mint_token('bench-admin', 'admin', data_p, secret), [cfg.purchase_event], cfg.purchase_layout);
    const seat_count = seats_of(cfg.purchase_layout);
    const gen_env = { ...process.env, TICKETING_AUTH_SECRET: secret }; // the generator signs one customer token per user
    const orders_in = join(root, 'orders-in.json');
    const orders_out = join(root, 'orders-out.json');
    // Users (and seats) used on ours so far: each user buys one seat, once.
    let next_index = 0;
    // Orders on ours waiting for their next RPC, oldest first: each phase advances some of them.
    const waiting: Record<'score' | 'authorize' | 'confirm', BenchOrder[]> = { score: [], authorize: [], confirm: [] };
    const next_step = { draft: 'score', score: 'authorize', authorize: 'confirm' } as const;
    const prev_step = { score: 'draft', authorize: 'score', confirm: 'authorize' } as const;
    const rate_of: Partial<Record<RpcStep, number>> = {}; // ours, calls/s, from the phases so far

    /**
     * One closed-loop phase of `step` on `on`. `limit` > 0: an unmeasured stocking run that
     * advances exactly `limit` orders (or new users), however long that takes.
     */
    const phase = async (step: PurchaseStep, on: Running, round: number, limit = 0): Promise<PurchaseMeasured> => {
      const is_ours = on === ours;
      const consumes = step === 'score' || step === 'authorize' || step === 'confirm';
      if (consumes && is_ours) {
        if (waiting[step].length === 0) throw new Error(`purchase: no orders left for ${rpc_of[step]}`);
        writeFileSync(orders_in, JSON.stringify(limit > 0 ? waiting[step].slice(0, limit) : waiting[step]));
      }
      const keeps = is_ours && (step === 'draft' || step === 'score' || step === 'authorize');
      const spec: PurchaseSpec = {
        label: `${step}-${on.name}-${limit > 0 ? 'stock' : round}`, target: on.grpc, step, concurrency: cfg.concurrency,
        warmup_s: limit > 0 ? 0 : cfg.warmup_s, duration_s: limit > 0 ? 600 : cfg.phase_s, deadline_ms: 10_000, service_token,
        event_id: cfg.purchase_event, layout: cfg.purchase_layout,
        // The no-op server keeps no state, so it gets the requests ours just got, reused for as long as the phase lasts.
        first_index: next_index, index_end: !is_ours ? Number.MAX_SAFE_INTEGER : limit > 0 ? next_index + limit : seat_count,
        orders_in: consumes ? orders_in : null, cycle: !is_ours, orders_out: keeps ? orders_out : null,
      };
      const what = step === 'purchase' ? 'whole purchase' : limit > 0 ? `stocking ${fmt_int(limit)} x ${rpc_of[step]}` : `${rpc_of[step]} alone`;
      log(`purchase round ${round + 1}/${cfg.rounds}: ${what} on ${on.name}`);
      const m = await run_generator<PurchaseResult>('purchase_gen.js', spec, spec.warmup_s + spec.duration_s + 60, on.pid, gen_env);
      if (is_ours && consumes) waiting[step].splice(0, m.result.consumed);
      if (is_ours && !consumes) next_index += m.result.consumed;
      if (keeps) waiting[next_step[step]].push(...(JSON.parse(readFileSync(orders_out, 'utf8')) as BenchOrder[]));
      // A phase that ran out of orders during its warmup has no window: its whole run says enough.
      if (is_ours && step !== 'purchase' && limit === 0) rate_of[step] = m.result.window_s > 0 ? m.result.ops_per_s : m.result.ok_ops_total / m.result.elapsed_s;
      return m;
    };

    /**
     * Before a measured phase of `step` on ours: at least twice what it can use in a phase waits
     * for it (at its last measured rate, else the fastest rate seen), advanced through the
     * earlier steps unmeasured if need be. Otherwise a step faster than the one feeding it runs
     * out of orders and its window shortens (the report names any that still do).
     */
    const stock = async (step: 'score' | 'authorize' | 'confirm', round: number, need?: number): Promise<void> => {
      need ??= Math.ceil(2 * (cfg.warmup_s + cfg.phase_s) * (rate_of[step] ?? Math.max(...Object.values(rate_of))));
      const missing = need - waiting[step].length;
      if (missing <= 0) return;
      const from = prev_step[step];
      if (from !== 'draft') await stock(from, round, missing);
      await phase(from, ours, round, missing);
    };

    // The server's own latency histogram around each measured phase on ours: time inside the
    // server (receipt to answer), as against what the generator saw.
    const server_side = Object.fromEntries(Object.keys(rpc_of).map((k) => [k, new Map()])) as Record<RpcStep, Scrape>;
    const measured = async (step: RpcStep, r: number): Promise<PurchaseMeasured> => {
      const s0 = await scrape(ours.http_port!);
      const m = await phase(step, ours, r);
      for (const [k, v] of await scrape(ours.http_port!)) server_side[step].set(k, (server_side[step].get(k) ?? 0) + v - (s0.get(k) ?? 0));
      return m;
    };
    const before = await scrape(ours.http_port!);
    const alone = Object.fromEntries(Object.keys(rpc_of).map((k) => [k, { ours: [], noop: [] }])) as unknown as Record<RpcStep, { ours: PurchaseMeasured[]; noop: PurchaseMeasured[] }>;
    const whole = { ours: [] as PurchaseMeasured[], noop: [] as PurchaseMeasured[] };
    for (let r = 0; r < cfg.rounds; r++) {
      // In purchase order, so each phase on ours works on orders the previous one left; ours
      // then the no-op server with the same requests, side by side.
      for (const step of Object.keys(rpc_of) as RpcStep[]) {
        if (step !== 'draft') await stock(step, r);
        let m = await measured(step, r);
        if (m.result.exhausted && step !== 'draft') {
          log(`purchase: ${rpc_of[step]} ran out of orders after ${f(m.result.elapsed_s, 1)} s; stocking for its rate and measuring again`);
          await stock(step, r);
          m = await measured(step, r);
        }
        alone[step].ours.push(m);
        alone[step].noop.push(await phase(step, noop, r));
      }
      whole.ours.push(await phase('purchase', ours, r));
      whole.noop.push(await phase('purchase', noop, r));
    }
    await sleep(cfg.stats_wait_ms);
    const after = await scrape(ours.http_port!);
    const commits = commit_delta(before, after);
    // Long commits stall every call on the worker: count them (a snapshot rewrites a whole partition).
    const commits_over = (le: string) => commits.commits - (metric(after, `ticketing_journal_commit_duration_seconds_bucket{le="${le}"}`) - metric(before, `ticketing_journal_commit_duration_seconds_bucket{le="${le}"}`));

    const W = { ours: pool_purchase(whole.ours), noop: pool_purchase(whole.noop) };
    const mean_op = W.ours.latency['op']?.mean_ms ?? NaN;
    check({ order: 80, check: `Purchase: whole flow, fresh user each (C=${cfg.concurrency})`, ours: `${fmt_int(W.ours.ops_per_s)} purchases/s`, reference: `no-op ${fmt_int(W.noop.ops_per_s)}/s`, value: `ratio ${f(W.ours.ops_per_s / W.noop.ops_per_s)}; ${lat(W.ours.latency['op']!)}`, target: 'info' }, undefined);
    const ratios: Record<string, unknown> = {};
    let order = 81;
    for (const step of Object.keys(rpc_of) as RpcStep[]) {
      const rpc = rpc_of[step];
      const step_lat = W.ours.latency[rpc]!;
      check({ order: order++, check: `Purchase step ${rpc} latency (in the flow)`, ours: lat(step_lat), reference: `no-op ${lat(W.noop.latency[rpc]!)}`, value: `${f((100 * step_lat.mean_ms) / mean_op, 0)} % of a purchase`, target: 'info' }, undefined);
    }
    for (const step of Object.keys(rpc_of) as RpcStep[]) {
      const rpc = rpc_of[step];
      const A = { ours: pool_purchase(alone[step].ours), noop: pool_purchase(alone[step].noop) };
      const ratio = A.ours.ops_per_s / A.noop.ops_per_s;
      const round_ratios = A.ours.round_ops_per_s.map((x, i) => x / A.noop.round_ops_per_s[i]!);
      ratios[rpc] = { ratio, round_ratios, ours: A.ours, noop: A.noop };
      check({ order: order++, check: `${rpc} alone (calls/s, C=${cfg.concurrency})`, ours: fmt_int(A.ours.ops_per_s), reference: `no-op ${fmt_int(A.noop.ops_per_s)}`, value: `ratio ${f(ratio)} (rounds ${round_ratios.map((x) => f(x)).join(', ')})`, target: `>= ${targets.purchase_rpc_ratio}` }, ratio >= targets.purchase_rpc_ratio && A.ours.error_count === 0);
      const hist = 'ticketing_grpc_request_duration_seconds';
      const in_server = (q: number) => ms(hist_quantile(new Map(), server_side[step], hist, [`method="${rpc}"`], q) * 1000);
      const sum_of = (suffix: string) => [...server_side[step]].filter(([k]) => k.startsWith(`${hist}_${suffix}{`) && k.includes(`method="${rpc}"`)).reduce((a, [, v]) => a + v, 0);
      details.push(`${rpc} alone: ours mean ${ms(A.ours.latency['op']!.mean_ms)} ${lat(A.ours.latency['op']!)}, inside the server mean ${ms((1000 * sum_of('sum')) / sum_of('count'))} (p50 <= ${in_server(0.5)}, p99 <= ${in_server(0.99)}); no-op mean ${ms(A.noop.latency['op']!.mean_ms)} ${lat(A.noop.latency['op']!)}${A.ours.short_windows.length > 0 ? `; ran out of orders early: ${A.ours.short_windows.join(', ')}` : ''}`);
      details.push(cpu_line(`${rpc} ours `, A.ours.cpu, A.ours.loadgen_cpu), cpu_line(`${rpc} no-op`, A.noop.cpu, A.noop.loadgen_cpu));
      details.push(errors_line(`${rpc} ours`, A.ours.errors), errors_line(`${rpc} no-op`, A.noop.errors));
    }
    details.push(`purchase: one event of ${fmt_int(seat_count)} seats; ${fmt_int(next_index)} users each bought (or drafted) one seat with their own customer token, so the per-customer rate limit (default 50/s, burst 100) and the per-user velocity rules never fire; ScoreTransaction with a service token and each buyer's own ip and device`);
    details.push(cpu_line('purchase ours ', W.ours.cpu, W.ours.loadgen_cpu), cpu_line('purchase no-op', W.noop.cpu, W.noop.loadgen_cpu));
    details.push(errors_line('purchase ours', W.ours.errors), errors_line('purchase no-op', W.noop.errors));
    details.push(`purchase section on ours: ${fmt_int(commits.records)} journal records in ${fmt_int(commits.commits)} commits (${f(commits.records_per_commit, 1)} per commit), mean commit incl. fsync ${ms(commits.mean_commit_ms)}, ${commits_over('0.025')} over 25 ms, ${commits_over('0.1')} over 100 ms`);
    results['purchase'] = { users: next_index, whole: W, alone: ratios, group_commit: commits };
  } finally {
    await terminate(ours.proc);
    await terminate(noop.proc);
    rmSync(data_p, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const deadline = setTimeout(() => {
    process.stderr.write(`bench: overall timeout (${cfg.overall_timeout_ms / 1000} s), aborting\n`);
    cleanup_sync();
    process.exit(1);
  }, cfg.overall_timeout_ms);
  deadline.unref();
  const bench_started = performance.now();
  const root = mkdtempSync(join(tmpdir(), 'ticketing-bench-'));
  temp_dirs.add(root);
  const secret = randomBytes(32).toString('hex');
  Object.assign(results, {
    started_at: new Date().toISOString(),
    machine: { cpus: cpus().length, available_parallelism: availableParallelism(), cpu_model: cpus()[0]?.model, total_mem_gb: totalmem() / 2 ** 30, node: process.version, loadavg_at_start: loadavg() },
    config: { ...cfg, quick },
    targets,
  });
  details.push(`machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), node ${process.version}, load average at start ${loadavg().map((x) => f(x)).join(' ')}`);

  const failures: string[] = [];
  const only = process.env['BENCH_ONLY']?.split(',');
  const sections: [string, string, number, () => Promise<void>][] = [
    ['memory', 'memory', 50, section_memory],
    ['load', 'A/B/C/group commit', 10, () => section_load(root, secret)],
    ['restart', 'restart', 60, () => section_restart(root, secret)],
    ['kafka', 'kafka', 70, () => section_kafka(root, secret)],
    ['purchase', 'purchase', 80, () => section_purchase(root, secret)],
  ];
  for (const [key, name, order, run] of sections) {
    if (only !== undefined && !only.includes(key)) continue;
    try {
      await run();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`section ${name} failed: ${message}`);
      failures.push(`${name}: ${message}`);
      rows.push({ order, check: `${name}`, ours: 'could not measure', reference: '-', value: message.split('\n')[0]!.slice(0, 80), target: '-', status: 'ERROR' });
    }
  }

  const wall_s = (performance.now() - bench_started) / 1000;
  Object.assign(results, { rows: [...rows].sort((a, b) => a.order - b.order), details, failures, wall_s });
  writeFileSync(results_path, JSON.stringify(results, null, 2) + '\n');

  const missed = rows.filter((r) => r.status === 'MISSED').length;
  process.stdout.write(`\nticketing bench (${quick ? 'QUICK, ' : ''}${f(wall_s, 0)} s)\n\n${print_table()}\n\n${details.map((d) => `  ${d}`).join('\n')}\n\n`);
  if (failures.length > 0) process.stdout.write(`could not measure:\n${failures.map((x) => `  ${x}`).join('\n')}\n\n`);
  process.stdout.write(`${missed === 0 ? 'all targets met' : `${missed} target(s) MISSED`}${failures.length > 0 ? `, ${failures.length} section(s) failed` : ''}; full results: ${results_path}\n`);
  clearTimeout(deadline);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    cleanup_sync();
    process.exit(code);
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
    cleanup_sync();
    process.exit(1);
  },
);
