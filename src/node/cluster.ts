// Cluster mode's part of the composition root: ties Kafka's ownership (src/cluster: the
// consumer group, a fenced writer per partition, restore from the journal topic) to the worker
// pool (partitions adopted and released at run time, commits sent to the writer) and to the
// forwarding sink (calls for partitions owned elsewhere go one hop to their owner).
//
// Per partition the node is in one of three states: not ours (forwarded, or UNAVAILABLE while
// the group rebalances), recovering (fence, read snapshot and journal tail, adopt), or served.
// Every change of state for one partition runs on that partition's own promise chain, so a
// release always completes before the next adopt of the same partition starts.
import type { Logger } from 'pino';
import type { TicketingProtocol } from '../actors/protocol.js';
import { ClusterKafka, type Assignment } from '../cluster/cluster_kafka.js';
import { PartitionFencedError, PartitionMovedError } from '../cluster/errors.js';
import { NotOwnerError } from '../cluster/forward_errors.js';
import { peer_key_of } from '../cluster/peer_auth.js';
import { PeerClients } from '../cluster/peer_clients.js';
import { start_peer_server } from '../cluster/peer_server.js';
import { ClusterSink, serve_local_only, type Ownership } from '../cluster/sink.js';
import { map_error } from '../grpc/status.js';
import * as grpc from '@grpc/grpc-js';
import type { PartitionWriter } from '../cluster/partition_writer.js';
import type { Metrics } from '../ops/metrics.js';
import type { WorkerPool } from '../runtime/pool.js';
import type { JournalWire } from '../runtime/protocol.js';
import type { WireError } from '../runtime/errors.js';
import { PartitionNotServedError } from '../runtime/errors.js';
import type { RequestSink } from '../runtime/client.js';
import { assert } from '../util/assert.js';
import { journal_partition_count } from '../cluster/topic_probe.js';
import { split_addr } from './addr.js';
import type { ServeConfig } from './config.js';

/** After a commit failed for a reason other than a fence (the broker timed out, a worker
 *  died), the partition is taken again by this node, if the group still says it is ours,
 *  after this pause: long enough that a flapping broker is not hammered with InitProducerId. */
export const retake_delay_ms = 500;

export interface ClusterStatus {
  name: string;
  node_id: string;
  generation: number;
  owned: number[];
  recovering: number[];
}

export interface RunningCluster {
  sink: RequestSink<unknown>;
  /** Partitions this node serves now (the settlement loop settles only these). */
  served(): number[];
  status(): ClusterStatus;
  /** In the group, and not recovering a partition it was assigned. */
  ready(): boolean;
  degraded(): string[];
  stop(): Promise<void>;
}

interface Parts {
  config: ServeConfig;
  node_id: string;
  partition_count: number;
  secret: Buffer;
  pool: WorkerPool;
  /** Rebuilds an owner's refusal as its class (the pool's revive: the behaviour's errors). */
  revive: (wire: WireError) => Error | undefined;
  /** The pool's on_journal calls through this (the pool starts before the cluster does). */
  journal_hook: JournalHook;
  metrics: Metrics;
  log: Logger;
}

/** Late binding of the pool's commit hook: set once the cluster is started. */
export interface JournalHook {
  handler: ((commit: JournalWire) => Promise<void>) | undefined;
}

/** What the glue knows per partition. */
class PartitionTable {
  assignment: Assignment | undefined;
  joined = false;
  readonly writers = new Map<number, PartitionWriter>();
  readonly recovering = new Set<number>();
  /** Writers of partitions being adopted: a timer the worker arms at adoption may commit
   *  before the adoption's answer has been seen here. */
  readonly adopting = new Map<number, PartitionWriter>();
  readonly chains = new Map<number, Promise<void>>();
  /** When ownership was last lost (revoke), for the failover histogram. */
  revoked_at_ms = 0;
  /** When the group coordinator last accepted this member's heartbeat (or assigned it). */
  heartbeat_ms = 0;

  constructor(readonly node_id: string, private readonly lease_ms: number) {}

  /** Kafka fences this node's writes once another owner takes a partition; nothing fences its
   *  reads. A node that was paused (SIGSTOP, a long GC) past its session may already have lost
   *  its partitions without knowing it (an expelled member hears of it only at its next
   *  heartbeat): so a read is answered from memory only while the last heartbeat is recent
   *  enough that the coordinator cannot have expelled this member yet. */
  lease_held(now_ms = Date.now()): boolean {
    return now_ms - this.heartbeat_ms < this.lease_ms;
  }

  /** p has a live writer here (whatever the lease says). */
  writing(p: number): boolean {
    const w = this.writers.get(p);
    return w !== undefined && !w.dead;
  }

  /** The partitions answered here, ascending. */
  owned(): number[] {
    return [...this.writers.keys()].filter((p) => this.served(p)).sort((a, b) => a - b);
  }

  /** p is answered here: a live writer, and the lease holds. */
  served(p: number): boolean {
    return this.writing(p) && this.lease_held();
  }

  mine(p: number, generation: number): boolean {
    const a = this.assignment;
    return a !== undefined && a.generation === generation && a.mine.includes(p);
  }

  then(p: number, step: () => Promise<void>): void {
    const chain = (this.chains.get(p) ?? Promise.resolve()).then(step);
    this.chains.set(p, chain.catch(() => undefined));
  }
}

export async function start_cluster(parts: Parts): Promise<RunningCluster> {
  const { config, pool, metrics, log } = parts;
  const cluster = config.cluster;
  const advertise = config.advertise_addr;
  assert(cluster !== undefined && advertise !== undefined, 'cluster mode has a name and an address');
  assert(config.kafka_brokers !== undefined, 'cluster mode has brokers');
  // The coordinator expels a member session_timeout after the last heartbeat it received; the
  // response this node saw came later than that receipt, so the lease ends two heartbeat
  // intervals earlier (6000 - 2 x 1000 = 4000 ms by default).
  const lease_ms = config.cluster_session_timeout_ms - 2 * config.cluster_heartbeat_interval_ms;
  assert(lease_ms > 0, 'the read lease is positive');
  const table = new PartitionTable(parts.node_id, lease_ms);
  const key = peer_key_of(parts.secret);
  const ownership: Ownership = {
    local: (p) => table.served(p),
    remote: (p) => {
      const owner = table.assignment?.owners.get(p);
      return owner === undefined || owner.node_id === parts.node_id ? undefined : owner.advertise;
    },
  };
  const kafka: ClusterKafka = new ClusterKafka({
    cluster, brokers: config.kafka_brokers.split(','), node_id: parts.node_id, advertise,
    partition_count: parts.partition_count,
    replication_factor: config.cluster_replication_factor,
    min_insync_replicas: config.cluster_min_insync_replicas,
    topic_prefix: config.kafka_topic_prefix,
    session_timeout_ms: config.cluster_session_timeout_ms,
    heartbeat_interval_ms: config.cluster_heartbeat_interval_ms,
    max_wait_ms: config.cluster_max_wait_ms,
    transaction_timeout_ms: config.cluster_transaction_timeout_ms,
    log,
  }, {
    revoke_all: (reason) => revoke_all(table, pool, metrics, log, reason),
    assigned: (assignment) => assigned(table, kafka, pool, metrics, log, assignment),
    heartbeat: () => {
      table.heartbeat_ms = Date.now();
    },
  });
  parts.journal_hook.handler = (commit) => journal(table, kafka, pool, metrics, log, commit);
  pool.on('partitions_lost', (lost) => {
    for (const p of lost) lose(table, kafka, pool, metrics, log, p, undefined);
  });
  // A read answered from memory leaves only if the lease still holds when its answer is back:
  // a node resumed after a pause refuses what its workers read from stale state. A change
  // needs no such check: it was acknowledged by a Kafka commit, which a fenced writer cannot
  // make (and refusing it here would turn a durable change into an unknown outcome).
  const leased_read = async (p: number, body: unknown): Promise<unknown> => {
    const value = await pool.request(p, body);
    if (table.served(p)) return value;
    throw new NotOwnerError(`node ${parts.node_id} may have lost partition ${p} (no group heartbeat for ${lease_ms} ms); retry`);
  };
  // A change goes straight to the pool: no extra promise on the write path.
  const local: RequestSink<unknown> = {
    request: (p, body) => (is_read(body) ? leased_read(p, body) : pool.request(p, body)),
  };
  const peers = new PeerClients(key, parts.node_id, { revive: parts.revive });
  const a = split_addr(advertise, '--advertise');
  const server = await start_peer_server({
    addr: `${a.host}:${a.port}`, key, node_id: parts.node_id,
    // One hop: what the owner is asked it serves itself, or refuses; it never forwards again.
    serve: serve_local_only(local, ownership, parts.node_id),
    on_refused: (reason, peer) => log.warn({ reason, peer }, 'cluster: a peer call was refused'),
  });
  try {
    await kafka.start();
  } catch (error) {
    await server.close();
    peers.close();
    throw error;
  }
  const sink = new ClusterSink(local, ownership, peers, {
    on_forwarded: (code) => metrics.cluster.forwarded.inc({ code }),
    code_of: (error) => grpc.status[map_error(error).code],
  }, { deadline_ms_default: config.deadline_ms_max });
  return {
    sink,
    served: () => table.owned(),
    status: () => status_of(table, cluster),
    ready: () => table.joined && table.recovering.size === 0,
    degraded: () => degraded_of(table),
    stop: async () => {
      // Leaving the group first hands the partitions over at once (LeaveGroup: ~0.5 s)
      // instead of after a session timeout; then nothing of ours is written any more.
      await kafka.stop();
      for (const w of table.writers.values()) await w.close();
      table.writers.clear();
      await server.close();
      peers.close();
    },
  };
}

/** Request kinds that change nothing: answered from a partition's memory alone. */
const read_kinds: ReadonlySet<string> = new Set<keyof TicketingProtocol>([
  'get_event', 'availability', 'get_order', 'list_orders', 'open_settlements',
  // WatchAvailability's poll: a paused owner must not feed streams a picture it no longer owns.
  'watch_changes',
  // The waiting room's reads (GetPosition, WatchPosition's poll, GetFairness).
  'queue_position', 'queue_fairness',
]);

function is_read(body: unknown): boolean {
  const kind = (body as { k?: unknown } | null)?.k;
  return typeof kind === 'string' && read_kinds.has(kind);
}

/** Synchronous: from here on this node decides nothing for any partition until assigned. */
function revoke_all(
  table: PartitionTable, pool: WorkerPool, metrics: Metrics, log: Logger, reason: string,
): void {
  table.assignment = undefined;
  table.revoked_at_ms = Date.now();
  metrics.cluster.rebalances.inc();
  const held = [...table.writers.keys()];
  for (const p of held) {
    const writer = table.writers.get(p)!;
    table.writers.delete(p);
    drop_later(table, pool, p, writer);
  }
  table.recovering.clear();
  metrics.cluster.partitions_owned.set(0);
  if (held.length > 0) log.info({ reason, partitions: held }, 'cluster: partitions revoked');
}

function assigned(
  table: PartitionTable, kafka: ClusterKafka, pool: WorkerPool, metrics: Metrics, log: Logger,
  assignment: Assignment,
): void {
  table.assignment = assignment;
  table.joined = true;
  table.heartbeat_ms = Date.now();
  log.info({ generation: assignment.generation, mine: assignment.mine }, 'cluster: assigned');
  for (const p of assignment.mine) take(table, kafka, pool, metrics, log, p, assignment.generation);
}

/** Fence, restore, adopt, serve: on p's chain, abandoned as soon as the generation moves. */
function take(
  table: PartitionTable, kafka: ClusterKafka, pool: WorkerPool, metrics: Metrics, log: Logger,
  p: number, generation: number,
): void {
  table.recovering.add(p);
  table.then(p, async () => {
    if (!table.mine(p, generation)) return;
    const started_ms = Date.now();
    let writer: PartitionWriter | undefined;
    try {
      const taken = await kafka.take(p, generation);
      writer = taken.writer;
      if (!table.mine(p, generation)) return;
      table.adopting.set(p, writer);
      const { replayed_records } = await pool.adopt(taken.restore).finally(() => table.adopting.delete(p));
      if (!table.mine(p, generation)) {
        await pool.release(p);
        return;
      }
      // A commit refused while the adoption was answered (a due timer's) lost it again.
      if (writer.dead || !pool.served().includes(p)) throw new Error(`partition ${p} was lost while being adopted`);
      writer.on_write = (o) => {
        metrics.cluster.journal_write.observe(o.duration_s);
        metrics.cluster.journal_write_records.observe(o.records);
      };
      table.writers.set(p, writer);
      writer = undefined; // served now: closed by revoke or loss, not below
      table.recovering.delete(p);
      metrics.cluster.partitions_owned.set(table.writers.size);
      metrics.cluster.failover.observe((Date.now() - Math.min(table.revoked_at_ms || started_ms, started_ms)) / 1000);
      log.info({ partition: p, generation, replayed_records, take_ms: Date.now() - started_ms }, 'cluster: partition served');
    } catch (error) {
      if (pool.served().includes(p)) await pool.release(p);
      if (error instanceof PartitionMovedError || !table.mine(p, generation)) return; // a newer generation took over
      log.warn({ partition: p, generation, err: String(error) }, 'cluster: taking a partition failed; retrying');
      retake_later(table, kafka, pool, metrics, log, p, generation);
    } finally {
      if (writer !== undefined) await writer.close();
    }
  });
}

/** The pool's commit hook: the writer of a served partition makes it durable, or refuses. */
function journal(
  table: PartitionTable, kafka: ClusterKafka, pool: WorkerPool, metrics: Metrics, log: Logger,
  commit: JournalWire,
): Promise<void> {
  const writer = table.writers.get(commit.partition) ?? table.adopting.get(commit.partition);
  if (writer === undefined || writer.dead) {
    return Promise.reject(new PartitionNotServedError(
      `partition ${commit.partition} moved while the request was decided; it was not applied, retry`));
  }
  return writer.commit(commit).catch((error: unknown) => {
    lose(table, kafka, pool, metrics, log, commit.partition, error);
    throw error;
  });
}

/** p is no longer served here: a fenced writer waits for the group to reassign (re-init would
 *  fence the new owner back: the spike's ping-pong); any other loss is taken again at once if
 *  the group still says p is ours. */
function lose(
  table: PartitionTable, kafka: ClusterKafka, pool: WorkerPool, metrics: Metrics, log: Logger,
  p: number, error: unknown,
): void {
  const writer = table.writers.get(p);
  if (writer === undefined) return;
  table.writers.delete(p);
  metrics.cluster.partitions_owned.set(table.writers.size);
  const generation = table.assignment?.generation;
  drop_later(table, pool, p, writer);
  if (error instanceof PartitionFencedError || generation === undefined) {
    log.warn({ partition: p }, 'cluster: fenced by a newer owner; waiting for the group');
    return;
  }
  log.warn({ partition: p, err: String(error) }, 'cluster: partition lost; taking it again');
  retake_later(table, kafka, pool, metrics, log, p, generation);
}

/** On p's chain: its writer closed (in-flight transactions finish), then the pool forgets p. */
function drop_later(table: PartitionTable, pool: WorkerPool, p: number, writer: PartitionWriter): void {
  table.then(p, async () => {
    await writer.close();
    if (pool.served().includes(p)) await pool.release(p);
  });
}

/** Takes p again after retake_delay_ms, if the group still says it is ours and nobody did. */
function retake_later(
  table: PartitionTable, kafka: ClusterKafka, pool: WorkerPool, metrics: Metrics, log: Logger,
  p: number, generation: number,
): void {
  setTimeout(() => {
    if (table.mine(p, generation) && !table.writing(p)) take(table, kafka, pool, metrics, log, p, generation);
  }, retake_delay_ms).unref();
}

function status_of(table: PartitionTable, name: string): ClusterStatus {
  return {
    name,
    node_id: table.node_id,
    generation: table.assignment?.generation ?? 0,
    owned: table.owned(),
    recovering: [...table.recovering].sort((a, b) => a - b),
  };
}

function degraded_of(table: PartitionTable): string[] {
  const out: string[] = [];
  if (!table.joined) out.push('joining the cluster group');
  else if (table.assignment === undefined) out.push('the cluster group is rebalancing');
  if (table.recovering.size > 0) out.push(`recovering partitions ${[...table.recovering].sort((a, b) => a - b).join(',')}`);
  return out;
}

/** What cluster mode needs before anything starts: refused with the flag to fix. */
export function check_cluster_config(config: ServeConfig, env = process.env): void {
  const name = config.cluster ?? '';
  // The name goes into topic names, a group id and transactional ids: Kafka's topic alphabet.
  if (!/^[A-Za-z0-9_-]{1,100}$/.test(name)) {
    throw new Error(`--cluster must be 1..100 of A-Z a-z 0-9 _ -, got ${JSON.stringify(name)}`);
  }
  if (config.kafka_brokers === undefined) throw new Error('--cluster needs --kafka BROKERS (the cluster lives in Kafka)');
  if (config.advertise_addr === undefined) throw new Error('--cluster needs --advertise HOST:PORT (where the other nodes forward calls)');
  split_addr(config.advertise_addr, '--advertise');
  // Tokens minted by one node must be accepted by all, and the peer channel's key derives
  // from it: a secret made up per data directory would split the cluster.
  if ((env['TICKETING_AUTH_SECRET'] ?? '') === '') {
    throw new Error('--cluster needs TICKETING_AUTH_SECRET, the same on every node of the cluster');
  }
  const rf = config.cluster_replication_factor;
  const isr = config.cluster_min_insync_replicas;
  if (!(Number.isInteger(rf) && Number.isInteger(isr) && isr >= 1 && isr <= rf)) {
    throw new Error(`--min-insync-replicas (${isr}) must be 1..--replication-factor (${rf})`);
  }
}

/** The cluster's partition count: its journal topic's when it exists, else --partitions (or
 *  the cluster default) for the topic the first node creates. */
export async function resolve_partition_count(config: ServeConfig): Promise<number> {
  assert(config.cluster !== undefined && config.kafka_brokers !== undefined, 'cluster mode');
  const existing = await journal_partition_count(config.kafka_brokers.split(','), config.cluster);
  if (existing !== undefined && config.partitions !== undefined && existing !== config.partitions) {
    throw new Error(`--partitions ${config.partitions}, but cluster ${config.cluster}'s journal topic has ${existing} partitions (fixed when the cluster was created)`);
  }
  return existing ?? config.partitions ?? config.cluster_partition_count_default;
}
