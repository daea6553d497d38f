// Section "kafka" (7d): the same load with the emitter on (a real broker on this machine) and
// off; records per producer send; lag from a reply to its event readable on the topic.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cfg, quick, targets } from '../config.js';
import { LagProbe, start_bench_broker } from '../kafka.js';
import { load_spec, pool, run_load, strip, type Measured } from '../harness/load.js';
import { metric, metric_delta, scrape, type Scrape } from '../harness/metrics.js';
import {
  create_events, log, mint_token, numbered_ids, sleep, start_ours, terminate, type Running,
} from '../harness/processes.js';
import {
  cpu_line, errors_line, f, fmt_int, lat, ms, ratio_text, type Report,
} from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

/** The two servers and what the rounds share. */
interface Rig {
  on: Running;
  off: Running;
  token_on: string;
  token_off: string;
  event_ids: string[];
  probe: LagProbe;
}

const spec = (rig: Rig, label: string, target: string, token: string, seed: number) =>
  load_spec({
    label, target, token, event_ids: rig.event_ids, layout: cfg.small_layout,
    return_latencies: true, seed,
  });

async function run({ root, secret, report }: SectionContext): Promise<void> {
  log('kafka: starting a broker (first run downloads it from Maven Central)');
  // BENCH_KAFKA_DIR=<dir>: the broker's log elsewhere (a tmpfs, another disk). Tried 2 Dec 2026
  // on the quiet machine: on /dev/shm and on the stores' ext4, one run each, both 0.87× on / off
  // (an earlier pair under a Go build gave 0.69 and 1.00: noise), so the default stays here.
  const broker = await start_bench_broker(process.env['BENCH_KAFKA_DIR'] ?? join(root, 'kafka'));
  const data_on = join(root, 'data-kafka-on');
  const data_off = join(root, 'data-kafka-off');
  let on: Running | undefined;
  let off: Running | undefined;
  let probe: LagProbe | undefined;
  try {
    on = await start_ours('ticketing-kafka', data_on, secret, ['--kafka', broker.brokers]);
    off = await start_ours('ticketing-no-kafka', data_off, secret);
    const event_ids = numbered_ids('bench-k', cfg.events, 3);
    const token_on = mint_token('bench-service', 'service', data_on, secret);
    const token_off = mint_token('bench-service', 'service', data_off, secret);
    const admin_on = mint_token('bench-admin', 'admin', data_on, secret);
    await create_events(on, admin_on, [...event_ids, 'bench-probe'], cfg.small_layout);
    const admin_off = mint_token('bench-admin', 'admin', data_off, secret);
    await create_events(off, admin_off, event_ids, cfg.small_layout);
    const port = on.http_port!;
    // Warm up: the producer connects and creates the topics at the first send (and a broker that
    // just started may refuse producer ids for a moment); the rounds measure steady state.
    probe = new LagProbe(broker.brokers, on.grpc, token_on, 'bench-probe', cfg.small_layout);
    await probe.warm_up();
    for (let i = 0; i < 600; i++) {
      if (metric(await scrape(port), 'ticketing_kafka_records_sent_total') >= 1) break;
      await sleep(100);
    }
    report.detail('kafka: broker on this machine (same cores as the server); each op = ' +
      'ReserveTickets + ReleaseHold = 2 events (HoldCreated, HoldReleased)');
    await measure(report, { on, off, token_on, token_off, event_ids, probe });
  } finally {
    await probe?.stop().catch(() => undefined);
    if (on !== undefined) await terminate(on.proc);
    if (off !== undefined) await terminate(off.proc);
    await broker.stop().catch(() => undefined);
    rmSync(data_on, { recursive: true, force: true });
    rmSync(data_off, { recursive: true, force: true });
  }
}

async function measure(report: Report, rig: Rig): Promise<void> {
  const { on, off } = rig;
  const port = on.http_port!;
  // Throughput, emitter on vs off, alternating rounds.
  const rounds_on: Measured[] = [];
  const rounds_off: Measured[] = [];
  const before = await scrape(port);
  for (let r = 0; r < cfg.rounds; r++) {
    log(`kafka round ${r + 1}/${cfg.rounds}: emitter on`);
    rounds_on.push(await run_load(spec(rig, `K-on-${r}`, on.grpc, rig.token_on, 500 + r), on.pid));
    log(`kafka round ${r + 1}/${cfg.rounds}: emitter off`);
    const off_spec = spec(rig, `K-off-${r}`, off.grpc, rig.token_off, 500 + r);
    rounds_off.push(await run_load(off_spec, off.pid));
  }
  // Drain: every event of the rounds acknowledged by the broker.
  const drain_started = performance.now();
  let after = await scrape(port);
  for (let i = 0; i < 600 && metric(after, 'ticketing_outbox_pending') > 0; i++) {
    await sleep(100);
    after = await scrape(port);
  }
  await sleep(cfg.stats_wait_ms);
  after = await scrape(port);
  const drain_ms = performance.now() - drain_started;
  const producer = producer_stats(before, after, drain_ms);
  const lags = await lag(rig);
  const K = { on: pool(rounds_on), off: pool(rounds_off) };
  const ratio = K.on.ops_per_s / K.off.ops_per_s;
  const round_ratios = rounds_on.map((m, i) =>
    m.result.ops_per_s / rounds_off[i]!.result.ops_per_s);
  report.results['kafka'] = {
    ratio, round_ratios, on: strip(K.on), off: strip(K.off), producer, ...lags,
  };
  report.check({
    order: 70, check: 'Kafka: throughput emitter on / off',
    ours: `on ${fmt_int(K.on.ops_per_s)} ops/s`,
    reference: `off ${fmt_int(K.off.ops_per_s)} ops/s`, value: ratio_text(ratio, round_ratios),
    target: `>= ${targets.kafka_throughput_ratio}`,
  }, ratio >= targets.kafka_throughput_ratio && K.on.error_count === 0);
  report_producer(report, producer, lags);
  report.detail(
    cpu_line('K on    ', K.on.cpu, K.on.loadgen_cpu),
    cpu_line('K off   ', K.off.cpu, K.off.loadgen_cpu),
  );
  report_details(report, producer, lags);
  report.detail(errors_line('K on', K.on.errors), errors_line('K off', K.off.errors));
}

type Producer = ReturnType<typeof producer_stats>;
type Lags = Awaited<ReturnType<typeof lag>>;

/** The producer's sends between two scrapes of the emitting server. */
function producer_stats(before: Scrape, after: Scrape, drain_ms: number) {
  const delta = (name: string) => metric_delta(before, after, name);
  const sends = delta('ticketing_kafka_send_records_count');
  const sent = delta('ticketing_kafka_send_records_sum');
  const send_s = delta('ticketing_kafka_send_duration_seconds_sum');
  return {
    sends, records: sent, records_per_send: sends > 0 ? sent / sends : NaN,
    mean_send_ms: sends > 0 ? (send_s / sends) * 1000 : NaN,
    publish_errors: delta('ticketing_kafka_publish_errors_total'), drain_ms,
    pending_after: metric(after, 'ticketing_outbox_pending'),
  };
}

/** Lag from reply to readable on the topic: an idle node, then during a saturating round. */
async function lag(rig: Rig) {
  const { on, probe } = rig;
  log('kafka: lag probe (idle)');
  await probe.start();
  await sleep(1000); // the consumer's first fetch fixes its start offset
  await probe.run(quick ? 50 : 200, 20);
  const lag_idle = await probe.collect();
  log('kafka: lag probe during a saturating round');
  let loaded_done = false;
  await Promise.all([
    run_load(spec(rig, 'K-lag-load', on.grpc, rig.token_on, 600), on.pid)
      .finally(() => (loaded_done = true)),
    (async () => {
      await sleep(cfg.warmup_s * 1000);
      await probe.run(1_000_000, 20, () => loaded_done);
    })(),
  ]);
  const lag_loaded = await probe.collect();
  return { lag_idle, lag_loaded };
}

function report_producer(report: Report, p: Producer, { lag_idle, lag_loaded }: Lags): void {
  report.check({
    order: 71, check: 'Kafka: records per producer send (saturation)',
    ours: `${fmt_int(p.records)} records / ${fmt_int(p.sends)} sends`, reference: '-',
    value: f(p.records_per_send, 1), target: `>= ${targets.kafka_records_per_send}`,
  }, p.records_per_send >= targets.kafka_records_per_send);
  report.check({
    order: 72, check: 'Kafka: reply -> readable on topic (idle)', ours: lat(lag_idle.lag),
    reference: '-', value: `${lag_idle.lag.n} events, ${lag_idle.missing} missing`, target: 'info',
  }, undefined);
  report.check({
    order: 73, check: 'Kafka: reply -> readable on topic (saturated)', ours: lat(lag_loaded.lag),
    reference: '-', value: `${lag_loaded.lag.n} events, ${lag_loaded.missing} missing`,
    target: 'info',
  }, undefined);
}

function report_details(report: Report, p: Producer, { lag_idle, lag_loaded }: Lags): void {
  report.detail(
    `kafka producer: mean send (to acks from all in-sync replicas) ${ms(p.mean_send_ms)}; ` +
      `publish errors ${p.publish_errors}; outbox drained ${f(p.drain_ms, 0)} ms after the ` +
      `last round (pending then: ${p.pending_after})`,
    `kafka lag idle: p90 ${ms(lag_idle.lag.p90_ms)} max ${ms(lag_idle.lag.max_ms)}; ` +
      `saturated: p90 ${ms(lag_loaded.lag.p90_ms)} max ${ms(lag_loaded.lag.max_ms)}`,
  );
}

export const kafka_section: Section = { key: 'kafka', name: 'kafka', order: 70, run };
