// The journal writer of one owned partition: a transactional producer (transactional.id
// ticketing-cluster.<NAME>.p<p>, fenced in by ClusterKafka.take) that group-commits the
// partition's commits. One Kafka transaction:
//   1. one send of one segment message to journal partition p (its offset names the events),
//   2. one send per (event topic, partition), in parallel: never one sendBatch across leaders,
//      which duplicated records inside committed transactions (FINDINGS §2, kafkajs bug),
//   3. if the batch's last commit carries a snapshot: its chunks, one send each, and
//      sendOffsets setting the group's offset of journal p to the first chunk (the pointer),
//   4. commit. Only then do the commits of the batch resolve.
// A transaction is one at a time per producer (kafkajs), so commits queued meanwhile go in the
// next one: the write latency (20–200 ms on 3 brokers, FINDINGS §2) is paid per batch.
// Once a transaction fails the writer is dead for good: kafkajs leaves the producer stuck, and
// re-initialising it would fence the node that now owns p (the ping-pong of FINDINGS §1b).
import { performance } from 'node:perf_hooks';
import { Partitioners, type PartitionMetadata, type Producer, type Transaction } from 'kafkajs';
import type { Logger } from 'pino';
import type { EventCodec, KafkaMessage } from '../kafka/encode.js';
import { assert } from '../util/assert.js';
import { JournalWriteError, PartitionFencedError } from './errors.js';
import { packed_array_length, segment_message, snapshot_messages, journal_message_bytes_max } from './journal_format.js';
import type { JournalWire } from './wire.js';

/** Commits one transaction takes at most (more wait for the next one). */
export const transaction_commits_max = 512;
/** Record bytes one transaction takes at most (at least one commit always goes): the segment
 *  stays far below the topic's max.message.bytes. */
export const transaction_record_bytes_max = 1024 * 1024;
/** Broker-side wait for the in-sync replicas of one produce (acks -1). */
export const produce_ack_timeout_ms = 10_000;
/** kafkajs' INVALID_PRODUCER_EPOCH: another producer initialised this transactional id. Kafka
 *  3.9 answers it (not PRODUCER_FENCED, 90) to the old protocol versions kafkajs speaks. */
const invalid_producer_epoch = 47;
const producer_fenced = 90;

export interface WriterDeps {
  partition: number;
  producer: Producer;
  cluster: string;
  journal_topic: string;
  group_id: string;
  topic_prefix: string;
  codec: EventCodec;
  /** Event topic → its partition count (read at start: the topic's truth). */
  event_partitions: ReadonlyMap<string, number>;
  log: Logger;
}

interface Pending {
  wire: JournalWire;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** An event ready but for its id, which needs the segment's offset. */
interface Prepared { message: KafkaMessage; partition: number }

export class PartitionWriter {
  readonly partition: number;
  /** For metrics: called after each transaction. */
  on_write?: (o: { duration_s: number; records: number; commits: number }) => void;
  private readonly queue: Pending[] = [];
  private running: Promise<void> | undefined;
  private failure: Error | undefined;
  private cleanup: Promise<void> | undefined;
  private open: Transaction | undefined;

  constructor(private readonly deps: WriterDeps) {
    assert(Number.isInteger(deps.partition) && deps.partition >= 0, 'a partition number');
    this.partition = deps.partition;
  }

  get dead(): boolean {
    return this.failure !== undefined;
  }

  commit(commit: JournalWire): Promise<void> {
    assert(commit.partition === this.partition, `a commit of p${commit.partition} to p${this.partition}'s writer`);
    if (this.failure !== undefined) return Promise.reject(this.dead_error());
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ wire: commit, resolve, reject });
      this.kick();
    });
  }

  /** Starts the loop unless it runs; again when it ends (a commit may have been queued after
   *  its last look at the queue, by a caller resumed from the batch it resolved). */
  private kick(): void {
    if (this.running !== undefined || this.queue.length === 0 || this.failure !== undefined) return;
    this.running = this.loop().finally(() => {
      this.running = undefined;
      this.kick();
    });
  }

  /** Refuses later commits; the transaction in flight completes (or fails) as it would. */
  async close(): Promise<void> {
    if (this.failure === undefined) this.fail(new JournalWriteError(`p${this.partition}'s writer is closed`), [], false);
    await this.running;
    await this.cleanup;
  }

  private dead_error(): Error {
    const why = this.failure?.message ?? 'dead';
    const Class = this.failure instanceof PartitionFencedError ? PartitionFencedError : JournalWriteError;
    return new Class(`p${this.partition}'s journal writer is dead: ${why}`);
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0 && this.failure === undefined) {
      const batch = this.take_batch();
      try {
        await this.transact(batch.map((b) => b.wire));
      } catch (error) {
        this.fail(classify(this.partition, error), batch, true);
        return;
      }
      for (const b of batch) b.resolve();
    }
  }

  /** The next batch: in order, bounded, ending at the first commit with a snapshot (records
   *  after a snapshot must come after its chunks in the journal). */
  private take_batch(): Pending[] {
    let bytes = 0;
    let n = 0;
    for (const p of this.queue) {
      const size = p.wire.records?.byteLength ?? 0;
      if (n > 0 && (n >= transaction_commits_max || bytes + size > transaction_record_bytes_max)) break;
      bytes += size;
      n++;
      if (p.wire.snapshot !== null) break;
    }
    return this.queue.splice(0, n);
  }

  /** `failed`: a transaction failed (abort it); else closed (let the one in flight finish). */
  private fail(error: Error, batch: Pending[], failed: boolean): void {
    this.failure = error;
    for (const b of batch) b.reject(error);
    for (const q of this.queue.splice(0)) q.reject(this.dead_error());
    const open = failed ? this.open : undefined;
    const running = failed ? undefined : this.running;
    this.open = undefined;
    if (failed) this.deps.log.warn({ partition: this.partition, err: error.message }, 'cluster journal writer failed');
    // Abort (best effort: refused when fenced) so read_committed readers need not wait for
    // the transaction timeout, then drop the producer; never re-initialise it.
    this.cleanup = (async () => {
      await running;
      if (open?.isActive() === true) await open.abort().catch(() => undefined);
      await this.deps.producer.disconnect().catch(() => undefined);
    })();
  }

  private async transact(wires: JournalWire[]): Promise<void> {
    const t0 = performance.now();
    const prepared = this.prepare(wires); // encoding errors before anything reaches Kafka
    const records = wires.flatMap((w) => (w.records === null ? [] : [w.records]));
    const segment = segment_message(this.partition, records);
    if (segment.value.byteLength >= journal_message_bytes_max) {
      throw new JournalWriteError(`p${this.partition}: a segment of ${segment.value.byteLength} bytes exceeds ${journal_message_bytes_max}`);
    }
    const tx = await this.deps.producer.transaction();
    this.open = tx;
    const offset = await this.send_journal(tx, segment);
    await this.send_events(tx, prepared, offset);
    const snapshot = wires[wires.length - 1]?.snapshot ?? null;
    if (snapshot !== null) await this.send_snapshot(tx, snapshot);
    await tx.commit();
    this.open = undefined;
    const count = records.reduce((sum, r) => sum + packed_array_length(r), 0);
    this.on_write?.({ duration_s: (performance.now() - t0) / 1000, records: count, commits: wires.length });
  }

  private prepare(wires: JournalWire[]): Prepared[] {
    const out: Prepared[] = [];
    for (const wire of wires) {
      for (const entry of wire.outbox) {
        let message: KafkaMessage;
        try {
          const record = { ...entry, event_id: '', created_ms: wire.now_ms };
          message = this.deps.codec.to_message(record, this.deps.topic_prefix);
        } catch (error) {
          throw new JournalWriteError(`p${this.partition}: event ${entry.type} not encodable: ${String(error)}`, { cause: error });
        }
        const count = this.deps.event_partitions.get(message.topic);
        if (count === undefined) throw new JournalWriteError(`p${this.partition}: no event topic ${message.topic}`);
        out.push({ message, partition: partition_of(message.topic, message.key, count) });
      }
    }
    return out;
  }

  private async send_journal(tx: Transaction, segment: ReturnType<typeof segment_message>): Promise<bigint> {
    const [meta, ...more] = await tx.send({
      topic: this.deps.journal_topic, acks: -1, timeout: produce_ack_timeout_ms, messages: [segment],
    });
    assert(meta !== undefined && more.length === 0 && meta.partition === this.partition, 'one journal batch');
    const base = meta.baseOffset ?? meta.offset;
    assert(base !== undefined, 'the broker names the offset');
    return BigInt(base);
  }

  private async send_events(tx: Transaction, prepared: Prepared[], offset: bigint): Promise<void> {
    const groups = new Map<string, { topic: string; partition: number; messages: KafkaMessage[] }>();
    prepared.forEach(({ message, partition }, i) => {
      const id = `${this.deps.cluster}-p${this.partition}-${offset}-${i}`;
      const at = `${message.topic}\u0000${partition}`;
      let group = groups.get(at);
      if (group === undefined) groups.set(at, (group = { topic: message.topic, partition, messages: [] }));
      group.messages.push({ ...message, headers: { ...message.headers, 'event-id': id } });
    });
    const sends = [...groups.values()].map((g) => tx.send({
      topic: g.topic, acks: -1, timeout: produce_ack_timeout_ms,
      messages: g.messages.map((m) => ({ partition: g.partition, key: m.key, value: m.value, headers: m.headers })),
    }));
    // Every send settles before the outcome is decided (no send left running unobserved).
    const settled = await Promise.allSettled(sends);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
  }

  private async send_snapshot(tx: Transaction, snapshot: Uint8Array): Promise<void> {
    let first: bigint | undefined;
    for (const chunk of snapshot_messages(this.partition, snapshot)) {
      const offset = await this.send_journal(tx, chunk);
      first ??= offset;
    }
    assert(first !== undefined, 'a snapshot has a chunk');
    await tx.sendOffsets({
      consumerGroupId: this.deps.group_id,
      topics: [{ topic: this.deps.journal_topic, partitions: [{ partition: this.partition, offset: String(first) }] }],
    });
  }
}

/** kafkajs' default partitioner (murmur2 of the key), as the single node's emitter uses it. */
const default_partitioner = Partitioners.DefaultPartitioner();
const fake_metadata = new Map<number, PartitionMetadata[]>();

export function partition_of(topic: string, key: string, count: number): number {
  let metadata = fake_metadata.get(count);
  if (metadata === undefined) {
    metadata = Array.from({ length: count }, (_, partitionId) => ({
      partitionErrorCode: 0, partitionId, leader: 0, replicas: [0], isr: [0], offlineReplicas: [],
    }));
    fake_metadata.set(count, metadata);
  }
  return default_partitioner({ topic, partitionMetadata: metadata, message: { key, value: null } });
}

/** INVALID_PRODUCER_EPOCH anywhere in the error's chain → fenced; anything else a write error. */
export function classify(partition: number, error: unknown): Error {
  if (error instanceof PartitionFencedError || error instanceof JournalWriteError) return error;
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 8; depth++) {
    const { code, type } = e as Error & { code?: unknown; type?: unknown };
    if (code === invalid_producer_epoch || code === producer_fenced || type === 'INVALID_PRODUCER_EPOCH') {
      return new PartitionFencedError(`p${partition} was taken by another node (${e.message})`, { cause: error });
    }
    e = (e as Error & { originalError?: unknown }).originalError ?? e.cause;
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new JournalWriteError(`p${partition}: journal transaction failed: ${message}`, { cause: error });
}
