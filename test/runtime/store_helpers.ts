// What tests read and do on a PartitionStore that the runtime never needs: a commit of one
// partition alone, and direct looks at what is on disk (the journal's keys, every outbox entry
// whether delivered or not, the parked entries, the delivered marks not yet deleted).
import { packr } from '../../src/runtime/codec.js';
import type { OutboxRecord } from '../../src/runtime/outbox.js';
import { commit_together, type CommitInput, type PartitionStore } from '../../src/runtime/store.js';
import { read_parked } from '../../src/runtime/store_outbox.js';

/** One transaction for this partition alone. Durable on resolve, with the commit's seq. */
export async function commit<Rec>(
  store: PartitionStore<Rec>,
  input: CommitInput<Rec>,
): Promise<number> {
  const write = store.prepare(input);
  await commit_together([store], [write]);
  return write.seq;
}

/** Deletes outbox entries (as the emitter does once the broker acknowledged them). */
export async function remove_outbox<Rec>(
  store: PartitionStore<Rec>,
  seqs: number[],
): Promise<void> {
  await commit_together([store], [store.prepare_settle(seqs, [])]);
}

export function journal_seqs<Rec>(store: PartitionStore<Rec>): number[] {
  const p = store.partition;
  return [...store.env.journal.getKeys({ start: [p], end: [p + 1] })].map((k) => k[1]);
}

type Entry = { seq: number; record: OutboxRecord };

/** Every outbox entry on disk in seq order, delivered (marked, not yet deleted) or not. */
export function outbox_entries<Rec>(store: PartitionStore<Rec>): Entry[] {
  const out: Entry[] = [];
  const p = store.partition;
  for (const { key, value } of store.env.outbox.getRange({ start: [p], end: [p + 1] })) {
    out.push({ seq: key[1], record: packr.unpack(value) as OutboxRecord });
  }
  return out;
}

/** Parked entries in seq order (a reader that cannot deliver them put them there). */
export function parked_entries<Rec>(store: PartitionStore<Rec>): Entry[] {
  return read_parked(store.env.root, store.partition);
}

/** Entries marked delivered and not yet deleted on disk. */
export function delivered_pending<Rec>(store: PartitionStore<Rec>): number {
  return store.env.delivered.get(store.partition)?.size ?? 0;
}
