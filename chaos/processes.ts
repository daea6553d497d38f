// The processes and the filesystem a chaos run owns: `ticketing serve` nodes on fixed ports
// (so clients reconnect to a restarted node), and the data directories' small filesystem the
// harness mounts itself. Everything started is registered with a Reaper, which kills, resumes
// and unmounts on every path out (normal end, error, SIGINT/SIGTERM, process exit).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { strict as assert } from 'node:assert';
import {
  closeSync,
  createWriteStream,
  mkdirSync,
  openSync,
  rmSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const bin = fileURLToPath(new URL('../../bin/ticketing.js', import.meta.url));
/** Bound on a node's start until it logs "serving" (measured: 1-3 s idle, up to ~20 s beside
 *  other test processes on two cores); a bound, not a target. */
export const start_bound_ms = 120_000;

/** Cleanup actions run once, last registered first, on any way out. */
export class Reaper {
  private readonly actions: { what: string; run: () => void }[] = [];
  private done = false;

  constructor() {
    process.once('exit', () => this.reap_sync());
  }

  add(what: string, run: () => void): () => void {
    const entry = { what, run };
    this.actions.push(entry);
    return () => {
      const i = this.actions.indexOf(entry);
      if (i >= 0) this.actions.splice(i, 1);
    };
  }

  reap_sync(): void {
    if (this.done) return;
    this.done = true;
    for (const a of this.actions.reverse()) {
      try {
        a.run();
      } catch (error) {
        console.error(`cleanup (${a.what}) failed:`, error);
      }
    }
    this.actions.length = 0;
  }
}

export async function free_port(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface NodeSpec {
  name: string;
  data_dir: string;
  grpc_port: number;
  http_port: number;
  /** Flags beyond --data/--grpc/--http/--clock-offset-ms (--kafka, --cluster, ...). */
  flags: string[];
  env: Record<string, string>;
  log_file: string;
  /** Run as this uid/gid (cluster mode: iptables tells the nodes apart by owner). */
  uid?: number;
}

export type NodeState = 'down' | 'up' | 'paused';

/** One node across its incarnations (same ports, same data dir). */
export class NodeProc {
  state: NodeState = 'down';
  starts = 0;
  /** Exits the run did not cause (each one is a defect of the node). */
  readonly crashes: string[] = [];
  private expecting_exit = false;
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly spec: NodeSpec,
    private readonly reaper: Reaper,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.spec.grpc_port}`;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts an incarnation with the node clock at wall time + offset; resolves when serving. */
  async start(clock_offset_ms: number): Promise<void> {
    assert.equal(this.state, 'down', `${this.spec.name} is down before a start`);
    const s = this.spec;
    const args = [
      bin,
      'serve',
      '--data',
      s.data_dir,
      '--grpc',
      this.address,
      '--http',
      `127.0.0.1:${s.http_port}`,
      '--test-clock',
      '--clock-offset-ms',
      String(Math.round(clock_offset_ms)),
      ...s.flags,
    ];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...s.env },
      ...(s.uid === undefined ? {} : { uid: s.uid, gid: s.uid }),
    });
    this.child = child;
    this.starts++;
    const unregister = this.reaper.add(`kill ${s.name}`, () => {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    });
    this.expecting_exit = false;
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        unregister();
        if (!this.expecting_exit) {
          this.crashes.push(
            `${s.name} exited by itself (code ${code}, signal ${signal}) at ${new Date().toISOString()}`,
          );
          this.state = 'down';
        }
        resolve();
      }),
    );
    this.state = 'up';
    await this.await_serving(child);
  }

  private await_serving(child: ChildProcess): Promise<void> {
    const log = createWriteStream(this.spec.log_file, { flags: 'a' });
    log.write(`--- start ${this.starts} at ${new Date().toISOString()}\n`);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(
            new Error(
              `${this.spec.name} not serving within ${start_bound_ms} ms (log: ${this.spec.log_file})`,
            ),
          ),
        start_bound_ms,
      );
      let buffer = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        log.write(chunk);
        buffer += chunk.toString();
        if (buffer.includes('"msg":"serving"')) {
          clearTimeout(timer);
          buffer = '';
          resolve();
        } else if (buffer.length > 1 << 16) buffer = buffer.slice(-4096);
      });
      child.stderr?.on('data', (chunk: Buffer) => log.write(chunk));
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        log.end(`--- exit ${code} ${signal}\n`);
        reject(
          new Error(`${this.spec.name} exited (${code} ${signal}) (log: ${this.spec.log_file})`),
        );
      });
    });
  }

  /** kill -9, resolves once it has exited. */
  async kill9(): Promise<void> {
    if (this.child === undefined || this.state === 'down') return;
    this.expecting_exit = true;
    this.child.kill('SIGKILL');
    await this.exited;
    this.state = 'down';
  }

  /** SIGTERM (SIGKILL after the bound), resolves once exited. */
  async stop(bound_ms = 30_000): Promise<void> {
    if (this.child === undefined || this.state === 'down') return;
    this.expecting_exit = true;
    if (this.state === 'paused') this.child.kill('SIGCONT');
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), bound_ms);
    await this.exited;
    clearTimeout(timer);
    this.state = 'down';
  }

  pause(): void {
    assert.equal(this.state, 'up', `${this.spec.name} is up before a pause`);
    this.child?.kill('SIGSTOP');
    this.state = 'paused';
  }

  resume(): void {
    assert.equal(this.state, 'paused', `${this.spec.name} is paused before a resume`);
    this.child?.kill('SIGCONT');
    this.state = 'up';
  }

  /** Resolves when the current incarnation exits (a crash the run did not cause). */
  exit_promise(): Promise<void> {
    return this.exited;
  }
}

/** A small filesystem for the data directories, mounted by the harness (we run as root). */
export class SmallFs {
  private ballast_file: string;

  constructor(
    readonly dir: string,
    readonly size_mb: number,
    reaper: Reaper,
  ) {
    mkdirSync(dir, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size_mb}m`, 'tmpfs', dir], {
        stdio: 'pipe',
      });
    } catch (error) {
      const e = error as { stderr?: Buffer };
      throw new Error(
        `cannot mount a ${size_mb} MB tmpfs at ${dir} (the disk-full fault needs it; run as root): ${e.stderr?.toString() ?? String(error)}`,
      );
    }
    reaper.add(`umount ${dir}`, () => {
      execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    });
    this.ballast_file = join(dir, 'ballast.bin');
  }

  /** Fills the filesystem to the last block with a ballast file; returns the bytes written. */
  fill(): number {
    const fd = openSync(this.ballast_file, 'w');
    let written = 0;
    try {
      for (const chunk of [1 << 20, 1 << 12]) {
        const buffer = Buffer.alloc(chunk, 0xab);
        for (;;) {
          try {
            written += writeSync(fd, buffer);
          } catch (error) {
            if ((error as { code?: string }).code === 'ENOSPC') break;
            throw error;
          }
        }
      }
    } finally {
      closeSync(fd);
    }
    return written;
  }

  free(): void {
    try {
      unlinkSync(this.ballast_file);
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') throw error;
    }
  }
}

export { sleep };
