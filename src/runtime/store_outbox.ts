// The durable lifecycle of one partition's outbox inside its store (keys: store_env.ts): entries
// written by the commit that produced them, read in seq order, marked delivered, parked, moved
// back, and deleted at the cap.
// Delivered outbox entries are marked in memory (gone at once for reads, counts and the cap) and
// deleted by the next transaction of their store, so acknowledgements cost no fsync of their own;
// a crash before that transaction only means those entries are delivered again (duplicates with
// the same event id, never a loss).
import type { RangeOptions, RootDatabase } from 'lmdb';
import { assert } from '../util/assert.js';
import type { OutboxEntry } from './behaviour.js';
import { packr } from './codec.js';
import {
  outbox_trim_batch_max, type OutboxRecord, type OutboxTrimmed, type PartitionOutboxCap,
} from './outbox.js';
import { transact, type StoreEnv } from './store_env.js';

/** One partition's outbox; its PartitionStore (store.ts) owns it and delegates to it. */
export class PartitionOutbox {
  private next_seq = 1;
  /** Entries in this partition's outbox: counted once at recovery, then maintained (the
   *  worker reports it every second; a range count would scan a growing outbox each time). */
  private size = 0;
  private closed = false;

  constructor(
    readonly partition: number,
    private readonly env: StoreEnv,
    private readonly node_id: string,
  ) {}

  /** Inside the store's recover(), after its fresh read snapshot. Returns next_outbox_seq. */
  recover(): number {
    const p = this.partition;
    let outbox_last = 0;
    const newest = { start: [p + 1], end: [p], reverse: true, limit: 1 };
    for (const key of this.env.outbox.getKeys(newest)) outbox_last = key[1];
    // The outbox sequence must never repeat an event id, even after every entry was drained.
    const floor = this.env.root.get(['outbox_floor', p]) as number | undefined;
    this.next_seq = Math.max(outbox_last, floor ?? 0) + 1;
    // Entries marked delivered but not yet deleted (a reload in place) are gone for counts.
    let marked = 0;
    for (const seq of this.delivered()) if (this.env.outbox.doesExist([p, seq])) marked++;
    this.size = this.env.outbox.getCount({ start: [p], end: [p + 1] }) - marked;
    assert(this.size >= 0, 'outbox size never negative');
    return this.next_seq;
  }

  /** Encodes a commit's outbox entries; returns their writes, for the commit's transaction.
   *  Sequence numbers (and so event ids) are taken now, in the order commits are prepared. */
  prepare(entries: OutboxEntry[], now_ms: number): () => void {
    assert(!this.closed, 'store open');
    const p = this.partition;
    const first = this.next_seq;
    this.next_seq += entries.length;
    // Counted when prepared: a commit that then fails is fatal to the worker anyway.
    this.size += entries.length;
    const values = entries.map((entry, i): Buffer => {
      const event_id = `${this.node_id}-p${p}-${first + i}`;
      const record: OutboxRecord = { ...entry, event_id, created_ms: now_ms };
      return packr.pack(record);
    });
    const env = this.env;
    return () => {
      for (let i = 0; i < values.length; i++) env.outbox.put([p, first + i], values[i]!);
      if (values.length > 0) env.root.put(['outbox_floor', p], first + values.length - 1);
    };
  }

  count(): number {
    return this.size;
  }

  /** Up to `limit` entries with seq > after_seq in seq order, values packed as stored. Sees
   *  committed transactions only, so nothing leaves before its state change is durable. */
  read(after_seq: number, limit: number): { seq: number; value: Buffer }[] {
    assert(limit >= 1, 'read limit positive');
    const out: { seq: number; value: Buffer }[] = [];
    const p = this.partition;
    const delivered = this.delivered();
    // Delivered entries not yet deleted are skipped: at most one unflushed acknowledgement's worth.
    const range = { start: [p, after_seq + 1], end: [p + 1], limit: limit + delivered.size };
    for (const { key, value } of this.env.outbox.getRange(range)) {
      const in_range = key[0] === p && key[1] > after_seq;
      assert(in_range, 'outbox read stays in its partition, after the cursor');
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
    this.size -= marked;
    assert(this.size >= 0, 'outbox size never negative');
    return marked;
  }

  /** Deletes on disk what was marked delivered in this store (every partition of it), now. */
  async flush_delivered(): Promise<void> {
    if ([...this.env.delivered.values()].every((set) => set.size === 0)) return;
    await transact_flushing(this.env, [() => undefined]);
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
      this.size -= parked;
      assert(this.size >= 0, 'outbox size never negative');
      return { removed, parked };
    };
  }

  /** Moves parked entries back into the outbox under their own seq (and event id). */
  async requeue_parked(): Promise<number> {
    assert(!this.closed, 'store open');
    const p = this.partition;
    const env = this.env;
    let moved = 0;
    await transact(env, () => {
      for (const { key, value } of env.root.getRange(parked_range(p))) {
        const seq = (key as [string, number, number])[2];
        env.outbox.put([p, seq], value as Buffer);
        env.root.remove(key);
        moved++;
      }
    });
    this.size += moved; // counted once durable: a refused commit moved nothing
    return moved;
  }

  /**
   * Deletes the oldest entries beyond the cap: first whatever exceeds entries_per_partition,
   * then entries created before now_ms - age_ms. At most outbox_trim_batch_max per call (one
   * bounded transaction); the caller calls again later for the rest.
   */
  async trim(cap: PartitionOutboxCap, now_ms: number): Promise<OutboxTrimmed> {
    assert(!this.closed, 'store open');
    const p = this.partition;
    const excess = Math.max(0, this.size - cap.entries_per_partition);
    const over = Math.min(outbox_trim_batch_max, excess);
    if (over === 0 && cap.age_ms === null) return { count: 0, age: 0 };
    const cutoff_ms = cap.age_ms === null ? -Infinity : now_ms - cap.age_ms;
    const by_count: number[] = [];
    const by_age: number[] = [];
    const delivered = this.delivered();
    const range = { start: [p], end: [p + 1], limit: outbox_trim_batch_max + delivered.size };
    for (const { key, value } of this.env.outbox.getRange(range)) {
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
          // Acknowledged meanwhile:
          if (delivered.has(seq) || !env.outbox.doesExist([p, seq])) continue;
          env.outbox.remove([p, seq]);
          trimmed[reason]++;
        }
      }
    });
    // Counted once durable: a refused commit deleted nothing.
    this.size -= trimmed.count + trimmed.age;
    assert(this.size >= 0, 'outbox size never negative');
    return trimmed;
  }

  /** Undelivered outbox entries, oldest first (seq order is creation order), lazily. */
  *oldest(): Generator<{ seq: number; created_ms: number }> {
    const delivered = this.delivered();
    const p = this.partition;
    for (const { key, value } of this.env.outbox.getRange({ start: [p], end: [p + 1] })) {
      if (delivered.has(key[1])) continue;
      yield { seq: key[1], created_ms: (packr.unpack(value) as OutboxRecord).created_ms };
    }
  }

  /** Deletes these undelivered entries (one transaction); says how many were still there. */
  async drop(seqs: number[]): Promise<number> {
    assert(!this.closed, 'store open');
    assert(seqs.length <= outbox_trim_batch_max, 'a drop is bounded');
    const p = this.partition;
    const env = this.env;
    const delivered = this.delivered();
    let dropped = 0;
    await env.root.transaction(() => {
      for (const seq of seqs) {
        // Acknowledged meanwhile:
        if (delivered.has(seq) || !env.outbox.doesExist([p, seq])) continue;
        env.outbox.remove([p, seq]);
        dropped++;
      }
      this.size -= dropped;
      assert(this.size >= 0, 'outbox size never negative');
    });
    return dropped;
  }

  /** created_ms of the oldest outbox entry, or 0 when the outbox is empty. */
  oldest_ms(): number {
    const delivered = this.delivered();
    const p = this.partition;
    const range = { start: [p], end: [p + 1], limit: 1 + delivered.size };
    for (const { key, value } of this.env.outbox.getRange(range)) {
      if (delivered.has(key[1])) continue;
      return (packr.unpack(value) as OutboxRecord).created_ms;
    }
    return 0;
  }

  /** After the store's last flush: any later write is a bug. */
  close(): void {
    this.closed = true;
  }
}

function parked_range(partition: number): RangeOptions {
  return { start: ['outbox_parked', partition], end: ['outbox_parked', partition + 1] };
}

/** Parked entries of a partition in seq order (see PartitionOutbox.prepare_settle). */
export function read_parked(
  root: RootDatabase,
  partition: number,
): { seq: number; record: OutboxRecord }[] {
  const out: { seq: number; record: OutboxRecord }[] = [];
  for (const { key, value } of root.getRange(parked_range(partition))) {
    const record = packr.unpack(value as Buffer) as OutboxRecord;
    out.push({ seq: (key as [string, number, number])[2], record });
  }
  return out;
}

/** Runs writes in one durable transaction of `env`; resolves with each write's result.
 *  Delivered outbox entries ride along: deleted by whatever transaction this store runs next. */
export async function transact_flushing<R>(env: StoreEnv, writes: (() => R)[]): Promise<R[]> {
  const results: R[] = [];
  const flushing = [...env.delivered]
    .filter(([, set]) => set.size > 0)
    .map(([p, set]) => [p, [...set]] as const);
  await transact(env, () => {
    for (const write of writes) results.push(write());
    for (const [p, seqs] of flushing) for (const seq of seqs) env.outbox.remove([p, seq]);
  });
  // Forgotten only once deleted on disk: until then reads must keep skipping them.
  for (const [p, seqs] of flushing) {
    const set = env.delivered.get(p)!;
    for (const seq of seqs) set.delete(seq);
  }
  assert(results.length === writes.length, 'one result per write');
  return results;
}
