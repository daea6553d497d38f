// Section "ghz" (issue 13): ReserveTickets of distinct seats driven from outside by ghz (Go, so
// the generator is not the ceiling) against three servers side by side, each its own process:
// the no-op grpc-js server, the same grpc-js front over one Redis Lua script with
// `appendfsync always` (what a user would build instead; bench/redis_server.ts), and ours with
// auth, logs and metrics on as shipped. Every server gets the same requests (one data file per
// round, a seat per call, a fresh event per round) and the same bearer metadata; rounds
// alternate the order of the servers, so drift in the machine's load falls on all three.
// Server CPU per call is read from /proc for all of a server's processes (for the baseline: the
// front and redis-server).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { seat_id, seats_of, summarize, type LatencySummary } from '../common.js';
import { cfg, targets } from '../config.js';
import { ensure_ghz, ghz_version_of, run_ghz, type GhzRun } from '../harness/ghz.js';
import {
  bench_dir, create_events, log, mint_token, start_noop, start_ours, start_process, terminate,
} from '../harness/processes.js';
import { ensure_redis_server, start_redis } from '../harness/redis.js';
import { f, fmt_int, lat, ratio_text, type Report } from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

type Key = 'noop' | 'redis' | 'ours';
const names: Record<Key, string> = { noop: 'no-op', redis: 'Redis+Lua', ours: 'ours' };

interface Target { key: Key; grpc: string; pids: number[] }

interface Rig {
  dir: string;
  ghz: string;
  token: string;
  servers: Target[];
  versions: { ghz: string; redis: string };
}

/** Event of phase `phase` (warm-up or a round): each phase holds seats of its own event. */
const event_of = (phase: string) => `ghz-${phase}`;

/** One ReserveTicketsRequest per call: call k takes seat k of the phase's event. */
function write_data(dir: string, phase: string, calls: number): string {
  const requests = Array.from({ length: calls }, (_, k) => ({
    event_id: event_of(phase), seat_ids: [seat_id(cfg.ghz_layout, k)], hold_ttl_seconds: 300,
    user_id: `ghz-u${k % cfg.ghz_users}`,
  }));
  const file = join(dir, `data-${phase}.json`);
  writeFileSync(file, JSON.stringify(requests));
  return file;
}

/** Sizes every server can take: a seat per call, and per user fewer holds than ours' limit of
 *  10 per event (a refusal would be a non-OK call, not a measurement). */
function check_sizes(): void {
  const calls = Math.max(cfg.ghz_calls, cfg.ghz_warmup_calls);
  const seats = seats_of(cfg.ghz_layout);
  if (calls > seats) {
    throw new Error(`ghz: ${calls} calls need as many seats; ghz_layout has ${seats}`);
  }
  if (Math.ceil(calls / cfg.ghz_users) > 10) {
    throw new Error(`ghz: ${calls} calls over ${cfg.ghz_users} users is over 10 holds per user`);
  }
}

/** Starts the three servers (and redis-server), pushing each onto `started` at once. */
async function start_rig(
  { secret }: SectionContext, dir: string, started: ChildProcess[],
): Promise<Rig> {
  check_sizes();
  const ghz = ensure_ghz();
  const redis_bin = ensure_redis_server();
  const noop = await start_noop();
  started.push(noop.proc);
  const redis = await start_redis(redis_bin, join(dir, 'redis'));
  started.push(redis.proc);
  const front = await start_process('redis-front', [
    join(bench_dir, 'redis_server.js'), String(redis.port), String(cfg.max_seats_per_user),
  ], process.env);
  started.push(front.proc);
  const data = join(dir, 'data');
  const ours = await start_ours('ticketing-ghz', data, secret);
  started.push(ours.proc);
  const token = mint_token('bench-service', 'service', data, secret);
  const admin = mint_token('bench-admin', 'admin', data, secret);
  const phases = ['warm', ...Array.from({ length: cfg.ghz_rounds }, (_, r) => `r${r}`)];
  log(`ghz: creating ${phases.length} events x ${seats_of(cfg.ghz_layout)} seats on ours`);
  await create_events(ours, admin, phases.map(event_of), cfg.ghz_layout);
  return {
    dir, ghz, token,
    servers: [
      { key: 'noop', grpc: noop.grpc, pids: [noop.pid] },
      { key: 'redis', grpc: front.grpc, pids: [front.pid, redis.pid] },
      { key: 'ours', grpc: ours.grpc, pids: [ours.pid] },
    ],
    versions: { ghz: ghz_version_of(ghz), redis: redis.version },
  };
}

/** The warm-up (not counted), then the rounds; round r runs the servers in turn, every other
 *  round in reverse order. */
async function drive(rig: Rig): Promise<Record<Key, GhzRun[]>> {
  const runs: Record<Key, GhzRun[]> = { noop: [], redis: [], ours: [] };
  const once = (server: Target, phase: string, data_file: string, calls: number) => {
    log(`ghz ${phase}: ${names[server.key]} (${fmt_int(calls)} calls, C=${cfg.concurrency})`);
    return run_ghz(rig.ghz, {
      label: `${server.key}-${phase}`, target: server.grpc, data_file, calls, token: rig.token,
      server_pids: server.pids, out_file: join(rig.dir, `ghz-${server.key}-${phase}.json`),
    });
  };
  const warm = write_data(rig.dir, 'warm', cfg.ghz_warmup_calls);
  for (const server of rig.servers) await once(server, 'warm', warm, cfg.ghz_warmup_calls);
  for (let r = 0; r < cfg.ghz_rounds; r++) {
    const data_file = write_data(rig.dir, `r${r}`, cfg.ghz_calls);
    const order = r % 2 === 0 ? rig.servers : [...rig.servers].reverse();
    for (const server of order) {
      runs[server.key].push(await once(server, `r${r}`, data_file, cfg.ghz_calls));
    }
  }
  return runs;
}

interface Pooled {
  calls_per_s: number;
  latency: LatencySummary;
  cpu_us_per_call: number;
  server_cores: number;
  ghz_cores: number;
  bystander_cores: number;
  error_count: number;
  errors: Record<string, number>;
}

/** Rounds pooled: all OK calls over all ghz time; percentiles over every call's latency. */
function pool(runs: GhzRun[]): Pooled {
  const sum = (x: (r: GhzRun) => number) => runs.reduce((a, r) => a + x(r), 0);
  const avg = (x: (r: GhzRun) => number) => sum(x) / runs.length;
  const errors: Record<string, number> = {};
  for (const r of runs) {
    for (const [k, n] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + n;
  }
  return {
    calls_per_s: sum((r) => r.ok) / sum((r) => r.total_s),
    latency: summarize(runs.flatMap((r) => r.latencies_ms)),
    cpu_us_per_call: (sum((r) => r.server_cpu_s) / sum((r) => r.calls)) * 1e6,
    server_cores: avg((r) => r.server_cores), ghz_cores: avg((r) => r.ghz_cores),
    bystander_cores: avg((r) => r.bystander_cores), error_count: sum((r) => r.error_count), errors,
  };
}

type Pools = Record<Key, Pooled>;

/** Ours over `other`, pooled and per round, of figure `x`. */
function ratios(runs: Record<Key, GhzRun[]>, P: Pools, other: Key, x: (r: GhzRun) => number,
  pooled: (p: Pooled) => number): { ratio: number; rounds: number[] } {
  return {
    ratio: pooled(P.ours) / pooled(P[other]),
    rounds: runs.ours.map((r, i) => x(r) / x(runs[other][i]!)),
  };
}

function report_rows(report: Report, runs: Record<Key, GhzRun[]>, P: Pools): void {
  const clean = P.noop.error_count + P.redis.error_count + P.ours.error_count === 0;
  const rate = (r: GhzRun) => r.calls_per_s;
  const cpu = (r: GhzRun) => r.cpu_us_per_call;
  const vs_redis = ratios(runs, P, 'redis', rate, (p) => p.calls_per_s);
  const vs_noop = ratios(runs, P, 'noop', rate, (p) => p.calls_per_s);
  const cpu_noop = ratios(runs, P, 'noop', cpu, (p) => p.cpu_us_per_call);
  const us = (p: Pooled) => `${f(p.cpu_us_per_call, 0)} us/call`;
  report.check({
    order: 100, check: 'ghz ReserveTickets calls/s vs Redis+Lua', ours: fmt_int(P.ours.calls_per_s),
    reference: `Redis+Lua ${fmt_int(P.redis.calls_per_s)}`,
    value: ratio_text(vs_redis.ratio, vs_redis.rounds),
    target: `>= ${f(targets.ghz_redis_ratio)} (moonshot ${f(targets.ghz_redis_moonshot)})`,
  }, clean && vs_redis.ratio >= targets.ghz_redis_ratio);
  report.check({
    order: 101, check: 'ghz ReserveTickets calls/s vs no-op', ours: fmt_int(P.ours.calls_per_s),
    reference: `no-op ${fmt_int(P.noop.calls_per_s)}`,
    value: ratio_text(vs_noop.ratio, vs_noop.rounds), target: 'info',
  }, undefined);
  report.check({
    order: 102, check: 'ghz server CPU per call vs no-op', ours: us(P.ours),
    reference: `no-op ${us(P.noop)}; Redis+Lua ${us(P.redis)}`,
    value: ratio_text(cpu_noop.ratio, cpu_noop.rounds), target: `<= ${f(targets.ghz_cpu_ratio)}`,
  }, clean && cpu_noop.ratio <= targets.ghz_cpu_ratio);
  report.check({
    order: 103, check: `ghz latency (C=${cfg.concurrency})`, ours: lat(P.ours.latency),
    reference: `Redis+Lua ${lat(P.redis.latency)}; no-op ${lat(P.noop.latency)}`,
    value: `p99 x${f(P.ours.latency.p99_ms / P.redis.latency.p99_ms, 1)} Redis+Lua`, target: 'info',
  }, undefined);
  if (!clean) {
    // A non-OK call means the servers did not do the same work: the figures above are void.
    const list = (k: Key) => Object.entries(P[k].errors).map(([c, n]) => `${c}=${n}`).join(',');
    report.rows.push({
      order: 104, check: 'ghz non-OK calls (measurement failed)', ours: list('ours') || '0',
      reference: `Redis+Lua ${list('redis') || '0'}; no-op ${list('noop') || '0'}`,
      value: 'figures void', target: '0', status: 'ERROR',
    });
  }
  report.results['ghz'] = {
    ratios: { ours_over_redis: vs_redis, ours_over_noop: vs_noop, cpu_ours_over_noop: cpu_noop },
    moonshot_met: clean && vs_redis.ratio >= targets.ghz_redis_moonshot,
  };
}

function report_details(
  report: Report, rig: Rig, runs: Record<Key, GhzRun[]>, P: Pools, load_start: number[],
): void {
  const load_end = loadavg();
  const line = (k: Key, r: GhzRun | Pooled, label: string) =>
    `ghz ${names[k].padEnd(9)} ${label}: ${fmt_int(r.calls_per_s)} calls/s, ${lat(r.latency)}, ` +
    `${f(r.cpu_us_per_call, 0)} us server CPU/call (${f(r.server_cores)} cores), ` +
    `ghz ${f(r.ghz_cores)} cores, other processes ${f(r.bystander_cores)} cores, ` +
    `${r.error_count} non-OK`;
  const keys: Key[] = ['noop', 'redis', 'ours'];
  report.detail(
    `ghz ${rig.versions.ghz}, ${rig.versions.redis.split(' ').slice(0, 3).join(' ')}: ` +
      `${cfg.ghz_rounds} rounds x ${fmt_int(cfg.ghz_calls)} ReserveTickets (1 distinct seat ` +
      `each, fresh event per round, ${fmt_int(cfg.ghz_users)} users) per server, C=` +
      `${cfg.concurrency} on ${cfg.ghz_connections} connection(s), after ` +
      `${fmt_int(cfg.ghz_warmup_calls)} warm-up calls; servers alternate order per round`,
    ...keys.flatMap((k) => [
      ...runs[k].map((r, i) => line(k, r, `round ${i + 1}`)), line(k, P[k], 'pooled '),
    ]),
    `ghz Redis+Lua server CPU per call by process (rounds): ` + runs.redis.map((r) =>
      `front ${f(r.cpu_us_per_call_by_pid[0]!, 0)} us + redis-server ` +
      `${f(r.cpu_us_per_call_by_pid[1]!, 0)} us`).join('; '),
    ...keys.flatMap((k) => runs[k].flatMap((r) => r.error_samples.map((e) => `ghz ${k}: ${e}`))),
    `ghz load average: at start ${load_start.map((x) => f(x)).join(' ')}, ` +
      `at end ${load_end.map((x) => f(x)).join(' ')}`,
  );
  const strip = (r: GhzRun) => {
    const { latencies_ms: _, ...rest } = r;
    return rest;
  };
  Object.assign(report.results['ghz'] as Record<string, unknown>, {
    versions: rig.versions, loadavg_start: load_start, loadavg_end: load_end,
    pooled: P, rounds: { noop: runs.noop.map(strip), redis: runs.redis.map(strip),
      ours: runs.ours.map(strip) },
  });
}

function report_ghz(
  report: Report, rig: Rig, runs: Record<Key, GhzRun[]>, load_start: number[],
): void {
  const P: Pools = { noop: pool(runs.noop), redis: pool(runs.redis), ours: pool(runs.ours) };
  report_rows(report, runs, P);
  report_details(report, rig, runs, P, load_start);
}

async function run(ctx: SectionContext): Promise<void> {
  const dir = join(ctx.root, 'ghz');
  mkdirSync(dir, { recursive: true });
  const started: ChildProcess[] = [];
  const load_start = loadavg();
  try {
    const rig = await start_rig(ctx, dir, started);
    const runs = await drive(rig);
    report_ghz(ctx.report, rig, runs, load_start);
  } finally {
    // Ours first, then the front, redis-server and the no-op: the reverse of their start.
    for (const proc of started.reverse()) await terminate(proc);
    rmSync(dir, { recursive: true, force: true });
  }
}

export const ghz_section: Section = { key: 'ghz', name: 'ghz', order: 100, run };
