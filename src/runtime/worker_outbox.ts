// Worker-side access to the outboxes of the partitions a worker owns: bounded reads in seq order
// for the main thread's reader, acknowledgements (delete) and parking, a wake-up for a reader
// that found nothing, and the cap (oldest entries deleted beyond a count or an age).
// Reads run synchronously between batches on the worker's own thread, and see committed
// transactions only; deletes are transactions of their own, one per LMDB environment.
import { assert } from './assert.js';
import {
  check_acks, check_cap, check_read_request, type OutboxAck, type OutboxAckReply, type OutboxCap, type OutboxEntryWire,
  type OutboxReadRequest, type OutboxReadWire, type OutboxTrimmed,
} from './outbox.js';
import { commit_together, type PartitionStore } from './store.js';

export class WorkerOutbox<Rec> {
  /** A reader found nothing: tell it (once) when the next outbox entry is durable. */
  private armed = false;
  private readonly in_flight = new Set<Promise<unknown>>();
  private trim_timer: NodeJS.Timeout | undefined;
  private trimming = false;
  private closed = false;
  /** Entries deleted at the cap since the last drain_counters(), by reason. */
  private trimmed: OutboxTrimmed = { count: 0, age: 0 };

  constructor(
    private readonly stores: Map<number, PartitionStore<Rec>>,
    private readonly now_ms: () => number,
    private readonly notify: () => void,
    private readonly on_fatal: (error: unknown) => void,
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
      for (const { seq, value } of this.store(cursor.partition).read_outbox(cursor.after_seq, room)) {
        entries.push({ partition: cursor.partition, seq, value });
      }
    }
    assert(entries.length <= request.limit, 'outbox read within its limit');
    // Armed only by an empty read: a reader that got entries comes back by itself.
    if (entries.length === 0) this.armed = true;
    return { entries, requeued };
  }

  /** Deletes and parks, one transaction per LMDB environment; resolves once durable. */
  ack(acks: OutboxAck[]): Promise<OutboxAckReply> {
    assert(!this.closed, 'outbox open');
    check_acks(acks);
    const groups = new Map<string, { stores: PartitionStore<Rec>[]; writes: (() => { removed: number; parked: number })[] }>();
    for (const ack of acks) {
      if (ack.seqs.length === 0 && ack.park.length === 0) continue;
      const store = this.store(ack.partition);
      let group = groups.get(store.env_path());
      if (group === undefined) {
        group = { stores: [], writes: [] };
        groups.set(store.env_path(), group);
      }
      group.stores.push(store);
      group.writes.push(store.prepare_settle(ack.seqs, ack.park));
    }
    const done = Promise.all([...groups.values()].map((g) => commit_together(g.stores, g.writes))).then((results) => {
      const reply: OutboxAckReply = { removed: 0, parked: 0 };
      for (const r of results.flat()) {
        reply.removed += r.removed;
        reply.parked += r.parked;
      }
      return reply;
    });
    return this.track(done);
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
      }, this.on_fatal);
    }, interval_ms);
    this.trim_timer.unref();
  }

  /** One cap pass over every owned partition. */
  async trim(cap: OutboxCap): Promise<OutboxTrimmed> {
    const pass: OutboxTrimmed = { count: 0, age: 0 };
    for (const store of this.stores.values()) {
      if (this.closed) break;
      const t = await store.trim_outbox(cap, this.now_ms());
      pass.count += t.count;
      pass.age += t.age;
    }
    this.trimmed.count += pass.count;
    this.trimmed.age += pass.age;
    return pass;
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
    while (this.in_flight.size > 0) await Promise.allSettled([...this.in_flight]);
  }
}
