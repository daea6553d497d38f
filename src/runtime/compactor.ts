// Background compaction: a partition's snapshot is built in a piscina thread from the durable
// journal (compaction_task.ts), never on the partition's worker thread. The worker only writes
// the returned bytes (host.ts). Measured before this (npm run bench, snapshot section): an inline
// snapshot of a partition with 200,000 orders stalled every partition of its worker for the
// whole restore-free encode, which set the whole-purchase p99 (see the notes of issue 13).
import { Piscina } from 'piscina';
import { assert } from '../util/assert.js';
import type { CompactionResult, CompactionTask } from './compaction_task.js';

/** Threads one worker's compactions share. One: a compaction is a whole-partition rebuild,
 *  and on a machine with as many cores as workers a second one would only take a core from
 *  serving; compactions of a worker's partitions queue behind each other instead. */
export const compaction_threads_max = 1;
/** A compaction thread left idle this long exits (snapshots are minutes apart under load). */
export const compaction_idle_ms = 30_000;

/** Snapshots written (inline or background), failed background ones, and their cost. */
export interface CompactionCounters {
  snapshot_compactions: number;
  snapshot_compaction_failures: number;
  snapshot_compaction_ms: number;
}

export class Compactor {
  private readonly pool: Piscina;
  private destroyed = false;

  constructor(readonly behaviour_url: string, queued_max: number) {
    assert(queued_max >= 1, 'room for one compaction per partition');
    this.pool = new Piscina({
      filename: new URL('./compaction_task.js', import.meta.url).href,
      minThreads: 0,
      maxThreads: compaction_threads_max,
      idleTimeout: compaction_idle_ms,
      // The host keeps at most one compaction per partition in flight: this bounds the queue.
      maxQueue: queued_max,
    });
  }

  run(env_path: string, partition: number, seq: number): Promise<CompactionResult> {
    assert(!this.destroyed, 'no compaction after close');
    const task: CompactionTask = { behaviour_url: this.behaviour_url, env_path, partition, seq };
    return this.pool.run(task) as Promise<CompactionResult>;
  }

  /** Ends the threads; a compaction in flight is abandoned (its partition keeps the snapshot
   *  and journal it had, from which it recovers exactly as before). */
  async close(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.pool.destroy();
  }
}

export function zero_counters(): CompactionCounters {
  return { snapshot_compactions: 0, snapshot_compaction_failures: 0, snapshot_compaction_ms: 0 };
}
