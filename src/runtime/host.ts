// Worker-side owner of a set of partitions. Runs each mailbox batch through the behaviour
// synchronously (no await inside a decision), then group-commits one LMDB transaction per
// partition touched, and releases the batch's replies only once every one of those commits is
// durable and every earlier batch's replies have left. Knows nothing of what the state means.
import { randomBytes } from 'node:crypto';
import { assert } from './assert.js';
import type { DecideContext, Decision, OutboxEntry, PartitionBehaviour } from './behaviour.js';
import type { Clock } from './clock.js';
import { error_to_wire, is_rejection } from './errors.js';
import type { WireReply, WireRequest } from './protocol.js';
import { commit_together, PartitionStore } from './store.js';

/** Longest a timer sleeps before re-checking, so a moved clock is noticed promptly. */
export const timer_sleep_ms_max = 1000;

/**
 * A snapshot encodes the whole partition on the worker thread, stalling every partition the
 * worker owns for its duration, and its cost grows with the state. So a partition whose last
 * snapshot took S ms is next snapshotted after at least S × snapshot_records_per_ms records (and
 * never sooner than snapshot_every_records): snapshot work stays a bounded share of the
 * worker's time as state grows, and stalls get rarer as they get longer. The cap bounds the
 * journal tail a recovery replays.
 */
export const snapshot_records_per_ms = 400;
export const snapshot_interval_records_max = 1_000_000;

interface Pending<Rec> {
  records: Rec[];
  outbox: OutboxEntry[];
}

interface Slot<S, Rec> {
  partition: number;
  state: S;
  store: PartitionStore<Rec>;
  records_since_snapshot: number;
  /** Records until the next snapshot: adapts to what the last snapshot cost (see above). */
  snapshot_interval_records: number;
}

export interface HostOptions {
  partitions: number[];
  data_dir: string;
  node_id: string;
  clock: Clock;
  snapshot_every_records: number;
  /** LMDB environments the partitions are spread over (fixed when the data dir is created). */
  store_count?: number;
  random_bytes?: (count: number) => Uint8Array;
  /** Called once a commit that wrote outbox entries is durable (an outbox reader may be waiting). */
  on_outbox_committed?: () => void;
}

export interface CommitObservation {
  duration_s: number;
  records: number;
}

export class PartitionHost<S, Req, Rec> {
  private readonly slots = new Map<number, Slot<S, Rec>>();
  private reply_chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  readonly random_bytes: (count: number) => Uint8Array;
  /** Observations since the last drain, for metrics. */
  commits: CommitObservation[] = [];
  recovered_records = 0;

  constructor(
    private readonly behaviour: PartitionBehaviour<S, Req, Rec>,
    private readonly options: HostOptions,
    private readonly on_fatal: (error: unknown) => void,
  ) {
    assert(options.partitions.length > 0, 'host owns at least one partition');
    assert(options.snapshot_every_records >= 1, 'snapshot interval positive');
    this.random_bytes = options.random_bytes ?? ((n) => randomBytes(n));
  }

  /** Snapshot + journal tail for every owned partition, then fire timers that came due while down. */
  async recover(): Promise<void> {
    assert(this.slots.size === 0, 'recover runs once');
    for (const partition of this.options.partitions) {
      const store = new PartitionStore<Rec>(partition, this.options.data_dir, this.options.node_id, this.options.store_count ?? 1);
      const recovered = store.recover();
      const state = recovered.snapshot === undefined
        ? this.behaviour.create(partition)
        : this.behaviour.restore(partition, recovered.snapshot);
      let replayed = 0;
      for (const batch of recovered.tail) {
        for (const record of batch) this.behaviour.apply(state, record);
        replayed += batch.length;
      }
      this.recovered_records += replayed;
      this.slots.set(partition, { partition, state, store, records_since_snapshot: replayed, snapshot_interval_records: this.options.snapshot_every_records });
    }
    assert(this.slots.size === this.options.partitions.length, 'every partition recovered');
    await this.run_timers();
  }

  private last_now_ms = 0;

  /** The clock, made monotonic: wall clocks step back (NTP, VM resume); decisions must not. */
  now_ms(): number {
    const now = this.options.clock.now_ms();
    if (now > this.last_now_ms) this.last_now_ms = now;
    return this.last_now_ms;
  }

  private context(partition: number, now_ms = this.now_ms()): DecideContext {
    return { partition, now_ms, random_bytes: this.random_bytes };
  }

  private slot(partition: number): Slot<S, Rec> {
    const slot = this.slots.get(partition);
    assert(slot !== undefined, `partition ${partition} is owned by this worker`);
    return slot;
  }

  /** Decide every request now; resolve with the replies once their changes are durable. */
  run_batch(requests: WireRequest[]): Promise<WireReply[]> {
    assert(!this.closed, 'no batch after close');
    const replies: WireReply[] = [];
    const pending = new Map<number, Pending<Rec>>();
    for (const request of requests) {
      const slot = this.slot(request.partition);
      let decision: Decision<Rec>;
      try {
        decision = this.behaviour.decide(slot.state, request.body as Req, this.context(request.partition));
      } catch (error) {
        if (!is_rejection(error)) throw error; // a bug: let the worker die and recover
        replies.push({ id: request.id, ok: false, error: error_to_wire(error) });
        continue;
      }
      this.absorb(slot, decision, pending);
      replies.push({ id: request.id, ok: true, value: decision.reply });
    }
    assert(replies.length === requests.length, 'one reply per request');
    return this.commit_then(pending, replies);
  }

  private absorb(slot: Slot<S, Rec>, decision: Decision<Rec>, pending: Map<number, Pending<Rec>>): void {
    if (decision.records.length === 0 && decision.outbox.length === 0) return;
    for (const record of decision.records) this.behaviour.apply(slot.state, record);
    let entry = pending.get(slot.partition);
    if (entry === undefined) {
      entry = { records: [], outbox: [] };
      pending.set(slot.partition, entry);
    }
    entry.records.push(...decision.records);
    entry.outbox.push(...decision.outbox);
  }

  private commit_then<T>(pending: Map<number, Pending<Rec>>, result: T): Promise<T> {
    const now_ms = this.now_ms();
    // Group the partitions' writes by LMDB environment: one transaction (one fsync) each.
    const groups = new Map<string, { stores: PartitionStore<Rec>[]; writes: (() => void)[]; records: number }>();
    for (const [partition, entry] of pending) {
      const slot = this.slot(partition);
      slot.records_since_snapshot += entry.records.length;
      let snapshot: unknown = undefined;
      const snapshot_started_ms = performance.now();
      if (slot.records_since_snapshot >= slot.snapshot_interval_records) {
        snapshot = this.behaviour.snapshot(slot.state);
        slot.records_since_snapshot = 0;
      }
      const key = slot.store.env_path();
      let group = groups.get(key);
      if (group === undefined) {
        group = { stores: [], writes: [], records: 0 };
        groups.set(key, group);
      }
      group.stores.push(slot.store);
      group.writes.push(slot.store.prepare({ records: entry.records, outbox: entry.outbox, now_ms, snapshot }));
      group.records += entry.records.length;
      if (snapshot !== undefined) {
        // snapshot() and prepare()'s encoding are the stall; the commit itself is not.
        const cost_ms = performance.now() - snapshot_started_ms;
        slot.snapshot_interval_records = Math.max(this.options.snapshot_every_records,
          Math.min(snapshot_interval_records_max, Math.ceil(cost_ms * snapshot_records_per_ms)));
        assert(slot.snapshot_interval_records >= this.options.snapshot_every_records, 'never more often than configured');
      }
    }
    const commits: Promise<void>[] = [];
    let outbox_entries = 0;
    for (const entry of pending.values()) outbox_entries += entry.outbox.length;
    for (const group of groups.values()) {
      const started = performance.now();
      commits.push(commit_together(group.stores, group.writes).then(() => {
        this.commits.push({ duration_s: (performance.now() - started) / 1000, records: group.records });
      }));
    }
    assert(commits.length <= pending.size, 'at most one transaction per partition touched');
    const on_outbox = this.options.on_outbox_committed;
    const all = Promise.all(commits).then(() => undefined);
    const durable = outbox_entries > 0 && on_outbox !== undefined ? all.then(on_outbox) : all;
    // Replies leave in batch order, and only after their own commits: a disk error is fatal,
    // because memory already holds changes the disk refused.
    const released = this.reply_chain.then(() => durable).then(
      () => result,
      (error: unknown) => {
        this.on_fatal(error);
        throw error;
      },
    );
    this.reply_chain = released.then(() => undefined, () => undefined);
    this.schedule_timers();
    return released;
  }

  /** Fire due timers in every partition as one internal batch. */
  async run_timers(): Promise<void> {
    if (this.closed) return;
    const pending = new Map<number, Pending<Rec>>();
    const now_ms = this.now_ms();
    for (const slot of this.slots.values()) {
      const deadline = this.behaviour.next_deadline_ms(slot.state);
      if (deadline === null || deadline > now_ms) continue;
      // The same instant decides "due" and fires: a second clock read could disagree.
      const decision = this.behaviour.fire_timers(slot.state, this.context(slot.partition, now_ms));
      this.absorb(slot, decision, pending);
      // A behaviour may bound one run (so one commit stays small); whatever is still due is
      // picked up by the next run, which schedule_timers() arms with no delay.
      const after = this.behaviour.next_deadline_ms(slot.state);
      assert(after === null || after >= deadline, 'fire_timers never moves a deadline earlier');
    }
    await this.commit_then(pending, undefined);
    this.schedule_timers();
  }

  schedule_timers(): void {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    let earliest = Infinity;
    for (const slot of this.slots.values()) {
      const deadline = this.behaviour.next_deadline_ms(slot.state);
      if (deadline !== null && deadline < earliest) earliest = deadline;
    }
    const sleep_ms = Math.max(0, Math.min(timer_sleep_ms_max, earliest - this.now_ms()));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.run_timers().catch((error: unknown) => this.on_fatal(error));
    }, sleep_ms);
    this.timer.unref();
  }

  gauges(): Record<string, number> {
    const total: Record<string, number> = {};
    for (const slot of this.slots.values()) {
      for (const [name, value] of Object.entries(this.behaviour.gauges(slot.state))) {
        total[name] = (total[name] ?? 0) + value;
      }
    }
    let outbox = 0;
    let oldest = 0;
    for (const slot of this.slots.values()) {
      outbox += slot.store.outbox_count();
      const created = slot.store.outbox_oldest_ms();
      if (created > 0 && (oldest === 0 || created < oldest)) oldest = created;
    }
    total['outbox_pending'] = outbox;
    total['outbox_oldest_ms'] = oldest;
    // Age by this worker's clock (the one that stamped created_ms), so a moved test clock does
    // not make the lag negative or huge.
    total['outbox_lag_ms'] = oldest === 0 ? 0 : Math.max(0, this.now_ms() - oldest);
    return total;
  }

  /** The partitions' stores (the worker's outbox access reads and settles through them). */
  stores(): Map<number, PartitionStore<Rec>> {
    const out = new Map<number, PartitionStore<Rec>>();
    for (const [partition, slot] of this.slots) out.set(partition, slot.store);
    return out;
  }

  /** Test and tooling access to a partition's state; never used on a request path. */
  /** Records until a partition's next snapshot (tests, metrics). */
  snapshot_interval_of(partition: number): number {
    return this.slot(partition).snapshot_interval_records;
  }

  state_of(partition: number): S {
    return this.slot(partition).state;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.reply_chain;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    for (const slot of this.slots.values()) await slot.store.close();
  }
}
