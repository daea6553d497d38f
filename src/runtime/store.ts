// Durable state of partitions in LMDB. A *store* is one LMDB environment (the unit of fsync);
// partition p lives in store p mod store_count, in key ranges of its own:
//   journal  key [p, seq]  value msgpackr([record, ...]) of one commit
//   snapshot key p         value msgpackr({ seq, state }) covering every commit <= seq
//   outbox   key [p, seq]  value msgpackr(OutboxRecord)
//   root     key ['outbox_floor', p]  highest outbox seq ever issued (event ids never repeat)
//   root     key ['outbox_parked', p, seq]  packed OutboxRecord its reader could not deliver
//            (unknown type): out of the outbox, kept until requeue_parked() moves it back
// Delivered outbox entries are marked in memory (gone at once for reads, counts and the cap) and
// deleted by the next transaction of their store, so acknowledgements cost no fsync of their own;
// a crash before that transaction only means those entries are delivered again (duplicates with
// the same event id, never a loss).
// Why not one environment per partition: every LMDB commit pays an fsync, so a worker's batch
// spread over 40 partitions paid 40 of them (1.6 records per commit, measured by npm run bench).
// With store_count = worker count (the default at creation) a batch is one transaction and one
// fsync, while each partition still recovers, snapshots and drains its outbox on its own.
import { open, type Database, type RootDatabase } from 'lmdb';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from './assert.js';
import type { OutboxEntry } from './behaviour.js';
import { outbox_trim_batch_max, type OutboxTrimmed, type PartitionOutboxCap } from './outbox.js';
import { packr } from './protocol.js';
import { commit_error_code, StoreCommitError } from './storage.js';

/** Default of --store-map-bytes: the most one store's live data may take. lmdb-js grows the
 *  map past its size by itself (see storage.ts), so the store enforces it: usage(). */
export const store_map_bytes_max = 16 * 1024 * 1024 * 1024;
/** Below this a store cannot hold one storage probe plus the node's own bookkeeping. */
export const store_map_bytes_min = 4 * 1024 * 1024;

export interface OutboxRecord extends OutboxEntry {
  /** Unique and stable across retries: consumers deduplicate on it. */
  event_id: string;
  created_ms: number;
}

export interface Recovered<Rec> {
  snapshot: unknown | undefined;
  snapshot_seq: number;
  tail: Rec[][];
  next_seq: number;
  next_outbox_seq: number;
}

export interface CommitInput<Rec> {
  records: Rec[];
  outbox: OutboxEntry[];
  now_ms: number;
  /** When given, replaces the snapshot; the journal up to and including this commit is dropped. */
  snapshot?: unknown;
}

export function store_of(partition: number, store_count: number): number {
  assert(Number.isInteger(store_count) && store_count >= 1, 'store_count positive');
  return partition % store_count;
}

export function store_dir(data_dir: string, store: number): string {
  return join(data_dir, 'stores', `s${String(store).padStart(3, '0')}`);
}

interface Env {
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
const envs = new Map<string, Env>();

function acquire(path: string, map_bytes: number): Env {
  assert(Number.isSafeInteger(map_bytes) && map_bytes >= store_map_bytes_min, 'store map size within bounds');
  let env = envs.get(path);
  if (env === undefined) {
    mkdirSync(path, { recursive: true });
    // overlappingSync off: a commit promise resolves only once the data is fsynced, so a reply
    // sent after it never acknowledges something a power cut could take back.
    // eventTurnBatching off: every write here is a transaction() (those still share one LMDB
    // transaction when queued together), and with it on lmdb-js leaves an internal promise
    // rejected and unhandled when a commit fails (write.js writeBatchStart), which would kill
    // the thread exactly when it must keep serving reads (measured on a full tmpfs).
    const root = open({ path, maxDbs: 4, mapSize: map_bytes, overlappingSync: false, noSync: false, eventTurnBatching: false });
    env = {
      path, root, users: 0, delivered: new Map(), map_bytes,
      journal: root.openDB<Buffer, [number, number]>({ name: 'journal', encoding: 'binary' }),
      snapshots: root.openDB<Buffer, number>({ name: 'snapshot', encoding: 'binary', keyEncoding: 'uint32' }),
      outbox: root.openDB<Buffer, [number, number]>({ name: 'outbox', encoding: 'binary' }),
    };
    envs.set(path, env);
  }
  env.users++;
  return env;
}

/** A partition's view of its store. */
export class PartitionStore<Rec> {
  private readonly env: Env;
  private next_seq = 1;
  private next_outbox_seq = 1;
  /** Entries in this partition's outbox: counted once at recovery, then maintained (the
   *  worker reports it every second; a range count would scan a growing outbox each time). */
  private outbox_size = 0;
  private closed = false;

  constructor(
    readonly partition: number,
    data_dir: string,
    private readonly node_id: string,
    store_count = 1,
    map_bytes = store_map_bytes_max,
  ) {
    assert(Number.isInteger(partition) && partition >= 0, 'partition non-negative');
    this.env = acquire(store_dir(data_dir, store_of(partition, store_count)), map_bytes);
  }

  /** Same environment: their changes can share one transaction. */
  shares_env_with(other: PartitionStore<Rec>): boolean {
    return this.env === other.env;
  }

  env_path(): string {
    return this.env.path;
  }

  /** Also called again in place after a failed commit: reads what is durable, nothing more. */
  recover(): Recovered<Rec> {
    const p = this.partition;
    // A fresh read snapshot: the last commit of this environment must be visible.
    this.env.root.resetReadTxn();
    const raw = this.env.snapshots.get(p);
    let snapshot: unknown = undefined;
    let snapshot_seq = 0;
    if (raw !== undefined) {
      const decoded = packr.unpack(raw) as { seq: number; state: unknown };
      assert(Number.isInteger(decoded.seq) && decoded.seq >= 1, 'snapshot seq valid');
      snapshot = decoded.state;
      snapshot_seq = decoded.seq;
    }
    const tail: Rec[][] = [];
    let last = snapshot_seq;
    for (const { key, value } of this.env.journal.getRange({ start: [p, snapshot_seq + 1], end: [p + 1] })) {
      assert(key[0] === p && key[1] === last + 1, `journal of partition ${p} contiguous at ${key[1]}`);
      tail.push(packr.unpack(value) as Rec[]);
      last = key[1];
    }
    this.next_seq = last + 1;
    let outbox_last = 0;
    for (const key of this.env.outbox.getKeys({ start: [p + 1], end: [p], reverse: true, limit: 1 })) outbox_last = key[1];
    // The outbox sequence must never repeat an event id, even after every entry was drained.
    const floor = this.env.root.get(['outbox_floor', p]) as number | undefined;
    this.next_outbox_seq = Math.max(outbox_last, floor ?? 0) + 1;
    // Entries marked delivered but not yet deleted (a reload in place) are gone for counts.
    let marked = 0;
    for (const seq of this.delivered()) if (this.env.outbox.doesExist([p, seq])) marked++;
    this.outbox_size = this.env.outbox.getCount({ start: [p], end: [p + 1] }) - marked;
    assert(this.outbox_size >= 0, 'outbox size never negative');
    assert(this.next_seq > snapshot_seq, 'next seq after snapshot');
    return { snapshot, snapshot_seq, tail, next_seq: this.next_seq, next_outbox_seq: this.next_outbox_seq };
  }

  /**
   * Encodes a commit and returns the writes to run inside a transaction of this store.
   * Sequence numbers are taken now, so commits keep the order in which they were prepared.
   */
  prepare(input: CommitInput<Rec>): (() => void) & { seq: number } {
    assert(!this.closed, 'store open');
    assert(input.records.length > 0 || input.outbox.length > 0 || input.snapshot !== undefined, 'commit carries something');
    const p = this.partition;
    const seq = this.next_seq++;
    const outbox_first = this.next_outbox_seq;
    this.next_outbox_seq += input.outbox.length;
    // Counted when prepared: a commit that then fails is fatal to the worker anyway.
    this.outbox_size += input.outbox.length;
    const journal_value = input.snapshot === undefined ? packr.pack(input.records) : undefined;
    const outbox_values = input.outbox.map((entry, i): Buffer => {
      const record: OutboxRecord = { ...entry, event_id: `${this.node_id}-p${p}-${outbox_first + i}`, created_ms: input.now_ms };
      return packr.pack(record);
    });
    const snapshot_value = input.snapshot === undefined ? undefined : packr.pack({ seq, state: input.snapshot });
    const env = this.env;
    const write = () => {
      if (snapshot_value === undefined) {
        env.journal.put([p, seq], journal_value!);
      } else {
        // The snapshot already contains this commit's records: no journal entry needed. The
        // covered keys are read inside the write transaction, where every earlier commit of this
        // environment (possibly still in flight when prepare() ran) is already visible.
        env.snapshots.put(p, snapshot_value);
        for (const key of [...env.journal.getKeys({ start: [p], end: [p, seq] })]) env.journal.remove(key);
      }
      for (let i = 0; i < outbox_values.length; i++) env.outbox.put([p, outbox_first + i], outbox_values[i]!);
      if (outbox_values.length > 0) env.root.put(['outbox_floor', p], outbox_first + outbox_values.length - 1);
    };
    return Object.assign(write, { seq });
  }

  /** One transaction for this partition alone. Durable on resolve, with the commit's seq. */
  async commit(input: CommitInput<Rec>): Promise<number> {
    const write = this.prepare(input);
    await commit_together([this], [write]);
    return write.seq;
  }

  journal_seqs(): number[] {
    return [...this.env.journal.getKeys({ start: [this.partition], end: [this.partition + 1] })].map((k) => k[1]);
  }

  outbox_entries(): { seq: number; record: OutboxRecord }[] {
    const out: { seq: number; record: OutboxRecord }[] = [];
    for (const { key, value } of this.env.outbox.getRange({ start: [this.partition], end: [this.partition + 1] })) {
      out.push({ seq: key[1], record: packr.unpack(value) as OutboxRecord });
    }
    return out;
  }

  /** Deletes outbox entries (the emitter, once the broker acknowledged them). */
  async remove_outbox(seqs: number[]): Promise<void> {
    await commit_together([this], [this.prepare_settle(seqs, [])]);
  }

  outbox_count(): number {
    return this.outbox_size;
  }

  /** Up to `limit` entries with seq > after_seq in seq order, values packed as stored. Sees
   *  committed transactions only, so nothing leaves before its state change is durable. */
  read_outbox(after_seq: number, limit: number): { seq: number; value: Buffer }[] {
    assert(limit >= 1, 'read limit positive');
    const out: { seq: number; value: Buffer }[] = [];
    const p = this.partition;
    const delivered = this.delivered();
    // Delivered entries not yet deleted are skipped: at most one unflushed acknowledgement's worth.
    for (const { key, value } of this.env.outbox.getRange({ start: [p, after_seq + 1], end: [p + 1], limit: limit + delivered.size })) {
      assert(key[0] === p && key[1] > after_seq, 'outbox read stays in its partition, after the cursor');
      if (delivered.has(key[1])) continue;
      out.push({ seq: key[1], value });
      if (out.length === limit) break;
    }
    return out;
  }

  private delivered(): Set<number> {
    let set = this.env.delivered.get(this.partition);
    if (set === undefined) {
      set = new Set();
      this.env.delivered.set(this.partition, set);
    }
    return set;
  }

  /**
   * Marks outbox entries delivered: from now on reads, counts, the cap and the lag ignore them,
   * and the next transaction of this store deletes them (commit_together). Returns how many were
   * newly marked (an entry already gone or already marked is not counted).
   */
  mark_delivered(seqs: number[]): number {
    assert(!this.closed, 'store open');
    const delivered = this.delivered();
    let marked = 0;
    for (const seq of seqs) {
      if (delivered.has(seq) || !this.env.outbox.doesExist([this.partition, seq])) continue;
      delivered.add(seq);
      marked++;
    }
    this.outbox_size -= marked;
    assert(this.outbox_size >= 0, 'outbox size never negative');
    return marked;
  }

  /** Entries marked delivered and not yet deleted on disk. */
  delivered_pending(): number {
    return this.env.delivered.get(this.partition)?.size ?? 0;
  }

  /** Deletes on disk what was marked delivered in this store (every partition of it), now. */
  async flush_delivered(): Promise<void> {
    if ([...this.env.delivered.values()].every((set) => set.size === 0)) return;
    await commit_together([this], [() => undefined]);
  }

  /** Writes (for a transaction of this store) that delete `remove` and move `park` aside.
   *  Counts what actually changed: an entry may already be gone (trimmed at the cap). */
  prepare_settle(remove: number[], park: number[]): () => { removed: number; parked: number } {
    const removed = this.mark_delivered(remove); // deleted by the transaction this write joins
    const env = this.env;
    const p = this.partition;
    const delivered = this.delivered();
    return () => {
      let parked = 0;
      for (const seq of park) {
        const value = delivered.has(seq) ? undefined : env.outbox.get([p, seq]);
        if (value === undefined) continue;
        env.root.put(['outbox_parked', p, seq], value);
        env.outbox.remove([p, seq]);
        parked++;
      }
      this.outbox_size -= parked;
      assert(this.outbox_size >= 0, 'outbox size never negative');
      return { removed, parked };
    };
  }

  /** Parked entries in seq order (a reader that cannot deliver them put them there). */
  parked_entries(): { seq: number; record: OutboxRecord }[] {
    return read_parked(this.env.root, this.partition);
  }

  /** Moves parked entries back into the outbox under their own seq (and event id). */
  async requeue_parked(): Promise<number> {
    assert(!this.closed, 'store open');
    const p = this.partition;
    const env = this.env;
    let moved = 0;
    await transact(env, () => {
      for (const { key, value } of env.root.getRange({ start: ['outbox_parked', p], end: ['outbox_parked', p + 1] })) {
        const seq = (key as [string, number, number])[2];
        env.outbox.put([p, seq], value as Buffer);
        env.root.remove(key);
        moved++;
      }
    });
    this.outbox_size += moved; // counted once durable: a refused commit moved nothing
    return moved;
  }

  /**
   * Deletes the oldest entries beyond the cap: first whatever exceeds entries_per_partition,
   * then entries created before now_ms - age_ms. At most outbox_trim_batch_max per call (one
   * bounded transaction); the caller calls again later for the rest.
   */
  async trim_outbox(cap: PartitionOutboxCap, now_ms: number): Promise<OutboxTrimmed> {
    assert(!this.closed, 'store open');
    const p = this.partition;
    const over = Math.min(outbox_trim_batch_max, Math.max(0, this.outbox_size - cap.entries_per_partition));
    if (over === 0 && cap.age_ms === null) return { count: 0, age: 0 };
    const cutoff_ms = cap.age_ms === null ? -Infinity : now_ms - cap.age_ms;
    const by_count: number[] = [];
    const by_age: number[] = [];
    const delivered = this.delivered();
    for (const { key, value } of this.env.outbox.getRange({ start: [p], end: [p + 1], limit: outbox_trim_batch_max + delivered.size })) {
      if (delivered.has(key[1])) continue; // delivered, not dropped: deleted with the next commit
      if (by_count.length < over) by_count.push(key[1]);
      else if ((packr.unpack(value) as OutboxRecord).created_ms < cutoff_ms) by_age.push(key[1]);
      else break; // seq order is creation order: what follows is younger (up to clock steps)
    }
    if (by_count.length === 0 && by_age.length === 0) return { count: 0, age: 0 };
    const env = this.env;
    const trimmed: OutboxTrimmed = { count: 0, age: 0 };
    await transact(env, () => {
      for (const [list, reason] of [[by_count, 'count'], [by_age, 'age']] as const) {
        for (const seq of list) {
          if (delivered.has(seq) || !env.outbox.doesExist([p, seq])) continue; // acknowledged meanwhile
          env.outbox.remove([p, seq]);
          trimmed[reason]++;
        }
      }
    });
    // Counted once durable: a refused commit deleted nothing.
    this.outbox_size -= trimmed.count + trimmed.age;
    assert(this.outbox_size >= 0, 'outbox size never negative');
    return trimmed;
  }

  /** Undelivered outbox entries, oldest first (seq order is creation order), lazily. */
  *outbox_oldest(): Generator<{ seq: number; created_ms: number }> {
    const delivered = this.delivered();
    const p = this.partition;
    for (const { key, value } of this.env.outbox.getRange({ start: [p], end: [p + 1] })) {
      if (delivered.has(key[1])) continue;
      yield { seq: key[1], created_ms: (packr.unpack(value) as OutboxRecord).created_ms };
    }
  }

  /** Deletes these undelivered entries (one transaction); says how many were still there. */
  async drop_outbox(seqs: number[]): Promise<number> {
    assert(!this.closed, 'store open');
    assert(seqs.length <= outbox_trim_batch_max, 'a drop is bounded');
    const p = this.partition;
    const env = this.env;
    const delivered = this.delivered();
    let dropped = 0;
    await env.root.transaction(() => {
      for (const seq of seqs) {
        if (delivered.has(seq) || !env.outbox.doesExist([p, seq])) continue; // acknowledged meanwhile
        env.outbox.remove([p, seq]);
        dropped++;
      }
      this.outbox_size -= dropped;
      assert(this.outbox_size >= 0, 'outbox size never negative');
    });
    return dropped;
  }

  /** created_ms of the oldest outbox entry, or 0 when the outbox is empty. */
  outbox_oldest_ms(): number {
    const delivered = this.delivered();
    for (const { key, value } of this.env.outbox.getRange({ start: [this.partition], end: [this.partition + 1], limit: 1 + delivered.size })) {
      if (delivered.has(key[1])) continue;
      return (packr.unpack(value) as OutboxRecord).created_ms;
    }
    return 0;
  }

  /** Live bytes of this store against its --store-map-bytes. The file's size bounds the live
   *  data from above (a stat, ~µs); only near the bound are the page counts summed (~0.15 ms). */
  usage(): { in_use_bytes: number; map_bytes: number } {
    const env = this.env;
    const file_bytes = statSync(join(env.path, 'data.mdb')).size;
    if (file_bytes < env.map_bytes) return { in_use_bytes: file_bytes, map_bytes: env.map_bytes };
    type Stat = { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number };
    const pages = (s: Stat) => s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages;
    const stats = env.root.getStats() as Stat & { pageSize: number; root: Stat; free: Stat };
    let used = 2 + pages(stats.root) + pages(stats.free); // 2: LMDB's meta pages
    for (const db of [env.journal, env.snapshots, env.outbox]) used += pages(db.getStats() as Stat);
    return { in_use_bytes: used * stats.pageSize, map_bytes: env.map_bytes };
  }

  /** Writes `bytes` to a key of its own, then deletes it: two durable commits, or a throw. */
  async probe(bytes: number): Promise<void> {
    assert(!this.closed, 'store open');
    const env = this.env;
    await commit_together([this], [() => env.root.put(['storage_probe'], Buffer.alloc(bytes))]);
    await commit_together([this], [() => env.root.remove(['storage_probe'])]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush_delivered();
    this.closed = true;
    this.env.users--;
    if (this.env.users === 0) {
      envs.delete(this.env.path);
      await this.env.root.close();
    }
  }
}

function read_parked(root: RootDatabase, partition: number): { seq: number; record: OutboxRecord }[] {
  const out: { seq: number; record: OutboxRecord }[] = [];
  for (const { key, value } of root.getRange({ start: ['outbox_parked', partition], end: ['outbox_parked', partition + 1] })) {
    out.push({ seq: (key as [string, number, number])[2], record: packr.unpack(value as Buffer) as OutboxRecord });
  }
  return out;
}

/** One durable transaction; a refused commit throws StoreCommitError naming the OS error. */
async function transact(env: Env, body: () => void): Promise<void> {
  try {
    await env.root.transaction(body);
  } catch (error) {
    // lmdb-js hides the OS error behind a promise; name it (storage.ts classifies it).
    const code = await commit_error_code(error);
    throw new StoreCommitError(code, env.path, `commit to ${env.path} failed: ${code}`, { cause: error });
  }
}

/** Runs prepared writes of partitions that share one environment in one durable transaction;
 *  resolves with each write's result. */
export async function commit_together<Rec, R = void>(stores: PartitionStore<Rec>[], writes: (() => R)[]): Promise<R[]> {
  assert(stores.length > 0 && stores.length === writes.length, 'one write per store');
  const first = stores[0]!;
  assert(stores.every((s) => s.shares_env_with(first)), 'a transaction spans one environment');
  const results: R[] = [];
  const env = (first as unknown as { env: Env }).env;
  // Delivered outbox entries ride along: deleted by whatever transaction this store runs next.
  const flushing = [...env.delivered].filter(([, set]) => set.size > 0).map(([p, set]) => [p, [...set]] as const);
  await transact(env, () => {
    for (const write of writes) results.push(write());
    for (const [p, seqs] of flushing) for (const seq of seqs) env.outbox.remove([p, seq]);
  });
  // Forgotten only once deleted on disk: until then reads must keep skipping them.
  for (const [p, seqs] of flushing) {
    const set = env.delivered.get(p)!;
    for (const seq of seqs) set.delete(seq);
  }
  return results;
}

/**
 * A read-only view of one store from another process (tooling: `ticketing outbox tail`),
 * safe while the node runs: LMDB serves readers beside the writer, and a read-only handle can
 * write nothing. Each call reads from a fresh snapshot (lmdb-js renews its read transaction
 * after every tick).
 */
export class StoreReader {
  private readonly root: RootDatabase;
  private readonly outbox: Database<Buffer, [number, number]>;

  constructor(readonly path: string) {
    if (!existsSync(join(path, 'data.mdb'))) throw new Error(`${join(path, 'data.mdb')} does not exist (has the node ever started?)`);
    this.root = open({ path, maxDbs: 4, mapSize: store_map_bytes_max, readOnly: true });
    this.outbox = this.root.openDB<Buffer, [number, number]>({ name: 'outbox', encoding: 'binary' });
  }

  /** The newest `limit` outbox entries of a partition, oldest first. */
  outbox_last(partition: number, limit: number): { seq: number; record: OutboxRecord }[] {
    const out: { seq: number; record: OutboxRecord }[] = [];
    for (const { key, value } of this.outbox.getRange({ start: [partition + 1], end: [partition], reverse: true, limit })) {
      out.push({ seq: key[1], record: packr.unpack(value) as OutboxRecord });
    }
    return out.reverse();
  }

  /** Outbox entries of a partition with seq > after_seq, oldest first, at most `limit`. */
  outbox_after(partition: number, after_seq: number, limit: number): { seq: number; record: OutboxRecord }[] {
    const out: { seq: number; record: OutboxRecord }[] = [];
    for (const { key, value } of this.outbox.getRange({ start: [partition, after_seq + 1], end: [partition + 1], limit })) {
      out.push({ seq: key[1], record: packr.unpack(value) as OutboxRecord });
    }
    return out;
  }

  /** Parked entries of a partition (see PartitionStore.prepare_settle), oldest first. */
  parked(partition: number): { seq: number; record: OutboxRecord }[] {
    return read_parked(this.root, partition);
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
