// `ticketing outbox tail`: what the node would send (or has not yet sent) to Kafka, decoded.
// Prints the newest entries of every partition's outbox as JSON lines, oldest first; with
// follow, keeps printing entries as they are committed. Opens the stores read-only, so it works
// while the node runs (LMDB readers beside the writer) and when it is stopped. With a broker the
// emitter deletes entries once delivered, so a follower sees only those still waiting when it
// looks (every poll_ms): it shows the backlog, it is not a copy of the topic.
import { setTimeout as sleep } from 'node:timers/promises';
import { EventCodec } from '../kafka/encode.js';
import { topic_of } from '../kafka/topics.js';
import type { OutboxRecord } from '../runtime/outbox.js';
import { store_dir, store_of } from '../runtime/store_env.js';
import { StoreReader } from '../runtime/store_reader.js';
import { read_node_meta } from '../ops/data_dir.js';

/** Entries printed at most per partition per follow poll (the rest next poll). */
export const tail_follow_batch_max = 1_000;
export const tail_limit_max = 1_000_000;

export interface TailOptions {
  data_dir: string;
  limit: number;
  follow: boolean;
  /** List parked entries (records the emitter could not encode) instead of the outbox. */
  parked: boolean;
  topic_prefix: string;
  poll_ms: number;
  out: (line: string) => void;
  /** Ends a follow. */
  signal?: AbortSignal;
}

interface Located { partition: number; seq: number; record: OutboxRecord }

export function tail_line(codec: EventCodec, topic_prefix: string, { partition, seq, record }: Located): string {
  const line: Record<string, unknown> = {
    event_id: record.event_id,
    topic: topic_of(topic_prefix, String(record.type)),
    key: record.key,
    created: new Date(record.created_ms).toISOString(),
    created_ms: record.created_ms,
    partition,
    seq,
    type: record.type,
  };
  try {
    // Encoded then decoded: exactly what a consumer would get from the topic.
    line['message'] = codec.decode(record.type, codec.encode(record.type, record.payload));
  } catch (error) {
    line['error'] = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    line['payload'] = record.payload;
  }
  return JSON.stringify(line);
}

const by_age = (a: Located, b: Located): number => a.record.created_ms - b.record.created_ms || a.partition - b.partition || a.seq - b.seq;

export async function outbox_tail(options: TailOptions): Promise<void> {
  if (!Number.isInteger(options.limit) || options.limit < 1 || options.limit > tail_limit_max) throw new Error(`--limit must be 1..${tail_limit_max}`);
  if (options.parked && options.follow) throw new Error('--follow does not apply to --parked');
  const meta = read_node_meta(options.data_dir);
  const codec = new EventCodec();
  const readers = Array.from({ length: meta.store_count }, (_, s) => new StoreReader(store_dir(options.data_dir, s)));
  const reader_of = (p: number) => readers[store_of(p, meta.store_count)]!;
  const partitions = Array.from({ length: meta.partition_count }, (_, p) => p);
  const print = (entries: Located[]) => {
    for (const entry of entries.sort(by_age)) options.out(tail_line(codec, options.topic_prefix, entry));
  };
  try {
    // The newest `limit` of the node: the newest `limit` of each partition hold them all.
    const newest: Located[] = [];
    const cursors = new Map<number, number>();
    for (const p of partitions) {
      const entries = options.parked ? reader_of(p).parked(p).slice(-options.limit) : reader_of(p).outbox_last(p, options.limit);
      for (const { seq, record } of entries) newest.push({ partition: p, seq, record });
      cursors.set(p, entries.length === 0 ? 0 : entries[entries.length - 1]!.seq);
    }
    print(newest.sort(by_age).slice(-options.limit));
    const aborted = (): boolean => options.signal?.aborted === true;
    while (options.follow && !aborted()) {
      await sleep(options.poll_ms, undefined, { signal: options.signal }).catch(() => undefined);
      if (aborted()) break;
      const fresh: Located[] = [];
      for (const p of partitions) {
        const entries = reader_of(p).outbox_after(p, cursors.get(p)!, tail_follow_batch_max);
        for (const { seq, record } of entries) fresh.push({ partition: p, seq, record });
        if (entries.length > 0) cursors.set(p, entries[entries.length - 1]!.seq);
      }
      print(fresh);
    }
  } finally {
    for (const reader of readers) await reader.close();
  }
}
