// Section "purchase": the whole flow for fresh users (CreateDraft, ScoreTransaction, Authorize,
// ConfirmOrder), and each of those RPCs alone at saturation, on ours and on the no-op server.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  seats_of, summarize, type BenchOrder, type LatencySummary, type PurchaseResult,
  type PurchaseSpec, type PurchaseStep,
} from '../common.js';
import { cfg, targets } from '../config.js';
import { run_generator } from '../harness/load.js';
import {
  avg_cpu, commit_delta, hist_quantile, metric_delta, scrape, type CommitStats, type CpuUse,
  type Scrape,
} from '../harness/metrics.js';
import {
  create_events, log, mint_token, sleep, start_noop, start_ours, terminate, type Running,
} from '../harness/processes.js';
import {
  cpu_line, errors_line, f, fmt_int, lat, ms, ratio_text, type Report,
} from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

const rpc_of = {
  draft: 'CreateDraft', score: 'ScoreTransaction', authorize: 'Authorize', confirm: 'ConfirmOrder',
} as const;
type RpcStep = keyof typeof rpc_of;
const rpc_steps = Object.keys(rpc_of) as RpcStep[];
interface PurchaseMeasured { result: PurchaseResult; cpu: CpuUse | undefined }
type Consuming = 'score' | 'authorize' | 'confirm';
const next_step = { draft: 'score', score: 'authorize', authorize: 'confirm' } as const;
const prev_step = { score: 'draft', authorize: 'score', confirm: 'authorize' } as const;

/**
 * Combines rounds: throughput = all ok ops / all windows; percentiles over all latencies, per
 * RPC.
 */
function pool_purchase(rounds: PurchaseMeasured[]) {
  const latencies: Record<string, number[]> = {};
  const errors: Record<string, number> = {};
  for (const { result } of rounds) {
    for (const [name, xs] of Object.entries(result.latencies_ms)) {
      for (const x of xs) (latencies[name] ??= []).push(x);
    }
    for (const [k, v] of Object.entries(result.errors)) errors[k] = (errors[k] ?? 0) + v;
  }
  const window_s = rounds.reduce((a, m) => a + m.result.window_s, 0);
  const latency = Object.fromEntries(
    Object.entries(latencies).map(([name, xs]) => [name, summarize(xs)]),
  ) as Record<string, LatencySummary>;
  return {
    ops_per_s: rounds.reduce((a, m) => a + m.result.ok_ops, 0) / window_s,
    round_ops_per_s: rounds.map((m) => m.result.ops_per_s),
    window_s,
    short_windows: rounds.filter((m) => m.result.exhausted)
      .map((m) => `${m.result.label} ${f(m.result.window_s, 1)} s`),
    latency,
    errors,
    error_count: rounds.reduce((a, m) => a + m.result.error_count, 0),
    loadgen_cpu: rounds.reduce((a, m) => a + m.result.loadgen_cpu, 0) / rounds.length,
    cpu: avg_cpu(rounds.map((m) => m.cpu)),
  };
}
type PooledPurchase = ReturnType<typeof pool_purchase>;

/** The orders in flight on ours between phases, and the phases that move them. */
class PurchaseRun {
  // Users (and seats) used on ours so far: each user buys one seat, once.
  next_index = 0;
  // Orders on ours waiting for their next RPC, oldest first: each phase advances some of them.
  readonly waiting: Record<Consuming, BenchOrder[]> = { score: [], authorize: [], confirm: [] };
  readonly rate_of: Partial<Record<RpcStep, number>> = {}; // ours, calls/s, from the phases so far
  // The server's own latency histogram around each measured phase on ours: time inside the
  // server (receipt to answer), as against what the generator saw.
  readonly server_side = Object.fromEntries(rpc_steps.map((k) => [k, new Map()])) as
    Record<RpcStep, Scrape>;
  readonly seat_count = seats_of(cfg.purchase_layout);
  private readonly orders_in: string;
  private readonly orders_out: string;

  constructor(
    readonly ours: Running, readonly noop: Running, private readonly service_token: string,
    root: string, private readonly gen_env: NodeJS.ProcessEnv,
  ) {
    this.orders_in = join(root, 'orders-in.json');
    this.orders_out = join(root, 'orders-out.json');
  }

  /**
   * One closed-loop phase of `step` on `on`. `limit` > 0: an unmeasured stocking run that
   * advances exactly `limit` orders (or new users), however long that takes.
   */
  async phase(
    step: PurchaseStep, on: Running, round: number, limit = 0,
  ): Promise<PurchaseMeasured> {
    const is_ours = on === this.ours;
    const consumes = step === 'score' || step === 'authorize' || step === 'confirm';
    if (consumes && is_ours) {
      const waiting = this.waiting[step];
      if (waiting.length === 0) throw new Error(`purchase: no orders left for ${rpc_of[step]}`);
      writeFileSync(this.orders_in, JSON.stringify(limit > 0 ? waiting.slice(0, limit) : waiting));
    }
    const keeps = is_ours && (step === 'draft' || step === 'score' || step === 'authorize');
    const stocking = limit > 0;
    const spec: PurchaseSpec = {
      label: `${step}-${on.name}-${stocking ? 'stock' : round}`, target: on.grpc, step,
      concurrency: cfg.concurrency, warmup_s: stocking ? 0 : cfg.warmup_s,
      duration_s: stocking ? 600 : cfg.phase_s, deadline_ms: 10_000,
      service_token: this.service_token, event_id: cfg.purchase_event, layout: cfg.purchase_layout,
      // The no-op server keeps no state, so it gets the requests ours just got, reused for as
      // long as the phase lasts.
      first_index: this.next_index,
      index_end: !is_ours ? Number.MAX_SAFE_INTEGER
        : stocking ? this.next_index + limit : this.seat_count,
      orders_in: consumes ? this.orders_in : null, cycle: !is_ours,
      orders_out: keeps ? this.orders_out : null,
    };
    const what = step === 'purchase' ? 'whole purchase'
      : stocking ? `stocking ${fmt_int(limit)} x ${rpc_of[step]}` : `${rpc_of[step]} alone`;
    log(`purchase round ${round + 1}/${cfg.rounds}: ${what} on ${on.name}`);
    const m = await run_generator<PurchaseResult>(
      'purchase_gen.js', spec, spec.warmup_s + spec.duration_s + 60, on.pid, this.gen_env);
    if (is_ours && consumes) this.waiting[step].splice(0, m.result.consumed);
    if (is_ours && !consumes) this.next_index += m.result.consumed;
    if (keeps) {
      const out = JSON.parse(readFileSync(this.orders_out, 'utf8')) as BenchOrder[];
      this.waiting[next_step[step]].push(...out);
    }
    // A phase that ran out of orders during its warmup has no window: its whole run says enough.
    if (is_ours && step !== 'purchase' && !stocking) {
      this.rate_of[step] = m.result.window_s > 0
        ? m.result.ops_per_s : m.result.ok_ops_total / m.result.elapsed_s;
    }
    return m;
  }

  /**
   * Before a measured phase of `step` on ours: at least twice what it can use in a phase waits
   * for it (at its last measured rate, else the fastest rate seen), advanced through the
   * earlier steps unmeasured if need be. Otherwise a step faster than the one feeding it runs
   * out of orders and its window shortens (the report names any that still do).
   */
  async stock(step: Consuming, round: number, need?: number): Promise<void> {
    const rate = this.rate_of[step] ?? Math.max(...Object.values(this.rate_of));
    need ??= Math.ceil(2 * (cfg.warmup_s + cfg.phase_s) * rate);
    const missing = need - this.waiting[step].length;
    if (missing <= 0) return;
    const from = prev_step[step];
    if (from !== 'draft') await this.stock(from, round, missing);
    await this.phase(from, this.ours, round, missing);
  }

  async measured(step: RpcStep, r: number): Promise<PurchaseMeasured> {
    const s0 = await scrape(this.ours.http_port!);
    const m = await this.phase(step, this.ours, r);
    const side = this.server_side[step];
    for (const [k, v] of await scrape(this.ours.http_port!)) {
      side.set(k, (side.get(k) ?? 0) + v - (s0.get(k) ?? 0));
    }
    return m;
  }
}

type Alone = Record<RpcStep, { ours: PurchaseMeasured[]; noop: PurchaseMeasured[] }>;
interface Whole { ours: PurchaseMeasured[]; noop: PurchaseMeasured[] }

/** cfg.rounds rounds of: each RPC alone on ours then on the no-op server, then the whole flow. */
async function rounds(p: PurchaseRun): Promise<{ alone: Alone; whole: Whole }> {
  const alone = Object.fromEntries(rpc_steps.map((k) => [k, { ours: [], noop: [] }])) as
    unknown as Alone;
  const whole: Whole = { ours: [], noop: [] };
  for (let r = 0; r < cfg.rounds; r++) {
    // In purchase order, so each phase on ours works on orders the previous one left; ours
    // then the no-op server with the same requests, side by side.
    for (const step of rpc_steps) {
      if (step !== 'draft') await p.stock(step, r);
      let m = await p.measured(step, r);
      if (m.result.exhausted && step !== 'draft') {
        log(`purchase: ${rpc_of[step]} ran out of orders after ${f(m.result.elapsed_s, 1)} s; ` +
          'stocking for its rate and measuring again');
        await p.stock(step, r);
        m = await p.measured(step, r);
      }
      alone[step].ours.push(m);
      alone[step].noop.push(await p.phase(step, p.noop, r));
    }
    whole.ours.push(await p.phase('purchase', p.ours, r));
    whole.noop.push(await p.phase('purchase', p.noop, r));
  }
  return { alone, whole };
}

async function run({ root, secret, report }: SectionContext): Promise<void> {
  const data_p = join(root, 'data-p');
  log(`purchase: starting our server (--workers ${cfg.workers}) and the no-op server`);
  const ours = await start_ours('ticketing-p', data_p, secret);
  const noop = await start_noop();
  try {
    const service_token = mint_token('bench-orders', 'service', data_p, secret);
    const admin_token = mint_token('bench-admin', 'admin', data_p, secret);
    await create_events(ours, admin_token, [cfg.purchase_event], cfg.purchase_layout);
    // the generator signs one customer token per user
    const gen_env = { ...process.env, TICKETING_AUTH_SECRET: secret };
    const p = new PurchaseRun(ours, noop, service_token, root, gen_env);
    const before = await scrape(ours.http_port!);
    const { alone, whole } = await rounds(p);
    await sleep(cfg.stats_wait_ms);
    const after = await scrape(ours.http_port!);
    const commits = commit_delta(before, after);
    const W = { ours: pool_purchase(whole.ours), noop: pool_purchase(whole.noop) };
    report_whole(report, W);
    const ratios = report_alone(report, p, alone);
    report_details(report, p, W, commits, (le: string) => commits.commits - metric_delta(
      before, after, `ticketing_journal_commit_duration_seconds_bucket{le="${le}"}`));
    report.results['purchase'] = {
      users: p.next_index, whole: W, alone: ratios, group_commit: commits,
    };
  } finally {
    await terminate(ours.proc);
    await terminate(noop.proc);
    rmSync(data_p, { recursive: true, force: true });
  }
}

type PooledPair = { ours: PooledPurchase; noop: PooledPurchase };

function report_whole(report: Report, W: PooledPair): void {
  const mean_op = W.ours.latency['op']?.mean_ms ?? NaN;
  report.check({
    order: 80, check: `Purchase: whole flow, fresh user each (C=${cfg.concurrency})`,
    ours: `${fmt_int(W.ours.ops_per_s)} purchases/s`,
    reference: `no-op ${fmt_int(W.noop.ops_per_s)}/s`,
    value: `ratio ${f(W.ours.ops_per_s / W.noop.ops_per_s)}; ${lat(W.ours.latency['op']!)}`,
    target: 'info',
  }, undefined);
  let order = 81;
  for (const step of rpc_steps) {
    const rpc = rpc_of[step];
    const step_lat = W.ours.latency[rpc]!;
    report.check({
      order: order++, check: `Purchase step ${rpc} latency (in the flow)`, ours: lat(step_lat),
      reference: `no-op ${lat(W.noop.latency[rpc]!)}`,
      value: `${f((100 * step_lat.mean_ms) / mean_op, 0)} % of a purchase`, target: 'info',
    }, undefined);
  }
}

/** One row per RPC alone (orders 85..88, after report_whole's), with its details. */
function report_alone(report: Report, p: PurchaseRun, alone: Alone): Record<string, unknown> {
  const ratios: Record<string, unknown> = {};
  let order = 81 + rpc_steps.length;
  for (const step of rpc_steps) {
    const rpc = rpc_of[step];
    const A = { ours: pool_purchase(alone[step].ours), noop: pool_purchase(alone[step].noop) };
    const ratio = A.ours.ops_per_s / A.noop.ops_per_s;
    const round_ratios = A.ours.round_ops_per_s.map((x, i) => x / A.noop.round_ops_per_s[i]!);
    ratios[rpc] = { ratio, round_ratios, ours: A.ours, noop: A.noop };
    report.check({
      order: order++, check: `${rpc} alone (calls/s, C=${cfg.concurrency})`,
      ours: fmt_int(A.ours.ops_per_s), reference: `no-op ${fmt_int(A.noop.ops_per_s)}`,
      value: ratio_text(ratio, round_ratios), target: `>= ${targets.purchase_rpc_ratio}`,
    }, ratio >= targets.purchase_rpc_ratio && A.ours.error_count === 0);
    report.detail(
      alone_line(rpc, A, p.server_side[step]),
      cpu_line(`${rpc} ours `, A.ours.cpu, A.ours.loadgen_cpu),
      cpu_line(`${rpc} no-op`, A.noop.cpu, A.noop.loadgen_cpu),
      errors_line(`${rpc} ours`, A.ours.errors), errors_line(`${rpc} no-op`, A.noop.errors),
    );
  }
  return ratios;
}

/** One RPC alone: what the generator saw on ours, inside the server, and on the no-op server. */
function alone_line(rpc: string, A: PooledPair, server_side: Scrape): string {
  const hist = 'ticketing_grpc_request_duration_seconds';
  const in_server = (q: number) =>
    ms(hist_quantile(new Map(), server_side, hist, [`method="${rpc}"`], q) * 1000);
  const sum_of = (suffix: string) => [...server_side]
    .filter(([k]) => k.startsWith(`${hist}_${suffix}{`) && k.includes(`method="${rpc}"`))
    .reduce((a, [, v]) => a + v, 0);
  const short = A.ours.short_windows;
  const ours = A.ours.latency['op']!;
  const noop = A.noop.latency['op']!;
  return `${rpc} alone: ours mean ${ms(ours.mean_ms)} ${lat(ours)}, ` +
    `inside the server mean ${ms((1000 * sum_of('sum')) / sum_of('count'))} ` +
    `(p50 <= ${in_server(0.5)}, p99 <= ${in_server(0.99)}); ` +
    `no-op mean ${ms(noop.mean_ms)} ${lat(noop)}` +
    (short.length > 0 ? `; ran out of orders early: ${short.join(', ')}` : '');
}

function report_details(
  report: Report, p: PurchaseRun, W: PooledPair, commits: CommitStats,
  commits_over: (le: string) => number,
): void {
  report.detail(
    `purchase: one event of ${fmt_int(p.seat_count)} seats; ${fmt_int(p.next_index)} users each ` +
      'bought (or drafted) one seat with their own customer token, so the per-customer rate ' +
      'limit (default 50/s, burst 100) and the per-user velocity rules never fire; ' +
      "ScoreTransaction with a service token and each buyer's own ip and device",
    cpu_line('purchase ours ', W.ours.cpu, W.ours.loadgen_cpu),
    cpu_line('purchase no-op', W.noop.cpu, W.noop.loadgen_cpu),
    errors_line('purchase ours', W.ours.errors), errors_line('purchase no-op', W.noop.errors),
    // Long commits stall every call on the worker: count them (a snapshot rewrites a whole
    // partition).
    `purchase section on ours: ${fmt_int(commits.records)} journal records in ` +
      `${fmt_int(commits.commits)} commits (${f(commits.records_per_commit, 1)} per commit), ` +
      `mean commit incl. fsync ${ms(commits.mean_commit_ms)}, ${commits_over('0.025')} over ` +
      `25 ms, ${commits_over('0.1')} over 100 ms`,
  );
}

export const purchase_section: Section = { key: 'purchase', name: 'purchase', order: 80, run };
