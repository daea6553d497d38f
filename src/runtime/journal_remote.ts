// The worker side of a remote journal (cluster mode): a commit leaves the worker as one
// JournalWire per partition, and comes back as its outcome from the main thread, where the
// pool's on_journal makes it durable (or fails). The host decides and applies as in single-node
// mode; this file holds what differs: numbering each partition's commits per adoption, and
// remembering the first failed one, so that every reply resting on it, or on a later commit of
// that adoption, is answered with the failure instead.
import { assert } from '../util/assert.js';
import type { WireError } from './errors.js';
import type { JournalWire } from './protocol.js';

/** One adoption of a partition by this worker: a new adopt() starts a new one. */
export interface Incarnation {
  readonly partition: number;
  /** The number the next commit of this adoption gets (the first is 1). */
  next_seq: number;
  /** The first (lowest-numbered) commit that was not made durable, and why. */
  failed: { seq: number; error: WireError } | undefined;
}

/** What a reply rests on: the commit of `incarnation` numbered `seq` and every one before it
 *  (0: only the adopted state, durable by definition). */
export interface RemoteMark {
  incarnation: Incarnation;
  seq: number;
}

export function new_incarnation(partition: number): Incarnation {
  assert(Number.isInteger(partition) && partition >= 0, 'partition non-negative');
  return { partition, next_seq: 1, failed: undefined };
}

/** A failed commit of the incarnation: the first one wins (later ones fail because of it). */
export function note_failure(incarnation: Incarnation, seq: number, error: WireError): void {
  assert(seq >= 1 && seq < incarnation.next_seq, 'a failed commit was sent');
  const failed = incarnation.failed;
  if (failed === undefined || seq < failed.seq) incarnation.failed = { seq, error };
}

/** The error a reply resting on `mark` must carry instead of itself, or undefined. */
export function failure_of(mark: RemoteMark): WireError | undefined {
  const failed = mark.incarnation.failed;
  return failed !== undefined && failed.seq <= mark.seq ? failed.error : undefined;
}

/** Commits in flight to the main thread, by message id. */
export class RemoteJournal {
  private next_id = 1;
  private readonly waiting = new Map<number, (error: WireError | undefined) => void>();

  constructor(private readonly send: (id: number, wire: JournalWire) => void) {}

  /** Sends one commit; resolves with undefined once durable, else with why it is not. Never
   *  rejects: a failed commit is an expected outcome the host answers, not a worker bug. */
  commit(wire: JournalWire): Promise<WireError | undefined> {
    assert(wire.records !== null || wire.outbox.length > 0 || wire.snapshot !== null,
      'a commit carries something');
    const id = this.next_id++;
    return new Promise<WireError | undefined>((resolve) => {
      this.waiting.set(id, resolve);
      this.send(id, wire);
    });
  }

  /** The main thread's answer to commit `id`. */
  settle(id: number, error: WireError | undefined): void {
    const resolve = this.waiting.get(id);
    assert(resolve !== undefined, `journaled ${id} answers a commit in flight`);
    this.waiting.delete(id);
    resolve(error);
  }

  in_flight(): number {
    return this.waiting.size;
  }
}
