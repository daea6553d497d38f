// Typed access to scripts/kafka/broker.mjs (a real Kafka broker, KRaft mode, no Docker) for tests.
//
// The .mjs lives outside the TypeScript build, so it is imported dynamically from a path found
// at run time: walking up from this file finds the repo root both from test/kafka/ (sources)
// and from dist/test/kafka/ (compiled, where the tests actually run).
import { existsSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export interface BrokerOptions {
  /** PLAINTEXT port (default: a free one). */
  port?: number;
  /** KRaft controller port (default: a free one). */
  controller_port?: number;
  /** Directory for server.properties, broker.log and (by default) the data (default: a new temp dir). */
  work_dir?: string;
  /** Kafka's data dir (log.dirs); formatted unless it already is (default: <work_dir>/data). */
  log_dir?: string;
  /** JVM -Xmx (default '512m'). */
  heap?: string;
  /** Default partitions of new topics (default 3). */
  num_partitions?: number;
  /** Bound on waiting for the broker to answer an admin client (default 120000). */
  ready_timeout_ms?: number;
  /** Bound on a graceful stop before SIGKILL (default 30000). */
  stop_timeout_ms?: number;
  /** Use this classpath instead of provisioning. */
  classpath?: string;
}

export interface Broker {
  /** '127.0.0.1:PORT', for kafkajs `brokers: [broker.brokers]`. */
  brokers: string;
  port: number;
  controller_port: number;
  log_dir: string;
  work_dir: string;
  /** The broker's stdout/stderr (Kafka's own log). */
  log_file: string;
  readonly pid: number | undefined;
  running(): boolean;
  /** SIGTERM (controlled shutdown), SIGKILL after stop_timeout_ms; resolves once exited. */
  stop(): Promise<void>;
  /** SIGKILL, like a crash; resolves once exited. */
  kill(): Promise<void>;
  /** Stops if running, then starts again on the same ports and log dir and waits until ready. */
  restart(): Promise<void>;
}

/** Several KRaft brokers as one cluster (scripts/kafka/broker.mjs start_cluster). */
export interface Cluster {
  /** The bootstrap list, 'HOST:PORT,HOST:PORT,…'. */
  brokers: string;
  /** One handle per broker, node id i + 1 at index i. */
  nodes: Broker[];
  work_dir: string;
  /** Replication of topics and internal topics: factor min(3, N), min.insync.replicas min(2, N). */
  replicas: { factor: number; min_insync: number };
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface BrokerModule {
  start_broker(options?: BrokerOptions): Promise<Broker>;
  start_cluster(count: number, options?: BrokerOptions & { base_port?: number }): Promise<Cluster>;
  /** A new KRaft cluster id, as `kafka-storage random-uuid` prints it. */
  cluster_id(): string;
  /** A port free now, below the kernel's ephemeral range. */
  free_port(): Promise<number>;
}

function find_script(name = 'broker.mjs'): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, 'scripts', 'kafka', name);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`scripts/kafka/${name} not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** scripts/kafka/broker.mjs itself (its helpers, for unit tests). */
export async function broker_module(): Promise<BrokerModule> {
  return (await import(pathToFileURL(find_script()).href)) as BrokerModule;
}

/** The broker's java classpath (scripts/kafka/provision.mjs: cached jars, else Maven Central). */
export async function broker_classpath(): Promise<string> {
  const module = (await import(pathToFileURL(find_script('provision.mjs')).href)) as { provision(): Promise<{ classpath: string }> };
  return (await module.provision()).classpath;
}

/**
 * Provisions (first run: downloads from Maven Central, needs java and mvn) and starts a broker.
 * Never skips: any failure is thrown as "Kafka broker could not be provisioned: ...".
 */
export async function start_broker(options: BrokerOptions = {}): Promise<Broker> {
  try {
    return await (await broker_module()).start_broker(options);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Kafka broker could not be provisioned: ${reason}`, { cause: error });
  }
}

/** start_broker's counterpart for a cluster of `count` brokers; never skips either. */
export async function start_cluster(count: number, options: BrokerOptions = {}): Promise<Cluster> {
  try {
    return await (await broker_module()).start_cluster(count, options);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`Kafka cluster of ${count} could not be started: ${reason}`, { cause: error });
  }
}

/** Stops the broker (SIGKILL if it will not stop) and removes its work dir. Never throws. */
export async function dispose_broker(broker: Broker | undefined): Promise<void> {
  if (broker === undefined) return;
  try {
    await broker.stop();
  } catch {
    await broker.kill().catch(() => {});
  }
  rmSync(broker.work_dir, { recursive: true, force: true });
}
