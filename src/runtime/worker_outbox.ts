// Worker-side access to the outboxes of the partitions a worker owns: bounded reads in seq order
// for the main thread's reader, acknowledgements (delete) and parking, a wake-up for a reader
// that found nothing, and the cap (oldest entries deleted beyond a count or an age).
// Reads run synchronously between batches on the worker's own thread, and see committed
// transactions only. An acknowledgement marks entries delivered in memory and is answered at
// once; the deletes ride along with the store's next commit (no fsync of their own under load).
import { assert } from '../util/assert.js';
import {
  check_acks, check_cap, check_read_request, outbox_delivered_flush_ms, outbox_trim_batch_max, type OutboxAck, type OutboxAckReply, type OutboxCap, type OutboxEntryWire,
  type OutboxReadRequest, type OutboxReadWire, type OutboxTrimmed,
} from './outbox.js';
import { commit_together, type PartitionStore } from './store.js';

export class WorkerOutbox<Rec> {
  /** A reader found nothing: tell it (once) when the next outbox entry is durable. */
  private armed = false;
  private readonly in_flight = new Set<Promise<unknown>>();
  private trim_timer: NodeJS.Timeout | undefined;
  private flush_timer: NodeJS.Timeout | undefined;
  private trimming = false;
  private closed = false;
  /** Entries deleted at the cap since the last drain_counters(), by reason. */
  private trimmed: OutboxTrimmed = { count: 0, age: 0 };

  constructor(
    private readonly stores: Map<number, PartitionStore<Rec>>,
    private readonly now_ms: () => number,
    private readonly notify: () => void,
    private readonly on_fatal: (error: unknown) => void,
    private readonly flush_ms: number = outbox_delivered_flush_ms,
  ) {
    assert(stores.size > 0, 'a worker owns at least one partition');
  }

  private store(partition: number): PartitionStore<Rec> {
    const store = this.stores.get(partition);
    assert(store !== undefined, `partition ${partition} is owned by this worker`);
    return store;
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    this.in_flight.add(promise);
    const done = () => this.in_flight.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /** Host hook: a commit with outbox entries is durable. */
  on_committed(): void {
    if (!this.armed) return;
    this.armed = false;
    this.notify();
  }

  async read(request: OutboxReadRequest): Promise<OutboxReadWire> {
    assert(!this.closed, 'outbox open');
    check_read_request(request);
    let requeued = 0;
    if (request.requeue_parked) {
      for (const cursor of request.cursors) requeued += await this.track(this.store(cursor.partition).requeue_parked());
    }
    const entries: OutboxEntryWire[] = [];
    for (const cursor of request.cursors) {
      const room = Math.min(request.limit_per_partition, request.limit - entries.length);
      if (room === 0) break;
      const store = this.store(cursor.partition);
      // Every committed entry is counted (the count runs ahead, from prepare): none, no range scan.
      if (store.outbox_count() === 0) continue;
      for (const { seq, value } of store.read_outbox(cursor.after_seq, room)) {
        entries.push({ partition: cursor.partition, seq, value });
      }
    }
    assert(entries.length <= request.limit, 'outbox read within its limit');
    // Armed only by an empty read: a reader that got entries comes back by itself.
    if (entries.length === 0) this.armed = true;
    return { entries, requeued };
  }

  /**
   * Marks delivered entries (deleted on disk with the next commit of their store, or within
   * outbox_delivered_flush_ms) and parks undeliverable ones (one transaction per LMDB
   * environment). Resolves once the marks are made and the parking is durable.
   */
  ack(acks: OutboxAck[]): Promise<OutboxAckReply> {
    assert(!this.closed, 'outbox open');
    check_acks(acks);
    let removed = 0;
    const groups = new Map<string, { stores: PartitionStore<Rec>[]; writes: (() => { removed: number; parked: number })[] }>();
    for (const ack of acks) {
      const store = this.store(ack.partition);
      removed += store.mark_delivered(ack.seqs);
      if (ack.park.length === 0) continue;
      let group = groups.get(store.env_path());
      if (group === undefined) {
        group = { stores: [], writes: [] };
        groups.set(store.env_path(), group);
      }
      group.stores.push(store);
      group.writes.push(store.prepare_settle([], ack.park));
    }
    if (removed > 0) this.schedule_flush();
    if (groups.size === 0) return Promise.resolve({ removed, parked: 0 });
    const done = Promise.all([...groups.values()].map((g) => commit_together(g.stores, g.writes))).then((results) => {
      let parked = 0;
      for (const r of results.flat()) parked += r.parked;
      return { removed, parked };
    });
    return this.track(done);
  }

  /** Deletes delivered entries by a transaction of their own if no commit did it meanwhile. */
  private schedule_flush(): void {
    if (this.flush_timer !== undefined || this.closed) return;
    this.flush_timer = setTimeout(() => {
      this.flush_timer = undefined;
      if (this.closed) return;
      const flushed = Promise.all([...this.stores.values()].map((store) => store.flush_delivered()));
      this.track(flushed).catch(this.on_fatal);
    }, this.flush_ms);
    this.flush_timer.unref();
  }

  /** Enforces `cap` every interval_ms (no pass overlaps the previous one). */
  start_trimming(cap: OutboxCap, interval_ms: number): void {
    check_cap(cap);
    assert(this.trim_timer === undefined, 'trimming starts once');
    this.trim_timer = setInterval(() => {
      if (this.trimming || this.closed) return;
      this.trimming = true;
      this.track(this.trim(cap)).then(() => {
        this.trimming = false;
      }, (error: unknown) => {
        this.trimming = false; // a pass refused for want of space is tried again next interval
        this.on_fatal(error);
      });
    }, interval_ms);
    this.trim_timer.unref();
  }

  /**
   * One cap pass. `cap.entries_max` is this worker's share (worker_share()): first entries
   * older than age_ms go, per partition; then, while the worker's partitions together hold more
   * than the share, the oldest entries across all of them (at most outbox_trim_batch_max).
   */
  async trim(cap: OutboxCap): Promise<OutboxTrimmed> {
    const pass: OutboxTrimmed = { count: 0, age: 0 };
    if (cap.age_ms !== null) {
      for (const store of this.stores.values()) {
        if (this.closed) break;
        pass.age += (await store.trim_outbox({ entries_per_partition: Number.MAX_SAFE_INTEGER, age_ms: cap.age_ms }, this.now_ms())).age;
      }
    }
    let total = 0;
    for (const store of this.stores.values()) total += store.outbox_count();
    const over = Math.min(outbox_trim_batch_max, Math.max(0, total - cap.entries_max));
    if (over > 0 && !this.closed) {
      for (const [store, seqs] of this.oldest_across(over)) {
        if (this.closed) break;
        pass.count += await store.drop_outbox(seqs);
      }
    }
    this.trimmed.count += pass.count;
    this.trimmed.age += pass.age;
    return pass;
  }

  /** The `n` oldest undelivered entries across the owned partitions (a merge of their
   *  seq-ordered outboxes by created_ms; ties to the lower partition), grouped by store. */
  private oldest_across(n: number): Map<PartitionStore<Rec>, number[]> {
    const heads = [...this.stores.entries()].sort(([a], [b]) => a - b).map(([, store]) => {
      const it = store.outbox_oldest();
      return { store, it, head: it.next() };
    });
    const picked = new Map<PartitionStore<Rec>, number[]>();
    for (let taken = 0; taken < n; taken++) {
      let best: (typeof heads)[number] | undefined;
      for (const h of heads) {
        if (h.head.done === true) continue;
        if (best === undefined || h.head.value.created_ms < best.head.value!.created_ms) best = h;
      }
      if (best === undefined) break;
      const seqs = picked.get(best.store) ?? [];
      seqs.push(best.head.value!.seq);
      picked.set(best.store, seqs);
      best.head = best.it.next();
    }
    for (const h of heads) h.it.return(undefined);
    return picked;
  }

  /** Counters since the last call, for the worker's stats report. */
  drain_counters(): Record<string, number> {
    const out = { outbox_trimmed_count: this.trimmed.count, outbox_trimmed_age: this.trimmed.age };
    this.trimmed = { count: 0, age: 0 };
    return out;
  }

  /** Stops the cap and waits for reads and deletes in flight (before the stores close). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.trim_timer !== undefined) clearInterval(this.trim_timer);
    if (this.flush_timer !== undefined) clearTimeout(this.flush_timer);
    // Delivered entries still marked are deleted when the stores close.
    while (this.in_flight.size > 0) await Promise.allSettled([...this.in_flight]);
  }
}
