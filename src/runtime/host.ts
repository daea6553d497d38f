// Worker-side owner of a set of partitions. Runs each mailbox batch through the behaviour
// synchronously (no await inside a decision), then group-commits one LMDB transaction per
// partition touched, and releases the batch's replies only once every one of those commits is
// durable and every earlier batch's replies have left. Knows nothing of what the state means.
// With a remote journal (cluster mode) the commits go to the main thread instead (one
// JournalWire per partition touched, journal_remote.ts), partitions arrive by adopt() rather
// than from disk, and a failed commit drops its partition instead of reloading it.
import { randomBytes } from 'node:crypto';
import { assert } from '../util/assert.js';
import type {
  DecideContext, Decision, Effects, OutboxEntry, PartitionBehaviour,
} from './behaviour.js';
import type { Clock } from './clock.js';
import { packr } from './codec.js';
import { error_to_wire, is_rejection, PartitionNotServedError, type WireError } from './errors.js';
import {
  failure_of, new_incarnation, note_failure, type Incarnation, type RemoteJournal, type RemoteMark,
} from './journal_remote.js';
import {
  encode, type AdoptWire, type JournalWire, type WireReply, type WireRequest,
} from './protocol.js';
import {
  free_bytes, is_storage_full, storage_message, storage_probe_bytes, storage_probe_interval_ms_default, StorageFullError,
  type StorageReason, type StoreCommitError,
} from './storage.js';
import { pooled_random_bytes } from './random.js';
import { Compactor, zero_counters, type CompactionCounters } from './compactor.js';
import { commit_together, PartitionStore } from './store.js';
import { store_map_bytes_max } from './store_env.js';

/** Longest a timer sleeps before re-checking, so a moved clock is noticed promptly. */
export const timer_sleep_ms_max = 1000;

/**
 * A snapshot's cost grows with the state. Inline (a remote journal, or a host given no
 * behaviour module URL) it encodes the whole partition on the worker thread, stalling every
 * partition the worker owns; in the background (compactor.ts) it takes a core from serving
 * instead. Either way a partition whose last snapshot took S ms is next snapshotted after at
 * least S × snapshot_records_per_ms records (and never sooner than snapshot_every_records):
 * snapshot work stays a bounded share of the machine as state grows. The cap bounds the journal
 * tail a recovery replays.
 */
export const snapshot_records_per_ms = 400;
export const snapshot_interval_records_max = 1_000_000;

interface Pending<Rec> {
  records: Rec[];
  outbox: OutboxEntry[];
}

/** Commits of one LMDB environment, one transaction at a time: a commit prepared while another
 *  is in flight waits and joins the next transaction (group commit). If a transaction fails,
 *  what waits was decided on top of changes the disk refused, so it is dropped, never written:
 *  lmdb-js would otherwise run it, and a smaller commit can succeed right after a failed one
 *  (measured, see storage.ts), leaving a hole in the journal. */
interface Lane<Rec> {
  key: string;
  store: PartitionStore<Rec>;
  busy: boolean;
  queued: { stores: PartitionStore<Rec>[]; writes: (() => void)[]; resolve: () => void; reject: (error: unknown) => void }[];
  /** Failed transactions so far: a reply decided before a failure is not released as success. */
  failures: number;
  /** Set while writes to this environment are refused (storage-full mode). */
  full: { reason: StorageReason; message: string } | undefined;
}

interface Slot<S, Rec> {
  partition: number;
  state: S;
  /** Local journal: the partition's store. Remote journal: undefined. */
  store: PartitionStore<Rec> | undefined;
  /** Remote journal: this adoption of the partition. Local journal: undefined. */
  incarnation: Incarnation | undefined;
  records_since_snapshot: number;
  /** Records until the next snapshot: adapts to what the last snapshot cost (see above). */
  snapshot_interval_records: number;
  /** Local journal: the highest seq of the partition known durable (0: none). */
  durable_seq: number;
  /** A background compaction of this partition is in flight (at most one: see compact()). */
  compacting: boolean;
}

/** What a reply was decided on, checked when it is released: local, its store's lane and the
 *  lane's failure count then; remote, the commit it rests on; null, nothing (a refusal of a
 *  partition not served). */
type Mark<Rec> = [Lane<Rec>, number] | RemoteMark | null;

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
  /** The most live data one store may hold (--store-map-bytes). */
  store_map_bytes?: number;
  /** How often a store in storage-full mode checks whether writes can resume. */
  storage_probe_interval_ms?: number;
  /** Told when a store enters or leaves storage-full mode (the worker reports it). */
  on_storage_change?: (message: string | undefined) => void;
  /** Cluster mode: commits go here, not to LMDB; `partitions` is [] and come by adopt(). */
  remote_journal?: RemoteJournal;
  /** Local journal: the behaviour's module, for snapshots built off this thread from the
   *  durable journal (compactor.ts). Absent: snapshots are taken inline in the commit. */
  snapshot_behaviour_url?: string;
  /** A background compaction failed (it is retried at the next due snapshot; never fatal). */
  on_compaction_error?: (partition: number, error: unknown) => void;
}

export interface CommitObservation {
  duration_s: number;
  records: number;
}

export class PartitionHost<S, Req, Rec> {
  private readonly slots = new Map<number, Slot<S, Rec>>();
  private readonly lanes = new Map<string, Lane<Rec>>();
  private probe_timer: NodeJS.Timeout | undefined;
  private probing = false;
  /** Write requests refused in storage-full mode since the last drain, for metrics. */
  storage_refusals = 0;
  private reply_chain: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Set once close() starts: no compaction starts after it. */
  private closing = false;
  readonly random_bytes: (count: number) => Uint8Array;
  /** Observations since the last drain, for metrics. */
  commits: CommitObservation[] = [];
  recovered_records = 0;
  private readonly remote: RemoteJournal | undefined;
  /** Local journal with a behaviour module URL: snapshots are built in the background. */
  readonly compactor: Compactor | undefined;
  /** Snapshots written (inline or background) since the last drain, for metrics. */
  snapshot_counters: CompactionCounters = zero_counters();
  /** Installs of finished compactions not yet settled (close() waits for them). */
  private readonly installs = new Set<Promise<void>>();

  constructor(
    private readonly behaviour: PartitionBehaviour<S, Req, Rec>,
    private readonly options: HostOptions,
    private readonly on_fatal: (error: unknown) => void,
  ) {
    this.remote = options.remote_journal;
    if (this.remote === undefined) {
      assert(options.partitions.length > 0, 'host owns at least one partition');
    } else {
      assert(options.partitions.length === 0, 'a remote journal\'s partitions are adopted');
    }
    assert(options.snapshot_every_records >= 1, 'snapshot interval positive');
    assert(this.remote === undefined || options.snapshot_behaviour_url === undefined,
      'a remote journal snapshots inline');
    this.compactor = options.snapshot_behaviour_url === undefined
      ? undefined
      : new Compactor(options.snapshot_behaviour_url, options.partitions.length);
    this.random_bytes = options.random_bytes ?? pooled_random_bytes((n) => randomBytes(n));
  }

  /** Snapshot + journal tail for every owned partition, then fire timers that came due while down. */
  async recover(): Promise<void> {
    assert(this.remote === undefined, 'a remote journal\'s partitions are adopted, not recovered');
    assert(this.slots.size === 0, 'recover runs once');
    for (const partition of this.options.partitions) {
      const store = new PartitionStore<Rec>(partition, this.options.data_dir, this.options.node_id, this.options.store_count ?? 1, this.options.store_map_bytes ?? store_map_bytes_max);
      const { state, replayed, last_seq } = this.load(partition, store);
      this.recovered_records += replayed;
      this.slots.set(partition, {
        partition, state, store, incarnation: undefined, records_since_snapshot: replayed,
        snapshot_interval_records: this.options.snapshot_every_records,
        durable_seq: last_seq, compacting: false,
      });
      const key = store.env_path();
      if (!this.lanes.has(key)) this.lanes.set(key, { key, store, busy: false, queued: [], failures: 0, full: undefined });
    }
    assert(this.slots.size === this.options.partitions.length, 'every partition recovered');
    for (const lane of this.lanes.values()) this.check_map(lane);
    await this.run_timers();
  }

  /** A partition's durable state: snapshot plus journal tail. */
  private load(partition: number, store: PartitionStore<Rec>): { state: S; replayed: number; last_seq: number } {
    const recovered = store.recover();
    const state = recovered.snapshot === undefined
      ? this.behaviour.create(partition)
      : this.behaviour.restore(partition, recovered.snapshot);
    let replayed = 0;
    for (const batch of recovered.tail) {
      for (const record of batch) this.behaviour.apply(state, record);
      replayed += batch.length;
    }
    this.check(partition, state, replayed);
    return { state, replayed, last_seq: recovered.next_seq - 1 };
  }

  /** The behaviour's check of a loaded partition, naming the partition in what stops the worker. */
  private check(partition: number, state: S, replayed: number): void {
    if (this.behaviour.check === undefined) return;
    try {
      this.behaviour.check(state);
    } catch (cause) {
      const reason = cause instanceof Error ? cause.message : String(cause);
      throw new Error(
        `partition ${partition}: the state recovered from its snapshot and ${replayed} journal ` +
        `records fails the behaviour's check (${reason}); not serving it`,
        { cause },
      );
    }
  }

  private lane_of(slot: Slot<S, Rec>): Lane<Rec> {
    const lane = this.lanes.get(this.store_of(slot).env_path());
    assert(lane !== undefined, 'every store has a lane');
    return lane;
  }

  private store_of(slot: Slot<S, Rec>): PartitionStore<Rec> {
    assert(slot.store !== undefined, 'a local journal\'s partition has a store');
    return slot.store;
  }

  /** Why writes of the slot's partition are refused (storage-full mode), or undefined. */
  private refused(slot: Slot<S, Rec>): string | undefined {
    return slot.store === undefined ? undefined : this.lane_of(slot).full?.message;
  }

  /** Remote journal: restores the partition from what the journal holds, checks it, arms its
   *  timers; it is served from the next batch on. Returns the records replayed. A throw (bad
   *  bytes, the behaviour's check) leaves the partition unserved and the others untouched. */
  adopt(wire: AdoptWire): number {
    assert(this.remote !== undefined && !this.closed, 'adopt: an open host with a remote journal');
    const partition = wire.partition;
    assert(!this.slots.has(partition), `partition ${partition} adopted while served`);
    const state = wire.snapshot === null
      ? this.behaviour.create(partition)
      : this.behaviour.restore(partition, packr.unpack(wire.snapshot));
    let replayed = 0;
    for (const segment of wire.segments) {
      const records = packr.unpack(segment) as Rec[];
      assert(Array.isArray(records), 'a journal segment is a list of records');
      for (const record of records) this.behaviour.apply(state, record);
      replayed += records.length;
    }
    this.check(partition, state, replayed);
    this.slots.set(partition, {
      partition, state, store: undefined, incarnation: new_incarnation(partition),
      records_since_snapshot: replayed,
      snapshot_interval_records: this.options.snapshot_every_records,
      durable_seq: 0, compacting: false,
    });
    this.recovered_records += replayed;
    // Armed, not run: timers due now commit from a timer callback, after the adoption is
    // answered (the main thread refuses a commit of a partition it does not yet serve).
    this.schedule_timers();
    return replayed;
  }

  /** Remote journal: forgets the partition at once. Its commits in flight still settle, and
   *  their replies follow their outcome; a later request for it is refused. */
  release(partition: number): void {
    assert(this.remote !== undefined, 'release: a remote journal');
    this.slots.delete(partition);
    this.schedule_timers();
  }

  serves(partition: number): boolean {
    return this.slots.has(partition);
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
    const marks: Mark<Rec>[] = [];
    const pending = new Map<number, Pending<Rec>>();
    for (const request of requests) {
      const slot = this.slots.get(request.partition);
      if (slot === undefined) {
        assert(this.remote !== undefined, `partition ${request.partition} is owned by this worker`);
        // Released or lost since the main thread sent it: refused, as the pool would have.
        const error = new PartitionNotServedError(
          `partition ${request.partition} is not served here; retry`,
        );
        replies.push({ id: request.id, ok: false, error: error_to_wire(error) });
        marks.push(null);
        continue;
      }
      replies.push(this.decide_one(slot, request, pending));
      marks.push(this.mark(slot, pending));
    }
    assert(replies.length === requests.length && marks.length === replies.length,
      'one reply per request');
    return this.commit_then(pending).then(() => replies.map((reply, i): WireReply => {
      const error = this.failure(marks[i]!);
      return error === undefined ? reply : { id: reply.id, ok: false, error };
    }));
  }

  private decide_one(
    slot: Slot<S, Rec>, request: WireRequest, pending: Map<number, Pending<Rec>>,
  ): WireReply {
    let decision: Decision<Rec>;
    try {
      const ctx = this.context(request.partition);
      decision = this.behaviour.decide(slot.state, request.body as Req, ctx);
    } catch (error) {
      if (!is_rejection(error)) throw error; // a bug: let the worker die and recover
      return { id: request.id, ok: false, error: error_to_wire(error) };
    }
    assert(('reply' in decision) !== ('refusal' in decision),
      'a decision has exactly one of reply and refusal');
    assert(decision.refusal === undefined || is_rejection(decision.refusal),
      'a refusal is a rejection');
    const refused = this.refused(slot);
    if (refused !== undefined && (decision.records.length > 0 || decision.outbox.length > 0)) {
      // decide() changed nothing: dropping the decision refuses the write at once. Reads,
      // and refusals, are answered from memory, which holds only what is durable.
      this.storage_refusals++;
      return { id: request.id, ok: false, error: error_to_wire(new StorageFullError(refused)) };
    }
    this.absorb(slot, decision, pending);
    // A refusal decided with records: they are journaled like any write (above), and the
    // request is answered as a thrown rejection is, so the caller sees one kind of refusal.
    return decision.refusal === undefined
      ? { id: request.id, ok: true, value: decision.reply }
      : { id: request.id, ok: false, error: error_to_wire(decision.refusal) };
  }

  /** Taken right after the request is decided (nothing asynchronous runs in between). */
  private mark(slot: Slot<S, Rec>, pending: Map<number, Pending<Rec>>): Mark<Rec> {
    const incarnation = slot.incarnation;
    if (incarnation === undefined) {
      const lane = this.lane_of(slot);
      return [lane, lane.failures];
    }
    // A reply rests on the state it saw: this batch's commit of the partition if the batch has
    // changed it so far, else the last commit sent (0: only the adopted state).
    const seq = pending.has(slot.partition) ? incarnation.next_seq : incarnation.next_seq - 1;
    return { incarnation, seq };
  }

  /** The error a released reply carries instead of itself, or undefined. */
  private failure(mark: Mark<Rec>): WireError | undefined {
    if (mark === null) return undefined;
    if (!Array.isArray(mark)) return failure_of(mark);
    const [lane, failures] = mark;
    if (lane.failures === failures) return undefined;
    // A commit of this store failed after this reply was decided: what it says (or read)
    // may rest on changes the disk refused. Never acknowledged; the state was reloaded.
    const message = lane.full?.message
      ?? 'a commit to the data directory failed; the request was not applied, retry it';
    return error_to_wire(new StorageFullError(message));
  }

  private absorb(
    slot: Slot<S, Rec>, decision: Effects<Rec>, pending: Map<number, Pending<Rec>>,
  ): void {
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

  private commit_then(pending: Map<number, Pending<Rec>>): Promise<void> {
    const now_ms = this.now_ms();
    const durable = this.remote === undefined
      ? this.commit_local(pending, now_ms)
      : this.commit_remote(this.remote, pending, now_ms);
    // Replies leave in batch order, and only after their own commits. Any other commit error
    // is fatal: memory holds changes the disk refused, and the cause is unknown.
    const released = this.reply_chain.then(() => durable).then(
      () => undefined,
      (error: unknown) => {
        this.on_fatal(error);
        throw error;
      },
    );
    this.reply_chain = released.then(() => undefined, () => undefined);
    this.schedule_timers();
    return released;
  }

  /** One commit per partition touched, each its own JournalWire; resolves once all settled. */
  private commit_remote(
    remote: RemoteJournal, pending: Map<number, Pending<Rec>>, now_ms: number,
  ): Promise<void> {
    const commits: Promise<void>[] = [];
    for (const [partition, entry] of pending) {
      const slot = this.slot(partition);
      const incarnation = slot.incarnation;
      assert(incarnation !== undefined, 'a remote partition has an incarnation');
      const seq = incarnation.next_seq++;
      const wire: JournalWire = {
        partition,
        records: entry.records.length === 0 ? null : encode(entry.records),
        outbox: entry.outbox,
        now_ms,
        snapshot: this.remote_snapshot(slot, entry.records.length),
      };
      const started = performance.now();
      commits.push(remote.commit(wire).then((error) => {
        if (error === undefined) {
          const duration_s = (performance.now() - started) / 1000;
          this.commits.push({ duration_s, records: entry.records.length });
          return;
        }
        note_failure(incarnation, seq, error);
        // Memory is ahead of the journal: drop the partition (unless already gone, or adopted
        // anew), to be adopted again from what the journal holds.
        if (this.slots.get(partition)?.incarnation === incarnation) this.slots.delete(partition);
      }));
    }
    assert(commits.length === pending.size, 'one commit per partition touched');
    return Promise.all(commits).then(() => undefined);
  }

  /** The snapshot a remote commit carries (taken after its records), when it is due. */
  private remote_snapshot(slot: Slot<S, Rec>, records: number): Uint8Array | null {
    slot.records_since_snapshot += records;
    if (slot.records_since_snapshot < slot.snapshot_interval_records) return null;
    const started_ms = performance.now();
    const bytes = encode(this.behaviour.snapshot(slot.state));
    slot.records_since_snapshot = 0;
    this.adapt_snapshot_interval(slot, performance.now() - started_ms);
    return bytes;
  }

  /** After a snapshot that took cost_ms: when the next one is due (see snapshot_records_per_ms). */
  private adapt_snapshot_interval(slot: Slot<S, Rec>, cost_ms: number): void {
    slot.snapshot_interval_records = Math.max(this.options.snapshot_every_records,
      Math.min(snapshot_interval_records_max, Math.ceil(cost_ms * snapshot_records_per_ms)));
    assert(slot.snapshot_interval_records >= this.options.snapshot_every_records, 'never more often than configured');
  }

  /** LMDB: one transaction per environment touched; resolves once all are durable. */
  private commit_local(pending: Map<number, Pending<Rec>>, now_ms: number): Promise<void> {
    // Group the partitions' writes by LMDB environment: one transaction (one fsync) each.
    type Group = { stores: PartitionStore<Rec>[]; writes: (() => void)[]; records: number; seqs: [Slot<S, Rec>, number][] };
    const groups = new Map<string, Group>();
    for (const [partition, entry] of pending) {
      const slot = this.slot(partition);
      slot.records_since_snapshot += entry.records.length;
      let snapshot: unknown = undefined;
      const snapshot_started_ms = performance.now();
      if (this.compactor === undefined && slot.records_since_snapshot >= slot.snapshot_interval_records) {
        snapshot = this.behaviour.snapshot(slot.state);
        slot.records_since_snapshot = 0;
      }
      const store = this.store_of(slot);
      const key = store.env_path();
      let group = groups.get(key);
      if (group === undefined) {
        group = { stores: [], writes: [], records: 0, seqs: [] };
        groups.set(key, group);
      }
      const write = store.prepare({ records: entry.records, outbox: entry.outbox, now_ms, snapshot });
      group.stores.push(store);
      group.writes.push(write);
      group.seqs.push([slot, write.seq]);
      group.records += entry.records.length;
      if (snapshot !== undefined) {
        // snapshot() and prepare()'s encoding are the stall; the commit itself is not.
        const cost_ms = performance.now() - snapshot_started_ms;
        this.snapshot_counters.snapshot_compactions++;
        this.snapshot_counters.snapshot_compaction_ms += cost_ms;
        this.adapt_snapshot_interval(slot, cost_ms);
      }
    }
    const commits: Promise<void>[] = [];
    let outbox_entries = 0;
    for (const entry of pending.values()) outbox_entries += entry.outbox.length;
    for (const [key, group] of groups) {
      const started = performance.now();
      const lane = this.lanes.get(key);
      assert(lane !== undefined, 'every store has a lane');
      commits.push(this.enqueue(lane, group.stores, group.writes).then(() => {
        this.commits.push({ duration_s: (performance.now() - started) / 1000, records: group.records });
        for (const [slot, seq] of group.seqs) this.committed(slot, seq);
      }, (error: unknown) => {
        // Storage full: handled by the lane (state reloaded, replies failed, mode entered).
        if (!is_storage_full(error)) throw error;
      }));
    }
    assert(commits.length <= pending.size, 'at most one transaction per partition touched');
    const on_outbox = this.options.on_outbox_committed;
    const all = Promise.all(commits).then(() => undefined);
    return outbox_entries > 0 && on_outbox !== undefined ? all.then(on_outbox) : all;
  }

  /** A commit of the slot's partition at `seq` is durable: a background snapshot may start. */
  private committed(slot: Slot<S, Rec>, seq: number): void {
    if (seq > slot.durable_seq) slot.durable_seq = seq;
    if (this.compactor === undefined || slot.compacting || this.closing) return;
    if (slot.records_since_snapshot < slot.snapshot_interval_records) return;
    if (this.slots.get(slot.partition) !== slot || this.refused(slot) !== undefined) return;
    this.compact(this.compactor, slot);
  }

  /**
   * Background snapshot of the partition at its last durable seq S: a piscina thread rebuilds
   * the state at S from the stored snapshot and journal (as recovery does) and encodes it; this
   * thread only writes the bytes, in the next transaction of the partition's store, which also
   * drops the journal up to S. Nothing is changed on disk before that transaction, so a crash or
   * a failed compaction leaves the old snapshot and journal to recover from.
   */
  private compact(compactor: Compactor, slot: Slot<S, Rec>): void {
    assert(!slot.compacting, 'at most one compaction in flight per partition');
    const store = this.store_of(slot);
    const seq = slot.durable_seq;
    slot.compacting = true;
    slot.records_since_snapshot = 0; // the records after `seq` count toward the next one
    const installed = compactor.run(store.env_path(), slot.partition, seq).then((result) => {
      // Closed, or the partition's store reloaded from an older state meanwhile: dropped.
      if (this.closed || this.slots.get(slot.partition) !== slot || slot.durable_seq < seq) return;
      const lane = this.lane_of(slot);
      return this.enqueue(lane, [store], [store.prepare_install(seq, result.bytes)]).then(() => {
        this.snapshot_counters.snapshot_compactions++;
        this.snapshot_counters.snapshot_compaction_ms += result.duration_ms;
        this.adapt_snapshot_interval(slot, result.duration_ms);
      });
    }).catch((error: unknown) => {
      if (this.closed) return; // abandoned by close(): not a failure
      this.snapshot_counters.snapshot_compaction_failures++;
      this.options.on_compaction_error?.(slot.partition, error);
    }).finally(() => {
      slot.compacting = false;
      this.installs.delete(installed);
    });
    this.installs.add(installed);
  }

  /** The snapshot figures since the last drain (metrics). */
  drain_snapshot_counters(): CompactionCounters {
    const counters = this.snapshot_counters;
    this.snapshot_counters = zero_counters();
    return counters;
  }

  /** Settles once no compaction is in flight (tests and tooling; never on a request path). */
  async compactions_settled(): Promise<void> {
    while (this.installs.size > 0) await Promise.allSettled([...this.installs]);
  }

  private enqueue(lane: Lane<Rec>, stores: PartitionStore<Rec>[], writes: (() => void)[]): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      lane.queued.push({ stores, writes, resolve, reject });
      if (!lane.busy) this.pump(lane);
    });
  }

  /** Runs everything queued on a lane as one transaction, then the next. */
  private pump(lane: Lane<Rec>): void {
    if (lane.queued.length === 0) {
      lane.busy = false;
      return;
    }
    lane.busy = true;
    const batch = lane.queued;
    lane.queued = [];
    commit_together(batch.flatMap((b) => b.stores), batch.flatMap((b) => b.writes)).then(() => {
      for (const b of batch) b.resolve();
      this.check_map(lane);
      this.pump(lane);
    }, (error: unknown) => {
      const dropped = [...batch, ...lane.queued];
      lane.queued = [];
      lane.busy = false;
      try {
        if (is_storage_full(error)) this.storage_failed(lane, error);
      } catch (reload_error) {
        // The reload from disk failed (e.g. the behaviour's check): nothing may be served.
        this.on_fatal(reload_error);
      }
      for (const b of dropped) b.reject(error);
    });
  }

  /** A transaction of this lane failed for want of space: memory of its partitions is ahead of
   *  the disk. Reload them from what is durable (as recovery does) and refuse writes. */
  private storage_failed(lane: Lane<Rec>, error: StoreCommitError): void {
    assert(!lane.busy && lane.queued.length === 0, 'nothing of this lane is in flight during a reload');
    lane.failures++;
    for (const slot of this.slots.values()) {
      const store = this.store_of(slot);
      if (store.env_path() !== lane.key) continue;
      const { state, replayed, last_seq } = this.load(slot.partition, store);
      slot.state = state;
      slot.records_since_snapshot = replayed;
      slot.durable_seq = last_seq;
    }
    let free = 'unknown';
    try {
      free = `${free_bytes(lane.key)} bytes free`;
    } catch {
      // the message names the error alone
    }
    this.enter_full(lane, 'disk', storage_message('disk', this.options.data_dir, `${error.code}, ${free}`));
  }

  /** After a commit: a store whose live data reached --store-map-bytes refuses further writes. */
  private check_map(lane: Lane<Rec>): void {
    if (lane.full !== undefined) return;
    const usage = lane.store.usage();
    if (usage.in_use_bytes < usage.map_bytes) return;
    this.enter_full(lane, 'map', storage_message('map', this.options.data_dir, `${usage.in_use_bytes} of ${usage.map_bytes} bytes in use`));
  }

  private enter_full(lane: Lane<Rec>, reason: StorageReason, message: string): void {
    const was = lane.full;
    lane.full = { reason, message };
    if (was === undefined) this.options.on_storage_change?.(message);
    if (this.probe_timer !== undefined || this.closed) return;
    this.probe_timer = setInterval(() => {
      if (this.probing || this.closed) return;
      this.probing = true;
      this.probe().finally(() => {
        this.probing = false;
      }).catch((e: unknown) => this.on_fatal(e));
    }, this.options.storage_probe_interval_ms ?? storage_probe_interval_ms_default);
    this.probe_timer.unref();
  }

  /** One look at every store in storage-full mode; leaves the mode where writes fit again. */
  private async probe(): Promise<void> {
    for (const lane of this.lanes.values()) {
      const full = lane.full;
      if (full === undefined || lane.busy || this.closed) continue;
      if (full.reason === 'map') {
        const usage = lane.store.usage();
        if (usage.in_use_bytes + storage_probe_bytes > usage.map_bytes) continue;
      } else {
        // Cheap first: no write is tried (nor logged by lmdb-js) while the disk is still full.
        if (free_bytes(lane.key) < storage_probe_bytes) continue;
        try {
          await lane.store.probe(storage_probe_bytes);
        } catch (error) {
          if (is_storage_full(error)) continue;
          throw error;
        }
      }
      lane.full = undefined;
      this.options.on_storage_change?.(undefined);
    }
    if ([...this.lanes.values()].every((l) => l.full === undefined) && this.probe_timer !== undefined) {
      clearInterval(this.probe_timer);
      this.probe_timer = undefined;
      this.schedule_timers(); // expiry that waited runs now
    }
  }

  /** A write outside the lanes (outbox deletes) failed for want of space. */
  note_storage_full(error: StoreCommitError): void {
    const lane = this.lanes.get(error.env_path);
    assert(lane !== undefined, 'the failed store is one of this host');
    if (lane.full !== undefined) return;
    this.enter_full(lane, 'disk', storage_message('disk', this.options.data_dir, error.code));
  }

  /** Why writes are refused, one sentence per store in storage-full mode. */
  storage_messages(): string[] {
    return [...this.lanes.values()].flatMap((l) => (l.full === undefined ? [] : [l.full.message]));
  }

  /** Fire due timers in every partition as one internal batch. */
  async run_timers(): Promise<void> {
    if (this.closed) return;
    const pending = new Map<number, Pending<Rec>>();
    const now_ms = this.now_ms();
    for (const slot of this.slots.values()) {
      // While writes are refused, expiry waits: it is a write too (re-armed on leaving the mode).
      if (this.refused(slot) !== undefined) continue;
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
    await this.commit_then(pending);
    this.schedule_timers();
  }

  schedule_timers(): void {
    if (this.closed) return;
    if (this.timer !== undefined) clearTimeout(this.timer);
    let earliest = Infinity;
    for (const slot of this.slots.values()) {
      if (this.refused(slot) !== undefined) continue;
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
      if (slot.store === undefined) continue; // remote: the writer holds the outbox, not us
      outbox += slot.store.outbox_count();
      const created = slot.store.outbox_oldest_ms();
      if (created > 0 && (oldest === 0 || created < oldest)) oldest = created;
    }
    total['outbox_pending'] = outbox;
    total['storage_full_disk'] = [...this.lanes.values()].filter((l) => l.full?.reason === 'disk').length;
    total['storage_full_map'] = [...this.lanes.values()].filter((l) => l.full?.reason === 'map').length;
    total['outbox_oldest_ms'] = oldest;
    // Age by this worker's clock (the one that stamped created_ms), so a moved test clock does
    // not make the lag negative or huge.
    total['outbox_lag_ms'] = oldest === 0 ? 0 : Math.max(0, this.now_ms() - oldest);
    return total;
  }

  /** The partitions' stores (the worker's outbox access reads and settles through them). */
  stores(): Map<number, PartitionStore<Rec>> {
    const out = new Map<number, PartitionStore<Rec>>();
    for (const [partition, slot] of this.slots) out.set(partition, this.store_of(slot));
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
    if (this.closed || this.closing) return;
    this.closing = true;
    await this.reply_chain;
    // A compaction in flight (at most one per partition) finishes and is installed: the next
    // start replays less. A kill instead abandons it, and loses nothing (compaction.test.ts).
    await this.compactions_settled();
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.probe_timer !== undefined) clearInterval(this.probe_timer);
    await this.compactor?.close();
    for (const slot of this.slots.values()) await slot.store?.close();
  }
}
