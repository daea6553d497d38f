// Section "restart" (7b): restart after kill -9 with 20 x 50,000 seats and 100,000 active holds
// (BENCH_RESTART_BIG=1: 200 x 50,000 seats and 1,000,000 holds),
// against a restart after a clean stop and a start on an empty data dir.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { seats_of } from '../common.js';
import { cfg, targets } from '../config.js';
import { load_spec, run_load, type Measured } from '../harness/load.js';
import { commit_delta, du_bytes, metric, scrape, type CommitStats } from '../harness/metrics.js';
import {
  create_events, log, mint_token, numbered_ids, sleep, start_ours, terminate, wait_exit,
  type Running,
} from '../harness/processes.js';
import { cpu_line, errors_line, f, fmt_int, ms, type Report } from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

interface Fill { fill: Measured; holds_before: number; fill_commit: CommitStats; create_ms: number }

/** Creates the big events on `first` and fills them with holds, one seat each. */
async function fill_holds(first: Running, data_r: string, secret: string): Promise<Fill> {
  const r_service = mint_token('bench-service', 'service', data_r, secret);
  const r_admin = mint_token('bench-admin', 'admin', data_r, secret);
  const big_ids = numbered_ids('bench-big', cfg.restart_events, 2);
  const t_create = performance.now();
  await create_events(first, r_admin, big_ids, cfg.big_layout);
  const create_ms = performance.now() - t_create;
  const fill = await run_load(load_spec({
    label: 'restart-fill', target: first.grpc, token: r_service, event_ids: big_ids,
    layout: cfg.big_layout, mode: 'count', op: 'reserve', concurrency: cfg.fill_concurrency,
    total_ops: cfg.restart_holds, warmup_s: 0, duration_s: 0, seat_pick: 'sequential',
    user_prefix: 'fill-u', user_count: cfg.fill_users, hold_ttl_seconds: 3600, seed: 400,
    deadline_ms: 30_000,
  }), first.pid);
  await sleep(cfg.stats_wait_ms);
  const fill_scrape = await scrape(first.http_port!);
  const holds_before = metric(fill_scrape, 'ticketing_seat_holds_active');
  const fill_commit = commit_delta(new Map(), fill_scrape);
  log(`restart: ${fmt_int(fill.result.ok_ops)} holds in ${f(fill.result.window_s, 1)} s; kill -9`);
  return { fill, holds_before, fill_commit, create_ms };
}

async function run({ root, secret, report }: SectionContext): Promise<void> {
  const data_r = join(root, 'data-r');
  log(`restart: server with ${cfg.restart_events} events x ${seats_of(cfg.big_layout)} seats, ` +
    `filling ${cfg.restart_holds} holds`);
  const first = await start_ours('ticketing-r1', data_r, secret);
  let filled: Fill;
  try {
    filled = await fill_holds(first, data_r, secret);
  } finally {
    first.proc.kill('SIGKILL');
    await wait_exit(first.proc, 10_000);
  }
  const data_bytes = du_bytes(data_r);
  const second = await start_ours('ticketing-r2', data_r, secret);
  let holds_after: number;
  try {
    log(`restart: serving after ${f(second.spawn_to_serving_ms, 0)} ms ` +
      `(recovery_ms ${second.recovery_ms})`);
    await sleep(cfg.stats_wait_ms);
    holds_after = metric(await scrape(second.http_port!), 'ticketing_seat_holds_active');
  } finally {
    await terminate(second.proc);
  }
  // Same data dir after a clean stop, and an empty data dir: what a start costs anyway.
  const third = await start_ours('ticketing-r3', data_r, secret);
  await terminate(third.proc);
  const data_e = join(root, 'data-empty');
  const empty = await start_ours('ticketing-empty', data_e, secret);
  await terminate(empty.proc);
  rmSync(data_r, { recursive: true, force: true });
  rmSync(data_e, { recursive: true, force: true });
  const { fill, holds_before, fill_commit, create_ms } = filled;
  report.results['restart'] = {
    events: cfg.restart_events, seats_per_event: seats_of(cfg.big_layout), create_events_ms: create_ms,
    fill: { ...fill.result, server_cpu: fill.cpu, group_commit: fill_commit },
    holds_active_before_kill: holds_before, holds_active_after_restart: holds_after,
    data_dir_bytes: data_bytes,
    spawn_to_serving_ms: second.spawn_to_serving_ms, recovery_ms: second.recovery_ms,
    clean_restart_spawn_to_serving_ms: third.spawn_to_serving_ms,
    clean_restart_recovery_ms: third.recovery_ms,
    empty_spawn_to_serving_ms: empty.spawn_to_serving_ms, empty_recovery_ms: empty.recovery_ms,
  };
  report_restart(report, filled, holds_after, data_bytes, { second, third, empty });
}

function report_restart(
  report: Report, { fill, holds_before, fill_commit, create_ms }: Fill, holds_after: number,
  data_bytes: number, { second, third, empty }: Record<'second' | 'third' | 'empty', Running>,
): void {
  const restart_s = second.spawn_to_serving_ms / 1000;
  report.check({
    order: 60, check: `Restart after kill -9 (${fmt_int(holds_before)} holds)`,
    ours: `spawn->serving ${f(restart_s)} s`,
    reference: `empty dir ${f(empty.spawn_to_serving_ms / 1000)} s`,
    value: `recovery_ms ${second.recovery_ms}`, target: `<= ${targets.restart_s} s`,
  }, restart_s <= targets.restart_s);
  report.check({
    order: 61, check: 'Restart: active holds recovered', ours: fmt_int(holds_after),
    reference: `before kill ${fmt_int(holds_before)}`,
    value: holds_after === holds_before ? 'all' : 'MISMATCH', target: 'equal',
  }, holds_after === holds_before && holds_before === cfg.restart_holds);
  report.check({
    order: 62, check: `Fill holds (ReserveTickets only, C=${cfg.fill_concurrency})`,
    ours: `${fmt_int(fill.result.ops_per_s)} holds/s`, reference: '-',
    value: `${f(fill_commit.records_per_commit, 1)} rec/commit`, target: 'info',
  }, undefined);
  const started = (r: Running) =>
    `${f(r.spawn_to_serving_ms, 0)} ms (recovery ${r.recovery_ms} ms)`;
  report.detail(
    `restart: data dir ${f(data_bytes / 2 ** 20, 1)} MiB; spawn->serving after kill -9 ` +
      `${started(second)}, after clean stop ${started(third)}, empty dir ${started(empty)}`,
    `restart fill: ${cfg.restart_events} events created in ${f(create_ms, 0)} ms; ` +
      `${fmt_int(fill.result.ok_ops)} holds in ${f(fill.result.window_s, 1)} s, ReserveTickets ` +
      `p50 ${ms(fill.result.latency.p50_ms)} p99 ${ms(fill.result.latency.p99_ms)}; ` +
      `mean commit ${ms(fill_commit.mean_commit_ms)}`,
    cpu_line('fill    ', fill.cpu, fill.result.loadgen_cpu),
    errors_line('fill', fill.result.errors),
  );
}

export const restart_section: Section = { key: 'restart', name: 'restart', order: 60, run };
