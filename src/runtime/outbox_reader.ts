// Reads the partitions' outboxes straight from their LMDB environments, on whatever thread
// holds it (the Kafka emitter's own thread): lmdb-js shares one native environment per path
// across the threads of a process, so this is a second handle on the stores the partition
// workers write, never a second writer. Each read sees committed transactions only (lmdb-js
// renews its read transaction once per event-loop turn), so nothing leaves before its state
// change is durable. What it does not see: the owning worker's in-memory marks of delivered
// entries not yet deleted on disk (store_outbox.ts), which is why a reader keeps a cursor per
// partition (OutboxStoresReader.read's after_seq) and never re-reads what it had acknowledged.
// Ticket-agnostic: values come back packed as stored; the caller decodes them (codec.ts packr).
import { assert } from '../util/assert.js';
import { packr } from './codec.js';
import { outbox_read_batch_max, type OutboxItem, type OutboxRecord } from './outbox.js';
import { acquire_env, release_env, store_dir, store_of, type StoreEnv } from './store_env.js';

/** Where the outboxes live: what a reader on another thread needs to open them. */
export interface OutboxStoresConfig {
  data_dir: string;
  store_count: number;
  map_bytes: number;
  /** Partitions owned by each worker, by worker index. */
  partitions_by_worker: number[][];
}

export class OutboxStoresReader {
  private readonly envs = new Map<number, StoreEnv>();
  private closed = false;

  constructor(private readonly config: OutboxStoresConfig) {
    assert(config.store_count >= 1 && config.partitions_by_worker.length >= 1, 'stores and workers positive');
  }

  private env_of(partition: number): StoreEnv {
    assert(!this.closed, 'reader open');
    const store = store_of(partition, this.config.store_count);
    let env = this.envs.get(store);
    if (env === undefined) {
      // Same options as the writer's (acquire_env): lmdb-js hands back the process's one
      // native environment for this path.
      env = acquire_env(store_dir(this.config.data_dir, store), this.config.map_bytes);
      this.envs.set(store, env);
    }
    return env;
  }

  /** Up to `limit` committed entries of `partition` with seq > after_seq, in seq order. */
  read(partition: number, after_seq: number, limit: number): OutboxItem[] {
    assert(Number.isInteger(after_seq) && after_seq >= 0, 'cursor non-negative');
    assert(Number.isInteger(limit) && limit >= 1 && limit <= outbox_read_batch_max, 'read limit within outbox_read_batch_max');
    const env = this.env_of(partition);
    const out: OutboxItem[] = [];
    const range = { start: [partition, after_seq + 1], end: [partition + 1], limit };
    for (const { key, value } of env.outbox.getRange(range)) {
      assert(key[0] === partition && key[1] > after_seq, 'outbox read stays in its partition, after the cursor');
      out.push({ partition, seq: key[1], record: packr.unpack(value) as OutboxRecord });
    }
    assert(out.length <= limit, 'outbox read within its limit');
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const env of this.envs.values()) await release_env(env);
    this.envs.clear();
  }
}
