// Starts one real Kafka broker (KRaft combined mode: broker and controller in one JVM, no
// ZooKeeper) on loopback, for tests and `npm run kafka`. The jars come from ./provision.mjs.
//
//   const broker = await start_broker();        // formats a temp log dir, waits until ready
//   broker.brokers                              // '127.0.0.1:PORT' for kafkajs
//   await broker.stop(); await broker.restart(); // same port, same data: the log is durable
//   await broker.kill();                         // SIGKILL, like a crash
//
// The broker's stdout/stderr go to <work_dir>/broker.log, never to the console. Every broker
// started here is SIGKILLed when the Node process exits, and the child is unref'd so it never
// keeps Node alive on its own: a failed test cannot leak a JVM or hang the runner.
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { Kafka, logLevel } from 'kafkajs';
import { provision } from './provision.mjs';

const exec_file = promisify(execFile);

/** Children still running; killed synchronously on exit ('exit' handlers cannot await). */
const live = new Set();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

/**
 * A new cluster id, as `kafka-storage random-uuid` prints it: 16 random bytes in base64url
 * without padding (22 characters). Like Kafka's own Uuid.randomUuid(), it never starts with '-'
 * (one draw in 64 would: StorageTool's argument parser then reads `-t -Abc…` as an unknown flag
 * and format fails) and is never the all-zero id (Kafka's reserved ZERO_UUID).
 */
export function cluster_id() {
  for (;;) {
    const bytes = randomBytes(16);
    const id = bytes.toString('base64url');
    if (!id.startsWith('-') && bytes.some((b) => b !== 0)) return id;
  }
}

/** Ports handed out below the kernel's ephemeral range: a port taken from that range (listen on
 *  0) can be taken again, before Kafka binds it, as the local port of any outgoing connection on
 *  the machine (seen in CI: "Socket server failed to bind to 127.0.0.1:34373: Address already in
 *  use" while other tests' clients were connecting). Below it, only an explicit bind competes. */
const fixed_port_min = 20_000;
const fixed_port_tries_max = 100;

function ephemeral_port_min() {
  try {
    const [low] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    return Number.isInteger(low) && low > fixed_port_min + 1_000 ? low : 32_768;
  } catch {
    return 32_768; // not Linux: the IANA range starts at 49152, so this stays below it too
  }
}

function bind_test(port) {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** A port free right now, outside the ephemeral range (a race remains only with another
 *  explicit bind of the same port until Kafka binds it). */
export async function free_port() {
  const high = ephemeral_port_min() - 1;
  for (let i = 0; i < fixed_port_tries_max; i++) {
    const port = fixed_port_min + Math.floor(Math.random() * (high - fixed_port_min + 1));
    if (await bind_test(port)) return port;
  }
  throw new Error(`no free port in ${fixed_port_min}-${high} after ${fixed_port_tries_max} tries`);
}

function properties({ node_id, voters, port, controller_port, log_dir, num_partitions, replicas }) {
  return [
    'process.roles=broker,controller',
    `node.id=${node_id}`,
    // A static voter set (one voter per broker): format needs no --standalone /
    // --initial-controllers (those are for 3.9's dynamic quorums, KIP-853), and restarts reuse
    // the same controller ports.
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controller_port}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${log_dir}`,
    // One broker: every internal topic must be satisfiable with a single replica. A cluster of
    // three or more: three replicas, two in sync for a write acknowledged by all (acks=-1).
    `offsets.topic.replication.factor=${replicas.factor}`,
    `transaction.state.log.replication.factor=${replicas.factor}`,
    `transaction.state.log.min.isr=${replicas.min_insync}`,
    `min.insync.replicas=${replicas.min_insync}`,
    `default.replication.factor=${replicas.factor}`,
    // No leader from a replica that was out of sync: it could lack acknowledged records.
    'unclean.leader.election.enable=false',
    // Fewer internal partitions than the default 50: the first consumer group (which creates
    // __consumer_offsets) and the first idempotent/transactional producer come up faster.
    'offsets.topic.num.partitions=3',
    'transaction.state.log.num.partitions=3',
    `num.partitions=${num_partitions}`,
    // Consumers join a group at once instead of waiting 3 s for more members.
    'group.initial.rebalance.delay.ms=0',
    // After a crash (kill()), the restarted controller refuses the broker's new registration
    // (DUPLICATE_BROKER_REGISTRATION) until the old incarnation's session expires: 9 s by
    // default, 5 s here. Much lower would risk fencing a healthy broker on a busy 2-core box.
    'broker.heartbeat.interval.ms=1000',
    'broker.session.timeout.ms=5000',
    // A small machine (tests, laptops): fewer threads than the server defaults.
    'num.network.threads=2',
    'num.io.threads=2',
    'background.threads=2',
    '',
  ].join('\n');
}

// reload4j (log4j 1.x) configuration: everything to stdout (→ broker.log), request logs quiet.
const log4j_properties = [
  'log4j.rootLogger=INFO, stdout',
  'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
  'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
  'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
  'log4j.logger.kafka.request.logger=WARN',
  'log4j.logger.state.change.logger=WARN',
  'log4j.logger.org.apache.kafka.clients=WARN',
  '',
].join('\n');

/** For error messages: the first ERROR/FATAL lines (the cause; the tail is often shutdown noise) and the tail. */
function log_excerpt(file, lines = 30) {
  let text;
  try {
    text = readFileSync(file, 'utf8').trimEnd();
  } catch {
    return '(no broker log)';
  }
  const all = text.split('\n');
  const errors = all.filter((line) => /^\[[^\]]+\] (ERROR|FATAL) |^Caused by: /.test(line)).slice(0, 10);
  return [...(errors.length > 0 ? ['first errors:', ...errors, 'last lines:'] : []), ...all.slice(-lines)].join('\n');
}

/**
 * Starts a broker. Options (all optional):
 *   port             PLAINTEXT port (default: a free one)
 *   controller_port  KRaft controller port (default: a free one)
 *   work_dir         where server.properties, broker.log and (by default) the data go (default: a new temp dir)
 *   log_dir          Kafka's data (log.dirs); formatted unless already formatted (default: <work_dir>/data)
 *   heap             JVM -Xmx (default '512m')
 *   num_partitions   default partitions for new topics (default 3)
 *   ready_timeout_ms how long to wait for the broker to answer (default 120000)
 *   stop_timeout_ms  how long stop() waits after SIGTERM before SIGKILL (default 30000)
 *   classpath        skip provisioning and use this classpath
 */
export async function start_broker(options = {}) {
  const port = options.port ?? (await free_port());
  const controller_port = options.controller_port ?? (await free_port());
  const member = { node_id: 1, port, controller_port, voters: `1@127.0.0.1:${controller_port}` };
  const node = await create_node(options, member, { factor: 1, min_insync: 1 }, cluster_id());
  await node.start();
  return node.handle;
}

/**
 * One KRaft node (broker and controller in one JVM), formatted and configured but not started:
 * start_broker starts one, start_cluster starts several together (a quorum needs a majority up
 * before any of them answers). `member`: node_id, port, controller_port, voters (the static
 * voter set).
 */
async function create_node(options, member, replicas, id) {
  const classpath = options.classpath ?? (await provision()).classpath;
  const work_dir = options.work_dir ?? mkdtempSync(join(tmpdir(), 'ticketing-kafka-'));
  mkdirSync(work_dir, { recursive: true });
  const log_dir = options.log_dir ?? join(work_dir, 'data');
  const { port, controller_port } = member;
  const heap = options.heap ?? '512m';
  const ready_timeout_ms = options.ready_timeout_ms ?? 120_000;
  const stop_timeout_ms = options.stop_timeout_ms ?? 30_000;
  const brokers = `127.0.0.1:${port}`;

  const config = join(work_dir, 'server.properties');
  const log4j = join(work_dir, 'log4j.properties');
  const log_file = join(work_dir, 'broker.log');
  writeFileSync(config, properties({
    node_id: member.node_id, voters: member.voters, port, controller_port, log_dir,
    num_partitions: options.num_partitions ?? 3, replicas,
  }));
  writeFileSync(log4j, log4j_properties);
  const jvm_args = ['-cp', classpath, `-Dlog4j.configuration=file:${log4j}`, '-Djava.awt.headless=true'];

  // `kafka-storage format` equivalent. --ignore-formatted keeps an existing log dir (and its
  // cluster id) as it is, so start_broker({ log_dir }) on old data simply reuses it.
  if (!existsSync(join(log_dir, 'meta.properties'))) {
    // `--cluster-id=ID` (one argument): the value can never be taken for a flag, whatever it is.
    try {
      const { stdout, stderr } = await exec_file('java', [...jvm_args, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', `--cluster-id=${id}`, '-c', config]);
      writeFileSync(log_file, `${stdout}${stderr}`, { flag: 'a' });
    } catch (error) {
      throw new Error(`kafka-storage format failed (${error.code === 'ENOENT' ? 'java not found on PATH' : `exit ${error.code}`}):\n${error.stdout ?? ''}${error.stderr ?? ''}`);
    }
  }

  let child;
  let exited;

  function spawn_broker() {
    const fd = openSync(log_file, 'a');
    writeSync(fd, `\n==== starting kafka.Kafka on ${brokers} at ${new Date().toISOString()} ====\n`);
    try {
      child = spawn('java', [`-Xmx${heap}`, '-Xms128m', ...jvm_args, 'kafka.Kafka', config], { stdio: ['ignore', fd, fd] });
    } finally {
      closeSync(fd); // the child has its own copy
    }
    const current = child;
    live.add(current);
    exited = new Promise((resolve) => {
      current.once('error', (error) => {
        live.delete(current);
        resolve({ code: null, signal: null, error });
      });
      current.once('exit', (code, signal) => {
        live.delete(current);
        resolve({ code, signal });
      });
    });
    current.unref();
  }

  const running = () => child !== undefined && child.exitCode === null && child.signalCode === null && live.has(child);

  /** Polls an admin connection (with backoff) until the broker answers describeCluster. */
  async function wait_ready() {
    const deadline = Date.now() + ready_timeout_ms;
    let delay = 100;
    let last_error;
    // Timers keep Node alive while we wait (the child itself is unref'd).
    while (Date.now() < deadline) {
      const admin = new Kafka({
        clientId: 'ticketing-broker-probe',
        brokers: [brokers],
        logLevel: logLevel.NOTHING,
        connectionTimeout: 1_000,
        requestTimeout: 5_000,
        retry: { retries: 0 },
      }).admin();
      try {
        const attempt = (async () => {
          await admin.connect();
          const cluster = await admin.describeCluster();
          // Ready once this node is a registered broker (in a cluster, the others may be down).
          if (!cluster.brokers.some((b) => b.nodeId === member.node_id)) {
            throw new Error(`broker ${member.node_id} not registered yet`);
          }
        })();
        attempt.catch(() => {});
        const outcome = await Promise.race([attempt.then(() => 'ready'), exited.then(() => 'exited')]);
        if (outcome === 'ready') return;
        const { code, signal, error } = await exited;
        throw new Error(`broker process exited (${error ? error.message : signal ?? `code ${code}`}) before it was ready; log ${log_file}:\n${log_excerpt(log_file)}`);
      } catch (error) {
        if (!running()) throw error;
        last_error = error;
      } finally {
        await admin.disconnect().catch(() => {});
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 2_000);
    }
    throw new Error(`broker on ${brokers} not ready after ${ready_timeout_ms} ms (last error: ${last_error?.message}); log ${log_file}:\n${log_excerpt(log_file)}`);
  }

  async function start() {
    spawn_broker();
    try {
      await wait_ready();
    } catch (error) {
      await kill();
      throw error;
    }
  }

  /** Waits for the current child's exit, keeping Node alive meanwhile (the child is unref'd). */
  async function await_exit() {
    child.ref();
    try {
      return await exited;
    } finally {
      child.unref();
    }
  }

  async function stop() {
    if (!running()) return;
    child.kill('SIGTERM'); // Kafka's shutdown hook: controlled shutdown, logs flushed and closed cleanly
    const timer = setTimeout(() => child.kill('SIGKILL'), stop_timeout_ms);
    try {
      await await_exit();
    } finally {
      clearTimeout(timer);
    }
  }

  async function kill() {
    if (!running()) return;
    child.kill('SIGKILL');
    await await_exit();
  }

  async function restart() {
    await stop();
    await start(); // same server.properties: same ports, same (already formatted) log dir
  }

  const handle = {
    brokers,
    port,
    controller_port,
    log_dir,
    work_dir,
    log_file,
    get pid() {
      return child.pid;
    },
    running,
    stop,
    kill,
    restart,
  };
  return { handle, start, spawn: spawn_broker, wait_ready, kill };
}

/**
 * Starts `count` KRaft nodes on loopback as one cluster (one cluster id, a static voter set of
 * all of them) and waits until every node is a registered broker. With three or more, topics get
 * three replicas and need two in sync (min.insync.replicas=2), internal topics included. Options
 * as start_broker's, plus base_port (PLAINTEXT ports base_port.., controller ports
 * base_port+100..; default: free ones). Each node's handle is in `nodes` (stop, kill, restart,
 * as a broker's); `brokers` is the bootstrap list; stop()/kill() act on every node.
 */
export async function start_cluster(count, options = {}) {
  if (!Number.isInteger(count) || count < 1 || count > 9) throw new Error(`a cluster of 1..9 brokers, not ${count}`);
  const classpath = options.classpath ?? (await provision()).classpath;
  const base = options.base_port;
  const members = [];
  for (let i = 0; i < count; i++) {
    const port = base === undefined ? await free_port() : base + i;
    const controller_port = base === undefined ? await free_port() : base + 100 + i;
    members.push({ node_id: i + 1, port, controller_port });
  }
  const voters = members.map((m) => `${m.node_id}@127.0.0.1:${m.controller_port}`).join(',');
  const replicas = { factor: Math.min(3, count), min_insync: Math.min(2, count) };
  const id = cluster_id();
  const root = options.work_dir ?? mkdtempSync(join(tmpdir(), 'ticketing-kafka-cluster-'));
  const nodes = [];
  for (const m of members) {
    const node_options = { ...options, classpath, heap: options.heap ?? '384m', work_dir: join(root, `node${m.node_id}`) };
    nodes.push(await create_node(node_options, { ...m, voters }, replicas, id));
  }
  for (const node of nodes) node.spawn();
  try {
    await Promise.all(nodes.map((node) => node.wait_ready()));
  } catch (error) {
    await Promise.all(nodes.map((node) => node.kill()));
    throw error;
  }
  const handles = nodes.map((node) => node.handle);
  return {
    brokers: handles.map((h) => h.brokers).join(','),
    nodes: handles,
    work_dir: root,
    replicas,
    stop: () => Promise.all(handles.map((h) => h.stop())).then(() => undefined),
    kill: () => Promise.all(handles.map((h) => h.kill())).then(() => undefined),
  };
}
