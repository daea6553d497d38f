// A partition's durable state in its store (the LMDB environment and its keys: store_env.ts):
// the journal of its commits and the snapshot that covers their prefix, written together with
// the commit's outbox entries (whose lifecycle is store_outbox.ts's) in one transaction.
import { assert } from '../util/assert.js';
import type { OutboxEntry } from './behaviour.js';
import { packr } from './codec.js';
import type { OutboxTrimmed, PartitionOutboxCap } from './outbox.js';
import {
  acquire_env, env_usage, release_env, store_dir, store_map_bytes_max, store_of, type StoreEnv,
} from './store_env.js';
import { PartitionOutbox, transact_flushing } from './store_outbox.js';

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

/** What a snapshot key holds: the state covering every commit <= seq (store_env.ts). */
export function snapshot_bytes(seq: number, state: unknown): Buffer {
  assert(Number.isInteger(seq) && seq >= 1, 'snapshot seq valid');
  return packr.pack({ seq, state });
}

/** A partition's durable snapshot and the journal after it up to `upto_seq` (Infinity: all),
 *  as recovery and background compaction (compaction_task.ts) both read it. */
export function read_durable<Rec>(
  dbs: Pick<StoreEnv, 'snapshots' | 'journal'>, p: number, upto_seq: number,
): { snapshot: unknown | undefined; snapshot_seq: number; tail: Rec[][]; last_seq: number } {
  const raw = dbs.snapshots.get(p);
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
  const end = upto_seq === Infinity ? [p + 1] : [p, upto_seq + 1];
  for (const { key, value } of dbs.journal.getRange({ start: [p, snapshot_seq + 1], end })) {
    const contiguous = key[0] === p && key[1] === last + 1;
    assert(contiguous, `journal of partition ${p} contiguous at ${key[1]}`);
    tail.push(packr.unpack(value) as Rec[]);
    last = key[1];
  }
  return { snapshot, snapshot_seq, tail, last_seq: last };
}

/** A partition's view of its store. */
export class PartitionStore<Rec> {
  /** Shared with the partitions stored in the same environment. For the store's own files
   *  (commit_together) and test helpers: callers go through the methods. */
  readonly env: StoreEnv;
  private readonly outbox: PartitionOutbox;
  private next_seq = 1;
  /** The seq the stored snapshot covers (0: none), as of the last write run or recovery. */
  private snapshot_seq = 0;
  private closed = false;

  constructor(
    readonly partition: number,
    data_dir: string,
    node_id: string,
    store_count = 1,
    map_bytes = store_map_bytes_max,
  ) {
    assert(Number.isInteger(partition) && partition >= 0, 'partition non-negative');
    this.env = acquire_env(store_dir(data_dir, store_of(partition, store_count)), map_bytes);
    this.outbox = new PartitionOutbox(partition, this.env, node_id);
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
    // A fresh read snapshot: the last commit of this environment must be visible.
    this.env.root.resetReadTxn();
    const durable = read_durable<Rec>(this.env, this.partition, Infinity);
    this.next_seq = durable.last_seq + 1;
    this.snapshot_seq = durable.snapshot_seq;
    const next_outbox_seq = this.outbox.recover();
    assert(this.next_seq > durable.snapshot_seq, 'next seq after snapshot');
    return {
      snapshot: durable.snapshot, snapshot_seq: durable.snapshot_seq, tail: durable.tail,
      next_seq: this.next_seq, next_outbox_seq,
    };
  }

  /**
   * The write that installs `bytes` (snapshot_bytes(seq, state), built off this thread from the
   * durable journal up to `seq`) as the partition's snapshot and drops the journal it covers.
   * It joins whatever transaction of this store runs next: the old snapshot and the covered
   * journal go only in the transaction that makes the new snapshot durable, so a crash before
   * it recovers from the old ones, one after it from the new.
   */
  prepare_install(seq: number, bytes: Uint8Array): () => void {
    assert(!this.closed, 'store open');
    assert(Number.isInteger(seq) && seq >= 1 && seq < this.next_seq, 'installed snapshot covers committed seqs');
    const p = this.partition;
    const env = this.env;
    return () => {
      // Snapshots only move forward: one compaction in flight per partition (host.ts).
      assert(seq > this.snapshot_seq, `snapshot of partition ${p} at ${seq} newer than the one at ${this.snapshot_seq}`);
      env.snapshots.put(p, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      const covered = [...env.journal.getKeys({ start: [p], end: [p, seq + 1] })];
      for (const key of covered) env.journal.remove(key);
      this.snapshot_seq = seq;
    };
  }

  /**
   * Encodes a commit and returns the writes to run inside a transaction of this store.
   * Sequence numbers are taken now, so commits keep the order in which they were prepared.
   */
  prepare(input: CommitInput<Rec>): (() => void) & { seq: number } {
    assert(!this.closed, 'store open');
    assert(
      input.records.length > 0 || input.outbox.length > 0 || input.snapshot !== undefined,
      'commit carries something',
    );
    const p = this.partition;
    const seq = this.next_seq++;
    const journal_value = input.snapshot === undefined ? packr.pack(input.records) : undefined;
    const write_outbox = this.outbox.prepare(input.outbox, input.now_ms);
    const snapshot_value =
      input.snapshot === undefined ? undefined : snapshot_bytes(seq, input.snapshot);
    const env = this.env;
    const write = () => {
      if (snapshot_value === undefined) {
        env.journal.put([p, seq], journal_value!);
      } else {
        // The snapshot already contains this commit's records: no journal entry needed. The
        // covered keys are read inside the write transaction, where every earlier commit of this
        // environment (possibly still in flight when prepare() ran) is already visible.
        env.snapshots.put(p, snapshot_value);
        const covered = [...env.journal.getKeys({ start: [p], end: [p, seq] })];
        for (const key of covered) env.journal.remove(key);
        this.snapshot_seq = seq;
      }
      write_outbox();
    };
    return Object.assign(write, { seq });
  }

  // The outbox's lifecycle, delegated (see store_outbox.ts for what each does).
  outbox_count(): number {
    return this.outbox.count();
  }

  read_outbox(after_seq: number, limit: number): { seq: number; value: Buffer }[] {
    return this.outbox.read(after_seq, limit);
  }

  mark_delivered(seqs: number[]): number {
    return this.outbox.mark_delivered(seqs);
  }

  flush_delivered(): Promise<void> {
    return this.outbox.flush_delivered();
  }

  prepare_settle(remove: number[], park: number[]): () => { removed: number; parked: number } {
    return this.outbox.prepare_settle(remove, park);
  }

  requeue_parked(): Promise<number> {
    return this.outbox.requeue_parked();
  }

  trim_outbox(cap: PartitionOutboxCap, now_ms: number): Promise<OutboxTrimmed> {
    return this.outbox.trim(cap, now_ms);
  }

  outbox_oldest(): Generator<{ seq: number; created_ms: number }> {
    return this.outbox.oldest();
  }

  drop_outbox(seqs: number[]): Promise<number> {
    return this.outbox.drop(seqs);
  }

  outbox_oldest_ms(): number {
    return this.outbox.oldest_ms();
  }

  /** Live bytes of this store against its --store-map-bytes (see env_usage). */
  usage(): { in_use_bytes: number; map_bytes: number } {
    return env_usage(this.env);
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
    this.outbox.close();
    await release_env(this.env);
  }
}

/** Runs prepared writes of partitions that share one environment in one durable transaction;
 *  resolves with each write's result. */
export async function commit_together<Rec, R = void>(
  stores: PartitionStore<Rec>[],
  writes: (() => R)[],
): Promise<R[]> {
  assert(stores.length > 0 && stores.length === writes.length, 'one write per store');
  const first = stores[0]!;
  assert(stores.every((s) => s.shares_env_with(first)), 'a transaction spans one environment');
  return transact_flushing(first.env, writes);
}
