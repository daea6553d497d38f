// Section "load": A (throughput against the no-op server), B (open loop at half of A), C (one
// hot event against the same load spread over 100 events) and group commit, all on one server
// (fresh data dir, 100 events) and the no-op server.
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { partition_of, seats_of, type LoadSpec } from '../common.js';
import { cfg, targets } from '../config.js';
import { load_spec, pool, run_load, strip, type Measured, type Pooled } from '../harness/load.js';
import {
  commit_delta, hist_quantile, metric, scrape, sum_commits, type CommitStats,
} from '../harness/metrics.js';
import {
  create_events, log, mint_token, numbered_ids, sleep, start_noop, start_ours, terminate,
  type Running,
} from '../harness/processes.js';
import {
  cpu_line, errors_line, f, fmt_int, lat, ms, ratio_text, type Report,
} from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

/** The servers and events the three phases share. */
interface Rig {
  report: Report;
  ours: Running;
  noop: Running;
  /** ours' metrics port. */
  port: number;
  service_token: string;
  event_ids: string[];
  partition_count: number;
  spread_spec(label: string, target: string, token: string | null): LoadSpec;
}

async function run({ root, secret, report }: SectionContext): Promise<void> {
  const data_a = join(root, 'data-a');
  log(`starting our server (--workers ${cfg.workers}) and the no-op server`);
  const ours = await start_ours('ticketing', data_a, secret);
  const noop = await start_noop();
  try {
    const rig = await set_up(report, ours, noop, data_a, secret);
    const a_ops_per_s = await throughput(rig);
    await open_loop(rig, a_ops_per_s);
    await hot_vs_spread(rig);
    report.results['server_warnings'] =
      ours.log_tail.filter((l) => !l.includes('"level":30')).slice(-20);
    const rejections = metric(await scrape(rig.port), 'ticketing_mailbox_rejections_total');
    report.detail(`mailbox rejections (whole A-C run): ${rejections}`);
  } finally {
    await terminate(ours.proc);
    await terminate(noop.proc);
    rmSync(data_a, { recursive: true, force: true });
  }
}

async function set_up(
  report: Report, ours: Running, noop: Running, data_a: string, secret: string,
): Promise<Rig> {
  const service_token = mint_token('bench-service', 'service', data_a, secret);
  const admin_token = mint_token('bench-admin', 'admin', data_a, secret);
  const node = JSON.parse(readFileSync(join(data_a, 'node.json'), 'utf8')) as {
    partition_count: number;
  };
  const partition_count = node.partition_count;
  const event_ids = numbered_ids('bench-e', cfg.events, 3);
  log(`creating ${cfg.events} events x ${seats_of(cfg.small_layout)} seats`);
  await create_events(ours, admin_token, event_ids, cfg.small_layout);
  const spread_partitions = new Set(event_ids.map((id) => partition_of(id, partition_count))).size;
  report.results['setup'] = {
    partition_count, spread_partitions, workers: cfg.workers, concurrency: cfg.concurrency,
  };
  report.detail(
    `server --workers ${cfg.workers}, ${partition_count} partitions; ${cfg.events} events of ` +
      `${seats_of(cfg.small_layout)} seats land on ${spread_partitions} partitions`,
    `closed loop: C=${cfg.concurrency} in flight, ${cfg.rounds} alternating rounds x ` +
      `${cfg.phase_s} s (+${cfg.warmup_s} s warmup); op = ReserveTickets(1-2 seats) + ` +
      'ReleaseHold of that hold; ops/s counts ops',
  );
  const spread_spec = (label: string, target: string, token: string | null) =>
    load_spec({
      label, target, token, event_ids, layout: cfg.small_layout, return_latencies: true,
    });
  return {
    report, ours, noop, port: ours.http_port!, service_token, event_ids, partition_count,
    spread_spec,
  };
}

/** A. Throughput vs the no-op server, alternating rounds. Returns ours' ops/s. */
async function throughput(rig: Rig): Promise<number> {
  const { report, ours, noop, service_token } = rig;
  const before = await scrape(rig.port);
  const a_ours: Measured[] = [];
  const a_noop: Measured[] = [];
  for (let r = 0; r < cfg.rounds; r++) {
    log(`A round ${r + 1}/${cfg.rounds}: ours`);
    const spec_ours = rig.spread_spec(`A-ours-${r}`, ours.grpc, service_token);
    a_ours.push(await run_load({ ...spec_ours, seed: 100 + r }, ours.pid));
    log(`A round ${r + 1}/${cfg.rounds}: no-op`);
    const spec_noop = rig.spread_spec(`A-noop-${r}`, noop.grpc, service_token);
    a_noop.push(await run_load({ ...spec_noop, seed: 100 + r }, noop.pid));
  }
  await sleep(cfg.stats_wait_ms);
  const after = await scrape(rig.port);
  const A = { ours: pool(a_ours), noop: pool(a_noop), commit: commit_delta(before, after) };
  const ratio = A.ours.ops_per_s / A.noop.ops_per_s;
  const round_ratios = a_ours.map((m, i) => m.result.ops_per_s / a_noop[i]!.result.ops_per_s);
  report.results['A_throughput'] = {
    ratio, round_ratios, ours: strip(A.ours), noop: strip(A.noop), group_commit: A.commit,
  };
  report.check({
    order: 10, check: 'A throughput (ops/s, closed loop)', ours: fmt_int(A.ours.ops_per_s),
    reference: `no-op ${fmt_int(A.noop.ops_per_s)}`, value: ratio_text(ratio, round_ratios),
    target: `>= ${targets.throughput_ratio}`,
  }, ratio >= targets.throughput_ratio && A.ours.error_count === 0);
  report.check({
    order: 11, check: `A latency per op (C=${cfg.concurrency})`, ours: lat(A.ours.latency),
    reference: `no-op ${lat(A.noop.latency)}`,
    value: `p99 x${f(A.ours.latency.p99_ms / A.noop.latency.p99_ms, 1)} no-op`, target: 'info',
  }, undefined);
  report.check({
    order: 40, check: 'Group commit records/commit (A)',
    ours: `${fmt_int(A.commit.records)} rec / ${fmt_int(A.commit.commits)} commits`,
    reference: '-', value: f(A.commit.records_per_commit, 1),
    target: `>= ${targets.records_per_commit}`,
  }, A.commit.records_per_commit >= targets.records_per_commit);
  report.detail(
    cpu_line('A ours  ', A.ours.cpu, A.ours.loadgen_cpu),
    cpu_line('A no-op ', A.noop.cpu, A.noop.loadgen_cpu),
    `A ours per call: ReserveTickets p99 ${ms(A.ours.reserve_p99_ms)}, ReleaseHold p99 ` +
      `${ms(A.ours.release_p99_ms)} (worst round); mean LMDB commit incl. fsync ` +
      `${ms(A.commit.mean_commit_ms)}`,
    errors_line('A ours', A.ours.errors), errors_line('A no-op', A.noop.errors),
  );
  return A.ours.ops_per_s;
}

/** B. Open loop at half of A's throughput. */
async function open_loop(rig: Rig, a_ops_per_s: number): Promise<void> {
  const { report, ours, noop, service_token } = rig;
  const rate = Math.max(1, Math.floor(a_ops_per_s / 2));
  const open = {
    mode: 'open' as const, rate, duration_s: cfg.open_s, seed: 200, return_latencies: false,
  };
  log(`B: open loop at ${rate} ops/s for ${cfg.open_s} s`);
  const before = await scrape(rig.port);
  const B = await run_load({
    ...rig.spread_spec('B-open', ours.grpc, service_token), ...open,
  }, ours.pid);
  await sleep(cfg.stats_wait_ms);
  const after = await scrape(rig.port);
  const commit = commit_delta(before, after);
  const server_p99 = (method: string) => 1000 * hist_quantile(
    before, after, 'ticketing_grpc_request_duration_seconds', [`method="${method}"`], 0.99);
  const server = {
    reserve_p99_ms_le: server_p99('ReserveTickets'), release_p99_ms_le: server_p99('ReleaseHold'),
  };
  // Reference: the same open-loop schedule against the no-op server (generator + transport tail).
  log(`B reference: same schedule against the no-op server`);
  const B_noop = await run_load({
    ...rig.spread_spec('B-open-noop', noop.grpc, service_token), ...open,
  }, noop.pid);
  report.results['B_open_loop'] = {
    rate, ...B.result, server_cpu: B.cpu, group_commit: commit, server_side: server,
    noop: { ...B_noop.result, server_cpu: B_noop.cpu },
  };
  report.check({
    order: 20, check: 'B p99 per op, open loop at A/2',
    ours: `${fmt_int(rate)} ops/s offered, ${fmt_int(B.result.ops_per_s)} done`,
    reference: `no-op ${lat(B_noop.result.latency)}`,
    value: `p50 ${ms(B.result.latency.p50_ms)} p99 ${ms(B.result.latency.p99_ms)}`,
    target: `<= ${targets.open_p99_ms} ms`,
  }, B.result.latency.p99_ms <= targets.open_p99_ms && B.result.error_count === 0);
  report.check({
    order: 42, check: 'Group commit records/commit (B)',
    ours: `${fmt_int(commit.records)} rec / ${fmt_int(commit.commits)} commits`,
    reference: '-', value: f(commit.records_per_commit, 1), target: 'info',
  }, undefined);
  const l = B.result.latency;
  const n = B_noop.result.latency;
  report.detail(
    `B: ${fmt_int(B.result.ok_ops)} ops in ${cfg.open_s} s (latency from each op's scheduled ` +
      `start): p90 ${ms(l.p90_ms)}, p99.9 ${ms(l.p999_ms)}, max ${ms(l.max_ms)}; ` +
      `ReserveTickets p99 ${ms(B.result.reserve.p99_ms)}, ReleaseHold p99 ` +
      `${ms(B.result.release.p99_ms)}; mean commit ${ms(commit.mean_commit_ms)}`,
    `B server-side p99 (server histogram, bucket bound): ReserveTickets <= ` +
      `${ms(server.reserve_p99_ms_le)}, ReleaseHold <= ${ms(server.release_p99_ms_le)}; ` +
      `same schedule on the no-op server: p50 ${ms(n.p50_ms)} p99 ${ms(n.p99_ms)} ` +
      `max ${ms(n.max_ms)}`,
    cpu_line('B       ', B.cpu, B.result.loadgen_cpu), errors_line('B', B.result.errors),
  );
}

/** C. One hot event (one partition) vs the same load over 100 events, alternating. */
async function hot_vs_spread(rig: Rig): Promise<void> {
  const { report, ours, service_token } = rig;
  const hot_event = rig.event_ids[0]!;
  const c_hot: Measured[] = [];
  const c_spread: Measured[] = [];
  const hot_commits: CommitStats[] = [];
  const spread_commits: CommitStats[] = [];
  for (let r = 0; r < cfg.rounds; r++) {
    log(`C round ${r + 1}/${cfg.rounds}: hot (1 event)`);
    let s0 = await scrape(rig.port);
    const hot_spec = rig.spread_spec(`C-hot-${r}`, ours.grpc, service_token);
    c_hot.push(await run_load({ ...hot_spec, event_ids: [hot_event], seed: 300 + r }, ours.pid));
    await sleep(cfg.stats_wait_ms);
    let s1 = await scrape(rig.port);
    hot_commits.push(commit_delta(s0, s1));
    log(`C round ${r + 1}/${cfg.rounds}: spread (${cfg.events} events)`);
    s0 = s1;
    const spread_spec = rig.spread_spec(`C-spread-${r}`, ours.grpc, service_token);
    c_spread.push(await run_load({ ...spread_spec, seed: 300 + r }, ours.pid));
    await sleep(cfg.stats_wait_ms);
    s1 = await scrape(rig.port);
    spread_commits.push(commit_delta(s0, s1));
  }
  const C = {
    hot: pool(c_hot), spread: pool(c_spread),
    hot_commit: sum_commits(hot_commits), spread_commit: sum_commits(spread_commits),
  };
  const ratio = C.hot.ops_per_s / C.spread.ops_per_s;
  report.results['C_hot_vs_spread'] = {
    ratio, round_ratios: c_hot.map((m, i) => m.result.ops_per_s / c_spread[i]!.result.ops_per_s),
    hot_event, hot_partition: partition_of(hot_event, rig.partition_count),
    hot: strip(C.hot), spread: strip(C.spread),
    hot_group_commit: C.hot_commit, spread_group_commit: C.spread_commit,
  };
  report_hot_vs_spread(report, C, ratio);
}

function report_hot_vs_spread(
  report: Report, C: {
    hot: Pooled; spread: Pooled;
    hot_commit: CommitStats; spread_commit: CommitStats;
  }, ratio: number,
): void {
  report.check({
    order: 30, check: 'C hot event / spread (ops/s)', ours: `hot ${fmt_int(C.hot.ops_per_s)}`,
    reference: `spread ${fmt_int(C.spread.ops_per_s)}`, value: `ratio ${f(ratio)}`,
    target: `>= ${targets.hot_ratio}`,
  }, ratio >= targets.hot_ratio && C.hot.error_count === 0);
  report.check({
    order: 31, check: 'C latency per op', ours: `hot ${lat(C.hot.latency)}`,
    reference: `spread ${lat(C.spread.latency)}`, value: '-', target: 'info',
  }, undefined);
  report.check({
    order: 41, check: 'Group commit records/commit (C)',
    ours: `hot ${f(C.hot_commit.records_per_commit, 1)}`,
    reference: `spread ${f(C.spread_commit.records_per_commit, 1)}`, value: '-', target: 'info',
  }, undefined);
  report.detail(
    cpu_line('C hot   ', C.hot.cpu, C.hot.loadgen_cpu),
    cpu_line('C spread', C.spread.cpu, C.spread.loadgen_cpu),
    `C mean LMDB commit incl. fsync: hot ${ms(C.hot_commit.mean_commit_ms)}, ` +
      `spread ${ms(C.spread_commit.mean_commit_ms)}`,
    errors_line('C hot', C.hot.errors), errors_line('C spread', C.spread.errors),
  );
}

export const load_section: Section = { key: 'load', name: 'A/B/C/group commit', order: 10, run };
