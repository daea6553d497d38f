// A chaos run, end to end: a broker (or three), the data filesystem, the node (or three), the
// events, the load and the nemesis on the seed's schedule, then the final reads, the Kafka
// consumer and the checker. Everything started is ended on every way out (the Reaper).
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chownSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { start_broker, start_cluster, type Broker } from '../test/kafka/broker.js';
import { check, type Violation } from './checker.js';
import { index_of, sold_statuses } from './checker_index.js';
import type { SeenEvent } from './checker_state.js';
import { NodeClients, Tokens } from './clients.js';
import { consume_all, read_final } from './final.js';
import { History, type FaultRun } from './history.js';
import { event_span_ms, layout, run_load, type World } from './load.js';
import { ClockTracker, probe_event, probe_layout, type Target } from './nemesis.js';
import { run_fault } from './faults.js';
import { free_port, NodeProc, Reaper, SmallFs, sleep } from './processes.js';
import { schedule, type Fault } from './schedule.js';
import { report, type Summary } from './report.js';

export interface Options {
  minutes: number;
  seed: number;
  cluster: boolean;
  users: number;
  out_dir: string;
  /** Serving again within this after each fault, else a violation. */
  recover_ms_max: number;
  fs_size_mb: number;
}

export const defaults = {
  users: 40,
  /** Measured: a broker restart beside other test processes took up to ~60 s to deliver again;
   *  a node restart 2-10 s. Twice the worst measured. */
  recover_ms_max: 120_000,
  /** Room for a 10-minute run's journal (measured ~ tens of MB) with margin. */
  fs_size_mb: 384,
};
/** The node starts with its clock this far ahead, so every clock_back has room to step. */
export const base_clock_offset_ms = 2 * 3600_000;
/** Bound on the setup's calls (a cluster assigns its partitions after its nodes start). */
const setup_bound_ms = 180_000;
/** Cluster mode: nodes and brokers. */
const cluster_size = 3;
/** Cluster nodes run as uids base+i (no such users needed), so iptables can cut one off. */
const cluster_uid_base = 47_000;
/** Bound on the consumer catching up with every acknowledged change's event. */
const consume_bound_ms = 180_000;

function event_spec(
  event_id: string,
  l: { sections: number; rows: number; seats: number },
): unknown {
  return {
    event: {
      event_id,
      name: `Chaos ${event_id}`,
      currency: 'EUR',
      starts_at_unix: '1900000000',
      price_tiers: { A: '25000000' },
      max_seats_per_user: 100,
      sections: Array.from({ length: l.sections }, (_, s) => ({
        name: `S${s + 1}`,
        rows: Array.from({ length: l.rows }, (_, r) => ({
          name: `R${r + 1}`,
          seats: l.seats,
          tier: 'A',
        })),
      })),
    },
  };
}

/** CreateEvent, retried while the node (a cluster still assigning partitions) is not ready. */
async function create_event(world: World, spec: unknown): Promise<void> {
  const admin = world.tokens.of('chaos-admin', 'admin');
  const deadline = Date.now() + setup_bound_ms;
  for (;;) {
    try {
      await world.nodes[0]!.call('catalog', 'CreateEvent', spec, admin, {}, 30_000);
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(500);
    }
  }
}

async function create_events(world: World, count: number): Promise<void> {
  await create_event(world, event_spec(probe_event, probe_layout));
  for (let i = 0; i < count; i++) {
    const id = `evt-chaos-${i}`;
    await create_event(world, event_spec(id, layout));
    world.events.push(id);
  }
}

async function kafka_sent(http_port: number): Promise<number> {
  try {
    const text = await (
      await fetch(`http://127.0.0.1:${http_port}/metrics`, { signal: AbortSignal.timeout(1_000) })
    ).text();
    const line = text.split('\n').find((l) => l.startsWith('ticketing_kafka_records_sent_total '));
    return line === undefined ? NaN : Number(line.split(' ').pop());
  } catch {
    return NaN;
  }
}

async function nemesis(
  t: Target,
  faults: Fault[],
  started_ms: number,
  o: Options,
  history: History,
  partition: (node: number, on: boolean) => Promise<void>,
): Promise<void> {
  for (const f of faults) {
    const wait = started_ms + f.at_ms - Date.now();
    if (wait > 0) await sleep(wait);
    for (const [i, n] of t.nodes.entries()) {
      // A node that died on its own (a defect, reported) is restarted so the run goes on.
      if (n.state === 'down') await n.start(t.clocks[i]!.hi_ms);
    }
    const run: FaultRun = await run_fault(t, f, o.recover_ms_max, partition);
    history.fault_run(run);
    console.log(
      `  #${f.index} ${f.kind}: ${run.note}; serving again after ${run.recover_ms ?? 'never'} ms`,
    );
  }
}

export async function run_chaos(o: Options): Promise<Summary> {
  const reaper = new Reaper();
  const on_signal = (): void => {
    reaper.reap_sync();
    process.exit(130);
  };
  process.once('SIGINT', on_signal);
  process.once('SIGTERM', on_signal);
  try {
    return await run_inside(o, reaper);
  } finally {
    reaper.reap_sync();
    process.off('SIGINT', on_signal);
    process.off('SIGTERM', on_signal);
  }
}

interface Setup {
  target: Target;
  bootstrap: string;
  stop_brokers: () => Promise<void>;
}

function kill_pid_sync(pid: number | undefined): void {
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGCONT');
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

async function make_node(
  o: Options,
  fs: SmallFs,
  reaper: Reaper,
  i: number,
  flags: string[],
  secret: string,
  uid?: number,
): Promise<NodeProc> {
  const node = new NodeProc(
    {
      name: `node-${i}`,
      data_dir: join(fs.dir, `node-${i}`),
      grpc_port: await free_port(),
      http_port: await free_port(),
      log_file: join(o.out_dir, `node-${i}.log`),
      flags,
      env: { TICKETING_AUTH_SECRET: secret, TICKETING_LOG_LEVEL: 'info' },
      ...(uid === undefined ? {} : { uid }),
    },
    reaper,
  );
  mkdirSync(node.spec.data_dir, { recursive: true });
  if (uid !== undefined) chownSync(node.spec.data_dir, uid, uid);
  return node;
}

async function setup_single(
  o: Options,
  reaper: Reaper,
  fs: SmallFs,
  secret: string,
): Promise<Omit<Setup, 'target'> & { nodes: NodeProc[]; brokers: Broker[] }> {
  const broker = await start_broker({ work_dir: join(o.out_dir, 'broker-0') });
  reaper.add('kill broker', () => kill_pid_sync(broker.pid));
  const flags = ['--kafka', broker.brokers, '--workers', '2', '--partitions', '8'];
  const node = await make_node(o, fs, reaper, 0, flags, secret);
  await node.start(base_clock_offset_ms);
  return {
    nodes: [node],
    brokers: [broker],
    bootstrap: broker.brokers,
    stop_brokers: () => broker.stop(),
  };
}

async function setup_cluster(
  o: Options,
  reaper: Reaper,
  fs: SmallFs,
  secret: string,
): Promise<Omit<Setup, 'target'> & { nodes: NodeProc[]; brokers: Broker[] }> {
  try {
    execFileSync('iptables', ['-L', 'OUTPUT', '-n'], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(
      `--cluster cuts a node off from the brokers with iptables, which does not run here (apt-get install iptables; run as root): ${String(error)}`,
    );
  }
  const brokers = await start_cluster(cluster_size, {
    work_dir: join(o.out_dir, 'brokers'),
    ready_timeout_ms: 300_000,
  });
  reaper.add('kill brokers', () => brokers.nodes.forEach((b) => kill_pid_sync(b.pid)));
  const name = `chaos-${o.seed}`;
  const nodes: NodeProc[] = [];
  for (let i = 0; i < cluster_size; i++) {
    const flags = [
      '--cluster',
      name,
      '--kafka',
      brokers.brokers,
      '--advertise',
      `127.0.0.1:${await free_port()}`,
      '--partitions',
      '6',
      '--workers',
      '1',
    ];
    nodes.push(await make_node(o, fs, reaper, i, flags, secret, cluster_uid_base + i));
  }
  await Promise.all(nodes.map((n) => n.start(base_clock_offset_ms)));
  return {
    nodes,
    brokers: brokers.nodes,
    bootstrap: brokers.brokers,
    stop_brokers: () => brokers.stop(),
  };
}

/** Cuts node i off from every broker (iptables, by the node's uid: a DROP, as a partition
 *  loses packets) or heals it. */
function partition_rule(on: boolean, uid: number, ports: number[]): void {
  execFileSync(
    'iptables',
    [
      on ? '-I' : '-D',
      'OUTPUT',
      '-o',
      'lo',
      '-p',
      'tcp',
      '-m',
      'owner',
      '--uid-owner',
      String(uid),
      '-m',
      'multiport',
      '--dports',
      ports.join(','),
      '-j',
      'DROP',
    ],
    { stdio: 'pipe' },
  );
}

async function run_inside(o: Options, reaper: Reaper): Promise<Summary> {
  mkdirSync(o.out_dir, { recursive: true });
  const faults = schedule(o.seed, o.minutes, o.cluster);
  const history = new History(join(o.out_dir, 'history.jsonl'));
  reaper.add('close history', () => history.close());
  const fs = new SmallFs(join(o.out_dir, 'data-fs'), o.fs_size_mb, reaper);
  const secret = randomBytes(32).toString('hex');
  const s = o.cluster
    ? await setup_cluster(o, reaper, fs, secret)
    : await setup_single(o, reaper, fs, secret);
  const clocks = s.nodes.map(
    () => new ClockTracker(history, base_clock_offset_ms, base_clock_offset_ms),
  );
  const world: World = {
    history,
    nodes: s.nodes.map((n) => new NodeClients(n.address)),
    tokens: new Tokens(secret),
    events: [],
    started_ms: 0,
    gateway_down: false,
    stopping: false,
  };
  reaper.add('close clients', () => world.nodes.forEach((n) => n.close()));
  await create_events(world, Math.ceil((o.minutes * 60_000) / event_span_ms) + 1);
  const target: Target = {
    world,
    nodes: s.nodes,
    clocks,
    brokers: s.brokers,
    fs,
    cluster: o.cluster,
    kafka_sent: (i) => kafka_sent(s.nodes[i]!.spec.http_port),
  };
  const cut = new Set<number>();
  reaper.add('heal partitions', () => {
    for (const i of cut)
      partition_rule(
        false,
        cluster_uid_base + i,
        s.brokers.map((b) => b.port),
      );
  });
  const partition = async (i: number, on: boolean): Promise<void> => {
    partition_rule(
      on,
      cluster_uid_base + i,
      s.brokers.map((b) => b.port),
    );
    if (on) cut.add(i);
    else cut.delete(i);
  };
  return drive(
    o,
    { target, bootstrap: s.bootstrap, stop_brokers: s.stop_brokers },
    faults,
    history,
    partition,
  );
}

async function drive(
  o: Options,
  setup: Setup,
  faults: Fault[],
  history: History,
  partition: (node: number, on: boolean) => Promise<void>,
): Promise<Summary> {
  const t = setup.target;
  const world = t.world;
  world.started_ms = Date.now();
  console.log(`chaos: seed ${o.seed}, ${o.minutes} min, ${o.users} users, out ${o.out_dir}`);
  const load = run_load(world, o.users, o.seed);
  const stop_load = (): void => {
    world.stopping = true;
  };
  await nemesis(t, faults, world.started_ms, o, history, partition).catch((error: unknown) => {
    stop_load();
    throw error;
  });
  const rest = world.started_ms + o.minutes * 60_000 - Date.now();
  if (rest > 0) await sleep(rest);
  stop_load();
  await load;
  const load_ms = Date.now() - world.started_ms;
  await sleep(3_000); // the settlement loop (every second) finishes captures and refunds
  const users = [
    ...new Set(
      history.calls
        .filter((c) => c.rpc === 'create_draft')
        .map((c) => String(c.request['user_id'])),
    ),
  ];
  const final = await read_final(world, users, layout.sections);
  const ix = index_of(history.calls.filter((c) => c.user !== 'checker'));
  const enough = (seen: SeenEvent[]): boolean => {
    const created = new Set(
      seen.filter((e) => e.type === 'HoldCreated').map((e) => String(e.message['hold_id'])),
    );
    const confirmed = new Set(
      seen.filter((e) => e.type === 'OrderConfirmed').map((e) => String(e.message['order_id'])),
    );
    return (
      [...ix.holds.keys()].every((id) => created.has(id)) &&
      Object.values(final.orders).every(
        (r) => r === 'not_found' || !sold_statuses.has(r.status) || confirmed.has(r.order_id),
      )
    );
  };
  const events = await consume_all(setup.bootstrap, enough, consume_bound_ms);
  const crashes = t.nodes.flatMap((n) => n.crashes);
  const violations: Violation[] = check(
    { calls: history.calls, clock: history.clock, faults: history.faults, final, events },
    { recover_ms_max: o.recover_ms_max },
  );
  for (const c of crashes) violations.push({ check: 'crash', message: c, calls: [] });
  writeFileSync(join(o.out_dir, 'final.json'), JSON.stringify(final));
  writeFileSync(join(o.out_dir, 'events.json'), JSON.stringify(events));
  for (const n of t.nodes) await n.stop();
  await setup.stop_brokers();
  return report(o, { faults, history, events, violations, load_ms });
}

export function default_out_dir(seed: number): string {
  return join(tmpdir(), `ticketing-chaos-${seed}-${Date.now()}`);
}
