// redis-server for section "ghz"'s baseline: installed from Debian when missing, started by the
// bench on a loopback port with a temp dir and `appendfsync always` (it fsyncs the AOF before it
// replies, as we fsync the journal before we reply), tracked like every other child so it is
// killed on exit, error or signal.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { alive, log, track } from './processes.js';

function which(name: string): string | undefined {
  try {
    return execFileSync('which', [name], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** The redis-server binary; installs Debian's package first when there is none. Throws (the
 *  section fails loudly) when it cannot be had. */
export function ensure_redis_server(): string {
  const found = which('redis-server');
  if (found !== undefined) return found;
  log('redis-server missing: apt-get install -y redis-server');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    execFileSync('apt-get', ['update'], { env, stdio: 'pipe', timeout: 300_000 });
    execFileSync('apt-get', ['install', '-y', 'redis-server'], {
      env, stdio: 'pipe', timeout: 300_000,
    });
  } catch (error) {
    const e = error as { stderr?: Buffer; message: string };
    throw new Error(`redis-server is not installed and apt-get could not install it: ` +
      `${(e.stderr?.toString().trim() || e.message).split('\n').slice(-3).join(' / ')}`);
  }
  const installed = which('redis-server');
  if (installed === undefined) throw new Error('apt-get install redis-server left no redis-server');
  return installed;
}

/** A free loopback port (the kernel's pick; closed again before redis-server binds it). */
export function free_port(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export interface RunningRedis { proc: ChildProcess; pid: number; port: number; version: string }

/** Starts redis-server on 127.0.0.1 with its files in `dir`; resolves once it accepts. */
export async function start_redis(binary: string, dir: string): Promise<RunningRedis> {
  mkdirSync(dir, { recursive: true });
  const port = await free_port();
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
  const proc = track(spawn(binary, [
    '--bind', '127.0.0.1', '--port', String(port), '--dir', dir, '--daemonize', 'no',
    '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--logfile', '',
  ], { stdio: ['ignore', 'pipe', 'pipe'] }));
  const tail: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => done(new Error('redis-server: not ready within 30 s')), 30_000);
    // Only its own listeners come off: track()'s exit listener stays.
    function done(error?: Error): void {
      clearTimeout(timer);
      proc.stdout!.off('data', on_data);
      proc.off('exit', on_exit);
      if (error === undefined) return resolve();
      // Not ready: it is never handed to the section, so it is stopped here.
      if (alive(proc)) proc.kill('SIGKILL');
      reject(new Error(`${error.message}\n--- redis-server output ---\n${tail.join('')}`));
    }
    function on_data(chunk: string): void {
      tail.push(chunk);
      if (tail.join('').includes('Ready to accept connections')) done();
    }
    function on_exit(code: number | null): void {
      done(new Error(`redis-server exited (code ${code})`));
    }
    proc.stdout!.setEncoding('utf8').on('data', on_data);
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => tail.push(chunk));
    proc.once('exit', on_exit);
  });
  // Keep draining its log, so a full pipe never blocks it.
  proc.stdout!.resume();
  return { proc, pid: proc.pid!, port, version };
}
