// Durable state of partitions in LMDB. A *store* is one LMDB environment (the unit of fsync);
// partition p lives in store p mod store_count, in key ranges of its own:
//   journal  key [p, seq]  value msgpackr([record, ...]) of one commit
//   snapshot key p         value msgpackr({ seq, state }) covering every commit <= seq
//   outbox   key [p, seq]  value msgpackr(OutboxRecord)
//   root     key ['outbox_floor', p]  highest outbox seq ever issued (event ids never repeat)
// Why not one environment per partition: every LMDB commit pays an fsync, so a worker's batch
// spread over 40 partitions paid 40 of them (1.6 records per commit, measured by npm run bench).
// With store_count = worker count (the default at creation) a batch is one transaction and one
// fsync, while each partition still recovers, snapshots and drains its outbox on its own.
import { open, type Database, type RootDatabase } from 'lmdb';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from './assert.js';
import type { OutboxEntry } from './behaviour.js';
import { packr } from './protocol.js';

/** LMDB map size per store. Sparse on disk; bounds what one store may ever hold. */
export const store_map_bytes_max = 16 * 1024 * 1024 * 1024;

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
  users: number;
}

// One handle per environment per thread, shared by the partitions stored in it.
const envs = new Map<string, Env>();

function acquire(path: string): Env {
  let env = envs.get(path);
  if (env === undefined) {
    mkdirSync(path, { recursive: true });
    // overlappingSync off: a commit promise resolves only once the data is fsynced, so a reply
    // sent after it never acknowledges something a power cut could take back.
    const root = open({ path, maxDbs: 4, mapSize: store_map_bytes_max, overlappingSync: false, noSync: false });
    env = {
      path, root, users: 0,
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
  ) {
    assert(Number.isInteger(partition) && partition >= 0, 'partition non-negative');
    this.env = acquire(store_dir(data_dir, store_of(partition, store_count)));
  }

  /** Same environment: their changes can share one transaction. */
  shares_env_with(other: PartitionStore<Rec>): boolean {
    return this.env === other.env;
  }

  env_path(): string {
    return this.env.path;
  }

  recover(): Recovered<Rec> {
    const p = this.partition;
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
    this.outbox_size = this.env.outbox.getCount({ start: [p], end: [p + 1] });
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
    let removed = 0;
    await this.env.root.transaction(() => {
      for (const seq of seqs) {
        if (this.env.outbox.doesExist([this.partition, seq])) {
          this.env.outbox.remove([this.partition, seq]);
          removed++;
        }
      }
    });
    this.outbox_size -= removed;
    assert(this.outbox_size >= 0, 'outbox size never negative');
  }

  outbox_count(): number {
    return this.outbox_size;
  }

  /** created_ms of the oldest outbox entry, or 0 when the outbox is empty. */
  outbox_oldest_ms(): number {
    for (const { value } of this.env.outbox.getRange({ start: [this.partition], end: [this.partition + 1], limit: 1 })) {
      return (packr.unpack(value) as OutboxRecord).created_ms;
    }
    return 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.env.users--;
    if (this.env.users === 0) {
      envs.delete(this.env.path);
      await this.env.root.close();
    }
  }
}

/** Runs prepared writes of partitions that share one environment in one durable transaction. */
export async function commit_together<Rec>(stores: PartitionStore<Rec>[], writes: (() => void)[]): Promise<void> {
  assert(stores.length > 0 && stores.length === writes.length, 'one write per store');
  const first = stores[0]!;
  assert(stores.every((s) => s.shares_env_with(first)), 'a transaction spans one environment');
  await (first as unknown as { env: Env }).env.root.transaction(() => {
    for (const write of writes) write();
  });
}
