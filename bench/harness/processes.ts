// Processes the bench starts (our server, the no-op server, generators) and the temp dirs it
// makes: everything is torn down on exit, error or signal. Also the server start-up and the
// client calls every section needs before it measures (tokens, events).
import * as grpc from '@grpc/grpc-js';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import {
  catalog_proto, client_ctor, event_wire, load_protos, repo_root, seats_of, type Layout,
} from '../common.js';
import { cfg } from '../config.js';

/** dist/bench/: the generator scripts (loadgen.js, noop_server.js, ...) sit there. */
export const bench_dir = fileURLToPath(new URL('../', import.meta.url));
/** bin/ticketing.js: every server the bench starts is this CLI's `serve`. */
export const cli = join(repo_root, 'bin', 'ticketing.js');

const children = new Set<ChildProcess>();
export const temp_dirs = new Set<string>();

export function alive(proc: ChildProcess): boolean {
  return proc.exitCode === null && proc.signalCode === null;
}

export function cleanup_sync(): void {
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

/** Once, at the start of the run: clean up on exit and on SIGINT, SIGTERM, SIGHUP. */
export function install_cleanup(): void {
  process.on('exit', cleanup_sync);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      process.stderr.write(`\nbench: ${signal}, cleaning up\n`);
      cleanup_sync();
      process.exit(130);
    });
  }
}

export function track(proc: ChildProcess): ChildProcess {
  children.add(proc);
  proc.once('exit', () => children.delete(proc));
  return proc;
}

export function wait_exit(proc: ChildProcess, timeout_ms: number): Promise<boolean> {
  if (!alive(proc)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeout_ms);
    proc.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

export async function terminate(proc: ChildProcess, timeout_ms = 15_000): Promise<void> {
  if (!alive(proc)) return;
  proc.kill('SIGTERM');
  if (!(await wait_exit(proc, timeout_ms))) {
    proc.kill('SIGKILL');
    await wait_exit(proc, 5000);
  }
}

export function log(line: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------
// Servers

export interface Running {
  name: string;
  proc: ChildProcess;
  pid: number;
  grpc: string;
  http_port: number | undefined;
  spawn_to_serving_ms: number;
  recovery_ms: number | undefined;
  log_tail: string[];
}

/** The JSON log line `line` as an object, or undefined for a line that is not JSON. */
function parse_log_line(line: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** Spawns `args` and resolves when a JSON log line with msg "serving" appears on stdout. */
export function start_process(
  name: string, args: string[], env: NodeJS.ProcessEnv, timeout_ms = 60_000,
): Promise<Running> {
  const started = performance.now();
  const proc = track(spawn(process.execPath, args, {
    cwd: repo_root, env, stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const tail: string[] = [];
  let recovery_ms: number | undefined;
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 50) tail.shift();
  };
  return new Promise<Running>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(
      () => fail(new Error(`${name}: no "serving" line within ${timeout_ms} ms`)), timeout_ms);
    function fail(error: Error): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (alive(proc)) proc.kill('SIGKILL');
      const output = `--- ${name} output (last lines) ---\n${tail.join('\n')}`;
      reject(new Error(`${error.message}\n${output}`));
    }
    const on_line = (line: string): void => {
      remember(line);
      const parsed = parse_log_line(line);
      if (parsed === undefined) return;
      if (parsed['msg'] === 'partitions recovered' && typeof parsed['recovery_ms'] === 'number') {
        recovery_ms = parsed['recovery_ms'];
      }
      if (parsed['msg'] !== 'serving' || settled) return;
      const spawn_to_serving_ms = performance.now() - started;
      settled = true;
      clearTimeout(timer);
      const http = typeof parsed['http'] === 'string'
        ? Number(parsed['http'].split(':').pop()) : undefined;
      resolve({
        name, proc, pid: proc.pid!, grpc: String(parsed['grpc']), http_port: http,
        spawn_to_serving_ms, recovery_ms, log_tail: tail,
      });
    };
    let buffered = '';
    proc.stdout!.setEncoding('utf8');
    proc.stdout!.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) !== -1) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        on_line(line);
      }
    });
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line !== '') remember(`[stderr] ${line}`);
    });
    proc.once('exit', (code, signal) => fail(
      new Error(`${name} exited (code ${code}, signal ${signal}) before serving`)));
    proc.once('error', (error) => fail(error));
  });
}

/** BENCH_SERVER_NODE_ARGS: node flags for our servers only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
 *  (a profile per thread, written at exit; node refuses --cpu-prof in NODE_OPTIONS). */
const server_node_args = (process.env['BENCH_SERVER_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== '');

export function start_ours(
  name: string, data_dir: string, secret: string, extra: string[] = [],
): Promise<Running> {
  return start_process(name, [
    ...server_node_args, cli, 'serve', '--data', data_dir, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0',
    '--workers', String(cfg.workers), ...extra,
  ], { ...process.env, TICKETING_AUTH_SECRET: secret });
}

export function start_noop(): Promise<Running> {
  return start_process('noop', [join(bench_dir, 'noop_server.js')], process.env);
}

export function mint_token(user: string, role: string, data_dir: string, secret: string): string {
  const args = [cli, 'token', '--user', user, '--role', role, '--data', data_dir];
  return execFileSync(process.execPath, args, {
    cwd: repo_root, env: { ...process.env, TICKETING_AUTH_SECRET: secret }, encoding: 'utf8',
  }).trim();
}

/** `count` event ids: prefix then the number, zero-padded to `digits`. */
export function numbered_ids(prefix: string, count: number, digits: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(digits, '0')}`);
}

/** Creates the events `ids` (8 calls in flight), each checked for its seat count. */
export async function create_events(
  server: Running, admin_token: string, ids: string[], layout: Layout,
): Promise<void> {
  const root = load_protos([catalog_proto]);
  const Catalog = client_ctor(root, 'ticketing.catalog.v1.CatalogService');
  const client = new Catalog(server.grpc, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 16 * 1024 * 1024,
  });
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${admin_token}`);
  const create = (event_id: string) => new Promise<void>((resolve, reject) => {
    (client as unknown as Record<string, Function>)['CreateEvent']!.call(
      client, { event: event_wire(event_id, layout, cfg.max_seats_per_user) }, metadata,
      { deadline: Date.now() + 30_000 },
      (error: grpc.ServiceError | null, reply: { seat_count: string }) => {
        if (error) {
          const code = grpc.status[error.code];
          reject(new Error(`CreateEvent ${event_id}: ${code}: ${error.details}`));
        } else if (Number(reply.seat_count) !== seats_of(layout)) {
          reject(new Error(`CreateEvent ${event_id}: seat_count ${reply.seat_count}`));
        } else resolve();
      },
    );
  });
  try {
    let next = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (next < ids.length) await create(ids[next++]!);
    }));
  } finally {
    client.close();
  }
}

/** Runs bench/<script> in an isolated --expose-gc process with one JSON argument and parses the
 *  JSON it prints: the memory probes measure heap deltas, so nothing else may share their heap. */
export function run_json_probe<T>(script: string, args: unknown, name: string): Promise<T> {
  const argv = ['--expose-gc', join(bench_dir, script), JSON.stringify(args)];
  return new Promise<T>((resolve, reject) => {
    const proc = track(spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
    proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    proc.once('exit', (code) => {
      if (code !== 0) reject(new Error(`${name} failed: ${err.trim()}`));
      else resolve(JSON.parse(out.trim()) as T);
    });
  });
}
