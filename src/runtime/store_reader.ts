// Tooling's read-only access to a store (keys: store_env.ts), from another process.
import type { Database, RootDatabase } from 'lmdb';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packr } from './codec.js';
import type { OutboxRecord } from './outbox.js';
import { open_read_only } from './store_env.js';
import { read_parked } from './store_outbox.js';

/**
 * A read-only view of one store from another process (tooling: `ticketing outbox tail`),
 * safe while the node runs: LMDB serves readers beside the writer, and a read-only handle can
 * write nothing. Each call reads from a fresh snapshot (lmdb-js renews its read transaction
 * after every tick).
 */
export class StoreReader {
  private readonly root: RootDatabase;
  private readonly outbox: Database<Buffer, [number, number]>;

  constructor(readonly path: string) {
    const data = join(path, 'data.mdb');
    if (!existsSync(data)) throw new Error(`${data} does not exist (has the node ever started?)`);
    ({ root: this.root, outbox: this.outbox } = open_read_only(path));
  }

  /** The newest `limit` outbox entries of a partition, oldest first. */
  outbox_last(partition: number, limit: number): { seq: number; record: OutboxRecord }[] {
    const out: { seq: number; record: OutboxRecord }[] = [];
    const newest = { start: [partition + 1], end: [partition], reverse: true, limit };
    for (const { key, value } of this.outbox.getRange(newest)) {
      out.push({ seq: key[1], record: packr.unpack(value) as OutboxRecord });
    }
    return out.reverse();
  }

  /** Outbox entries of a partition with seq > after_seq, oldest first, at most `limit`. */
  outbox_after(
    partition: number,
    after_seq: number,
    limit: number,
  ): { seq: number; record: OutboxRecord }[] {
    const out: { seq: number; record: OutboxRecord }[] = [];
    const range = { start: [partition, after_seq + 1], end: [partition + 1], limit };
    for (const { key, value } of this.outbox.getRange(range)) {
      out.push({ seq: key[1], record: packr.unpack(value) as OutboxRecord });
    }
    return out;
  }

  /** Parked entries of a partition (see PartitionStore.prepare_settle), oldest first. */
  parked(partition: number): { seq: number; record: OutboxRecord }[] {
    return read_parked(this.root, partition);
  }

  async close(): Promise<void> {
    await this.root.close();
  }
}
