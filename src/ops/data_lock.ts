// One writer per data directory. Two `ticketing serve` on one directory each keep their own
// seat maps in memory and append to the same journals: both sell the same seat, and a restart
// replays interleaved histories (issue 10: a confirmed sale answered NOT_FOUND afterwards).
//
// The lock is a Linux abstract-namespace unix socket, bound by the holder's main thread for the
// life of the process. The kernel frees an abstract socket when the last descriptor closes,
// i.e. when the process dies however it dies (kill -9 included): no stale lock, no timing, no
// pid-reuse guesses. A second process that finds the name taken connects to it and the holder
// answers with who it is (pid, start time, addresses).
//
// The name derives from the directory's (st_dev, st_ino), so the same directory reached by a
// symlink or another path is the same lock, and a copy elsewhere is a different one; and from
// `lock.key`, 32 random bytes created 0600 in the directory on first use. Abstract sockets have
// no file permissions, so without the key any local user who can stat the directory could bind
// the name first (the node could not start) or answer probes with a false pid.
//
// Limits (README "Data directory lock"): Linux only (elsewhere the node warns and runs
// unprotected); abstract sockets are per network namespace, so two containers with their own
// network namespaces sharing one directory through a volume are not protected from each other,
// nor are two machines sharing it over NFS.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { assert } from '../util/assert.js';

export const lock_key_file = 'lock.key';
/** Who holds the lock, for people (`cat DIR/holder.json`); removed when the holder stops cleanly. */
export const holder_file = 'holder.json';
/** How long a refused process waits for the holder to say who it is before falling back to
 *  holder.json. The holder answers from its main thread's event loop, which a long synchronous
 *  step (recovery replay of a big journal) can delay; the refusal itself never waits on this. */
export const lock_query_ms_max = 2_000;
/** Bytes read at most from a holder's answer (one JSON line of a few hundred bytes). */
const holder_answer_bytes_max = 4_096;
/** Attempts to bind when the name is taken but nobody answers (the holder just died). */
const lock_attempts_max = 3;

export interface LockHolder {
  pid: number;
  started_at: string;
  hostname: string;
  /** What the holder is: 'serve' for a node. */
  command: string;
  data_dir: string;
  grpc_addr?: string;
  http_addr?: string;
}

export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
  constructor(readonly data_dir: string, readonly holder: LockHolder | undefined, source: string) {
    super(holder === undefined
      ? `data directory ${data_dir} is in use by another process (it holds the directory's lock but did not say who it is, and ${holder_file} is unreadable): one node per data directory; stop the other one first, or use another --data`
      : `data directory ${data_dir} is in use by process ${holder.pid} (${holder.command} on ${holder.hostname}, started ${holder.started_at}`
        + `${holder.grpc_addr === undefined ? '' : `, gRPC ${holder.grpc_addr}`}; ${source}): one node per data directory; stop process ${holder.pid} first, or use another --data`);
  }
}

export interface DataLock {
  readonly data_dir: string;
  readonly holder: LockHolder;
  /** Adds what is known later (the bound addresses) to the holder's answer and holder.json. */
  update(fields: Partial<Pick<LockHolder, 'grpc_addr' | 'http_addr'>>): void;
  /** Gives the lock up (after LMDB is closed). Idempotent. */
  release(): Promise<void>;
}

/** The directory's lock key, created on first use. Written to a temporary file and linked into
 *  place, so two processes creating it at once agree on one key and never read half a file. */
function lock_key(dir: string): Buffer {
  const path = join(dir, lock_key_file);
  if (!existsSync(path)) {
    const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    writeFileSync(temp, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    try {
      linkSync(temp, path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    } finally {
      unlinkSync(temp);
    }
  }
  const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'utf8');
  if (key.length < 32) throw new Error(`${path} is damaged (shorter than 32 characters): delete it while no node runs on ${dir}`);
  return key;
}

/** The abstract socket name of a directory: its device and inode (not its path) and its key. */
function lock_name(dir: string, key: Buffer): string {
  const { dev, ino } = statSync(dir, { bigint: true });
  const digest = createHash('sha256').update(key).update(`\0${dev}:${ino}`).digest('hex').slice(0, 40);
  return `\0ticketing-data-lock-${digest}`;
}

function bind(name: string, answer: () => string): Promise<Server | 'taken'> {
  return new Promise((done, fail) => {
    const server = createServer({ allowHalfOpen: false }, (socket: Socket) => {
      socket.on('error', () => socket.destroy());
      // A peer that never closes its side must not pin the socket (nor delay release()).
      socket.setTimeout(lock_query_ms_max, () => socket.destroy());
      socket.end(answer());
    });
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? done('taken') : fail(error)));
    server.listen({ path: name }, () => done(server));
  });
}

/** Asks the holder of `name` who it is: its answer, 'gone' if nobody listens any more, or
 *  undefined if it did not answer in time. */
function ask_holder(name: string): Promise<LockHolder | 'gone' | undefined> {
  return new Promise((done) => {
    let text = '';
    const socket = connect({ path: name });
    const timer = setTimeout(() => finish(undefined), lock_query_ms_max);
    const finish = (result: LockHolder | 'gone' | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      done(result);
    };
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.length > holder_answer_bytes_max) finish(undefined);
    });
    socket.on('end', () => finish(parse_holder(text)));
    socket.on('error', (error: NodeJS.ErrnoException) => finish(error.code === 'ECONNREFUSED' || error.code === 'ENOENT' ? 'gone' : undefined));
  });
}

function parse_holder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as LockHolder;
    return Number.isInteger(value.pid) && value.pid > 0 ? value : undefined;
  } catch {
    return undefined;
  }
}

function read_holder_file(dir: string): LockHolder | undefined {
  try {
    return parse_holder(readFileSync(join(dir, holder_file), 'utf8'));
  } catch {
    return undefined;
  }
}

function write_holder_file(dir: string, holder: LockHolder): void {
  const path = join(dir, holder_file);
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(holder, null, 2) + '\n', { mode: 0o644 });
  renameSync(temp, path);
}

/** Throws DataDirLockedError unless nobody listens on `name` any more ('gone'). */
async function refuse(dir: string, name: string): Promise<'gone'> {
  const answer = await ask_holder(name);
  if (answer === 'gone') return 'gone';
  if (answer !== undefined) throw new DataDirLockedError(dir, answer, 'it says so itself');
  // It holds the name but did not answer in time: the file it wrote at start says who.
  throw new DataDirLockedError(dir, read_holder_file(dir), `from ${join(dir, holder_file)}; it did not answer within ${lock_query_ms_max} ms`);
}

/**
 * Takes the data directory's lock for this process (main thread only: the lock is the
 * process's; worker threads open LMDB under it). Creates the directory if needed. Throws
 * DataDirLockedError naming the directory and the holder's pid when another process has it.
 */
export async function lock_data_dir(data_dir: string, fields: Pick<LockHolder, 'command'> & Partial<LockHolder>): Promise<DataLock> {
  assert(isMainThread, 'the data directory lock is taken by the main thread');
  const dir = resolve(data_dir);
  mkdirSync(dir, { recursive: true });
  const holder: LockHolder = { pid: process.pid, started_at: new Date().toISOString(), hostname: hostname(), data_dir: dir, ...fields };
  if (process.platform !== 'linux') return unprotected(dir, holder);
  const name = lock_name(dir, lock_key(dir));
  for (let attempt = 1; ; attempt++) {
    const bound = await bind(name, () => JSON.stringify(holder) + '\n');
    if (bound !== 'taken') return held(dir, holder, bound);
    // Taken, but nobody listening means the holder died between our bind and our connect.
    if ((await refuse(dir, name)) === 'gone' && attempt >= lock_attempts_max) {
      throw new DataDirLockedError(dir, read_holder_file(dir), `from ${join(dir, holder_file)}; its lock was taken and released ${lock_attempts_max} times in a row while starting`);
    }
  }
}

function held(dir: string, holder: LockHolder, server: Server): DataLock {
  // Held for the process's life without keeping it alive: when everything else is done, the
  // process exits and the kernel frees the name.
  server.unref();
  write_holder_file(dir, holder);
  let released: Promise<void> | undefined;
  return {
    data_dir: dir,
    holder,
    update(more) {
      Object.assign(holder, more);
      if (released === undefined) write_holder_file(dir, holder);
    },
    release() {
      released ??= (async () => {
        // holder.json first: once the name is free another node may write its own.
        rmSync(join(dir, holder_file), { force: true });
        await new Promise<void>((done) => server.close(() => done()));
      })();
      return released;
    },
  };
}

function unprotected(dir: string, holder: LockHolder): DataLock {
  process.emitWarning(`the data directory lock needs Linux (abstract unix sockets); on ${process.platform} nothing stops a second node on ${dir}`);
  write_holder_file(dir, holder);
  return { data_dir: dir, holder, update: (more) => void Object.assign(holder, more), release: async () => rmSync(join(dir, holder_file), { force: true }) };
}

/** For writers that do not open LMDB (backup into DIR): throws DataDirLockedError if a live
 *  process holds DIR's lock. Only asks (connects): takes nothing and creates nothing in DIR. */
export async function check_not_locked(data_dir: string): Promise<void> {
  const dir = resolve(data_dir);
  if (process.platform !== 'linux' || !existsSync(join(dir, lock_key_file))) return; // never locked
  await refuse(dir, lock_name(dir, lock_key(dir)));
}
