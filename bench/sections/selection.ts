// Section "selection" (issue 14): ReserveBestAvailable on a 100,000-seat event at 80 % sold,
// against ReserveTickets of the same number of seats on an identical event, through one server
// and the same closed-loop client; and the partition's time per best-available decision (p50,
// p99), measured in-process on the actor functions over the same picture.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import {
  apply, decide_create_event, decide_reserve, type PartitionRecord,
} from '../../src/actors/inventory.js';
import { create_state, type PartitionState } from '../../src/actors/partition_state.js';
import type { DecideContext } from '../../src/runtime/behaviour.js';
import { decide_reserve_best } from '../../src/actors/selection.js';
import { seeded_random_bytes } from '../../src/runtime/random.js';
import {
  catalog_proto, client_ctor, event_wire, inventory_proto, load_protos, rng, seat_id, seats_of,
  summarize, type Layout, type LatencySummary,
} from '../common.js';
import { quick } from '../config.js';
import { log, mint_token, start_ours, terminate } from '../harness/processes.js';
import { f, fmt_int, lat, ms, type Report } from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

const layout: Layout = { sections: 20, rows: 50, seats_per_row: 100 }; // 100,000 seats
/** Seats per call on both sides: the commonest party size. */
const quantity = 2;
const concurrency = 32;
const calls_per_round = quick ? 1000 : 2500;
const rounds = 2;
const target_ratio = 0.8;

/** The 80 % picture: per row, held stretches of 4..12 seats between free gaps of 1..3, so
 *  free seats are fragmented the way a selling event's are (mean 8 held, 2 free). Returns the
 *  held stretches (as seat-index ranges) and the free adjacent pairs ReserveTickets will name. */
function picture(): { held: [number, number][]; pairs: number[] } {
  const next = rng(1414);
  const held: [number, number][] = [];
  const pairs: number[] = [];
  const per_row = layout.seats_per_row;
  for (let row = 0; row < seats_of(layout) / per_row; row++) {
    let n = 0;
    while (n < per_row) {
      const h = Math.min(per_row - n, 4 + Math.floor(next() * 9));
      held.push([row * per_row + n, row * per_row + n + h]);
      n += h;
      const gap = Math.min(per_row - n, 1 + Math.floor(next() * 3));
      if (gap >= 2) pairs.push(row * per_row + n);
      n += gap;
    }
  }
  return { held, pairs };
}

/** Holds of at most 10 seats covering the held stretches, each for a user with at most 10. */
function fill_requests(held: [number, number][]): { seats: number[]; user: string }[] {
  const out: { seats: number[]; user: string }[] = [];
  for (const [from, to] of held) {
    for (let s = from; s < to; s += 10) {
      const seats = Array.from({ length: Math.min(10, to - s) }, (_, k) => s + k);
      out.push({ seats, user: `fill-${Math.floor(out.length / 10)}` });
    }
  }
  return out;
}

type Unary = (request: unknown) => Promise<unknown>;

function unary(client: grpc.Client, method: string, bearer: string): Unary {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${bearer}`);
  const fn = (client as unknown as Record<string, Function>)[method]!;
  return (request) => new Promise((resolve, reject) => {
    fn.call(client, request, metadata, { deadline: Date.now() + 30_000 },
      (error: grpc.ServiceError | null, reply: unknown) => (error ? reject(error) : resolve(reply)));
  });
}

/** `count` calls, `concurrency` in flight; calls/s over the whole run. */
async function closed_loop(count: number, call: (i: number) => Promise<unknown>): Promise<{ per_s: number; errors: number }> {
  let next = 0;
  let errors = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const i = next++;
      await call(i).catch(() => { errors++; });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { per_s: count / ((performance.now() - started) / 1000), errors };
}

interface Rpcs { reserve: Unary; best: Unary; create: Unary; close(): void }

function rpcs(target: string, svc: string, admin: string): Rpcs {
  const root = load_protos([inventory_proto, catalog_proto, 'ticketing/inventory/v1/seat_selection.proto']);
  const creds = grpc.credentials.createInsecure();
  const options = { 'grpc.max_send_message_length': 16 * 1024 * 1024 };
  const inventory = new (client_ctor(root, 'ticketing.inventory.v1.InventoryService'))(target, creds, options);
  const selection = new (client_ctor(root, 'ticketing.inventory.v1.SeatSelectionService'))(target, creds, options);
  const catalog = new (client_ctor(root, 'ticketing.catalog.v1.CatalogService'))(target, creds, options);
  return {
    reserve: unary(inventory, 'ReserveTickets', svc), best: unary(selection, 'ReserveBestAvailable', svc),
    create: unary(catalog, 'CreateEvent', admin),
    close() {
      for (const c of [inventory, selection, catalog]) c.close();
    },
  };
}

interface Rounds { tickets: number[]; best: number[]; errors: number }

/** Fills both events to the picture, then alternates ReserveTickets and ReserveBestAvailable. */
async function measure_rpcs(r: Rpcs, shape: ReturnType<typeof picture>): Promise<Rounds> {
  for (const event_id of ['sel-tickets', 'sel-best']) {
    await r.create({ event: event_wire(event_id, layout, 100) });
    const fills = fill_requests(shape.held);
    const filled = await closed_loop(fills.length, (i) => r.reserve({
      event_id, seat_ids: fills[i]!.seats.map((s) => seat_id(layout, s)), hold_ttl_seconds: 3600,
      user_id: fills[i]!.user,
    }));
    if (filled.errors > 0) throw new Error(`filling ${event_id}: ${filled.errors} holds refused`);
  }
  log(`selection: both events at 80 % held; ${fmt_int(shape.pairs.length)} free pairs each`);
  const out: Rounds = { tickets: [], best: [], errors: 0 };
  for (let round = 0; round < rounds; round++) {
    const base = round * calls_per_round;
    const user = (i: number) => `m-${Math.floor((base + i) / 5)}`;
    const t = await closed_loop(calls_per_round, (i) => {
      const first = shape.pairs[base + i]!;
      return r.reserve({
        event_id: 'sel-tickets', seat_ids: [seat_id(layout, first), seat_id(layout, first + 1)],
        hold_ttl_seconds: 3600, user_id: user(i),
      });
    });
    const b = await closed_loop(calls_per_round, (i) => r.best({
      event_id: 'sel-best', user_id: user(i), quantity, hold_ttl_seconds: 3600,
    }));
    out.tickets.push(t.per_s);
    out.best.push(b.per_s);
    out.errors += t.errors + b.errors;
  }
  return out;
}

type Ctx = DecideContext;

/** A partition holding the event at the 80 % picture, built through the actor functions. */
function filled_state(shape: ReturnType<typeof picture>): PartitionState {
  const s = create_state(0);
  const spec = { ...event_wire('e', layout, 100), starts_at_unix: 0, price_tiers: { A: 1 } };
  for (const rec of decide_create_event(s, spec).records) apply(s, rec);
  const ctx: Ctx = { partition: 0, now_ms: 1_000, random_bytes: seeded_random_bytes(7) };
  for (const fill of fill_requests(shape.held)) {
    const seat_ids = fill.seats.map((x) => seat_id(layout, x));
    const req = { event_id: 'e', seat_ids, hold_ttl_seconds: 3600, user_id: fill.user, trace_id: '' };
    for (const rec of decide_reserve(s, req, ctx).records) apply(s, rec);
  }
  return s;
}

/** Times `decide` only; apply follows, untimed, so each call sees what the previous took. */
function time_decisions(
  s: PartitionState, decide: (i: number, ctx: Ctx) => { records: PartitionRecord[] },
): LatencySummary {
  const ctx: Ctx = { partition: 0, now_ms: 2_000, random_bytes: seeded_random_bytes(8) };
  const times: number[] = [];
  for (let i = 0; i < rounds * calls_per_round; i++) {
    const t0 = performance.now();
    const d = decide(i, ctx);
    times.push(performance.now() - t0);
    for (const rec of d.records) apply(s, rec);
  }
  return summarize(times);
}

/** The partition's decision time, in-process, over the same picture and the same calls. */
function measure_decisions(shape: ReturnType<typeof picture>): { best: LatencySummary; tickets: LatencySummary } {
  const user = (i: number) => `m-${Math.floor(i / 5)}`;
  const sb = filled_state(shape);
  const best = time_decisions(sb, (i, ctx) => decide_reserve_best(sb, {
    event_id: 'e', user_id: user(i), quantity, tiers: [], sections: [], accessible_quantity: 0,
    hold_ttl_seconds: 3600, trace_id: '',
  }, ctx));
  const st = filled_state(shape);
  const tickets = time_decisions(st, (i, ctx) => decide_reserve(st, {
    event_id: 'e', seat_ids: [seat_id(layout, shape.pairs[i]!), seat_id(layout, shape.pairs[i]! + 1)],
    hold_ttl_seconds: 3600, user_id: user(i), trace_id: '',
  }, ctx));
  return { best, tickets };
}

async function run({ root, secret, report }: SectionContext): Promise<void> {
  const shape = picture();
  const decisions = measure_decisions(shape);
  log(`selection: decisions in-process: best ${lat(decisions.best)}, tickets ${lat(decisions.tickets)}`);
  const data_dir = join(root, 'data-selection');
  const server = await start_ours('ticketing-selection', data_dir, secret);
  let measured: Rounds;
  try {
    const r = rpcs(server.grpc, mint_token('bench-service', 'service', data_dir, secret),
      mint_token('bench-admin', 'admin', data_dir, secret));
    try {
      measured = await measure_rpcs(r, shape);
    } finally {
      r.close();
    }
  } finally {
    await terminate(server.proc);
  }
  report_selection(report, measured, decisions);
}

function report_selection(
  report: Report, m: Rounds, d: { best: LatencySummary; tickets: LatencySummary },
): void {
  const mean = (xs: number[]) => xs.reduce((a, x) => a + x, 0) / xs.length;
  const best = mean(m.best);
  const tickets = mean(m.tickets);
  const ratio = best / tickets;
  report.results['selection'] = {
    seats: seats_of(layout), sold_fraction: 0.8, quantity, concurrency, calls_per_round, rounds,
    best_per_s: m.best, tickets_per_s: m.tickets, ratio, errors: m.errors,
    decision_best: d.best, decision_tickets: d.tickets,
  };
  report.check({
    order: 100, check: `ReserveBestAvailable, ${fmt_int(seats_of(layout))} seats 80 % sold (q=${quantity}, C=${concurrency})`,
    ours: `${fmt_int(best)} calls/s`, reference: `ReserveTickets ${fmt_int(tickets)} calls/s`,
    value: `${f(ratio)}x`, target: `>= ${target_ratio}x`,
  }, ratio >= target_ratio && m.errors === 0);
  report.check({
    order: 101, check: 'Best-available decision (in-process)', ours: lat(d.best),
    reference: `ReserveTickets ${lat(d.tickets)}`, value: `max ${ms(d.best.max_ms)}`, target: 'info',
  }, undefined);
  report.detail(`selection: rounds best ${m.best.map((x) => fmt_int(x)).join(' / ')} calls/s, ` +
    `tickets ${m.tickets.map((x) => fmt_int(x)).join(' / ')} calls/s; ${m.errors} errors`);
}

export const selection_section: Section = { key: 'selection', name: 'selection', order: 100, run };
