// Cluster pieces of the bench (bench/sections/cluster.ts): three KRaft brokers from
// scripts/kafka, cluster node processes started as the contract's §5 says (`serve --cluster`),
// what their /readyz JSON says they own, and unary calls from the bench process itself.
import * as grpc from '@grpc/grpc-js';
import { readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { partition_of } from '../src/runtime/partition.js';
import {
  catalog_proto, client_ctor, event_wire, inventory_proto, load_protos, repo_root, seats_of,
  type Layout,
} from './common.js';
import { cli, sleep, start_process, type Running } from './harness/processes.js';

// ---------------------------------------------------------------------------------------------
// Brokers

export interface BenchBrokerNode { readonly pid: number | undefined; running(): boolean }
export interface BenchKafkaCluster {
  /** The bootstrap list, 'HOST:PORT,HOST:PORT,...'. */
  brokers: string;
  nodes: BenchBrokerNode[];
  replicas: { factor: number; min_insync: number };
  /** node<i>/data under it: broker i's log dirs. */
  work_dir: string;
  stop(): Promise<void>;
}

/**
 * Bytes of the log segments (*.log) of every topic partition in broker 1's data dir, by topic
 * (with 3 brokers and 3 replicas broker 1 holds every partition). What a Kafka write carries,
 * snapshots and transaction markers included, measured as the difference of two calls.
 */
export function topic_log_bytes(kafka: BenchKafkaCluster): Map<string, number> {
  const data = join(kafka.work_dir, 'node1', 'data');
  const bytes = new Map<string, number>();
  for (const entry of readdirSync(data, { withFileTypes: true })) {
    const m = /^(.+)-(\d+)$/.exec(entry.name);
    if (!entry.isDirectory() || m === null || m[1]!.startsWith('__')) continue;
    let total = 0;
    for (const file of readdirSync(join(data, entry.name))) {
      if (file.endsWith('.log')) total += statSync(join(data, entry.name, file)).size;
    }
    bytes.set(m[1]!, (bytes.get(m[1]!) ?? 0) + total);
  }
  return bytes;
}

/** `count` brokers as one KRaft cluster (scripts/kafka/broker.mjs start_cluster), data under
 *  `work_dir`. broker.mjs kills its JVMs on process exit, so a bench that dies leaks none. */
export async function start_bench_kafka(work_dir: string, count: number):
  Promise<BenchKafkaCluster> {
  const script = join(repo_root, 'scripts', 'kafka', 'broker.mjs');
  const module = (await import(pathToFileURL(script).href)) as {
    start_cluster(count: number, options: { work_dir: string }): Promise<BenchKafkaCluster>;
  };
  return module.start_cluster(count, { work_dir });
}

/** A loopback port free right now (the node binds it a moment later: a small race, as for the
 *  brokers' ports). Fixed ports let a killed node come back on the same addresses. */
export function free_port(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Nodes

export interface ClusterNode {
  name: string;
  data_dir: string;
  grpc_port: number;
  http_port: number;
  /** --advertise: the peer listener other nodes forward to. */
  peer_port: number;
  /** The process now, undefined while killed. */
  running: Running | undefined;
}

export interface ClusterShape {
  cluster: string;
  brokers: string;
  partitions: number;
  secret: string;
  start_timeout_ms: number;
}

export async function new_cluster_node(name: string, data_dir: string): Promise<ClusterNode> {
  return {
    name, data_dir, grpc_port: await free_port(), http_port: await free_port(),
    peer_port: await free_port(), running: undefined,
  };
}

/** The node's `serve` line as contract §5 gives it; the same one again after a kill. */
export function cluster_node_args(node: ClusterNode, shape: ClusterShape): string[] {
  return [
    cli, 'serve', '--cluster', shape.cluster, '--kafka', shape.brokers,
    '--advertise', `127.0.0.1:${node.peer_port}`, '--grpc', `127.0.0.1:${node.grpc_port}`,
    '--http', `127.0.0.1:${node.http_port}`, '--data', node.data_dir,
    '--partitions', String(shape.partitions), '--workers', '1',
  ];
}

export async function start_cluster_node(node: ClusterNode, shape: ClusterShape):
  Promise<Running> {
  const env = { ...process.env, TICKETING_AUTH_SECRET: shape.secret };
  node.running = await start_process(
    node.name, cluster_node_args(node, shape), env, shape.start_timeout_ms);
  return node.running;
}

export const grpc_addr = (node: ClusterNode) => `127.0.0.1:${node.grpc_port}`;

// ---------------------------------------------------------------------------------------------
// What each node says it owns: GET /readyz, accept: application/json (contract §5)

export interface NodeView {
  status: number;
  ready: boolean;
  node_id: string;
  generation: number;
  owned: number[];
  recovering: number[];
}

const is_int_array = (x: unknown): x is number[] =>
  Array.isArray(x) && x.every((v) => Number.isInteger(v));

/** The view in a /readyz JSON body, or a sentence saying what is wrong with it. */
export function parse_view(status: number, body: unknown): NodeView | string {
  if (typeof body !== 'object' || body === null) return `body is not an object`;
  const ready = 'ready' in body ? body.ready : undefined;
  const cluster = 'cluster' in body ? body.cluster : undefined;
  if (typeof ready !== 'boolean') return 'no boolean "ready"';
  if (typeof cluster !== 'object' || cluster === null) return 'no "cluster" object';
  const field = (name: string): unknown =>
    (name in cluster ? (cluster as Record<string, unknown>)[name] : undefined);
  const [node_id, generation, owned, recovering] =
    ['node_id', 'generation', 'owned', 'recovering'].map(field);
  if (typeof node_id !== 'string') return 'no string cluster.node_id';
  if (typeof generation !== 'number') return 'no number cluster.generation';
  if (!is_int_array(owned) || !is_int_array(recovering)) {
    return 'cluster.owned / cluster.recovering are not integer arrays';
  }
  return { status, ready, node_id, generation, owned, recovering };
}

/** The node's view, or a sentence saying why there is none (down, slow, not JSON). */
export async function read_view(node: ClusterNode, timeout_ms = 2000): Promise<NodeView | string> {
  if (node.running === undefined) return 'not running';
  try {
    const response = await fetch(`http://127.0.0.1:${node.http_port}/readyz`, {
      headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeout_ms),
    });
    const text = await response.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return `not JSON (${response.status}): ${text.slice(0, 120).trim()}`;
    }
    return parse_view(response.status, body);
  } catch (error) {
    return `no answer: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/**
 * Why `views` is not a settled cluster, or undefined when it is: every node ready, owning at
 * least one partition, recovering none, and the owned lists a partition of 0..P-1 (each
 * partition exactly once).
 */
export function unsettled(views: (NodeView | string)[], partitions: number): string | undefined {
  const seen = new Map<number, number>();
  for (const [i, v] of views.entries()) {
    if (typeof v === 'string') return `node ${i}: ${v}`;
    if (!v.ready) return `node ${i}: not ready (${v.status})`;
    if (v.recovering.length > 0) return `node ${i}: recovering ${v.recovering.join(',')}`;
    if (v.owned.length === 0) return `node ${i}: owns nothing`;
    for (const p of v.owned) {
      if (seen.has(p)) return `partition ${p} owned by nodes ${seen.get(p)} and ${i}`;
      seen.set(p, i);
    }
  }
  for (let p = 0; p < partitions; p++) if (!seen.has(p)) return `partition ${p} owned by none`;
  if (seen.size !== partitions) return `owned partitions outside 0..${partitions - 1}`;
  return undefined;
}

export interface Settled { views: NodeView[]; waited_ms: number }

/**
 * Polls every node's view until the cluster is settled for `polls_needed` polls in a row with no
 * node's generation changing (a rebalance between two polls restarts the count); throws after
 * `bound_ms` with the last reason.
 */
export async function wait_settled(
  nodes: ClusterNode[], partitions: number, bound_ms: number, polls_needed = 3,
): Promise<Settled> {
  const poll_interval_ms = 100;
  const started = performance.now();
  let streak = 0;
  let last_generations = '';
  let reason = 'not polled';
  while (performance.now() - started < bound_ms) {
    const views = await Promise.all(nodes.map((n) => read_view(n)));
    const problem = unsettled(views, partitions);
    const generations = views.map((v) => (typeof v === 'string' ? '-' : v.generation)).join(',');
    if (problem === undefined && generations === last_generations) streak++;
    else streak = problem === undefined ? 1 : 0;
    last_generations = generations;
    reason = problem ?? 'settled';
    if (streak >= polls_needed) {
      return { views: views as NodeView[], waited_ms: performance.now() - started };
    }
    await sleep(poll_interval_ms);
  }
  throw new Error(`cluster not settled within ${bound_ms} ms: ${reason}`);
}

/** Partition -> index of the node owning it, in settled views. */
export function owners_of(views: NodeView[]): Map<number, number> {
  const owners = new Map<number, number>();
  for (const [i, v] of views.entries()) for (const p of v.owned) owners.set(p, i);
  return owners;
}

// ---------------------------------------------------------------------------------------------
// Events by partition

/**
 * `per_partition` event ids for each of the `partitions` partitions (index p: ids whose
 * partition_of is p, by src/runtime/partition.ts itself), from `prefix` and a counter.
 */
export function ids_by_partition(prefix: string, partitions: number, per_partition: number):
  string[][] {
  const tries_max = 1_000_000;
  const ids: string[][] = Array.from({ length: partitions }, () => []);
  let filled = 0;
  for (let i = 0; i < tries_max && filled < partitions; i++) {
    const id = `${prefix}${i}`;
    const bucket = ids[partition_of(id, partitions)]!;
    if (bucket.length >= per_partition) continue;
    bucket.push(id);
    if (bucket.length === per_partition) filled++;
  }
  if (filled < partitions) throw new Error(`no ${per_partition} ids per partition from ${prefix}`);
  return ids;
}

// ---------------------------------------------------------------------------------------------
// Unary calls from the bench process

export type Outcome = { ok: true; reply: unknown } | { ok: false; code: number; details: string };
type Callback = (error: grpc.ServiceError | null, reply: unknown) => void;
type Unary = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions,
  callback: Callback) => void;

export function unary(
  client: grpc.Client, method: string, request: unknown, token: string, deadline_ms: number,
): Promise<Outcome> {
  const fn = (client as unknown as Record<string, Unary | undefined>)[method];
  if (fn === undefined) throw new Error(`no method ${method} on the client`);
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return new Promise((resolve) => {
    fn.call(client, request, metadata, { deadline: Date.now() + deadline_ms }, (error, reply) =>
      resolve(error === null ? { ok: true, reply }
        : { ok: false, code: error.code, details: error.details }));
  });
}

export const code_name = (code: number) => grpc.status[code] ?? String(code);

/** A string field of a reply, or undefined. */
export function reply_string(reply: unknown, field: string): string | undefined {
  if (typeof reply !== 'object' || reply === null || !(field in reply)) return undefined;
  const value = (reply as Record<string, unknown>)[field];
  return typeof value === 'string' ? value : undefined;
}

/** Inventory and catalog clients of one node. */
export interface NodeClients { inventory: grpc.Client; catalog: grpc.Client }

export function node_clients(addr: string): NodeClients {
  const inventory = client_ctor(load_protos([inventory_proto]),
    'ticketing.inventory.v1.InventoryService');
  const catalog = client_ctor(load_protos([catalog_proto]), 'ticketing.catalog.v1.CatalogService');
  const credentials = grpc.credentials.createInsecure();
  return { inventory: new inventory(addr, credentials), catalog: new catalog(addr, credentials) };
}

/**
 * Creates the events `ids` through `clients` (round robin: most are forwarded to their owner),
 * 8 in flight, each retried on UNAVAILABLE (a partition moving) up to `tries_max` times; after a
 * retry ALREADY_EXISTS means the earlier try was applied. Checks the seat count.
 */
export async function create_events_on(
  clients: NodeClients[], admin_token: string, ids: string[], layout: Layout,
  max_seats_per_user: number,
): Promise<void> {
  const tries_max = 50;
  const create = async (event_id: string, k: number): Promise<void> => {
    const request = { event: event_wire(event_id, layout, max_seats_per_user) };
    for (let attempt = 0; attempt < tries_max; attempt++) {
      const client = clients[(k + attempt) % clients.length]!.catalog;
      const r = await unary(client, 'CreateEvent', request, admin_token, 30_000);
      if (r.ok) {
        const seats = reply_string(r.reply, 'seat_count');
        if (Number(seats) !== seats_of(layout)) throw new Error(`${event_id}: seat_count ${seats}`);
        return;
      }
      if (r.code === grpc.status.ALREADY_EXISTS && attempt > 0) return;
      if (r.code !== grpc.status.UNAVAILABLE) {
        throw new Error(`CreateEvent ${event_id}: ${code_name(r.code)}: ${r.details}`);
      }
      await sleep(200);
    }
    throw new Error(`CreateEvent ${event_id}: UNAVAILABLE ${tries_max} times`);
  };
  let next = 0;
  await Promise.all(Array.from({ length: 8 }, async () => {
    while (next < ids.length) {
      const k = next++;
      await create(ids[k]!, k);
    }
  }));
}
