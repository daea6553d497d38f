// Main-thread side of the actor runtime: owns the worker threads, routes each request to the
// worker that owns its partition, batches requests into one postMessage per worker per tick,
// bounds every mailbox, and turns a worker's death into typed errors for its in-flight
// requests, followed by a restart that recovers the partitions from disk.
// With a remote journal (cluster mode) a worker starts with no partitions: adopt() hands it
// one restored from the journal, each commit comes back here as a JournalWire for on_journal to
// make durable, and a partition whose commit failed, or whose worker died, is lost (the
// partitions_lost event) until adopted again.
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { assert } from '../util/assert.js';
import { packr } from './codec.js';
import {
  error_to_wire, MailboxFullError, PartitionNotServedError, reviver, type RuntimeError, ShuttingDownError,
  WorkerUnavailableError, type WireError,
} from './errors.js';
import type { OutboxAck, OutboxAckReply, OutboxCap, OutboxReadReply, OutboxReadRequest, OutboxReadWire, OutboxRecord } from './outbox.js';
import type { OutboxStoresConfig } from './outbox_reader.js';
import { worker_of } from './partition.js';
import {
  decode, encode, type AdoptWire, type FromWorker, type JournalMode, type JournalWire, type ToWorker, type WireReply,
  type WireRequest, type WorkerConfig, type WorkerStats,
} from './protocol.js';
import { storage_probe_interval_ms_default, StorageFullError } from './storage.js';
import { store_map_bytes_max } from './store_env.js';

export interface PoolOptions {
  worker_count: number;
  partition_count: number;
  data_dir: string;
  node_id: string;
  behaviour_url: string;
  /** Requests queued or in flight per worker before new ones are refused. */
  mailbox_depth_max: number;
  /** Requests per postMessage; a fuller queue is flushed at once. */
  mailbox_batch_size_max: number;
  snapshot_every_records: number;
  /** LMDB environments the partitions live in (default 1); see store_env.ts. */
  store_count?: number;
  clock_offset_ms?: number;
  /** Delay before a dead worker is replaced; doubles per consecutive failure up to the max. */
  restart_delay_ms?: number;
  restart_delay_ms_max?: number;
  /** Bounds each worker keeps its outbox within; absent: unbounded. */
  outbox_cap?: OutboxCap | null;
  /** The most live data one store may hold (default store_map_bytes_max). */
  store_map_bytes?: number;
  /** How often a store refusing writes for want of space is checked again. */
  storage_probe_interval_ms?: number;
  /** Rebuilds a typed error from its wire form (the behaviour's error classes); undefined for
   *  a name the behaviour does not know. The runtime's own classes it rebuilds itself. */
  revive: (wire: WireError) => Error | undefined;
  random_seed?: number;
  /** Where commits go: 'local' (default) LMDB in data_dir; 'remote' on_journal. */
  journal?: JournalMode;
  /** remote only: make one commit durable; resolve = durable (reply may go), reject = not
   *  applied (the rejection, a typed Error, becomes the reply of every request of that commit:
   *  it crosses as a WireError, so `revive` must know its class, or it arrives as INTERNAL). */
  on_journal?: (commit: JournalWire) => Promise<void>;
}

/** How long adopt() waits for a restarting worker before refusing (WorkerUnavailableError):
 *  covers restart_delay_ms_max (5 s by default) with room for the worker's own start. */
export const adopt_worker_wait_ms_max = 30_000;
const adopt_worker_poll_ms = 10;

/** The runtime's own failure modes, rebuilt as their classes when they come back from a worker
 *  (the host refuses writes with StorageFullError); the rest are made on this thread, and are
 *  listed so that a future worker-side use of one comes back typed too. */
const revive_runtime_error = reviver<RuntimeError>([
  WorkerUnavailableError, MailboxFullError, ShuttingDownError, StorageFullError, PartitionNotServedError,
]);

/** An error from a worker as its real class: the runtime's, else the behaviour's. A name
 *  neither knows is a bug; it stays a plain Error (with the name, for the log), which no status
 *  table matches. */
export function revive_wire_error(wire: WireError, revive_behaviour: PoolOptions['revive']): Error {
  const error = revive_runtime_error(wire) ?? revive_behaviour(wire);
  if (error !== undefined) {
    assert(error.name === wire.name && error.message === wire.message, 'revived as the error that was sent');
    return error;
  }
  return Object.assign(new Error(wire.message), { name: wire.name });
}

interface PendingRequest {
  resolve: (value: unknown) => void;
  reject: (error: Error) => void;
}

type WorkerStatus = 'starting' | 'ready' | 'dead' | 'closing' | 'closed';

class WorkerSlot {
  worker: Worker | undefined;
  status: WorkerStatus = 'starting';
  queue: WireRequest[] = [];
  readonly pending = new Map<number, PendingRequest>();
  /** Outbox reads and acknowledgements in flight (outside the mailbox and its bound). */
  readonly control = new Map<number, PendingRequest>();
  flush_scheduled = false;
  /** Called when the worker reports 'closed' (set by close()). */
  on_closed: (() => void) | undefined;
  consecutive_failures = 0;
  restarts = 0;
  constructor(readonly index: number, readonly partitions: number[]) {}
  /** Queued plus in flight: what mailbox_depth_max bounds. */
  depth(): number {
    return this.pending.size;
  }
}

export interface PoolEvents {
  stats: [worker_index: number, stats: WorkerStats];
  worker_exit: [worker_index: number, code: number];
  worker_ready: [worker_index: number];
  /** The worker's outbox got an entry after an outbox_read had found it empty. */
  outbox_ready: [worker_index: number];
  /** Remote journal: a worker died (or a commit failed): these are no longer served. */
  partitions_lost: [partitions: number[]];
}

export class WorkerPool extends EventEmitter<PoolEvents> {
  private readonly slots: WorkerSlot[] = [];
  private next_id = 1;
  private closing = false;
  private clock_offset_ms: number;
  private readonly journal: JournalMode;
  /** Remote journal: the partitions served, each with the token of its adoption (a commit's
   *  failure loses the partition only if it was made under the adoption still current). */
  private readonly adoptions = new Map<number, number>();
  private adoption_next = 1;
  /** Remote journal: adoptions sent and not yet answered. */
  private readonly adopting = new Set<number>();

  constructor(private readonly options: PoolOptions) {
    super();
    this.journal = options.journal ?? 'local';
    assert((this.journal === 'remote') === (options.on_journal !== undefined), 'on_journal exactly with a remote journal');
    assert(options.worker_count >= 1, 'worker_count >= 1');
    assert(options.partition_count >= options.worker_count, 'every worker owns a partition');
    assert(options.mailbox_depth_max >= 1 && options.mailbox_batch_size_max >= 1, 'limits positive');
    this.clock_offset_ms = options.clock_offset_ms ?? 0;
    for (let w = 0; w < options.worker_count; w++) {
      const partitions: number[] = [];
      for (let p = 0; p < options.partition_count; p++) if (worker_of(p, options.worker_count) === w) partitions.push(p);
      this.slots.push(new WorkerSlot(w, partitions));
    }
  }

  /** Starts every worker and resolves once all have recovered their partitions. */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.spawn(slot)));
    assert(this.slots.every((s) => s.status === 'ready'), 'all workers ready after start');
  }

  private spawn(slot: WorkerSlot): Promise<void> {
    const config: WorkerConfig = {
      worker_index: slot.index,
      partitions: this.journal === 'remote' ? [] : slot.partitions,
      journal: this.journal,
      partition_count: this.options.partition_count,
      data_dir: this.options.data_dir,
      behaviour_url: this.options.behaviour_url,
      clock_offset_ms: this.clock_offset_ms,
      snapshot_every_records: this.options.snapshot_every_records,
      store_count: this.options.store_count ?? 1,
      node_id: this.options.node_id,
      outbox_cap: this.options.outbox_cap ?? null,
      store_map_bytes: this.options.store_map_bytes ?? store_map_bytes_max,
      storage_probe_interval_ms: this.options.storage_probe_interval_ms ?? storage_probe_interval_ms_default,
      random_seed: this.options.random_seed,
    };
    slot.status = 'starting';
    const worker = new Worker(new URL('./worker_main.js', import.meta.url), { workerData: config });
    slot.worker = worker;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      worker.on('message', (message: FromWorker) => {
        if (slot.worker !== worker) return; // a message from a replaced worker
        if (message.tag !== 'ready') {
          this.on_message(slot, worker, message);
          return;
        }
        ready = true;
        slot.status = this.closing ? 'closing' : 'ready';
        slot.consecutive_failures = 0;
        this.emit('worker_ready', slot.index);
        resolve();
      });
      worker.on('error', () => {
        // 'exit' follows; the worker already printed its reason.
      });
      worker.on('exit', (code) => {
        if (slot.worker !== worker) return;
        this.on_exit(slot, code);
        if (!ready) reject(new WorkerUnavailableError(`worker ${slot.index} exited with code ${code} during recovery`));
      });
    });
  }

  /** A worker's message other than 'ready' (which spawn() handles). */
  private on_message(
    slot: WorkerSlot, worker: Worker, message: Exclude<FromWorker, { tag: 'ready' }>,
  ): void {
    switch (message.tag) {
      case 'replies':
        this.settle(slot, decode<WireReply[]>(message.bytes));
        break;
      case 'stats':
        this.emit('stats', slot.index, message.stats);
        break;
      case 'outbox_entries': {
        const wire = decode<OutboxReadWire>(message.bytes);
        const entries = wire.entries.map(({ partition, seq, value }) => ({ partition, seq, record: packr.unpack(value) as OutboxRecord }));
        this.settle_control(slot, message.id, { entries, requeued: wire.requeued } satisfies OutboxReadReply);
        break;
      }
      case 'outbox_acked':
        this.settle_control(slot, message.id, message.reply);
        break;
      case 'outbox_ready':
        this.emit('outbox_ready', slot.index);
        break;
      case 'adopted':
        this.adopted(slot, message);
        break;
      case 'released':
        this.settle_control(slot, message.id, undefined);
        break;
      case 'journal':
        this.journal_commit(slot, worker, message.id, decode<JournalWire>(message.bytes));
        break;
      case 'closed':
        slot.status = 'closed';
        slot.on_closed?.();
        break;
    }
  }

  private on_exit(slot: WorkerSlot, code: number): void {
    const was_closing = slot.status === 'closing' || slot.status === 'closed';
    slot.status = was_closing ? 'closed' : 'dead';
    slot.worker = undefined;
    slot.queue = [];
    const error = new WorkerUnavailableError(
      `worker ${slot.index} stopped (exit code ${code}); the request may not have been applied, retry it`,
    );
    for (const pending of slot.pending.values()) pending.reject(error);
    slot.pending.clear();
    for (const pending of slot.control.values()) pending.reject(error);
    slot.control.clear();
    assert(slot.depth() === 0, 'no pending request survives a worker exit');
    // Its partitions' state died with it; its replacement starts with none.
    const lost = this.served().filter((p) => worker_of(p, this.options.worker_count) === slot.index);
    for (const p of lost) this.adoptions.delete(p);
    // A worker the pool itself stopped (close) is not a crash: no event, no restart.
    if (was_closing || this.closing) return;
    this.emit('worker_exit', slot.index, code);
    if (lost.length > 0) this.emit('partitions_lost', lost);
    slot.consecutive_failures++;
    slot.restarts++;
    const base = this.options.restart_delay_ms ?? 50;
    const max = this.options.restart_delay_ms_max ?? 5000;
    const delay = Math.min(max, base * 2 ** Math.min(16, slot.consecutive_failures - 1));
    setTimeout(() => {
      if (this.closing) return;
      this.spawn(slot).catch(() => {
        // on_exit already scheduled the next attempt
      });
    }, delay).unref();
  }

  /** Sends `body` to the owner of `partition`; resolves with its reply or rejects typed. */
  request(partition: number, body: unknown): Promise<unknown> {
    assert(Number.isInteger(partition) && partition >= 0 && partition < this.options.partition_count, 'partition in range');
    if (this.closing) return Promise.reject(new ShuttingDownError('the server is shutting down; retry on another node or later'));
    if (this.journal === 'remote' && !this.adoptions.has(partition)) {
      return Promise.reject(new PartitionNotServedError(
        `partition ${partition} is not served by this node (it may be moving); retry`,
      ));
    }
    const slot = this.slots[worker_of(partition, this.options.worker_count)]!;
    if (slot.status !== 'ready') {
      return Promise.reject(new WorkerUnavailableError(`partition ${partition} is recovering; retry shortly`));
    }
    if (slot.depth() >= this.options.mailbox_depth_max) {
      return Promise.reject(new MailboxFullError(
        `worker ${slot.index} has ${slot.depth()} requests waiting (mailbox_depth_max ${this.options.mailbox_depth_max}); retry with backoff`,
      ));
    }
    const id = this.next_id++;
    return new Promise<unknown>((resolve, reject) => {
      slot.pending.set(id, { resolve, reject });
      slot.queue.push({ id, partition, body });
      if (slot.queue.length >= this.options.mailbox_batch_size_max) this.flush(slot);
      else if (!slot.flush_scheduled) {
        slot.flush_scheduled = true;
        setImmediate(() => this.flush(slot));
      }
    });
  }

  private flush(slot: WorkerSlot): void {
    slot.flush_scheduled = false;
    if (slot.queue.length === 0 || slot.worker === undefined) return;
    const batch = slot.queue;
    slot.queue = [];
    assert(batch.length <= this.options.mailbox_batch_size_max, 'batch within mailbox_batch_size_max');
    const bytes = encode(batch);
    const message: ToWorker = { tag: 'batch', bytes };
    slot.worker.postMessage(message, [bytes.buffer as ArrayBuffer]);
  }

  private settle(slot: WorkerSlot, replies: WireReply[]): void {
    for (const reply of replies) {
      const pending = slot.pending.get(reply.id);
      assert(pending !== undefined, `reply ${reply.id} matches a pending request`);
      slot.pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply.value);
      else pending.reject(revive_wire_error(reply.error, this.options.revive));
    }
  }

  private settle_control(slot: WorkerSlot, id: number, value: unknown, error?: Error): void {
    const pending = slot.control.get(id);
    assert(pending !== undefined, `control reply ${id} matches a pending control request`);
    slot.control.delete(id);
    if (error === undefined) pending.resolve(value);
    else pending.reject(error);
  }

  /** Sends a control message to a worker; rejected typed if it is not serving or dies first. */
  private control<T>(
    worker_index: number, message: (id: number) => ToWorker, transfer: ArrayBuffer[] = [],
  ): Promise<T> {
    const slot = this.slots[worker_index];
    assert(slot !== undefined, 'worker exists');
    if (this.closing) return Promise.reject(new ShuttingDownError('the pool is shutting down'));
    const worker = slot.worker;
    if (slot.status !== 'ready' || worker === undefined) {
      return Promise.reject(new WorkerUnavailableError(`worker ${worker_index} is recovering its partitions; retry shortly`));
    }
    const id = this.next_id++;
    return new Promise<T>((resolve, reject) => {
      slot.control.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage(message(id), transfer);
    });
  }

  /** Partitions owned by each worker, by worker index (outbox readers address workers). */
  partitions_by_worker(): number[][] {
    return this.slots.map((s) => [...s.partitions]);
  }

  /** Where the outboxes live, for a reader on another thread (outbox_reader.ts). */
  outbox_stores(): OutboxStoresConfig {
    assert(this.journal === 'local', 'a remote journal has no outbox here (the writer emits)');
    return {
      data_dir: this.options.data_dir,
      store_count: this.options.store_count ?? 1,
      map_bytes: this.options.store_map_bytes ?? store_map_bytes_max,
      partitions_by_worker: this.partitions_by_worker(),
    };
  }

  /** A bounded batch of a worker's outbox entries, per partition in seq order. */
  outbox_read(worker_index: number, request: OutboxReadRequest): Promise<OutboxReadReply> {
    assert(this.journal === 'local', 'a remote journal has no outbox here (the writer emits)');
    const owned = this.slots[worker_index]?.partitions;
    assert(owned !== undefined && request.cursors.every((c) => owned.includes(c.partition)), 'outbox_read names partitions of that worker');
    return this.control<OutboxReadReply>(worker_index, (id) => ({ tag: 'outbox_read', id, request }));
  }

  /** Marks delivered entries (deleted with the next commit of their store) and parks
   *  undeliverable ones; resolves once the parking is durable. */
  outbox_ack(worker_index: number, acks: OutboxAck[]): Promise<OutboxAckReply> {
    assert(this.journal === 'local', 'a remote journal has no outbox here (the writer emits)');
    const owned = this.slots[worker_index]?.partitions;
    assert(owned !== undefined && acks.every((a) => owned.includes(a.partition)), 'outbox_ack names partitions of that worker');
    return this.control<OutboxAckReply>(worker_index, (id) => ({ tag: 'outbox_ack', id, acks }));
  }

  /** Remote journal: the worker owning the partition restores it from `wire` (snapshot, then
   *  segments), runs the behaviour's check, arms its timers and serves it. Adopting a partition
   *  served, or being adopted, is a bug. Waits (bounded) for a restarting worker. */
  async adopt(wire: AdoptWire): Promise<{ replayed_records: number }> {
    assert(this.journal === 'remote', 'adopt: a remote journal');
    const p = wire.partition;
    assert(Number.isInteger(p) && p >= 0 && p < this.options.partition_count, 'partition in range');
    assert(!this.adoptions.has(p) && !this.adopting.has(p), `partition ${p} is already served`);
    const index = worker_of(p, this.options.worker_count);
    this.adopting.add(p);
    try {
      await this.until_serving(index);
      const bytes = encode(wire);
      const replayed_records = await this.control<number>(
        index, (id) => ({ tag: 'adopt', id, bytes }), [bytes.buffer as ArrayBuffer],
      );
      assert(this.adoptions.has(p), 'served once adopted');
      return { replayed_records };
    } finally {
      this.adopting.delete(p);
    }
  }

  /** The worker's answer to adopt: served from now on (before any later message of it). */
  private adopted(slot: WorkerSlot, message: Extract<FromWorker, { tag: 'adopted' }>): void {
    if (!message.ok) {
      this.settle_control(slot, message.id, undefined, revive_wire_error(message.error, this.options.revive));
      return;
    }
    assert(!this.adoptions.has(message.partition), 'adopted once');
    this.adoptions.set(message.partition, this.adoption_next++);
    this.settle_control(slot, message.id, message.replayed_records);
  }

  /** Remote journal: the worker forgets the partition at once; requests for it are refused
   *  from now on. Its commits already with on_journal settle as on_journal says (their replies
   *  follow); those not yet here are refused (PartitionNotServedError), never journaled. */
  async release(partition: number): Promise<void> {
    assert(this.journal === 'remote', 'release: a remote journal');
    if (!this.adoptions.delete(partition)) return; // lost already: nothing served to forget
    const index = worker_of(partition, this.options.worker_count);
    try {
      await this.control<void>(index, (id) => ({ tag: 'release', id, partition }));
    } catch (error) {
      // A dead or closing worker serves nothing: forgotten either way.
      if (!(error instanceof WorkerUnavailableError || error instanceof ShuttingDownError)) throw error;
    }
  }

  /** Remote journal: partitions adopted and not released or lost, ascending. */
  served(): number[] {
    return [...this.adoptions.keys()].sort((a, b) => a - b);
  }

  /** One commit from a worker: to on_journal if its partition is served under the adoption it
   *  was made in, else refused at once (a commit decided after a failure, or after release,
   *  must never reach a writer). Commits of one partition arrive, and go on, in order. */
  private journal_commit(slot: WorkerSlot, worker: Worker, id: number, wire: JournalWire): void {
    const on_journal = this.options.on_journal;
    assert(on_journal !== undefined, 'a journal message comes from a remote journal');
    const answer = (error: Error | undefined): void => {
      if (slot.worker !== worker) return; // it died: its requests were failed already
      const message: ToWorker = error === undefined
        ? { tag: 'journaled', id, ok: true }
        : { tag: 'journaled', id, ok: false, error: error_to_wire(error) };
      worker.postMessage(message);
    };
    const p = wire.partition;
    const token = this.adoptions.get(p);
    if (token === undefined) {
      answer(new PartitionNotServedError(`partition ${p} is no longer served here; retry`));
      return;
    }
    let durable: Promise<void>;
    try {
      durable = on_journal(wire);
    } catch (error) {
      durable = Promise.reject(error);
    }
    durable.then(() => answer(undefined), (error: unknown) => {
      const typed = error instanceof Error ? error : new Error(String(error));
      // Memory of p is ahead of the journal: the worker drops it on this answer.
      const lost = this.adoptions.get(p) === token;
      if (lost) this.adoptions.delete(p);
      answer(typed);
      if (lost) this.emit('partitions_lost', [p]);
    });
  }

  /** Waits until the worker is ready, for at most adopt_worker_wait_ms_max. */
  private async until_serving(index: number): Promise<void> {
    const slot = this.slots[index];
    assert(slot !== undefined, 'worker exists');
    for (let waited_ms = 0; slot.status !== 'ready'; waited_ms += adopt_worker_poll_ms) {
      if (this.closing) throw new ShuttingDownError('the pool is shutting down');
      if (waited_ms >= adopt_worker_wait_ms_max) {
        throw new WorkerUnavailableError(`worker ${index} is not ready; retry the adoption later`);
      }
      await new Promise((r) => setTimeout(r, adopt_worker_poll_ms));
    }
  }

  /** Moves every worker's clock forward (tests drive hold expiry with it). */
  advance_clock(delta_ms: number): number {
    assert(delta_ms >= 0, 'clock moves forward only');
    this.clock_offset_ms += delta_ms;
    for (const slot of this.slots) {
      slot.worker?.postMessage({ tag: 'clock', offset_ms: this.clock_offset_ms } satisfies ToWorker);
    }
    return this.clock_offset_ms;
  }

  mailbox_depths(): number[] {
    return this.slots.map((s) => s.depth());
  }

  ready(): boolean {
    return this.slots.every((s) => s.status === 'ready');
  }

  restarts(): number {
    return this.slots.reduce((sum, s) => sum + s.restarts, 0);
  }

  /** Kills a worker thread outright (operations and crash tests): its in-flight calls fail. */
  async terminate_worker(index: number): Promise<void> {
    const slot = this.slots[index];
    assert(slot !== undefined && slot.worker !== undefined, 'worker exists');
    await slot.worker.terminate();
  }

  /** Waits until the given worker is ready again (after a restart). */
  async until_ready(index: number): Promise<void> {
    const slot = this.slots[index];
    assert(slot !== undefined, 'worker exists');
    while (slot.status !== 'ready') {
      if (this.closing) throw new ShuttingDownError('the pool closed before the worker was ready');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stops accepting, lets each worker finish its in-flight batches, closes LMDB. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.all(this.slots.map(async (slot) => {
      const worker = slot.worker;
      if (worker === undefined) return;
      this.flush(slot);
      slot.status = 'closing';
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      // Wait for the worker to answer everything it holds and close its environments (or die).
      const closed = new Promise<void>((resolve) => {
        slot.on_closed = resolve;
        void exited.then(resolve);
      });
      worker.postMessage({ tag: 'close' } satisfies ToWorker);
      await closed;
      await worker.terminate();
      await exited;
    }));
  }
}
