// Ownership of the cluster's partitions, through Kafka only. One kafkajs consumer per node in
// the group ticketing-cluster.<NAME>, subscribed to the journal topic: the group's assignment
// IS the ownership (FINDINGS §4: kafkajs has no manual assign, so the same consumer also reads
// the journal back when a partition is taken, and nothing else; it is paused otherwise).
// kafkajs' protocol is eager: a live member emits REBALANCING before it rejoins, and the new
// generation completes only once every live member rejoined, so revoke_all runs before anyone
// is assigned. An expelled member (paused past its session) gets no REBALANCING, only a new
// GROUP_JOIN, so every GROUP_JOIN is "revoke all, then assign" and every partition, kept or
// not, is taken again (fence + restore). A paused zombie is stopped by the fence alone.
import { Kafka, logLevel, type Admin, type Consumer, type EachBatchPayload, type LogEntry } from 'kafkajs';
import type { Logger } from 'pino';
import { EventCodec } from '../kafka/encode.js';
import { topic_of } from '../kafka/topics.js';
import { kafka_topic_partitions_default } from '../kafka/sink.js';
import { assert } from '../util/assert.js';
import { sticky_assigner, type MemberInfo } from './assigner.js';
import { ClusterConfigError, PartitionMovedError } from './errors.js';
import { RestoreAssembler } from './journal_format.js';
import { PartitionWriter } from './partition_writer.js';
import { read_owners, type OwnerInfo } from './owners.js';
import { ensure_topics, type TopicSpec } from './topics.js';
import type { AdoptWire } from './wire.js';

export interface ClusterKafkaOptions {
  cluster: string;             // NAME
  brokers: string[];
  node_id: string;             // stable per data dir
  advertise: string;           // HOST:PORT peers forward to (carried in group member userData)
  partition_count: number;     // created with it; an existing topic must match, else refused
  replication_factor: number;  // default 3 (min(3, brokers) is NOT silently applied: checked)
  min_insync_replicas: number; // default 2
  topic_prefix: string;        // event topics (same as single node's --kafka-topic-prefix)
  session_timeout_ms: number;  // 6000 (broker floor)
  heartbeat_interval_ms: number; // 1000
  max_wait_ms: number;         // 250..500 (heartbeats ride the fetch loop)
  transaction_timeout_ms: number; // ~15000
  log: Logger;                 // pino
}

export type { OwnerInfo } from './owners.js';
export interface Assignment {
  /** Increments on every GROUP_JOIN this node sees. */
  generation: number;
  mine: number[];
  /** Every partition → its owner in this generation (from describeGroups member userData). */
  owners: Map<number, OwnerInfo>;
}

export interface MembershipHandlers {
  /** Synchronous, on REBALANCING and at the start of every GROUP_JOIN: stop deciding all. */
  revoke_all(reason: string): void;
  /** After a GROUP_JOIN and the owners map is read. */
  assigned(assignment: Assignment): void;
}

export const journal_topic_of = (cluster: string): string => `ticketing-cluster.${cluster}.journal`;
export const group_id_of = (cluster: string): string => `ticketing-cluster.${cluster}`;
export const transactional_id_of = (cluster: string, p: number): string => `ticketing-cluster.${cluster}.p${p}`;

/** Journal partitions at most (one producer, and its sockets, per owned partition). */
export const cluster_partitions_max = 256;
/** kafkajs sends heartbeats only from its fetch loop: the fetch wait adds to the failure
 *  detection (8.6 s at 5000 against 5.6 s at 500: FINDINGS §3). */
export const max_wait_ms_min = 100;
export const max_wait_ms_max = 500;
/** Bounds how long a rejoining member may take (the eager protocol waits for all). */
export const rebalance_timeout_ms = 10_000;
/** The transactional producers' back-off: ~10 ms first (CONCURRENT_TRANSACTIONS after each
 *  commit: p99 1.1 s at the default 300 ms), capped at 500 ms so a ~5 s broker failover is
 *  ridden out (the 30 s default cap turned it into 25 s), 40 retries ≈ 19 s at most. */
export const producer_retry = { initialRetryTime: 10, maxRetryTime: 500, retries: 40 } as const;
const admin_retry = { initialRetryTime: 100, maxRetryTime: 1_000, retries: 10 } as const;

interface Restore {
  partition: number;
  from: bigint;
  end: bigint;
  assembler: RestoreAssembler;
  resolve: () => void;
  reject: (error: Error) => void;
}

function log_creator(log: Logger) {
  return () => ({ namespace, label, log: entry }: LogEntry) => {
    const { message, timestamp: _timestamp, logger: _logger, ...rest } = entry;
    log.debug({ kafkajs: namespace, kafkajs_level: label, ...rest }, message);
  };
}

export function check_cluster_options(o: ClusterKafkaOptions): void {
  const bad = (what: string): never => { throw new ClusterConfigError(what); };
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(o.cluster)) bad(`--cluster takes 1..100 letters, digits, '_' or '-', got ${JSON.stringify(o.cluster)}`);
  if (o.brokers.length === 0) bad('--kafka needs at least one broker');
  if (o.node_id === '' || o.advertise === '') bad('a node id and an advertise address are needed');
  const int = (name: string, v: number, lo: number, hi: number): void => {
    if (!Number.isInteger(v) || v < lo || v > hi) bad(`${name} must be a whole number from ${lo} to ${hi}, got ${v}`);
  };
  int('partitions', o.partition_count, 1, cluster_partitions_max);
  int('replication factor', o.replication_factor, 1, 9);
  int('min.insync.replicas', o.min_insync_replicas, 1, o.replication_factor);
  int('session timeout (ms)', o.session_timeout_ms, 6_000, 300_000);
  int('heartbeat interval (ms)', o.heartbeat_interval_ms, 100, Math.floor(o.session_timeout_ms / 3));
  int('fetch max wait (ms)', o.max_wait_ms, max_wait_ms_min, max_wait_ms_max);
  int('transaction timeout (ms)', o.transaction_timeout_ms, 1_000, 900_000);
}

/** Tries of describeGroups after a join before this node falls back to knowing only its own
 *  partitions (it still serves them; forwarding to the others waits for the next join). */
export const owners_read_tries_max = 20;
const owners_retry_ms = 100;

export class ClusterKafka {
  private readonly kafka: Kafka;
  private readonly tx_kafka: Kafka;
  private readonly admin: Admin;
  private consumer: Consumer | undefined;
  private readonly codec = new EventCodec();
  readonly journal_topic: string;
  readonly group_id: string;
  private event_partitions = new Map<string, number>();
  /** GROUP_JOINs seen; `epoch` also moves on every revocation (a take of an older one fails). */
  private generation = 0;
  private epoch = 0;
  /** The assignment take() may act on: set by assigned(), cleared by every revocation. */
  private current: { epoch: number; generation: number; mine: Set<number> } | undefined;
  private previous: number[] = [];
  private readonly restores = new Map<number, Restore>();
  private readonly writers = new Map<number, PartitionWriter>();
  private first_assigned: { promise: Promise<void>; resolve: () => void };
  private stopped = false;

  constructor(private readonly options: ClusterKafkaOptions, private readonly handlers: MembershipHandlers) {
    check_cluster_options(options);
    this.journal_topic = journal_topic_of(options.cluster);
    this.group_id = group_id_of(options.cluster);
    const common = { brokers: options.brokers, logLevel: logLevel.INFO, logCreator: log_creator(options.log) };
    this.kafka = new Kafka({ ...common, clientId: `ticketing-${options.node_id}`, retry: admin_retry });
    this.tx_kafka = new Kafka({ ...common, clientId: `ticketing-${options.node_id}-tx`, retry: producer_retry });
    this.admin = this.kafka.admin();
    let resolve = (): void => undefined;
    const promise = new Promise<void>((r) => { resolve = r; });
    this.first_assigned = { promise, resolve };
  }

  /** Creates/checks topics (journal: P partitions, RF, min.insync, retention -1; event topics),
   *  refuses a mismatch with a clear Error; connects; joins the group. */
  async start(): Promise<void> {
    assert(this.consumer === undefined && !this.stopped, 'started once');
    await this.admin.connect();
    this.event_partitions = await ensure_topics(this.admin, this.topic_specs());
    this.event_partitions.delete(this.journal_topic);
    const o = this.options;
    const consumer = this.kafka.consumer({
      groupId: this.group_id, sessionTimeout: o.session_timeout_ms, heartbeatInterval: o.heartbeat_interval_ms,
      rebalanceTimeout: rebalance_timeout_ms, maxWaitTimeInMs: o.max_wait_ms, readUncommitted: false,
      allowAutoTopicCreation: false,
      partitionAssigners: [sticky_assigner(this.journal_topic, o.partition_count, () => this.member_info())],
    });
    this.consumer = consumer;
    consumer.on(consumer.events.REBALANCING, () => this.revoke('rebalancing'));
    consumer.on(consumer.events.GROUP_JOIN, (e) => this.on_join(e.payload.memberId, e.payload.memberAssignment));
    consumer.on(consumer.events.CRASH, (e) => this.revoke(`consumer crashed: ${String(e.payload.error)}`));
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) => this.on_batch_end(e.payload.partition, e.payload.lastOffset));
    await consumer.connect();
    await consumer.subscribe({ topics: [this.journal_topic], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatch: (payload) => this.on_batch(payload) });
    await this.first_assigned.promise;
  }

  private topic_specs(): TopicSpec[] {
    const o = this.options;
    const replication = { replication_factor: o.replication_factor, min_insync_replicas: o.min_insync_replicas };
    const events = this.codec.known_types().map((type): TopicSpec => ({
      topic: topic_of(o.topic_prefix, type), partitions: kafka_topic_partitions_default, journal: false, ...replication,
    }));
    return [{ topic: this.journal_topic, partitions: o.partition_count, journal: true, ...replication }, ...events];
  }

  private member_info(): MemberInfo {
    return { node_id: this.options.node_id, advertise: this.options.advertise, previous: this.previous };
  }

  /** Synchronous: nothing is decided here from now on, and no take() of before completes. */
  private revoke(reason: string): void {
    this.epoch++;
    this.current = undefined;
    for (const r of this.restores.values()) r.reject(new PartitionMovedError(`p${r.partition}: ${reason} during its restore`));
    this.restores.clear();
    this.handlers.revoke_all(reason);
  }

  private on_join(member_id: string, assignment: Record<string, number[]>): void {
    this.generation++;
    this.revoke('group_join');
    this.consumer?.pause([{ topic: this.journal_topic }]); // read only while restoring
    const mine = [...(assignment[this.journal_topic] ?? [])].sort((a, b) => a - b);
    this.previous = mine;
    const generation = this.generation;
    const epoch = this.epoch;
    void this.announce(member_id, mine, generation, epoch).catch((error: unknown) => {
      this.options.log.error({ err: String(error), generation }, 'cluster assignment not announced');
    });
  }

  private async announce(member_id: string, mine: number[], generation: number, epoch: number): Promise<void> {
    let owners: Map<number, OwnerInfo> | undefined;
    for (let i = 0; i < owners_read_tries_max && owners === undefined && epoch === this.epoch; i++) {
      const read = await read_owners(this.admin, this.group_id, this.journal_topic, member_id, mine)
        .catch((error: unknown) => ({ kind: 'stale' as const, why: String(error) }));
      if (read.kind === 'owners') owners = read.owners;
      else {
        this.options.log.debug({ generation, why: read.why }, 'cluster owners not readable yet');
        if (read.why.startsWith('the group assigns')) return; // a later join is already done
        await new Promise((r) => setTimeout(r, owners_retry_ms));
      }
    }
    if (epoch !== this.epoch || this.stopped) return;
    if (owners === undefined) {
      this.options.log.warn({ generation }, 'cluster owners unknown: serving only this node\'s partitions');
      owners = new Map();
    }
    const me = { node_id: this.options.node_id, advertise: this.options.advertise };
    for (const p of mine) owners.set(p, me);
    this.current = { epoch, generation, mine: new Set(mine) };
    this.options.log.info({ generation, mine, owners: owners.size }, 'cluster partitions assigned');
    this.handlers.assigned({ generation, mine, owners });
    this.first_assigned.resolve();
  }

  /** Fences partition p (new transactional producer, InitProducerId), then reads what p is
   *  restored from: the latest snapshot and every journal segment after it, up to the end
   *  offset read after the fence. Rejects if `generation` is no longer current. */
  async take(p: number, generation: number): Promise<{ writer: PartitionWriter; restore: AdoptWire }> {
    const epoch = this.check_current(p, generation);
    await this.writers.get(p)?.close(); // this node's own older writer: fenced below anyway
    this.writers.delete(p);
    const producer = this.tx_kafka.producer({
      transactionalId: transactional_id_of(this.options.cluster, p), idempotent: true, maxInFlightRequests: 1,
      transactionTimeout: this.options.transaction_timeout_ms, retry: producer_retry, allowAutoTopicCreation: false,
    });
    try {
      await producer.connect();
      // InitProducerId = the fence: every later write of an older owner fails (code 47), and
      // its open transaction is aborted first. The abort of this empty one is local.
      await (await producer.transaction()).abort();
      this.check_epoch(p, epoch);
      // No open transaction on p remains after the init: the high watermark is the end.
      const end = await this.end_offset(p);
      const from = await this.snapshot_pointer(p);
      const restored = await this.read_journal(p, from, end);
      this.check_epoch(p, epoch);
      const writer = new PartitionWriter({
        partition: p, producer, cluster: this.options.cluster, journal_topic: this.journal_topic,
        group_id: this.group_id, topic_prefix: this.options.topic_prefix, codec: this.codec,
        event_partitions: this.event_partitions, log: this.options.log,
      });
      this.writers.set(p, writer);
      return { writer, restore: { partition: p, ...restored } };
    } catch (error) {
      await producer.disconnect().catch(() => undefined);
      throw error;
    }
  }

  private check_current(p: number, generation: number): number {
    const current = this.current;
    if (current === undefined || current.generation !== generation || !current.mine.has(p)) {
      throw new PartitionMovedError(`p${p} is not this node's in generation ${generation} (now ${this.generation})`);
    }
    return current.epoch;
  }

  private check_epoch(p: number, epoch: number): void {
    if (this.epoch !== epoch || this.stopped) throw new PartitionMovedError(`p${p} moved during its take`);
  }

  private async end_offset(p: number): Promise<bigint> {
    const offsets = await this.admin.fetchTopicOffsets(this.journal_topic);
    const high = offsets.find((o) => o.partition === p)?.high;
    assert(high !== undefined, `the journal has partition ${p}`);
    return BigInt(high);
  }

  /** The group's committed offset of journal p: chunk 0 of the latest snapshot; 0 if none. */
  private async snapshot_pointer(p: number): Promise<bigint> {
    const [topic] = await this.admin.fetchOffsets({ groupId: this.group_id, topics: [this.journal_topic] });
    const offset = topic?.partitions.find((q) => q.partition === p)?.offset ?? '-1';
    const value = BigInt(offset);
    return value < 0n ? 0n : value;
  }

  private read_journal(p: number, from: bigint, end: bigint): Promise<Omit<AdoptWire, 'partition'>> {
    const assembler = new RestoreAssembler(p);
    if (from >= end) return Promise.resolve(assembler.result());
    const consumer = this.consumer;
    assert(consumer !== undefined && !this.restores.has(p), 'one restore of p at a time, once started');
    return new Promise((resolve, reject) => {
      const restore: Restore = {
        partition: p, from, end, assembler, reject,
        resolve: () => {
          try {
            resolve(assembler.result());
          } catch (error) {
            reject(error instanceof Error ? error : new Error(String(error)));
          }
        },
      };
      this.restores.set(p, restore);
      consumer.seek({ topic: this.journal_topic, partition: p, offset: String(from) });
      consumer.resume([{ topic: this.journal_topic, partitions: [p] }]);
    });
  }

  private async on_batch({ batch }: EachBatchPayload): Promise<void> {
    const restore = this.restores.get(batch.partition);
    if (restore === undefined) return; // a fetch of before a pause: not read
    try {
      for (const m of batch.messages) {
        const offset = BigInt(m.offset);
        if (offset < restore.from || offset >= restore.end) continue;
        const headers: Record<string, string> = {};
        for (const [name, value] of Object.entries(m.headers ?? {})) headers[name] = String(value);
        restore.assembler.add({ offset: m.offset, value: m.value ?? Buffer.alloc(0), headers });
      }
    } catch (error) {
      this.end_restore(restore);
      restore.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Batches of only control records (markers, aborted data) count too: kafkajs emits this
   *  for them (their lastOffset is the high watermark - 1). */
  private on_batch_end(partition: number, last_offset: string): void {
    const restore = this.restores.get(partition);
    if (restore === undefined || BigInt(last_offset) + 1n < restore.end) return;
    this.end_restore(restore);
    restore.resolve();
  }

  private end_restore(restore: Restore): void {
    this.restores.delete(restore.partition);
    this.consumer?.pause([{ topic: this.journal_topic, partitions: [restore.partition] }]);
  }

  /** Leaves the group (clean: others take over in ~0.5 s); closes this node's writers. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.revoke('stop');
    this.first_assigned.resolve();
    await Promise.all([...this.writers.values()].map((w) => w.close()));
    this.writers.clear();
    await this.consumer?.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
  }
}
