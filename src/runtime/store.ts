// One LMDB environment per partition: the unit that is recovered, backed up and (later) moved
// between nodes. Three sub-databases:
//   journal  key = batch sequence (uint), value = msgpackr([record, ...]) of one commit
//   snapshot key = 0, value = msgpackr({ seq, state }) covering every batch <= seq
//   outbox   key = outbox sequence (uint), value = msgpackr(OutboxRecord)
// Journal batches at or below the snapshot's seq are deleted when the snapshot is written.
import { open, type Database, type RootDatabase } from 'lmdb';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from './assert.js';
import type { OutboxEntry } from './behaviour.js';
import { packr } from './protocol.js';

/** LMDB map size per partition. Sparse on disk; bounds what one partition may ever hold. */
export const partition_map_bytes_max = 2 * 1024 * 1024 * 1024;

export interface OutboxRecord extends OutboxEntry {
  /** Unique and stable across retries: consumers deduplicate on it. */
  event_id: string;
  created_ms: number;
}

export interface Recovered<Rec> {
  snapshot: unknown | undefined;
  snapshot_seq: number;
  tail: Rec[][];
  next_seq: number;
  next_outbox_seq: number;
}

export interface CommitInput<Rec> {
  records: Rec[];
  outbox: OutboxEntry[];
  now_ms: number;
  /** When given, replaces the snapshot; the journal up to and including this commit is dropped. */
  snapshot?: unknown;
}

export function partition_dir(data_dir: string, partition: number): string {
  return join(data_dir, 'partitions', `p${String(partition).padStart(4, '0')}`);
}

export class PartitionStore<Rec> {
  private readonly root: RootDatabase;
  private readonly journal: Database<Buffer, number>;
  private readonly snapshots: Database<Buffer, number>;
  readonly outbox: Database<Buffer, number>;
  private next_seq = 1;
  private next_outbox_seq = 1;

  constructor(
    readonly partition: number,
    data_dir: string,
    private readonly node_id: string,
  ) {
    const path = partition_dir(data_dir, partition);
    mkdirSync(path, { recursive: true });
    // overlappingSync off: a commit promise resolves only once the data is fsynced, so a reply
    // sent after it never acknowledges something a power cut could take back.
    this.root = open({ path, maxDbs: 4, mapSize: partition_map_bytes_max, overlappingSync: false, noSync: false });
    const binary = { encoding: 'binary' as const, keyEncoding: 'uint32' as const };
    this.journal = this.root.openDB<Buffer, number>({ name: 'journal', ...binary });
    this.snapshots = this.root.openDB<Buffer, number>({ name: 'snapshot', ...binary });
    this.outbox = this.root.openDB<Buffer, number>({ name: 'outbox', ...binary });
  }

  recover(): Recovered<Rec> {
    const raw = this.snapshots.get(0);
    let snapshot: unknown = undefined;
    let snapshot_seq = 0;
    if (raw !== undefined) {
      const decoded = packr.unpack(raw) as { seq: number; state: unknown };
      assert(Number.isInteger(decoded.seq) && decoded.seq >= 1, 'snapshot seq valid');
      snapshot = decoded.state;
      snapshot_seq = decoded.seq;
    }
    const tail: Rec[][] = [];
    let last = snapshot_seq;
    for (const { key, value } of this.journal.getRange({ start: snapshot_seq + 1 })) {
      assert(key === last + 1, `journal of partition ${this.partition} contiguous at ${key}`);
      tail.push(packr.unpack(value) as Rec[]);
      last = key;
    }
    this.next_seq = last + 1;
    let outbox_last = 0;
    for (const key of this.outbox.getKeys({ reverse: true, limit: 1 })) outbox_last = key;
    // The outbox sequence must never repeat an event id, even after every entry was drained.
    const meta_outbox = this.root.get('outbox_seq_floor') as number | undefined;
    this.next_outbox_seq = Math.max(outbox_last, meta_outbox ?? 0) + 1;
    assert(this.next_seq > snapshot_seq, 'next seq after snapshot');
    return { snapshot, snapshot_seq, tail, next_seq: this.next_seq, next_outbox_seq: this.next_outbox_seq };
  }

  /** One LMDB transaction: journal batch, outbox entries, optional snapshot. Durable on resolve. */
  async commit(input: CommitInput<Rec>): Promise<number> {
    assert(input.records.length > 0 || input.outbox.length > 0 || input.snapshot !== undefined, 'commit carries something');
    const seq = this.next_seq++;
    const outbox_first = this.next_outbox_seq;
    this.next_outbox_seq += input.outbox.length;
    const journal_value = packr.pack(input.records);
    const outbox_values = input.outbox.map((entry, i): Buffer => {
      const record: OutboxRecord = {
        ...entry,
        event_id: `${this.node_id}-p${this.partition}-${outbox_first + i}`,
        created_ms: input.now_ms,
      };
      return packr.pack(record);
    });
    const snapshot_value = input.snapshot === undefined ? undefined : packr.pack({ seq, state: input.snapshot });
    await this.root.transaction(() => {
      if (snapshot_value === undefined) {
        this.journal.put(seq, journal_value);
      } else {
        // The snapshot already contains this commit's records: no journal entry needed. The
        // covered keys are read inside the write transaction, where every earlier commit of this
        // environment (possibly still in flight when commit() was called) is already visible.
        this.snapshots.put(0, snapshot_value);
        for (const key of [...this.journal.getKeys({ end: seq })]) this.journal.remove(key);
      }
      for (let i = 0; i < outbox_values.length; i++) this.outbox.put(outbox_first + i, outbox_values[i]!);
      if (outbox_values.length > 0) this.root.put('outbox_seq_floor', outbox_first + outbox_values.length - 1);
    });
    return seq;
  }

  outbox_count(): number {
    return this.outbox.getCount();
  }

  /** created_ms of the oldest outbox entry, or 0 when the outbox is empty. */
  outbox_oldest_ms(): number {
    for (const { value } of this.outbox.getRange({ limit: 1 })) return (packr.unpack(value) as OutboxRecord).created_ms;
    return 0;
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
