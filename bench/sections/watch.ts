// Section "watch": WatchAvailability fan-out. One hot event (50,000 seats) sells under the
// closed-loop reserve+release load, first with no stream open, then with 1,000 streams open on
// it (held by this bench process, on two connections). Figures: lag from a probe reserve to its
// change on every stream (p50, p99 over streams x probes), and the node's CPU per operation with
// the streams against without them, in the same run.
import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { catalog_proto, client_ctor, inventory_proto, load_protos, summarize } from '../common.js';
import { cfg, quick } from '../config.js';
import { load_spec, run_load, type Measured } from '../harness/load.js';
import { hist_delta, scrape, type HistogramDelta } from '../harness/metrics.js';
import {
  create_events, log, mint_token, sleep, start_ours, terminate, type Running,
} from '../harness/processes.js';
import { cpu_line, f, fmt_int, ms, type Report } from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

const streams_count = 1000;
const event_id = 'bench-watch';
/** A probe reserve every this often during the loaded phase: each is one lag sample per stream. */
const probe_interval_ms = 100;
/** Streams whose messages this process decodes (for the lag); the others take the bytes raw, so
 *  that the bench client, on the same 2 cores, costs little (decoding 1,000 streams' messages
 *  made the client the bottleneck: p50 338 ms in the first run). The node cannot tell them
 *  apart: it writes the same bytes to every stream. */
const decoded_every = 10;
/** The loaded phases run longer than the other sections' (3 s): more probes. */
const phase_s = quick ? 3 : 8;

interface Update { full: boolean; changed_seats: number[]; changed_states: Buffer }

interface Streams {
  calls: grpc.ClientReadableStream<Update>[];
  clients: grpc.Client[];
  /** Per stream, the first arrival (ms) of each seat index changed to held. */
  seen: Map<number, number>[];
  pictures: number;
}

function open_streams(server: Running, token: string): Streams {
  const Catalog = client_ctor(load_protos([catalog_proto]), 'ticketing.catalog.v1.CatalogService');
  // Two connections of 500 streams: the node allows 1,000 streams per connection.
  const clients = [0, 1].map(() => new Catalog(server.grpc, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 8 * 1024 * 1024,
  }));
  const s: Streams = { calls: [], clients, seen: [], pictures: 0 };
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const method = Catalog.service['WatchAvailability']!;
  const path = '/ticketing.catalog.v1.CatalogService/WatchAvailability';
  for (let i = 0; i < streams_count; i++) {
    const client = clients[i % 2]!;
    const seen = new Map<number, number>();
    if (i % decoded_every !== 0) {
      let first = true;
      const raw = client.makeServerStreamRequest(
        path, method.requestSerialize, (b: Buffer) => b, { event_id }, metadata);
      raw.on('data', () => {
        if (first) s.pictures++;
        first = false;
      });
      raw.on('error', () => undefined); // cancelled at the end
      s.calls.push(raw as grpc.ClientReadableStream<never>);
      continue;
    }
    const call = client.makeServerStreamRequest(
      path, method.requestSerialize, method.responseDeserialize, { event_id }, metadata,
    ) as grpc.ClientReadableStream<Update>;
    call.on('data', (u: Update) => {
      if (u.full) {
        s.pictures++;
        return;
      }
      const now = performance.now();
      u.changed_seats.forEach((seat, k) => {
        if (u.changed_states[k] === 1 && !seen.has(seat)) seen.set(seat, now);
      });
    });
    call.on('error', () => undefined); // cancelled at the end
    s.calls.push(call);
    s.seen.push(seen);
  }
  return s;
}

/** Probe reserves of one seat each (section 1's seats from the end, so the load, which
 *  cursors from the start, rarely meets them); returns seat index -> time the reserve was sent. */
async function probe(
  server: Running, token: string, stop: { done: boolean },
): Promise<Map<number, number>> {
  const root = load_protos([inventory_proto]);
  const Inventory = client_ctor(root, 'ticketing.inventory.v1.InventoryService');
  const client = new Inventory(server.grpc, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const sent = new Map<number, number>();
  const { rows, seats_per_row } = cfg.big_layout;
  for (let k = 0; !stop.done && k < rows * seats_per_row; k++) {
    const row = rows - 1 - Math.floor(k / seats_per_row);
    const seat = seats_per_row - (k % seats_per_row);
    const index = row * seats_per_row + seat - 1; // section 1 is first in index order
    const at = performance.now();
    const ok = await new Promise<boolean>((resolve) => {
      (client as unknown as Record<string, Function>)['ReserveTickets']!.call(client, {
        event_id, seat_ids: [`S1-R${row + 1}-${seat}`], user_id: `probe-${k}`,
        hold_ttl_seconds: 600,
      }, metadata, (error: unknown) => resolve(error === null));
    });
    if (ok) sent.set(index, at);
    await sleep(probe_interval_ms);
  }
  client.close();
  return sent;
}

function lags_of(streams: Streams, sent: Map<number, number>): number[] {
  const lags: number[] = [];
  for (const seen of streams.seen) {
    for (const [seat, at] of sent) {
      const arrived = seen.get(seat);
      if (arrived !== undefined) lags.push(arrived - at);
    }
  }
  return lags;
}

async function run({ root, secret, report }: SectionContext): Promise<void> {
  const data = join(root, 'data-watch');
  const server = await start_ours('ticketing-watch', data, secret);
  try {
    const admin = mint_token('bench-admin', 'admin', data, secret);
    const service = mint_token('bench-service', 'service', data, secret);
    await create_events(server, admin, [event_id], cfg.big_layout);
    const spec = (label: string) => load_spec({
      label, target: server.grpc, token: service, event_ids: [event_id], layout: cfg.big_layout,
      duration_s: phase_s,
    });
    log('watch: the hot event sells with no stream open');
    const without = await run_load(spec('watch-none'), server.pid);
    log(`watch: opening ${streams_count} streams`);
    const streams = open_streams(server, service);
    for (let i = 0; i < 600 && streams.pictures < streams_count; i++) await sleep(50);
    if (streams.pictures < streams_count) {
      throw new Error(`only ${streams.pictures} streams got their picture`);
    }
    const stop = { done: false };
    const before = await scrape(server.http_port!);
    const probes = probe(server, service, stop);
    const with_streams = await run_load(spec('watch-1000'), server.pid);
    stop.done = true;
    const sent = await probes;
    await sleep(500); // the last probes' changes reach the streams
    const after = await scrape(server.http_port!);
    const node_lag = hist_delta(before, after, 'ticketing_watch_lag_seconds');
    const lags = lags_of(streams, sent);
    for (const call of streams.calls) call.cancel();
    for (const client of streams.clients) client.close();
    record(report, { without, with_streams }, lags, sent.size, node_lag);
  } finally {
    await terminate(server.proc);
  }
}

function record(
  report: Report, { without, with_streams }: Record<'without' | 'with_streams', Measured>,
  lags: number[], probes: number, node_lag: HistogramDelta,
): void {
  const lag = summarize(lags);
  const cpu_none = without.cpu?.cpu_us_per_op ?? NaN;
  const cpu_with = with_streams.cpu?.cpu_us_per_op ?? NaN;
  const ratio = cpu_with / cpu_none;
  report.results['watch'] = {
    streams: streams_count, probes, lag_samples: lags.length, lag_ms: lag,
    without: { ...without.result, server_cpu: without.cpu },
    with_streams: { ...with_streams.result, server_cpu: with_streams.cpu },
    cpu_per_op_ratio: ratio, node_lag_seconds: node_lag,
  };
  report.check({
    order: 110, check: `WatchAvailability lag, ${streams_count} streams, hot event selling`,
    ours: `p50 ${ms(lag.p50_ms)} p99 ${ms(lag.p99_ms)}`,
    reference: `${fmt_int(lags.length)} samples`, value: 'reserve sent -> message', target: 'info',
  }, undefined);
  report.check({
    order: 111, check: `Node CPU per op with ${streams_count} streams / without`,
    ours: `${f(cpu_with, 0)} us/op`, reference: `${f(cpu_none, 0)} us/op`,
    value: `${f(ratio)}x`, target: 'info',
  }, undefined);
  report.detail(
    `watch: ${fmt_int(without.result.ops_per_s)} ops/s without streams, ` +
      `${fmt_int(with_streams.result.ops_per_s)} ops/s with ${streams_count}; ${probes} probes, ` +
      `lag (probe reserve sent -> change on a stream) p50 ${ms(lag.p50_ms)} ` +
      `p99 ${ms(lag.p99_ms)} max ${ms(lag.max_ms)} ` +
      `(${streams_count / decoded_every} streams decoded)`,
    `watch: the node's ticketing_watch_lag_seconds (previous poll sent -> written to every ` +
      `stream, an upper bound of commit -> written): ${fmt_int(node_lag.count)} batches, mean ` +
      `${ms(node_lag.mean * 1000)}, p50 <= ${ms(node_lag.p50 * 1000)}, ` +
      `p99 <= ${ms(node_lag.p99 * 1000)}`,
    cpu_line('watch none', without.cpu, without.result.loadgen_cpu),
    cpu_line('watch 1000', with_streams.cpu, with_streams.result.loadgen_cpu),
  );
}

export const watch_section: Section = { key: 'watch', name: 'watch', order: 110, run };
