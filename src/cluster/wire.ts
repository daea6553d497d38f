// The same as runtime/protocol.ts's JournalWire and AdoptWire (contract §2), declared here until
// lane RUNTIME's protocol.ts is merged; the lead then switches this import to protocol.ts.
import type { OutboxEntry } from '../runtime/behaviour.js';

/** One commit of one partition, worker → main (remote journal). */
export interface JournalWire {
  partition: number;
  /** packr.pack(records: Rec[]) of this commit, or null when it carries none. */
  records: Uint8Array | null;
  /** The commit's outbox entries, in decision order (event ids are given by the writer). */
  outbox: OutboxEntry[];
  /** The worker clock at commit (created_ms of the events). */
  now_ms: number;
  /** packr.pack(behaviour.snapshot(state)) taken AFTER applying `records`, or null. */
  snapshot: Uint8Array | null;
}

/** What a partition is restored from, main → worker (remote journal). */
export interface AdoptWire {
  partition: number;
  /** A `snapshot` buffer as once sent in a JournalWire, or null: start from create(). */
  snapshot: Uint8Array | null;
  /** `records` buffers as once sent in JournalWires after that snapshot, in journal order. */
  segments: Uint8Array[];
}
