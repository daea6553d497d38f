// Shared by the bench processes (run.ts and its sections, loadgen.ts, noop_server.ts): proto
// loading, the seat layout of bench events, the load spec/result shapes and small statistics
// helpers.
// Deliberately imports nothing from src/, so the bench keeps compiling while src changes.
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/** Repository root: this file runs as dist/bench/common.js. */
export const repo_root = fileURLToPath(new URL('../../', import.meta.url));
export const proto_dir = fileURLToPath(new URL('../../proto/', import.meta.url));

export const inventory_proto = 'ticketing/inventory/v1/inventory.proto';
export const catalog_proto = 'ticketing/catalog/v1/catalog.proto';
export const purchase_protos = ['ticketing/order/v1/order.proto', 'ticketing/fraud/v1/fraud.proto', 'ticketing/payment/v1/payment.proto'];

export function load_protos(files: string[]): grpc.GrpcObject {
  const definition = loader.loadSync(files, {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [proto_dir],
  });
  return grpc.loadPackageDefinition(definition);
}

function lookup(root: grpc.GrpcObject, path: string): unknown {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (node === undefined) throw new Error(`${path} not found in the loaded protos`);
  return node;
}

export function client_ctor(root: grpc.GrpcObject, path: string): grpc.ServiceClientConstructor {
  return lookup(root, path) as grpc.ServiceClientConstructor;
}

export function service_def(root: grpc.GrpcObject, path: string): grpc.ServiceDefinition {
  return (lookup(root, path) as grpc.ServiceClientConstructor).service;
}

// ---------------------------------------------------------------------------------------------
// Bench events: `sections` sections named S1.., each with `rows` rows R1.. of `seats_per_row`.

export interface Layout { sections: number; rows: number; seats_per_row: number }

export function seats_of(layout: Layout): number {
  return layout.sections * layout.rows * layout.seats_per_row;
}

/** Seat index (section-major, then row, then number) -> `SECTION-ROW-NUMBER`. */
export function seat_id(layout: Layout, index: number): string {
  const per_section = layout.rows * layout.seats_per_row;
  const s = Math.floor(index / per_section);
  const rest = index - s * per_section;
  const r = Math.floor(rest / layout.seats_per_row);
  const n = rest - r * layout.seats_per_row;
  return `S${s + 1}-R${r + 1}-${n + 1}`;
}

/** The plain (event-file / actor) form of a bench event. */
export function event_spec(event_id: string, layout: Layout, max_seats_per_user: number) {
  const sections = [];
  for (let s = 0; s < layout.sections; s++) {
    const rows = [];
    for (let r = 0; r < layout.rows; r++) rows.push({ name: `R${r + 1}`, seats: layout.seats_per_row, tier: 'A' });
    sections.push({ name: `S${s + 1}`, rows });
  }
  return {
    event_id,
    name: `Bench ${event_id}`,
    starts_at_unix: 1811836800,
    currency: 'EUR',
    price_tiers: { A: 50_000_000 },
    sections,
    max_seats_per_user,
    promo_codes: [] as unknown[],
  };
}

/** The same event as a gRPC CreateEvent payload (int64 as strings). */
export function event_wire(event_id: string, layout: Layout, max_seats_per_user: number) {
  const spec = event_spec(event_id, layout, max_seats_per_user);
  return { ...spec, starts_at_unix: String(spec.starts_at_unix), price_tiers: { A: String(spec.price_tiers.A) } };
}

/** FNV-1a 32-bit, as src/runtime/partition.ts documents (stable across versions). */
export function partition_of(key: string, partition_count: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % partition_count;
}

// ---------------------------------------------------------------------------------------------
// Load generator contract (harness/load.ts -> loadgen.ts via argv[2] JSON; result JSON on stdout).

export interface LoadSpec {
  label: string;
  target: string;
  /** Several servers (a cluster's nodes): op k goes to targets[k % n], its release to the same
   *  node. Absent: every op goes to `target`. */
  targets?: string[];
  /** Bearer token sent as `authorization` metadata, or null for none. */
  token: string | null;
  /** closed: `concurrency` calls in flight for warmup+duration; open: `rate` ops/s; count: `total_ops` ops. */
  mode: 'closed' | 'open' | 'count';
  /** reserve_release: ReserveTickets then ReleaseHold of the returned hold; reserve: ReserveTickets only;
   *  get_event: one CatalogService GetEvent of the event a reservation would pick (a read: no journal write). */
  op: 'reserve_release' | 'reserve' | 'get_event';
  concurrency: number;
  rate: number;
  warmup_s: number;
  duration_s: number;
  total_ops: number;
  /** Open loop: refuse to start an op beyond this many in flight (counted as SHED). */
  max_in_flight: number;
  event_ids: string[];
  layout: Layout;
  /** random: random event, seats from a per-event rotating cursor; sequential: op k -> event k%E, seat k/E. */
  seat_pick: 'random' | 'sequential';
  seats_min: number;
  seats_max: number;
  user_prefix: string;
  user_count: number;
  hold_ttl_seconds: number;
  seed: number;
  deadline_ms: number;
  return_latencies: boolean;
}

export interface LatencySummary { n: number; mean_ms: number; p50_ms: number; p90_ms: number; p99_ms: number; p999_ms: number; max_ms: number }

export interface LoadResult {
  label: string;
  mode: LoadSpec['mode'];
  window_s: number;
  ok_ops: number;
  /** ok ops over the whole run, warmup included (for CPU per op). */
  ok_ops_total: number;
  ops_per_s: number;
  calls_per_s: number;
  latency: LatencySummary;
  reserve: LatencySummary;
  release: LatencySummary;
  /** "Method:CODE" -> count, for ops that completed in the window. */
  errors: Record<string, number>;
  error_count: number;
  /** Loadgen process CPU (user+sys) / wall over its whole run: near 1.0 means the generator itself was the limit. */
  loadgen_cpu: number;
  elapsed_s: number;
  latencies_ms?: number[];
}

export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
  return sorted[rank]!;
}

export function summarize(values: number[] | Float64Array): LatencySummary {
  const sorted = Float64Array.from(values).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const r = (x: number) => Math.round(x * 1000) / 1000;
  return {
    n: sorted.length,
    mean_ms: r(sorted.length === 0 ? NaN : sum / sorted.length),
    p50_ms: r(percentile(sorted, 0.5)),
    p90_ms: r(percentile(sorted, 0.9)),
    p99_ms: r(percentile(sorted, 0.99)),
    p999_ms: r(percentile(sorted, 0.999)),
    max_ms: r(sorted.length === 0 ? NaN : sorted[sorted.length - 1]!),
  };
}

/** mulberry32: small seeded PRNG so both targets see the same request shapes. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Purchase generator contract (sections/purchase.ts -> purchase_gen.ts via argv[2] JSON; result
// JSON on stdout).

/** One RPC of the purchase, or `purchase`: all four in order for a fresh user. */
export type PurchaseStep = 'draft' | 'score' | 'authorize' | 'confirm' | 'purchase';

/** An order on its way through the purchase; `i` is its user's and seat's index. */
export interface BenchOrder { i: number; user_id: string; order_id: string; total: { amount_micros: string; currency: string }; payment_id: string }

export interface PurchaseSpec {
  label: string;
  target: string;
  step: PurchaseStep;
  /** Closed loop: `concurrency` ops in flight for warmup_s + duration_s. */
  concurrency: number;
  warmup_s: number;
  duration_s: number;
  deadline_ms: number;
  /** ScoreTransaction needs a service token; the other calls use the user's own customer token. */
  service_token: string;
  event_id: string;
  layout: Layout;
  /** draft, purchase: op k is user and seat index first_index + k (seat wraps), below index_end. */
  first_index: number;
  index_end: number;
  /** score, authorize, confirm: JSON file of BenchOrder[] to advance one step; with `cycle` they are reused. */
  orders_in: string | null;
  cycle: boolean;
  /** JSON file for the orders advanced (successful ops, warmup included); null: not kept. */
  orders_out: string | null;
}

export interface PurchaseResult {
  label: string;
  step: PurchaseStep;
  /** Measured window: ends early when the input ran out (`exhausted`), at the moment the last input was taken. */
  window_s: number;
  exhausted: boolean;
  ok_ops: number;
  ok_ops_total: number;
  ops_per_s: number;
  /** Inputs (orders or indexes) taken, warmup included. */
  consumed: number;
  /** RPC name -> latencies (ms) of the ops completed in the window; `op` is the whole op. */
  latencies_ms: Record<string, number[]>;
  errors: Record<string, number>;
  error_count: number;
  loadgen_cpu: number;
  elapsed_s: number;
}
