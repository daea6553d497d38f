// The LMDB environments that hold the partitions' durable state. A *store* is one LMDB
// environment (the unit of fsync); partition p lives in store p mod store_count, in key ranges
// of its own:
//   journal  key [p, seq]  value msgpackr([record, ...]) of one commit
//   snapshot key p         value msgpackr({ seq, state }) covering every commit <= seq
//   outbox   key [p, seq]  value msgpackr(OutboxRecord)
//   root     key ['outbox_floor', p]  highest outbox seq ever issued (event ids never repeat)
//   root     key ['outbox_parked', p, seq]  packed OutboxRecord its reader could not deliver
//            (unknown type): out of the outbox, kept until requeue_parked() moves it back
// (msgpackr: the runtime's one codec, codec.ts.) The journal and snapshot are store.ts's, the
// outbox and the root keys store_outbox.ts's; store_reader.ts reads them from another process.
// Why not one environment per partition: every LMDB commit pays an fsync, so a worker's batch
// spread over 40 partitions paid 40 of them (1.6 records per commit, measured by npm run bench).
// With store_count = worker count (the default at creation) a batch is one transaction and one
// fsync, while each partition still recovers, snapshots and drains its outbox on its own.
import { open, type Database, type RootDatabase } from 'lmdb';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../util/assert.js';
import { commit_error_code, StoreCommitError } from './storage.js';

/** Default of --store-map-bytes: the most one store's live data may take. lmdb-js grows the
 *  map past its size by itself (see storage.ts), so the store enforces it: usage(). */
export const store_map_bytes_max = 16 * 1024 * 1024 * 1024;
/** Below this a store cannot hold one storage probe plus the node's own bookkeeping. */
export const store_map_bytes_min = 4 * 1024 * 1024;

/** The named databases of a store: the writer and the read-only reader open them alike. */
const store_dbs_max = 4;
const journal_db = { name: 'journal', encoding: 'binary' } as const;
const snapshot_db = { name: 'snapshot', encoding: 'binary', keyEncoding: 'uint32' } as const;
const outbox_db = { name: 'outbox', encoding: 'binary' } as const;

export function store_of(partition: number, store_count: number): number {
  assert(Number.isInteger(store_count) && store_count >= 1, 'store_count positive');
  return partition % store_count;
}

export function store_dir(data_dir: string, store: number): string {
  return join(data_dir, 'stores', `s${String(store).padStart(3, '0')}`);
}

export interface StoreEnv {
  path: string;
  root: RootDatabase;
  journal: Database<Buffer, [number, number]>;
  snapshots: Database<Buffer, number>;
  outbox: Database<Buffer, [number, number]>;
  /** Per partition, delivered outbox seqs not yet deleted on disk (see mark_delivered). */
  delivered: Map<number, Set<number>>;
  users: number;
  map_bytes: number;
}

// One handle per environment per thread, shared by the partitions stored in it.
const envs = new Map<string, StoreEnv>();

export function acquire_env(path: string, map_bytes: number): StoreEnv {
  assert(
    Number.isSafeInteger(map_bytes) && map_bytes >= store_map_bytes_min,
    'store map size within bounds',
  );
  let env = envs.get(path);
  if (env === undefined) {
    mkdirSync(path, { recursive: true });
    // overlappingSync off: a commit promise resolves only once the data is fsynced, so a reply
    // sent after it never acknowledges something a power cut could take back.
    // eventTurnBatching off: every write here is a transaction() (those still share one LMDB
    // transaction when queued together), and with it on lmdb-js leaves an internal promise
    // rejected and unhandled when a commit fails (write.js writeBatchStart), which would kill
    // the thread exactly when it must keep serving reads (measured on a full tmpfs).
    const root = open({
      path, maxDbs: store_dbs_max, mapSize: map_bytes,
      overlappingSync: false, noSync: false, eventTurnBatching: false,
    });
    env = {
      path, root, users: 0, delivered: new Map(), map_bytes,
      journal: root.openDB<Buffer, [number, number]>(journal_db),
      snapshots: root.openDB<Buffer, number>(snapshot_db),
      outbox: root.openDB<Buffer, [number, number]>(outbox_db),
    };
    envs.set(path, env);
  }
  env.users++;
  return env;
}

/** The last user of an environment closes it. */
export async function release_env(env: StoreEnv): Promise<void> {
  assert(env.users >= 1 && envs.get(env.path) === env, 'released environment is in use');
  env.users--;
  if (env.users === 0) {
    envs.delete(env.path);
    await env.root.close();
  }
}

/** One durable transaction; a refused commit throws StoreCommitError naming the OS error. */
export async function transact(env: StoreEnv, body: () => void): Promise<void> {
  try {
    await env.root.transaction(body);
  } catch (error) {
    // lmdb-js hides the OS error behind a promise; name it (storage.ts classifies it).
    const code = await commit_error_code(error);
    const message = `commit to ${env.path} failed: ${code}`;
    throw new StoreCommitError(code, env.path, message, { cause: error });
  }
}

/** Live bytes of a store against its --store-map-bytes. The file's size bounds the live
 *  data from above (a stat, ~µs); only near the bound are the page counts summed (~0.15 ms). */
export function env_usage(env: StoreEnv): { in_use_bytes: number; map_bytes: number } {
  const file_bytes = statSync(join(env.path, 'data.mdb')).size;
  if (file_bytes < env.map_bytes) return { in_use_bytes: file_bytes, map_bytes: env.map_bytes };
  type Stat = { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
  const pages = (s: Stat) => s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
  const stats = env.root.getStats() as Stat & { pageSize: number; root: Stat; free: Stat };
  let used = 2 + pages(stats.root) + pages(stats.free); // 2: LMDB's meta pages
  for (const db of [env.journal, env.snapshots, env.outbox]) used += pages(db.getStats() as Stat);
  return { in_use_bytes: used * stats.pageSize, map_bytes: env.map_bytes };
}

/** A read-only handle on a store's environment (store_reader.ts from another process,
 *  compaction_task.ts from another thread of this one: lmdb-js shares the environment). */
export function open_read_only(path: string): {
  root: RootDatabase;
  journal: Database<Buffer, [number, number]>;
  snapshots: Database<Buffer, number>;
  outbox: Database<Buffer, [number, number]>;
} {
  const root = open({ path, maxDbs: store_dbs_max, mapSize: store_map_bytes_max, readOnly: true });
  return {
    root,
    journal: root.openDB<Buffer, [number, number]>(journal_db),
    snapshots: root.openDB<Buffer, number>(snapshot_db),
    outbox: root.openDB<Buffer, [number, number]>(outbox_db),
  };
}
