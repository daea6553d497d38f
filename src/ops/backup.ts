// `ticketing backup DEST`: a consistent copy of a data directory, taken while the node runs.
//
// Each store (LMDB environment, data/stores/sNNN/) is copied with LMDB's hot copy
// (lmdb-js `root.backup()` = mdb_env_copy2): the copy is made from ONE read transaction, so it
// is exactly the environment as of one commit, while the server keeps writing (LMDB lets
// another process read; the copy blocks writers only while it snapshots the meta pages).
//
// Why per-store consistency is a consistent node backup: a partition lives in exactly one store
// (p mod store_count) and a transaction never spans two stores (commit_together asserts it), so
// each partition in the copy is exactly a prefix of its committed history: journal, snapshot,
// outbox and outbox floor from the same commit. No state relates two partitions (an event, its
// holds and its users' limits are in one partition; hold ids name their partition; outbox event
// ids are per partition), and each partition recovers on its own, so stores copied at slightly
// different moments still restore to a state the node could have had: every partition as it
// was at some instant during the backup, everything acknowledged before the backup started
// included (an acknowledgement follows the fsynced commit, which any later read transaction
// sees). If a future feature ever writes state that spans partitions, this must be revisited.
//
// node.json and auth.secret never change after creation, so a plain copy of each is consistent.
// Everything is written into a temporary directory next to DEST, fsynced, then renamed to DEST:
// a backup that fails (or is killed) never leaves a half-written DEST.
import { open } from 'lmdb';
import { randomBytes } from 'node:crypto';
import {
  closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { store_dir, store_map_bytes_max } from '../runtime/store_env.js';
import { read_node_meta } from './data_dir.js';
import { check_not_locked } from './data_lock.js';

/** The secret's file name in a data directory (load_secret in src/auth/token.ts). */
const secret_file = 'auth.secret';

export interface BackupResult {
  dest: string;
  stores: { name: string; bytes: number }[];
  /** Other files copied (node.json, auth.secret when present). */
  files: { name: string; bytes: number }[];
  bytes: number;
  /** auth.secret was absent (the node takes TICKETING_AUTH_SECRET from its environment). */
  secret_missing: boolean;
}

function fsync_path(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Throws unless dest is absent or an empty directory. */
function check_dest(dest: string): void {
  if (!existsSync(dest)) return;
  if (!statSync(dest).isDirectory()) throw new Error(`backup destination ${dest} exists and is not a directory`);
  if (readdirSync(dest).length > 0) throw new Error(`backup destination ${dest} is not empty: back up into a new or empty directory`);
}

/** Copies one store from one read transaction into `to` (a new directory). Returns its size. */
async function copy_store(from: string, to: string): Promise<number> {
  if (!existsSync(join(from, 'data.mdb'))) {
    throw new Error(`${join(from, 'data.mdb')} does not exist: the data directory is incomplete (has the node ever started?)`);
  }
  mkdirSync(to, { recursive: true });
  // The store's own options (store_env.ts), read-only: the copy only needs a read transaction, and a
  // read-only handle cannot write anything into the live environment.
  const root = open({ path: from, maxDbs: 4, mapSize: store_map_bytes_max, overlappingSync: false, noSync: false, readOnly: true });
  try {
    await root.backup(to, false);
  } finally {
    await root.close();
  }
  // mdb_env_copy2 closes the copy without fsync: make it durable before DEST appears.
  const data = join(to, 'data.mdb');
  fsync_path(data);
  return statSync(data).size;
}

/** Writes a copy of `from` to `to` (mode kept for the secret), durable on return. */
function copy_small_file(from: string, to: string, mode: number): number {
  const content = readFileSync(from);
  writeFileSync(to, content, { mode, flag: 'wx' });
  fsync_path(to);
  return content.length;
}

export async function backup(data_dir: string, dest: string, progress: (line: string) => void = () => {}): Promise<BackupResult> {
  const source = resolve(data_dir);
  const target = resolve(dest);
  // A backup only ever writes DEST. DEST in use by a node (a restore "into" a live directory)
  // is refused naming that node, before the emptiness check would give a vaguer reason. The
  // source is only read, from LMDB read transactions, so a live source is fine (see above).
  await check_not_locked(target);
  check_dest(target);
  const meta = read_node_meta(source);

  const parent = dirname(target);
  mkdirSync(parent, { recursive: true });
  const temp = join(parent, `.${basename(target)}.backup-${process.pid}-${randomBytes(4).toString('hex')}.partial`);
  mkdirSync(temp);
  const result: BackupResult = { dest: target, stores: [], files: [], bytes: 0, secret_missing: false };
  try {
    // A cluster node's partitions live in its cluster's Kafka topics (journal segments and
    // snapshots, replicated): its data directory holds no store, only its identity.
    if (meta.cluster !== undefined) {
      progress(`${source} is a node of cluster ${meta.cluster}: its partitions are in Kafka (topic ticketing-cluster.${meta.cluster}.journal), not here; copying the node's identity only`);
    }
    const store_count = meta.cluster === undefined ? meta.store_count : 0;
    for (let s = 0; s < store_count; s++) {
      const from = store_dir(source, s);
      const to = store_dir(temp, s);
      const name = relative(source, from);
      const bytes = await copy_store(from, to);
      result.stores.push({ name, bytes });
      result.bytes += bytes;
      progress(`${name}: ${bytes} bytes`);
      fsync_path(to);
    }
    if (store_count > 0) fsync_path(join(temp, 'stores'));

    const files: [string, number][] = [['node.json', 0o644], [secret_file, 0o600]];
    for (const [name, mode] of files) {
      const from = join(source, name);
      if (name === secret_file && !existsSync(from)) {
        result.secret_missing = true;
        progress(`${name}: absent (the node takes TICKETING_AUTH_SECRET from its environment; restore needs that secret too)`);
        continue;
      }
      const bytes = copy_small_file(from, join(temp, name), mode);
      result.files.push({ name, bytes });
      result.bytes += bytes;
      progress(`${name}: ${bytes} bytes`);
    }
    fsync_path(temp);
    // An empty directory at DEST is replaced atomically; a non-empty one (created meanwhile) fails.
    renameSync(temp, target);
    fsync_path(parent);
  } catch (error) {
    rmSync(temp, { recursive: true, force: true });
    throw error;
  }
  progress(`backup of ${source} in ${target}: ${result.stores.length} stores, ${result.files.length} files, ${result.bytes} bytes`);
  return result;
}
