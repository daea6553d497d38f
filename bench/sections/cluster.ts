// Section "cluster" (issue 12): a 3-node cluster on 3 brokers against one single node (LMDB, no
// --cluster) under the same load generator, in alternating rounds of one run; the journal's
// Kafka writes at saturation (the nodes' own histograms); what a call that lands on a non-owner
// costs against one that lands on the owner; and failover time over several kill -9s.
// On a 2-core machine every one of these processes shares the same two cores: the figures are
// the design's overhead, not its scaling (see the README's cluster performance paragraph).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { seat_id, seats_of, summarize, type LoadSpec } from '../common.js';
import { cfg, targets } from '../config.js';
import {
  code_name, create_events_on, grpc_addr, ids_by_partition, new_cluster_node, node_clients,
  read_view, reply_string, start_bench_kafka, start_cluster_node, topic_log_bytes, unary,
  wait_settled,
  type BenchKafkaCluster, type ClusterNode, type ClusterShape, type NodeClients, type NodeView,
} from '../cluster.js';
import { load_spec, pool, run_load, type Measured } from '../harness/load.js';
import {
  counter_delta, hist_delta, merge_scrapes, pids_cpu_s, scrape, type HistogramDelta, type Scrape,
} from '../harness/metrics.js';
import {
  cli, create_events, log, mint_token, sleep, start_process, terminate, wait_exit, type Running,
} from '../harness/processes.js';
import {
  errors_line, f, fmt_int, lat, ms, ratio_text, type Report,
} from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

/** Everything the measurements share. */
interface Rig {
  kafka: BenchKafkaCluster;
  shape: ClusterShape;
  nodes: ClusterNode[];
  /** Per node (same index), recreated when the node is restarted. */
  clients: NodeClients[];
  single: Running;
  token_single: string;
  token_cluster: string;
  /** Every load event; ids_of[p]: those on partition p. */
  load_ids: string[];
  ids_of: string[][];
  /** probe_of[p]: an event on partition p that only the failover probes touch. */
  probe_of: string[];
  /** pid -> cores it used while nothing was asked of it (before the rounds). */
  idle_cores: Map<number, number>;
}

/** What the section started, for the teardown whatever happened. */
interface Started { nodes: ClusterNode[]; single: Running | undefined; clients: NodeClients[] }

async function run(ctx: SectionContext): Promise<void> {
  log(`cluster: starting ${cfg.cluster_nodes} brokers`);
  const kafka = await start_bench_kafka(join(ctx.root, 'kafka-cluster'), cfg.cluster_nodes);
  const started: Started = { nodes: [], single: undefined, clients: [] };
  try {
    const rig = await set_up(ctx, kafka, started);
    report_throughput(ctx.report, rig, await measure_throughput(rig));
    report_forwarding(ctx.report, await measure_forwarding(rig));
    report_failover(ctx.report, await measure_failover(rig));
  } finally {
    for (const c of started.clients) {
      c.inventory.close();
      c.catalog.close();
    }
    await Promise.all(started.nodes.map(async (n) => {
      if (n.running !== undefined) await terminate(n.running.proc);
    }));
    if (started.single !== undefined) await terminate(started.single.proc);
    await kafka.stop().catch(() => undefined);
    for (const n of started.nodes) rmSync(n.data_dir, { recursive: true, force: true });
    rmSync(join(ctx.root, 'data-single'), { recursive: true, force: true });
    rmSync(join(ctx.root, 'kafka-cluster'), { recursive: true, force: true });
  }
}

/** The single node, the cluster's nodes (settled), tokens and the events on both. */
async function set_up(
  { root, secret }: SectionContext, kafka: BenchKafkaCluster, started: Started,
): Promise<Rig> {
  const P = cfg.cluster_partitions;
  const shape: ClusterShape = {
    cluster: cfg.cluster_name, brokers: kafka.brokers, partitions: P, secret,
    start_timeout_ms: cfg.cluster_start_timeout_ms,
  };
  const single_dir = join(root, 'data-single');
  started.single = await start_process('ticketing-single', [
    cli, 'serve', '--data', single_dir, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0',
    '--partitions', String(P), '--workers', '1',
  ], { ...process.env, TICKETING_AUTH_SECRET: secret });
  for (let i = 1; i <= cfg.cluster_nodes; i++) {
    started.nodes.push(await new_cluster_node(`ticketing-c${i}`, join(root, `data-c${i}`)));
  }
  log(`cluster: starting ${cfg.cluster_nodes} nodes on ${kafka.brokers}`);
  // allSettled: a node that failed to start must not leave the others starting unwatched.
  const starts = await Promise.allSettled(started.nodes.map((n) => start_cluster_node(n, shape)));
  for (const s of starts) if (s.status === 'rejected') throw s.reason;
  const settled = await wait_settled(started.nodes, P, cfg.cluster_settle_bound_ms);
  log(`cluster: settled ${settled.waited_ms.toFixed(0)} ms after the last node served`);
  for (const n of started.nodes) started.clients.push(node_clients(grpc_addr(n)));
  // One shared TICKETING_AUTH_SECRET: a token minted on one node's data dir is good on all.
  const token_cluster = mint_token('bench-service', 'service', started.nodes[0]!.data_dir, secret);
  const admin_cluster = mint_token('bench-admin', 'admin', started.nodes[0]!.data_dir, secret);
  const token_single = mint_token('bench-service', 'service', single_dir, secret);
  const admin_single = mint_token('bench-admin', 'admin', single_dir, secret);
  const per = cfg.cluster_events_per_partition;
  const by_partition = ids_by_partition('bench-c', P, per + 1);
  const ids_of = by_partition.map((ids) => ids.slice(0, per));
  const probe_of = by_partition.map((ids) => ids[per]!);
  const load_ids = ids_of.flat();
  log(`cluster: creating ${load_ids.length + P} events on the cluster and the single node`);
  await create_events_on(started.clients, admin_cluster, [...load_ids, ...probe_of],
    cfg.small_layout, cfg.max_seats_per_user);
  await create_events(started.single, admin_single, load_ids, cfg.small_layout);
  const pids = [started.single.pid, ...live_pids(started.nodes),
    ...kafka.nodes.flatMap((b) => (b.pid === undefined ? [] : [b.pid]))];
  return {
    kafka, shape, nodes: started.nodes, clients: started.clients, single: started.single,
    token_single, token_cluster, load_ids, ids_of, probe_of,
    idle_cores: await idle_cores(pids),
  };
}

/** Cores each of `pids` uses over cfg.cluster_idle_sample_s with nothing asked of it. */
async function idle_cores(pids: number[]): Promise<Map<number, number>> {
  const before = pids.map((p) => pids_cpu_s([p]));
  const t0 = performance.now();
  await sleep(cfg.cluster_idle_sample_s * 1000);
  const wall_s = (performance.now() - t0) / 1000;
  return new Map(pids.map((p, i) => [p, (pids_cpu_s([p]) - before[i]!) / wall_s]));
}

// ---------------------------------------------------------------------------------------------
// Rounds: one loadgen run while the servers' and the brokers' CPU is measured

interface Cores {
  /** The servers measured (the single node, or the cluster's nodes), cores over the round;
   *  this and the CPU per op are net of the processes' idle CPU (Rig.idle_cores). */
  servers: number;
  servers_us_per_op: number;
  /** The first of them: the node the calls land on (forwarding rounds). */
  entry_us_per_op: number;
  brokers: number;
  /** The brokers' CPU seconds over the round net of their idle CPU. */
  brokers_net_s: number;
  /** Our other processes, idle meanwhile (the cluster during the single node's rounds, the
   *  single node during the cluster's): what they took from the measured side. */
  idle_ours: number;
}
interface Round { m: Measured; cores: Cores }

const live_pids = (nodes: ClusterNode[]) =>
  nodes.flatMap((n) => (n.running === undefined ? [] : [n.running.pid]));
const broker_pids = (rig: Rig) =>
  rig.kafka.nodes.flatMap((b) => (b.pid === undefined ? [] : [b.pid]));

async function round(rig: Rig, spec: LoadSpec, servers: number[]): Promise<Round> {
  const brokers = broker_pids(rig);
  const idle = [rig.single.pid, ...live_pids(rig.nodes)].filter((p) => !servers.includes(p));
  const s0 = pids_cpu_s(servers);
  const e0 = pids_cpu_s(servers.slice(0, 1));
  const b0 = pids_cpu_s(brokers);
  const i0 = pids_cpu_s(idle);
  const t0 = performance.now();
  const m = await run_load(spec, servers[0]!);
  const wall_s = (performance.now() - t0) / 1000;
  const span_s = Math.max(m.result.elapsed_s, 1e-3);
  const ops = m.result.ok_ops_total;
  // Net of what each process burns idle (heartbeats, fetch loops): a slower kind of call would
  // otherwise carry more of that per op.
  const idle_s = (pids: number[]) =>
    pids.reduce((a, p) => a + (rig.idle_cores.get(p) ?? 0), 0) * wall_s;
  const s = pids_cpu_s(servers) - s0 - idle_s(servers);
  const e = pids_cpu_s(servers.slice(0, 1)) - e0 - idle_s(servers.slice(0, 1));
  const b = pids_cpu_s(brokers) - b0;
  const per_op = (cpu_s: number) => (ops > 0 ? (cpu_s / ops) * 1e6 : NaN);
  return {
    m,
    cores: {
      servers: s / span_s, servers_us_per_op: per_op(s), entry_us_per_op: per_op(e),
      brokers: b / span_s, brokers_net_s: b - idle_s(brokers),
      idle_ours: (pids_cpu_s(idle) - i0) / span_s,
    },
  };
}

function avg_cores(rounds: Round[]): Cores {
  const avg = (pick: (c: Cores) => number) =>
    rounds.reduce((a, r) => a + pick(r.cores), 0) / Math.max(1, rounds.length);
  return {
    servers: avg((c) => c.servers), servers_us_per_op: avg((c) => c.servers_us_per_op),
    entry_us_per_op: avg((c) => c.entry_us_per_op), brokers: avg((c) => c.brokers),
    idle_ours: avg((c) => c.idle_ours), brokers_net_s: avg((c) => c.brokers_net_s),
  };
}

async function scrape_nodes(nodes: ClusterNode[]): Promise<Scrape> {
  const live = nodes.filter((n) => n.running !== undefined);
  return merge_scrapes(await Promise.all(live.map((n) => scrape(n.http_port))));
}

// ---------------------------------------------------------------------------------------------
// Throughput: 3 nodes (load spread over the three) against the single node, alternating rounds

interface Throughput {
  single: Round[];
  cluster: Round[];
  /** The nodes' journal writes (Kafka transactions) over the cluster's rounds. */
  write_s: HistogramDelta;
  write_records: HistogramDelta;
  /** The single node's LMDB commits over its rounds: the same figures without Kafka. */
  lmdb_commit_s: HistogramDelta;
  lmdb_records: HistogramDelta;
  forwarded: { total: number; by_labels: Record<string, number> };
  /** Bytes added to each topic's log segments over the cluster's rounds (broker 1's copy). */
  topic_bytes: Record<string, number>;
}

function bytes_delta(before: Map<string, number>, after: Map<string, number>) {
  return Object.fromEntries([...after].map(([t, b]) => [t, b - (before.get(t) ?? 0)]));
}

async function measure_throughput(rig: Rig): Promise<Throughput> {
  const spec = (label: string, target: string, token: string, seed: number) => load_spec({
    label, target, token, event_ids: rig.load_ids, layout: cfg.small_layout,
    return_latencies: true, seed, warmup_s: cfg.cluster_warmup_s, duration_s: cfg.cluster_phase_s,
  });
  const single: Round[] = [];
  const cluster: Round[] = [];
  const lmdb0 = await scrape(rig.single.http_port!);
  const nodes0 = await scrape_nodes(rig.nodes);
  const bytes0 = topic_log_bytes(rig.kafka);
  for (let r = 0; r < cfg.rounds; r++) {
    log(`cluster round ${r + 1}/${cfg.rounds}: single node`);
    const s = spec(`CL-single-${r}`, rig.single.grpc, rig.token_single, 900 + r);
    single.push(await round(rig, s, [rig.single.pid]));
    log(`cluster round ${r + 1}/${cfg.rounds}: ${rig.nodes.length}-node cluster`);
    const c = spec(`CL-cluster-${r}`, grpc_addr(rig.nodes[0]!), rig.token_cluster, 900 + r);
    c.targets = rig.nodes.map(grpc_addr);
    cluster.push(await round(rig, c, live_pids(rig.nodes)));
  }
  await sleep(cfg.stats_wait_ms); // the single node's worker stats reach its metrics in batches
  const lmdb1 = await scrape(rig.single.http_port!);
  const nodes1 = await scrape_nodes(rig.nodes);
  return {
    single, cluster, topic_bytes: bytes_delta(bytes0, topic_log_bytes(rig.kafka)),
    write_s: hist_delta(nodes0, nodes1, 'ticketing_cluster_journal_write_seconds'),
    write_records: hist_delta(nodes0, nodes1, 'ticketing_cluster_journal_write_records'),
    lmdb_commit_s: hist_delta(lmdb0, lmdb1, 'ticketing_journal_commit_duration_seconds'),
    lmdb_records: hist_delta(lmdb0, lmdb1, 'ticketing_journal_batch_size'),
    forwarded: counter_delta(nodes0, nodes1, 'ticketing_cluster_forwarded_requests_total'),
  };
}

// ---------------------------------------------------------------------------------------------
// Forwarding: calls that land on the owner against calls that land on a non-owner

interface ForwardRound {
  entry: string;
  kind: 'owner' | 'other';
  /** write: ReserveTickets + ReleaseHold (2 calls, each a journal write); read: GetEvent. */
  op: 'write' | 'read';
  round: Round;
  /** ticketing_cluster_forwarded_requests_total of the entry node over the round. */
  forwarded: number;
  /** No node's generation changed during the round (nobody moved a partition). */
  stable: boolean;
}

const generations = (views: (NodeView | string)[]) =>
  views.map((v) => (typeof v === 'string' ? v : String(v.generation))).join(',');

/** Round r: the entry node is node r % N; writes then reads, owner and non-owner calls each. */
async function measure_forwarding(rig: Rig): Promise<ForwardRound[]> {
  const out: ForwardRound[] = [];
  for (let r = 0; r < cfg.rounds; r++) {
    const entry = rig.nodes[r % rig.nodes.length]!;
    const settled = await wait_settled(rig.nodes, rig.shape.partitions,
      cfg.cluster_settle_bound_ms);
    const owned = new Set(settled.views[rig.nodes.indexOf(entry)]!.owned);
    const ids = {
      owner: rig.ids_of.filter((_, p) => owned.has(p)).flat(),
      other: rig.ids_of.filter((_, p) => !owned.has(p)).flat(),
    };
    // Alternate which kind goes first, so a drift of the machine's load favours neither.
    const kinds = r % 2 === 0 ? (['owner', 'other'] as const) : (['other', 'owner'] as const);
    for (const op of ['write', 'read'] as const) {
      for (const kind of kinds) {
        log(`cluster forwarding round ${r + 1}/${cfg.rounds}: ${op}s, ${kind} calls on ` +
          `${entry.name}`);
        const spec = load_spec({
          label: `CL-fwd-${op}-${kind}-${r}`, target: grpc_addr(entry), token: rig.token_cluster,
          event_ids: ids[kind], layout: cfg.small_layout, return_latencies: true, seed: 950 + r,
          concurrency: cfg.cluster_forward_concurrency,
          op: op === 'write' ? 'reserve_release' : 'get_event',
        });
        const before = await scrape(entry.http_port);
        const servers = [entry.running!.pid, ...live_pids(rig.nodes.filter((n) => n !== entry))];
        const measured = await round(rig, spec, servers);
        const after = await scrape(entry.http_port);
        const forwarded =
          counter_delta(before, after, 'ticketing_cluster_forwarded_requests_total').total;
        const now = await Promise.all(rig.nodes.map((n) => read_view(n)));
        const stable = generations(now) === generations(settled.views);
        out.push({ entry: entry.name, kind, op, round: measured, forwarded, stable });
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Failover: kill -9 a node; until each partition it owned is in a survivor's owned list and a
// call for it succeeds; restart it; again, each node in turn

interface Kill {
  victim: string;
  partitions: number[];
  /** From the kill to every partition in a survivor's /readyz owned list (not recovering). */
  owned_ms: number;
  /** From the kill to a ReserveTickets for every one of them answered OK. */
  served_ms: number;
  /** From the kill to every partition (not only the victim's) owned by a survivor. */
  all_owned_ms: number;
  /** Refusals the probes met on the way (UNAVAILABLE while a partition moves). */
  probe_errors: Record<string, number>;
  /** The survivors' own ticketing_cluster_failover_seconds over this kill. */
  node_failover_s: HistogramDelta;
  restart_serving_ms: number;
  /** From the restart to the cluster settled again (the node has its share back). */
  rejoin_settled_ms: number;
}

async function measure_failover(rig: Rig): Promise<Kill[]> {
  const kills: Kill[] = [];
  for (let k = 0; k < cfg.cluster_kills; k++) {
    const settled = await wait_settled(rig.nodes, rig.shape.partitions,
      cfg.cluster_settle_bound_ms);
    kills.push(await one_kill(rig, k, settled.views));
  }
  return kills;
}

async function one_kill(rig: Rig, k: number, views: NodeView[]): Promise<Kill> {
  const v = k % rig.nodes.length;
  const victim = rig.nodes[v]!;
  const partitions = [...views[v]!.owned].sort((a, b) => a - b);
  const survivors = rig.nodes.filter((n) => n !== victim);
  const before = await scrape_nodes(survivors);
  log(`cluster kill ${k + 1}/${cfg.cluster_kills}: kill -9 ${victim.name} ` +
    `(partitions ${partitions.join(',')})`);
  const proc = victim.running!.proc;
  const t0 = performance.now();
  proc.kill('SIGKILL');
  if (!(await wait_exit(proc, 10_000))) throw new Error(`${victim.name} survived SIGKILL`);
  victim.running = undefined;
  const deadline = t0 + cfg.cluster_failover_bound_ms;
  const owners = await wait_taken(survivors, partitions, deadline);
  const owned_ms = performance.now() - t0;
  const probe_errors: Record<string, number> = {};
  const served = await Promise.all(partitions.map((p) =>
    probe(rig, owners.get(p)!, p, k, deadline, probe_errors)));
  const served_ms = Math.max(...served) - t0;
  // The eager rebalance stops every partition, the survivors' own too: when all are back.
  await wait_settled(survivors, rig.shape.partitions, cfg.cluster_failover_bound_ms, 1);
  const all_owned_ms = performance.now() - t0;
  const node_failover_s =
    hist_delta(before, await scrape_nodes(survivors), 'ticketing_cluster_failover_seconds');
  log(`cluster kill ${k + 1}: owned elsewhere after ${f(owned_ms, 0)} ms, served after ` +
    `${f(served_ms, 0)} ms; restarting ${victim.name}`);
  const restarted_at = performance.now();
  const running = await start_cluster_node(victim, rig.shape);
  // A fresh channel: the old one backs off (up to minutes) after its node died.
  rig.clients[v]!.inventory.close();
  rig.clients[v]!.catalog.close();
  rig.clients[v] = node_clients(grpc_addr(victim));
  await wait_settled(rig.nodes, rig.shape.partitions, cfg.cluster_settle_bound_ms);
  return {
    victim: victim.name, partitions, owned_ms, served_ms, all_owned_ms, probe_errors,
    node_failover_s,
    restart_serving_ms: running.spawn_to_serving_ms,
    rejoin_settled_ms: performance.now() - restarted_at,
  };
}

/** Polls the survivors until each of `partitions` is owned (and not recovering) by one of them:
 *  partition -> that node. Throws at `deadline`. */
async function wait_taken(
  survivors: ClusterNode[], partitions: number[], deadline: number,
): Promise<Map<number, ClusterNode>> {
  const poll_interval_ms = 20;
  let missing = partitions;
  while (performance.now() < deadline) {
    const views = await Promise.all(survivors.map((n) => read_view(n, 1000)));
    const owners = new Map<number, ClusterNode>();
    for (const p of partitions) {
      const i = views.findIndex((x) =>
        typeof x !== 'string' && x.owned.includes(p) && !x.recovering.includes(p));
      if (i >= 0) owners.set(p, survivors[i]!);
    }
    if (owners.size === partitions.length) return owners;
    missing = partitions.filter((p) => !owners.has(p));
    await sleep(poll_interval_ms);
  }
  throw new Error(`partitions ${missing.join(',')} not owned by a survivor within ` +
    `${cfg.cluster_failover_bound_ms} ms of the kill`);
}

/**
 * ReserveTickets on partition p's probe event through its new owner, every 20 ms until one is
 * answered OK (then released): the time of that answer. Seat k of the probe event: every kill
 * has its own seat, so a release that failed cannot make a later probe fail.
 */
async function probe(
  rig: Rig, owner: ClusterNode, p: number, k: number, deadline: number,
  errors: Record<string, number>,
): Promise<number> {
  const retry_ms = 20;
  const client = rig.clients[rig.nodes.indexOf(owner)]!.inventory;
  const request = {
    event_id: rig.probe_of[p]!,
    seat_ids: [seat_id(cfg.small_layout, k % seats_of(cfg.small_layout))],
    hold_ttl_seconds: '60', user_id: `bench-fo-${k}-${p}`,
  };
  while (performance.now() < deadline) {
    const r = await unary(client, 'ReserveTickets', request, rig.token_cluster, 2000);
    if (r.ok) {
      const at = performance.now();
      const hold_id = reply_string(r.reply, 'hold_id');
      for (let i = 0; i < 20 && hold_id !== undefined; i++) {
        const x = await unary(client, 'ReleaseHold', { hold_id }, rig.token_cluster, 2000);
        if (x.ok) break;
        await sleep(retry_ms);
      }
      return at;
    }
    const key = `ReserveTickets:${code_name(r.code)}`;
    errors[key] = (errors[key] ?? 0) + 1;
    await sleep(retry_ms);
  }
  throw new Error(`partition ${p}: no ReserveTickets answered OK within ` +
    `${cfg.cluster_failover_bound_ms} ms of the kill (${JSON.stringify(errors)})`);
}

// ---------------------------------------------------------------------------------------------
// Report: each part as soon as it is measured (a later part that throws keeps the earlier ones)

const cores_line = (name: string, c: Cores, loadgen: number) =>
  `${name}: servers ${f(c.servers)} cores, ${f(c.servers_us_per_op, 0)} us CPU/op; ` +
  `brokers ${f(c.brokers)} cores; our idle processes ${f(c.idle_ours)} cores; ` +
  `loadgen ${f(loadgen)} cores`;

/** p50/p99 of a histogram in seconds as "p50 <= X ms, p99 <= Y ms (mean Z ms)". */
const hist_ms = (h: HistogramDelta) =>
  `p50 <= ${ms(h.p50 * 1000)}, p99 <= ${ms(h.p99 * 1000)} (mean ${ms(h.mean * 1000)})`;

function report_throughput(report: Report, rig: Rig, t: Throughput): void {
  const single = pool(t.single.map((r) => r.m));
  const cluster = pool(t.cluster.map((r) => r.m));
  const ratio = cluster.ops_per_s / single.ops_per_s;
  const round_ratios = t.cluster.map((r, i) =>
    r.m.result.ops_per_s / t.single[i]!.m.result.ops_per_s);
  const per_write = t.write_records.sum / t.write_records.count;
  const per_commit = t.lmdb_records.sum / t.lmdb_records.count;
  const calls = cluster.rounds.reduce((a, r) => a + 2 * r.result.ok_ops_total, 0);
  report.results['cluster'] = {
    throughput: {
      ratio, round_ratios, single: strip_rounds(t.single), cluster: strip_rounds(t.cluster),
      single_latency: single.latency, cluster_latency: cluster.latency,
      single_cores: avg_cores(t.single), cluster_cores: avg_cores(t.cluster),
    },
    journal: {
      write_s: t.write_s, write_records: t.write_records, records_per_write: per_write,
      lmdb_commit_s: t.lmdb_commit_s, lmdb_records: t.lmdb_records, records_per_commit: per_commit,
      topic_bytes: t.topic_bytes,
    },
    forwarded_during_throughput: { ...t.forwarded, calls },
    idle: idle_text(rig),
  };
  report.check({
    order: 90, check: `Cluster: throughput ${cfg.cluster_nodes} nodes / 1 node`,
    ours: `${fmt_int(cluster.ops_per_s)} ops/s`, reference: `${fmt_int(single.ops_per_s)} ops/s`,
    value: ratio_text(ratio, round_ratios), target: 'info',
  }, undefined);
  report.check({
    order: 91, check: 'Cluster: latency at that load', ours: lat(cluster.latency),
    reference: `1 node ${lat(single.latency)}`, value: '-', target: 'info',
  }, undefined);
  report.check({
    order: 92, check: 'Cluster: journal write (Kafka transaction), saturated',
    ours: hist_ms(t.write_s), reference: `LMDB commit ${hist_ms(t.lmdb_commit_s)}`,
    value: `${fmt_int(t.write_s.count)} writes`, target: 'info',
  }, undefined);
  report.check({
    order: 93, check: 'Cluster: journal records per Kafka write, saturated',
    ours: `${fmt_int(t.write_records.sum)} records / ${fmt_int(t.write_records.count)} writes`,
    reference: `LMDB ${f(per_commit, 1)} per commit`, value: f(per_write, 1), target: 'info',
  }, undefined);
  report.detail(
    `cluster: ${rig_text()}; each op = ReserveTickets + ReleaseHold, ` +
      `${cfg.concurrency} in flight, the cluster's ops round robin over its nodes`,
    `cluster: CPU per op is net of each process's idle CPU, sampled over ` +
      `${cfg.cluster_idle_sample_s} s before the rounds (${idle_text(rig)})`,
    cores_line('CL 1 node ', avg_cores(t.single), single.loadgen_cpu),
    cores_line('CL 3 nodes', avg_cores(t.cluster), cluster.loadgen_cpu),
    `cluster: calls forwarded during its rounds ${fmt_int(t.forwarded.total)} of ` +
      `${fmt_int(calls)} (${f(t.forwarded.total / calls)}; ` +
      `${JSON.stringify(t.forwarded.by_labels)})`,
    kafka_cost_line(t),
    errors_line('CL 1 node', single.errors), errors_line('CL 3 nodes', cluster.errors),
  );
}

/** What one Kafka write cost the brokers (CPU) and carried (bytes in the logs). */
function kafka_cost_line(t: Throughput): string {
  const broker_cpu_s = t.cluster.reduce((a, r) => a + r.cores.brokers_net_s, 0);
  const journal = Object.entries(t.topic_bytes).filter(([topic]) => topic.endsWith('.journal'));
  const journal_bytes = journal.reduce((a, [, b]) => a + b, 0);
  const all_bytes = Object.values(t.topic_bytes).reduce((a, b) => a + b, 0);
  const writes = t.write_s.count;
  return `cluster Kafka writes: brokers' CPU over the cluster's rounds ` +
    `${f((broker_cpu_s / writes) * 1000, 1)} ms per write (net of their idle CPU); ` +
    `journal log ${fmt_int(journal_bytes / writes)} B per write, ` +
    `${fmt_int(journal_bytes / t.write_records.sum)} B per record; all topics ` +
    `${fmt_int(all_bytes / writes)} B per write (one replica)`;
}

const idle_text = (rig: Rig) => {
  const of = (pids: number[]) => f(pids.reduce((a, p) => a + (rig.idle_cores.get(p) ?? 0), 0));
  return `idle: single node ${of([rig.single.pid])} cores, the 3 nodes ` +
    `${of(live_pids(rig.nodes))}, the brokers ${of(broker_pids(rig))}`;
};

const rig_text = () => `${cfg.cluster_nodes} brokers (RF 3, min.insync 2) and ` +
  `${cfg.cluster_nodes} nodes (--workers 1) on this machine's cores, ` +
  `${cfg.cluster_partitions} partitions, single node --workers 1 on LMDB`;

/** Rounds for results.json, without raw latencies. */
const strip_rounds = (rounds: Round[]) => rounds.map(({ m, cores }) => {
  const { latencies_ms: _, ...rest } = m.result;
  return { ...rest, cores };
});

/** CPU per call over every node (and the entry node's part): a write op is two calls. */
const per_call = (c: Cores, calls_per_op: number) =>
  ({ servers: c.servers_us_per_op / calls_per_op, entry: c.entry_us_per_op / calls_per_op });

function forwarding_part(
  rounds: ForwardRound[], op: ForwardRound['op'], kind: ForwardRound['kind'],
) {
  const of = rounds.filter((r) => r.op === op && r.kind === kind);
  const calls_per_op = op === 'write' ? 2 : 1;
  const pooled = pool(of.map((r) => r.round.m));
  const cores = avg_cores(of.map((r) => r.round));
  return {
    latency: pooled.latency, ops_per_s: pooled.ops_per_s, cores,
    cpu_us_per_call: per_call(cores, calls_per_op), errors: pooled.errors,
    forwarded: of.reduce((a, r) => a + r.forwarded, 0),
    calls: of.reduce((a, r) => a + calls_per_op * r.round.m.result.ok_ops_total, 0),
  };
}

function report_forwarding(report: Report, rounds: ForwardRound[]): void {
  const write = { owner: forwarding_part(rounds, 'write', 'owner'),
    other: forwarding_part(rounds, 'write', 'other') };
  const read = { owner: forwarding_part(rounds, 'read', 'owner'),
    other: forwarding_part(rounds, 'read', 'other') };
  const unstable = rounds.filter((r) => !r.stable).length;
  Object.assign(report.results['cluster'] ?? (report.results['cluster'] = {}), {
    forwarding: {
      write, read, unstable_rounds: unstable,
      rounds: rounds.map((r) => ({ ...r, round: strip_rounds([r.round])[0] })),
    },
  });
  const c = cfg.cluster_forward_concurrency;
  const rows = [
    { order: 94, what: `ReserveTickets+ReleaseHold, ${c} in flight`, x: write },
    { order: 95, what: `GetEvent (a read), ${c} in flight`, x: read },
  ];
  for (const { order, what, x } of rows) {
    const d = x.other.latency.p50_ms - x.owner.latency.p50_ms;
    report.check({
      order, check: `Cluster: non-owner vs owner, ${what}`,
      ours: `non-owner ${lat(x.other.latency)}`, reference: `owner ${lat(x.owner.latency)}`,
      value: `p50 ${d >= 0 ? '+' : ''}${ms(d)}`, target: 'info',
    }, undefined);
  }
  const cpu = (x: typeof write) => `${f(x.other.cpu_us_per_call.servers, 0)} vs ` +
    `${f(x.owner.cpu_us_per_call.servers, 0)} us`;
  report.check({
    order: 96, check: 'Cluster: CPU per call, all nodes, non-owner vs owner',
    ours: `write ${cpu(write)}`, reference: `read ${cpu(read)}`,
    value: `+${f(write.other.cpu_us_per_call.servers - write.owner.cpu_us_per_call.servers, 0)}` +
      ` / +${f(read.other.cpu_us_per_call.servers - read.owner.cpu_us_per_call.servers, 0)} us`,
    target: 'info',
  }, undefined);
  report.detail(forwarding_detail(write, read, unstable),
    errors_line('CL write owner', write.owner.errors),
    errors_line('CL write non-owner', write.other.errors),
    errors_line('CL read owner', read.owner.errors),
    errors_line('CL read non-owner', read.other.errors));
}

type Part = ReturnType<typeof forwarding_part>;

function forwarding_detail(
  write: { owner: Part; other: Part }, read: { owner: Part; other: Part }, unstable: number,
): string {
  const fw = (x: Part) => `${fmt_int(x.forwarded)} of ${fmt_int(x.calls)}`;
  const entry = (x: Part) => f(x.cpu_us_per_call.entry, 0);
  return `cluster forwarding: the entry node rotates over the nodes; calls forwarded: write ` +
    `owner ${fw(write.owner)}, non-owner ${fw(write.other)}; read owner ${fw(read.owner)}, ` +
    `non-owner ${fw(read.other)}; entry node CPU per call (us) write ${entry(write.other)} vs ` +
    `${entry(write.owner)}, read ${entry(read.other)} vs ${entry(read.owner)}; rounds during ` +
    `which a partition moved: ${unstable}`;
}

function report_failover(report: Report, kills: Kill[]): void {
  const served = summarize(kills.map((k) => k.served_ms));
  const owned = summarize(kills.map((k) => k.owned_ms));
  const rejoin = summarize(kills.map((k) => k.rejoin_settled_ms));
  const all = summarize(kills.map((k) => k.all_owned_ms));
  Object.assign(report.results['cluster'] ?? (report.results['cluster'] = {}), {
    failover: {
      kills, served_ms: served, owned_ms: owned, rejoin_settled_ms: rejoin,
      all_owned_ms: all,
    },
  });
  const max_s = served.max_ms / 1000;
  report.check({
    order: 97, check: `Cluster: failover after kill -9 (${kills.length} kills)`,
    ours: `served p50 ${f(served.p50_ms / 1000)} s, max ${f(max_s)} s`,
    reference: `in a survivor's owned list p50 ${f(owned.p50_ms / 1000)} s, ` +
      `max ${f(owned.max_ms / 1000)} s`,
    value: kills.map((k) => f(k.served_ms / 1000, 1)).join(', ') + ' s',
    target: `max <= ${targets.cluster_failover_max_s} s`,
  }, max_s <= targets.cluster_failover_max_s);
  report.check({
    order: 98, check: 'Cluster: every partition owned again after a kill',
    ours: `p50 ${f(all.p50_ms / 1000)} s, max ${f(all.max_ms / 1000)} s`,
    reference: 'the survivors\' own partitions too', value: 'eager rebalance: all stop',
    target: 'info',
  }, undefined);
  const node_side = kills.map((k) => f(k.node_failover_s.mean, 2)).join(', ');
  report.detail(
    `cluster failover: idle cluster, each node killed in turn and restarted (same data dir and ` +
      `ports) before the next kill; rejoin (restart -> settled) p50 ` +
      `${f(rejoin.p50_ms / 1000)} s, max ${f(rejoin.max_ms / 1000)} s`,
    `cluster failover, the survivors' ticketing_cluster_failover_seconds (mean per kill): ` +
      `${node_side} s`,
    ...kills.map((k, i) => `  kill ${i + 1}: ${k.victim} p${k.partitions.join(',p')}: owned ` +
      `${f(k.owned_ms, 0)} ms, served ${f(k.served_ms, 0)} ms, every partition owned ` +
      `${f(k.all_owned_ms, 0)} ms; probes refused ${JSON.stringify(k.probe_errors)}; restart ` +
      `-> serving ${f(k.restart_serving_ms, 0)} ms, -> settled ${f(k.rejoin_settled_ms, 0)} ms`),
  );
}

export const cluster_section: Section = { key: 'cluster', name: 'cluster', order: 90, run };
