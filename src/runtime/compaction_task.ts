// The body of a background compaction, run in a piscina thread (compactor.ts): builds a
// partition's snapshot at a committed seq from what is durable, exactly as recovery would
// rebuild the state (restore + apply), so the partition's own thread never encodes its state.
// Knows nothing of what the state means: the behaviour comes by module URL, as the worker's does.
import { move, transferableSymbol, valueSymbol } from 'piscina';
import { assert } from '../util/assert.js';
import type { BehaviourModule } from './behaviour.js';
import { open_read_only } from './store_env.js';
import { read_durable, snapshot_bytes } from './store.js';

export interface CompactionTask {
  behaviour_url: string;
  env_path: string;
  partition: number;
  /** A committed (durable) seq of the partition: the snapshot covers every commit <= it. */
  seq: number;
}

export interface CompactionResult {
  /** snapshot_bytes(seq, behaviour.snapshot(state at seq)), its buffer transferred. */
  bytes: Uint8Array;
  /** Journal records replayed on top of the previous snapshot. */
  replayed: number;
  /** Time spent in this thread (read, rebuild, snapshot, encode). */
  duration_ms: number;
}

const modules = new Map<string, Promise<BehaviourModule>>();

function behaviour_of(url: string): Promise<BehaviourModule> {
  let module = modules.get(url);
  if (module === undefined) {
    module = import(url) as Promise<BehaviourModule>;
    modules.set(url, module);
  }
  return module;
}

export default async function compact(task: CompactionTask): Promise<CompactionResult> {
  assert(Number.isInteger(task.seq) && task.seq >= 1, 'compaction at a committed seq');
  const { behaviour } = await behaviour_of(task.behaviour_url);
  const started_ms = performance.now();
  // Opened per task: a fresh read transaction that sees every commit up to task.seq. Opening an
  // environment this process already holds costs little next to a snapshot worth compacting.
  const env = open_read_only(task.env_path);
  let bytes: Uint8Array;
  let replayed = 0;
  try {
    const p = task.partition;
    const durable = read_durable<unknown>(env, p, task.seq);
    assert(durable.snapshot_seq < task.seq, `partition ${p}: a snapshot at ${durable.snapshot_seq} already covers ${task.seq}`);
    assert(durable.last_seq === task.seq, `partition ${p}: journal ends at ${durable.last_seq}, not ${task.seq}`);
    const state = durable.snapshot === undefined ? behaviour.create(p) : behaviour.restore(p, durable.snapshot);
    for (const batch of durable.tail) {
      for (const record of batch) behaviour.apply(state, record);
      replayed += batch.length;
    }
    // The same check a recovery runs: a snapshot of a state that fails it is never written.
    behaviour.check?.(state);
    bytes = own_buffer(snapshot_bytes(task.seq, behaviour.snapshot(state)));
  } finally {
    await env.root.close();
  }
  const result: CompactionResult = { bytes, replayed, duration_ms: performance.now() - started_ms };
  // The result travels with its snapshot's buffer transferred, not copied (piscina's
  // Transferable protocol: the value sent, and what its transfer list holds).
  const movable = { [transferableSymbol]: bytes.buffer, [valueSymbol]: result };
  return move(movable) as unknown as CompactionResult;
}

/** msgpackr packs into a buffer it reuses: copy unless the view owns all of its memory, so the
 *  transfer neither detaches the codec's buffer nor carries more than the snapshot. */
function own_buffer(view: Uint8Array): Uint8Array {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength) return view;
  return new Uint8Array(view);
}
