// The emitter's outbox source in its own thread (emitter_thread.ts): entries are read straight
// from the stores (OutboxStoresReader), decoded here, and only what must be the owning worker's
// (moving parked entries back, arming the outbox_ready wake-up, acknowledging, parking) goes to
// it as a control call, relayed by the main thread once per round, never per event.
//
// Why a cursor per partition: the owning worker deletes acknowledged entries with its store's
// next commit (within outbox_delivered_flush_ms), and until then they are on disk, invisible
// only to the worker's own reads. So the reader remembers the highest seq it acknowledged per
// partition and reads after it. Loss is impossible by construction: the cursor moves only past
// entries the broker acknowledged (or that were parked), in the acknowledgement itself, and a
// partition's seqs only grow (outbox_floor, store_outbox.ts), so nothing can appear behind it,
// except two cases that reset it to 0 (read from the oldest again, duplicates allowed):
// - the worker restarted (worker_ready): its marks of delivered entries died with it, so those
//   entries stay on disk until sent and acknowledged again (else they would wait forever, and
//   count as lag); and an acknowledgement of a round read before the restart moves no cursor;
// - parked entries are moved back (requeue_parked, at the emitter's first read of a worker):
//   they return under their own, older seqs.
import { EventEmitter } from 'node:events';
import { assert } from '../util/assert.js';
import {
  check_acks, check_read_request, type OutboxAck, type OutboxAckReply, type OutboxItem, type OutboxReadReply, type OutboxReadRequest,
} from '../runtime/outbox.js';
import type { OutboxStoresReader } from '../runtime/outbox_reader.js';
import type { OutboxSource } from './emitter.js';

/** The owning workers' side of the outbox, as the main thread's pool offers it. */
export interface OutboxControl {
  outbox_read(worker: number, request: OutboxReadRequest): Promise<OutboxReadReply>;
  outbox_ack(worker: number, acks: OutboxAck[]): Promise<OutboxAckReply>;
}

interface SourceEvents {
  outbox_ready: [worker: number];
  worker_ready: [worker: number];
}

export class CursorOutboxSource extends EventEmitter<SourceEvents> implements OutboxSource {
  /** Per partition: the highest seq acknowledged since the cursor was last reset (0: none). */
  private readonly cursors = new Map<number, number>();
  /** Per worker: bumped by each restart; a round's acknowledgement moves cursors only if no
   *  restart came between its read and it. */
  private readonly generation: number[];
  private readonly read_generation: number[];

  constructor(
    private readonly reader: OutboxStoresReader,
    private readonly control: OutboxControl,
    private readonly by_worker: number[][],
  ) {
    super();
    assert(by_worker.length >= 1, 'a worker');
    for (const partitions of by_worker) for (const p of partitions) this.cursors.set(p, 0);
    this.generation = by_worker.map(() => 0);
    this.read_generation = by_worker.map(() => -1);
  }

  partitions_by_worker(): number[][] {
    return this.by_worker.map((partitions) => [...partitions]);
  }

  cursor(partition: number): number {
    const cursor = this.cursors.get(partition);
    assert(cursor !== undefined, `partition ${partition} has a cursor`);
    return cursor;
  }

  private reset(worker: number): void {
    for (const p of this.by_worker[worker]!) this.cursors.set(p, 0);
  }

  /** The main thread relays the pool's worker_ready: the worker (re)started. */
  worker_ready(worker: number): void {
    assert(worker >= 0 && worker < this.by_worker.length, 'worker index in range');
    this.generation[worker]!++;
    this.reset(worker);
    this.emit('worker_ready', worker);
  }

  /** The main thread relays the pool's outbox_ready. */
  outbox_ready(worker: number): void {
    this.emit('outbox_ready', worker);
  }

  async outbox_read(worker: number, request: OutboxReadRequest): Promise<OutboxReadReply> {
    check_read_request(request);
    const owned = this.by_worker[worker];
    assert(owned !== undefined && request.cursors.every((c) => owned.includes(c.partition)), 'outbox_read names partitions of that worker');
    let requeued = 0;
    if (request.requeue_parked) {
      // The worker moves them back (its store's single writer); one entry is read with them and
      // dropped: the local read below gets it again, from the reset cursor.
      const reply = await this.control.outbox_read(worker, { ...request, limit: 1, limit_per_partition: 1 });
      requeued = reply.requeued;
      if (requeued > 0) this.reset(worker);
    }
    this.read_generation[worker] = this.generation[worker]!;
    const entries: OutboxItem[] = [];
    for (const { partition } of request.cursors) {
      const room = Math.min(request.limit_per_partition, request.limit - entries.length);
      if (room === 0) break;
      for (const entry of this.reader.read(partition, this.cursor(partition), room)) entries.push(entry);
    }
    assert(entries.length <= request.limit, 'outbox read within its limit');
    if (entries.length > 0) return { entries, requeued };
    // Nothing committed past the cursors: the worker looks again and, finding nothing either,
    // arms its outbox_ready in the same step, so an entry committed since our look is not
    // slept through (it comes back in this reply instead).
    const cursors = request.cursors.map(({ partition }) => ({ partition, after_seq: this.cursor(partition) }));
    const armed = await this.control.outbox_read(worker, { cursors, limit: 1, limit_per_partition: 1, requeue_parked: false });
    return { entries: armed.entries, requeued };
  }

  /** Moves the cursors past what the broker acknowledged (and what is parked), then tells the
   *  worker. A failed call leaves them moved: a worker that did not take it has died, and its
   *  worker_ready resets them. */
  outbox_ack(worker: number, acks: OutboxAck[]): Promise<OutboxAckReply> {
    check_acks(acks);
    if (this.read_generation[worker] === this.generation[worker]) {
      for (const ack of acks) {
        let last = this.cursor(ack.partition);
        for (const seq of ack.seqs) last = Math.max(last, seq);
        for (const seq of ack.park) last = Math.max(last, seq);
        this.cursors.set(ack.partition, last);
      }
    }
    return this.control.outbox_ack(worker, acks);
  }
}
