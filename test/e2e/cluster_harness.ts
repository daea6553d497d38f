// Three real Kafka brokers and real `ticketing serve --cluster` processes, for the cluster
// end-to-end tests (issue 12). One broker cluster per test file (start_cluster(3) of
// test/kafka/broker.ts); node processes are started, killed (-9), paused (SIGSTOP/SIGCONT),
// stopped (SIGTERM) and restarted on the same ports and data dir; /readyz (JSON) says which
// partitions each node owns and recovers. stop() ends every process it started: no stray JVM
// or node ever (and a process 'exit' hook SIGKILLs any node left if the test runner dies).
//
// Mode 'single' runs one node without --cluster (no Kafka) under the same load and checks: the
// baseline the cluster must match, and a check of the harness and checker themselves.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { sign_token, type Role } from '../../src/auth/token.js';
import { start_cluster, type Cluster } from '../kafka/broker.js';
import { free_port, NodeApi } from './cluster_api.js';
import { await_serving, bin, temp_dir, type Serving } from './harness.js';

/** Bound on polls while waiting for ownership to settle (x poll_pause_ms: a hang becomes a
 *  failure, never a pass; the wait itself ends as soon as the condition holds). */
export const settle_polls_max = 900;
export const poll_pause_ms = 100;
/** Bound on the brokers' start (broker.ts's default is 120 s): three JVMs beside a full
 *  `npm test` on 2 cores took up to 103 s to be ready (load average 30); a bound, not a limit. */
const broker_ready_bound_ms = 300_000;
/** Bound on a node's start until it logs "serving" (it joins the group and creates topics). */
const start_bound_ms = 120_000;
/** A /readyz answer later than this counts as none (a paused node never answers). */
const readyz_timeout_ms = 1_000;

/** Every node child still running: SIGKILLed synchronously if this process exits. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export interface Readyz {
  status: number;
  ready: boolean;
  degraded: string[];
  cluster?: {
    name: string;
    node_id: string;
    generation: number;
    owned: number[];
    recovering: number[];
  };
}

/** GET /readyz as JSON; undefined when the node does not answer (dead, paused) or not JSON. */
export async function readyz(http_port: number): Promise<Readyz | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${http_port}/readyz`, {
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(readyz_timeout_ms),
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      // Plain text (a single node, and a node that ignores `accept`): readiness by status only.
      return { status: res.status, ready: res.status === 200, degraded: [], cluster: undefined };
    }
    if (typeof body !== 'object' || body === null) return undefined;
    const b = body as Record<string, unknown>;
    const c = b['cluster'] as Readyz['cluster'] | undefined;
    const cluster =
      c === undefined
        ? undefined
        : {
            name: String(c.name),
            node_id: String(c.node_id),
            generation: Number(c.generation),
            owned: (c.owned ?? []).map(Number),
            recovering: (c.recovering ?? []).map(Number),
          };
    const degraded = Array.isArray(b['degraded']) ? b['degraded'].map(String) : [];
    return { status: res.status, ready: b['ready'] === true, degraded, cluster };
  } catch {
    return undefined;
  }
}

/** Appends the child's output, line by line, to `log`. */
function collect_lines(child: ChildProcess, log: string[]): void {
  for (const stream of [child.stdout, child.stderr]) {
    let buffer = '';
    stream?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      log.push(...lines);
    });
  }
}

export interface Consumed {
  topic: string;
  partition: number;
  offset: string;
  value: Buffer;
  headers: Record<string, string>;
}

export type NodeState = 'down' | 'up' | 'paused';

/** One node: its ports and data dir stay for its life, across restarts. */
export interface TestNode {
  index: number;
  data_dir: string;
  grpc_port: number;
  http_port: number;
  peer_port: number;
  state: NodeState;
  api: NodeApi;
  process?: ChildProcess;
  /** Resolves when the current incarnation's process has exited. */
  exited?: Promise<void>;
  serving?: Serving;
  /** Output of every incarnation, for failure reports. */
  log: string[];
}

export interface ClusterOptions {
  mode: 'cluster' | 'single';
  nodes: number;
  partitions: number;
  /** Short tag for names and temp dirs. */
  label: string;
}

export class TestCluster {
  readonly name: string;
  readonly secret = randomBytes(32).toString('hex');
  brokers?: Cluster;
  readonly nodes: TestNode[] = [];
  private readonly tokens = new Map<string, string>();
  /** Aborts of the loads running against this cluster, and their runs (stop() ends them). */
  readonly on_stop: (() => void)[] = [];
  readonly running: Promise<unknown>[] = [];

  private constructor(readonly options: ClusterOptions) {
    this.name = `e2e-${options.label}-${randomBytes(3).toString('hex')}`;
  }

  /** Brokers (cluster mode) and every node, each serving; ownership settled. */
  static async start(options: ClusterOptions): Promise<TestCluster> {
    const c = new TestCluster(options);
    const t0 = Date.now();
    try {
      if (options.mode === 'cluster')
        c.brokers = await start_cluster(3, { ready_timeout_ms: broker_ready_bound_ms });
      const t1 = Date.now();
      for (let i = 0; i < options.nodes; i++) {
        const [grpc_port, http_port, peer_port] = [
          await free_port(),
          await free_port(),
          await free_port(),
        ];
        const data_dir = temp_dir(`${options.label}-n${i}`);
        const api = new NodeApi(`127.0.0.1:${grpc_port}`);
        c.nodes.push({
          index: i,
          data_dir,
          grpc_port,
          http_port,
          peer_port,
          state: 'down',
          api,
          log: [],
        });
      }
      await Promise.all(c.nodes.map((n) => c.start_node(n.index)));
      const t2 = Date.now();
      await c.settled();
      console.log(
        `[setup] ${c.name}: brokers ${t1 - t0} ms, nodes serving ${t2 - t1} ms, ` +
          `settled ${Date.now() - t2} ms`,
      );
    } catch (error) {
      await c.stop();
      throw error;
    }
    return c;
  }

  get bootstrap(): string {
    if (this.brokers === undefined) throw new Error('no brokers in single mode');
    return this.brokers.brokers;
  }

  token(user_id: string, role: Role): string {
    const key = `${role}:${user_id}`;
    let t = this.tokens.get(key);
    if (t === undefined) {
      t = sign_token(Buffer.from(this.secret, 'utf8'), { user_id, role }, 6 * 3600);
      this.tokens.set(key, t);
    }
    return t;
  }

  private args(n: TestNode): string[] {
    const common = [
      'serve',
      '--data',
      n.data_dir,
      '--grpc',
      `127.0.0.1:${n.grpc_port}`,
      '--http',
      `127.0.0.1:${n.http_port}`,
      '--partitions',
      String(this.options.partitions),
      '--workers',
      '1',
      '--rate-user',
      '0',
    ];
    if (this.options.mode === 'single') return common;
    return [
      ...common,
      '--cluster',
      this.name,
      '--kafka',
      this.bootstrap,
      '--advertise',
      `127.0.0.1:${n.peer_port}`,
    ];
  }

  /** Starts (or restarts) node i on its ports and data dir; resolves once it logs "serving". */
  async start_node(i: number): Promise<void> {
    const n = this.node(i);
    if (n.state !== 'down') throw new Error(`node ${i} is ${n.state}, not down`);
    const child = spawn(process.execPath, [bin, ...this.args(n)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TICKETING_LOG_LEVEL: 'info', TICKETING_AUTH_SECRET: this.secret },
    });
    live.add(child);
    n.exited = new Promise((resolve) =>
      child.once('exit', () => {
        live.delete(child);
        resolve();
      }),
    );
    n.process = child;
    n.log.push(`==== node ${i} started at ${new Date().toISOString()} pid ${child.pid}`);
    collect_lines(child, n.log);
    // Bounded: a node that never says "serving" is killed and the start fails (never hangs).
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(
          new Error(
            `node ${i} not serving after ${start_bound_ms} ` +
              `ms:\n${n.log.slice(-30).join('\n')}`,
          ),
        );
      }, start_bound_ms);
    });
    try {
      n.serving = await Promise.race([await_serving(child, `node ${i}`), bound]);
    } finally {
      clearTimeout(timer);
    }
    n.state = 'up';
  }

  node(i: number): TestNode {
    const n = this.nodes[i];
    if (n === undefined) throw new Error(`no node ${i}`);
    return n;
  }

  up(): TestNode[] {
    return this.nodes.filter((n) => n.state === 'up');
  }

  /** kill -9: resolves once the process is gone. */
  async kill9(i: number): Promise<void> {
    const n = this.node(i);
    if (n.process === undefined || n.serving === undefined)
      throw new Error(`node ${i} never started`);
    n.process.kill('SIGKILL');
    await n.exited;
    n.state = 'down';
  }

  /** SIGTERM (a clean stop: the node leaves the group); resolves with the exit code. */
  async sigterm(i: number): Promise<number | null> {
    const n = this.node(i);
    if (n.process === undefined || n.serving === undefined)
      throw new Error(`node ${i} never started`);
    n.process.kill('SIGTERM');
    const code = await n.serving.exited;
    n.state = 'down';
    return code;
  }

  sigstop(i: number): void {
    const n = this.node(i);
    if (n.state !== 'up' || n.process === undefined) throw new Error(`node ${i} is not up`);
    n.process.kill('SIGSTOP');
    n.state = 'paused';
  }

  sigcont(i: number): void {
    const n = this.node(i);
    if (n.state !== 'paused' || n.process === undefined) throw new Error(`node ${i} is not paused`);
    n.process.kill('SIGCONT');
    n.state = 'up';
  }

  readyz(i: number): Promise<Readyz | undefined> {
    return readyz(this.node(i).http_port);
  }

  /** Partitions node i serves now (owned and not recovering), per its /readyz. */
  async serving(i: number): Promise<number[] | undefined> {
    const r = await this.readyz(i);
    if (r?.cluster === undefined) return undefined;
    const recovering = new Set(r.cluster.recovering);
    return r.cluster.owned.filter((p) => !recovering.has(p));
  }

  /** Who serves what, per node that answered. */
  async ownership(nodes: TestNode[] = this.up()): Promise<Map<number, number[]>> {
    const out = new Map<number, number[]>();
    for (const n of nodes) {
      const s = await this.serving(n.index);
      if (s !== undefined) out.set(n.index, s);
    }
    return out;
  }

  /** Every partition served by exactly one up node, nothing recovering (single
   *  mode: the node is ready). Returns the ownership; throws after settle_polls_max polls. */
  async settled(): Promise<Map<number, number[]>> {
    return this.settled_with(() => true, 'settled');
  }

  /** settled(), and node i serves at least one partition (it rejoined the group and got its
   *  share: a node that logs "serving" or resumes may join a moment later). */
  async rejoined(i: number): Promise<Map<number, number[]>> {
    return this.settled_with((owners) => (owners.get(i) ?? []).length > 0, `node ${i} rejoined`);
  }

  private async settled_with(
    also: (owners: Map<number, number[]>) => boolean,
    what: string,
  ): Promise<Map<number, number[]>> {
    let last = 'no answer';
    for (let i = 0; i < settle_polls_max; i++) {
      const verdict = await this.settle_verdict();
      if (verdict.ok && also(verdict.owners)) return verdict.owners;
      last = verdict.why;
      await sleep(poll_pause_ms);
    }
    throw new Error(`never ${what}: ${last}\n${this.log_tail()}`);
  }

  private async settle_verdict(): Promise<{
    ok: boolean;
    why: string;
    owners: Map<number, number[]>;
  }> {
    const owners = new Map<number, number[]>();
    const answers = await Promise.all(
      this.up().map(async (n) => [n.index, await this.readyz(n.index)] as const),
    );
    if (this.options.mode === 'single') {
      const ok = answers.every(([, r]) => r?.ready === true);
      return { ok, why: `readyz ${JSON.stringify(answers)}`, owners };
    }
    const count = new Array<number>(this.options.partitions).fill(0);
    for (const [i, r] of answers) {
      if (r?.cluster === undefined)
        return { ok: false, why: `node ${i}: readyz ${JSON.stringify(r)}`, owners };
      if (r.cluster.recovering.length > 0)
        return { ok: false, why: `node ${i} recovering ${r.cluster.recovering}`, owners };
      owners.set(i, r.cluster.owned);
      for (const p of r.cluster.owned) count[p] = (count[p] ?? 0) + 1;
    }
    // (Each node's `generation` counts the joins it saw: not comparable across nodes.)
    const why = `owners ${JSON.stringify([...owners])}`;
    return { ok: count.every((c) => c === 1), why, owners };
  }

  /** Polls (bounded) until the up nodes other than `except` serve every partition of `ps`;
   *  resolves with the ms from `since_ms` to the first poll that saw it. */
  async until_served(ps: number[], except: number, since_ms: number): Promise<number> {
    for (let i = 0; i < settle_polls_max; i++) {
      const others = this.up().filter((n) => n.index !== except);
      const served = new Set([...(await this.ownership(others)).values()].flat());
      if (ps.every((p) => served.has(p))) return Date.now() - since_ms;
      await sleep(poll_pause_ms / 2);
    }
    throw new Error(`partitions ${ps} never served by the others\n${this.log_tail()}`);
  }

  /** The cluster's journal topic (CLUSTER_CONTRACT §1). */
  get journal_topic(): string {
    return `ticketing-cluster.${this.name}.journal`;
  }

  async with_admin<T>(use: (admin: Admin) => Promise<T>): Promise<T> {
    const kafka = new Kafka({
      clientId: 'e2e-admin',
      brokers: this.bootstrap.split(','),
      logLevel: logLevel.NOTHING,
      retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 10 },
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      return await use(admin);
    } finally {
      await admin.disconnect();
    }
  }

  /** Broker node id → how many journal partitions it leads. */
  async journal_leaders(): Promise<Map<number, number>> {
    const meta = await this.with_admin((a) =>
      a.fetchTopicMetadata({ topics: [this.journal_topic] }),
    );
    const leaders = new Map<number, number>();
    for (const p of meta.topics[0]?.partitions ?? [])
      leaders.set(p.leader, (leaders.get(p.leader) ?? 0) + 1);
    return leaders;
  }

  /** The broker leading the most journal partitions. */
  async busiest_broker(): Promise<number> {
    const [id] = [...(await this.journal_leaders())].reduce(
      (a, b) => (b[1] > a[1] ? b : a),
      [0, 0],
    );
    if (id < 1) throw new Error('no broker leads a journal partition');
    return id;
  }

  /** Every message of `topics` a read_committed consumer (a fresh group, from the beginning)
   *  sees, read until it reached each partition's end offset as read at the start. */
  async consume_to_end(topics: string[]): Promise<Consumed[]> {
    const ends = await this.with_admin(async (a) => {
      const out = new Map<string, number>();
      for (const topic of topics) {
        for (const p of await a.fetchTopicOffsets(topic))
          out.set(`${topic}/${p.partition}`, Number(p.high));
      }
      return out;
    });
    const kafka = new Kafka({
      clientId: 'e2e-consumer',
      brokers: this.bootstrap.split(','),
      logLevel: logLevel.NOTHING,
    });
    const group = `e2e-${randomBytes(4).toString('hex')}`;
    const consumer = kafka.consumer({
      groupId: group,
      maxWaitTimeInMs: 100,
      readUncommitted: false,
    });
    const seen: Consumed[] = [];
    const reached = new Map<string, number>();
    const reach = (key: string, next: number): void => {
      reached.set(key, Math.max(reached.get(key) ?? 0, next));
    };
    // A batch of control records only (commit/abort markers) moves the position too.
    consumer.on(consumer.events.END_BATCH_PROCESS, (e) =>
      reach(`${e.payload.topic}/${e.payload.partition}`, Number(e.payload.lastOffset) + 1),
    );
    await consumer.connect();
    try {
      await consumer.subscribe({ topics, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ topic, partition, message }) => {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
          seen.push({
            topic,
            partition,
            offset: message.offset,
            value: message.value ?? Buffer.alloc(0),
            headers,
          });
          reach(`${topic}/${partition}`, Number(message.offset) + 1);
        },
      });
      const done = (): boolean =>
        [...ends].every(([k, end]) => end === 0 || (reached.get(k) ?? 0) >= end);
      for (let i = 0; i < settle_polls_max && !done(); i++) await sleep(poll_pause_ms);
      const behind = [...ends].filter(([k, end]) => end > 0 && (reached.get(k) ?? 0) < end);
      if (behind.length > 0)
        throw new Error(
          `the consumer never reached the end of ${JSON.stringify(behind)} (at ` +
            `${JSON.stringify([...reached])})`,
        );
    } finally {
      await consumer.disconnect();
    }
    return seen;
  }

  /** Polls (bounded) until no partition of the journal, the group offsets or the transaction
   *  log is led by broker `id` or has it in its ISR (the controller fenced it). */
  async until_leaders_moved(id: number): Promise<void> {
    const topics = [this.journal_topic, '__consumer_offsets', '__transaction_state'];
    for (let i = 0; i < settle_polls_max; i++) {
      const moved = await this.with_admin(async (a) => {
        const parts = (await a.fetchTopicMetadata({ topics })).topics.flatMap((t) => t.partitions);
        return (
          parts.length > 0 &&
          parts.every((p) => p.leader >= 1 && p.leader !== id && !p.isr.includes(id))
        );
      }).catch(() => false);
      if (moved) return;
      await sleep(poll_pause_ms);
    }
    throw new Error(`leaders never moved off broker ${id}`);
  }

  /** Polls (bounded) until broker `id` is back in every journal partition's ISR. */
  async until_in_sync(id: number): Promise<void> {
    for (let i = 0; i < settle_polls_max; i++) {
      const back = await this.with_admin(async (a) => {
        const parts =
          (await a.fetchTopicMetadata({ topics: [this.journal_topic] })).topics[0]?.partitions ??
          [];
        return parts.length > 0 && parts.every((p) => p.isr.includes(id));
      }).catch(() => false);
      if (back) return;
      await sleep(poll_pause_ms);
    }
    throw new Error(`broker ${id} never back in sync`);
  }

  broker(id: number): Cluster['nodes'][number] {
    const b = this.brokers?.nodes[id - 1];
    if (b === undefined) throw new Error(`no broker ${id}`);
    return b;
  }

  /** The last lines of every node's log, for failure messages. */
  log_tail(lines = 15): string {
    return this.nodes
      .map((n) => `--- node ${n.index} (${n.state}):\n${n.log.slice(-lines).join('\n')}`)
      .join('\n');
  }

  /** Ends every node (SIGKILL; a paused one too) and the brokers; removes every dir. Never
   *  throws. */
  async stop(): Promise<void> {
    // Loads first: they stop retrying, and their calls fail fast once the nodes are gone;
    // channels close only when no call of theirs can start any more.
    for (const abort of this.on_stop.splice(0)) abort();
    for (const n of this.nodes) {
      if (n.process !== undefined && n.process.exitCode === null && n.process.signalCode === null) {
        n.process.kill('SIGKILL');
        await n.exited;
      }
      n.state = 'down';
    }
    await Promise.allSettled(this.running.splice(0));
    for (const n of this.nodes) {
      n.api.close();
      rmSync(n.data_dir, { recursive: true, force: true });
    }
    if (this.brokers !== undefined) {
      await this.brokers.kill().catch(() => undefined);
      rmSync(this.brokers.work_dir, { recursive: true, force: true });
    }
  }
}
