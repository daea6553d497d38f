// ghz (Go gRPC load generator) for section "ghz": found or installed with `go install` at the
// pinned version, run once per round against one server while that server's CPU (all its
// processes) is read from /proc, and its JSON report (-O json) boiled down to our figures.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { inventory_proto, repo_root, summarize, type LatencySummary } from '../common.js';
import { cfg } from '../config.js';
import { machine_busy_s } from './metrics.js';
import { log, track, wait_exit } from './processes.js';

const ghz_module = 'github.com/bojand/ghz/cmd/ghz';

function go_env(name: string): string | undefined {
  try {
    return execFileSync('go', ['env', name], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The ghz module version `binary` was built from (`go version -m`), or 'unknown'. */
export function ghz_version_of(binary: string): string {
  try {
    const info = execFileSync('go', ['version', '-m', binary], { encoding: 'utf8' });
    return /\bmod\s+github\.com\/bojand\/ghz\s+(\S+)/.exec(info)?.[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * The ghz binary: $GHZ, else GOBIN (or GOPATH/bin) if it holds one, else `go install` of the
 * pinned version into that GOBIN. Throws (the section fails loudly) when none can be had.
 */
export function ensure_ghz(): string {
  const from_env = process.env['GHZ'];
  if (from_env !== undefined && existsSync(from_env)) return from_env;
  const gopath = go_env('GOPATH');
  const gobin = go_env('GOBIN') ?? (gopath !== undefined ? join(gopath, 'bin') : undefined);
  if (gobin === undefined) throw new Error('ghz: no `go` to install it with (go env failed)');
  const binary = join(gobin, 'ghz');
  if (existsSync(binary)) return binary;
  log(`ghz missing: go install ${ghz_module}@${cfg.ghz_version} (GOBIN=${gobin})`);
  try {
    execFileSync('go', ['install', `${ghz_module}@${cfg.ghz_version}`], {
      env: { ...process.env, GOBIN: gobin }, stdio: 'pipe', timeout: 600_000,
    });
  } catch (error) {
    const e = error as { stderr?: Buffer; message: string };
    throw new Error(`ghz: go install ${ghz_module}@${cfg.ghz_version} failed: ` +
      `${(e.stderr?.toString().trim() || e.message).split('\n').slice(-3).join(' / ')}`);
  }
  if (!existsSync(binary)) throw new Error(`go install left no ghz at ${binary}`);
  return binary;
}

// ---------------------------------------------------------------------------------------------
// CPU of process trees

let clk_tck = 100;
try {
  clk_tck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  // keep 100
}

/** utime, stime, cutime, cstime (s) and the parent of `pid`, from /proc/<pid>/stat. */
function stat_of(pid: number): { cpu_s: number; children_s: number; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const n = (i: number) => Number(fields[i]);
    return { cpu_s: (n(11) + n(12)) / clk_tck, children_s: (n(13) + n(14)) / clk_tck, ppid: n(1) };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds of `pids` and every live descendant, with what their waited-for children used
 * (cutime, cstime): "all its processes" (redis-server's forks, any helper a server runs).
 */
export function tree_cpu_s(pids: number[]): number {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    const s = stat_of(Number(entry));
    if (s !== undefined) parent.set(Number(entry), s.ppid);
  }
  const tree = new Set(pids);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parent) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  let total = 0;
  for (const pid of tree) {
    const s = stat_of(pid);
    if (s !== undefined) total += s.cpu_s + s.children_s;
  }
  return total;
}

/** CPU seconds this bench process's reaped children used: around one ghz run, that run's. */
function reaped_children_cpu_s(): number {
  return stat_of(process.pid)?.children_s ?? 0;
}

// ---------------------------------------------------------------------------------------------
// One run

export interface GhzSpec {
  label: string;
  /** host:port of the server. */
  target: string;
  /** JSON array of ReserveTicketsRequest, one element per call (ghz takes element i for call i). */
  data_file: string;
  calls: number;
  /** Sent as `authorization: Bearer …` to every server alike, so all parse the same headers. */
  token: string;
  /** The server's processes whose CPU the run is charged with. */
  server_pids: number[];
  /** Where ghz writes its JSON report. */
  out_file: string;
}

export interface GhzRun {
  label: string;
  calls: number;
  ok: number;
  /** Status code name (or "error: …" for a call without one) -> count; OK not listed. */
  errors: Record<string, number>;
  error_count: number;
  /** A few of ghz's error messages with their counts, to say why calls failed. */
  error_samples: string[];
  /** ghz's own run time (first call to last reply). */
  total_s: number;
  calls_per_s: number;
  latency: LatencySummary;
  latencies_ms: number[];
  server_cpu_s: number;
  cpu_us_per_call: number;
  /** The same per process of server_pids (for the baseline: the front, redis-server). */
  cpu_us_per_call_by_pid: number[];
  server_cores: number;
  ghz_cores: number;
  /** Busy cores of the whole machine over the run, and what neither side used (noise). */
  machine_cores: number;
  bystander_cores: number;
}

interface GhzReport {
  count: number;
  total: number;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number>;
  details?: { latency: number; status: string; error: string }[];
}

function ghz_args(spec: GhzSpec): string[] {
  return [
    '--insecure', '--import-paths', 'proto', '--proto', inventory_proto,
    '--call', 'ticketing.inventory.v1.InventoryService.ReserveTickets',
    '--data-file', spec.data_file, '-n', String(spec.calls), '-c', String(cfg.concurrency),
    '--connections', String(cfg.ghz_connections), '--timeout', '20s',
    '-m', JSON.stringify({ authorization: `Bearer ${spec.token}` }),
    '-O', 'json', '-o', spec.out_file, spec.target,
  ];
}

/** Runs ghz once against one server, reading that server's CPU before and after. */
export async function run_ghz(binary: string, spec: GhzSpec): Promise<GhzRun> {
  const per_pid = () => spec.server_pids.map((pid) => tree_cpu_s([pid]));
  const cpu0 = per_pid();
  const ghz0 = reaped_children_cpu_s();
  const busy0 = machine_busy_s();
  const t0 = performance.now();
  const proc = track(spawn(binary, ghz_args(spec), {
    cwd: repo_root, stdio: ['ignore', 'ignore', 'pipe'],
  }));
  let err = '';
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  if (!(await wait_exit(proc, cfg.ghz_run_timeout_s * 1000))) {
    proc.kill('SIGKILL');
    throw new Error(`ghz ${spec.label} did not finish within ${cfg.ghz_run_timeout_s} s`);
  }
  const wall_s = (performance.now() - t0) / 1000;
  const cpu_by_pid_s = per_pid().map((s, i) => s - cpu0[i]!);
  const server_cpu_s = cpu_by_pid_s.reduce((a, s) => a + s, 0);
  const ghz_cpu_s = reaped_children_cpu_s() - ghz0;
  const busy1 = machine_busy_s();
  if (proc.exitCode !== 0) {
    const why = err.trim().slice(0, 300);
    throw new Error(`ghz ${spec.label} failed (exit ${proc.exitCode}): ${why}`);
  }
  const report = JSON.parse(readFileSync(spec.out_file, 'utf8')) as GhzReport;
  const machine_cores = busy0 !== undefined && busy1 !== undefined ? (busy1 - busy0) / wall_s : NaN;
  return {
    ...figures(spec, report), server_cpu_s,
    cpu_us_per_call_by_pid: cpu_by_pid_s.map((s) => (s / spec.calls) * 1e6),
    server_cores: server_cpu_s / wall_s, ghz_cores: ghz_cpu_s / wall_s, machine_cores,
    bystander_cores: Math.max(0, machine_cores - (server_cpu_s + ghz_cpu_s) / wall_s),
    cpu_us_per_call: (server_cpu_s / spec.calls) * 1e6,
  };
}

/** Calls, errors and latencies of a ghz JSON report (latencies from every call's detail). */
function figures(
  spec: GhzSpec, report: GhzReport,
): Pick<GhzRun, 'label' | 'calls' | 'ok' | 'errors' | 'error_count' | 'error_samples' | 'total_s' |
  'calls_per_s' | 'latency' | 'latencies_ms'> {
  const errors: Record<string, number> = {};
  for (const [code, n] of Object.entries(report.statusCodeDistribution ?? {})) {
    if (code !== 'OK') errors[code] = n;
  }
  const ok = report.statusCodeDistribution?.['OK'] ?? 0;
  // A call ghz could not make at all (count short of -n) is a failure as much as a non-OK one.
  if (report.count < spec.calls) errors['not made'] = spec.calls - report.count;
  const error_count = Object.values(errors).reduce((a, n) => a + n, 0);
  const error_samples = Object.entries(report.errorDistribution ?? {}).slice(0, 3)
    .map(([message, n]) => `${n}x ${message.slice(0, 200)}`);
  const latencies_ms = (report.details ?? []).map((d) => d.latency / 1e6);
  const total_s = report.total / 1e9;
  return {
    label: spec.label, calls: spec.calls, ok, errors, error_count, error_samples, total_s,
    calls_per_s: ok / total_s, latency: summarize(latencies_ms), latencies_ms,
  };
}
