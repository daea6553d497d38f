// The load of the cluster tests: reservations (ReserveTickets, then ReleaseHold, a
// ConfirmAllocation, or nothing) and purchases (CreateDraft, Authorize, ConfirmOrder), spread
// over every node, every call recorded in a History. A call answered UNAVAILABLE or
// DEADLINE_EXCEEDED is retried on the next node, with the same idempotency where the API has
// one (CreateDraft's key, Authorize's idempotency-key; ReleaseHold and ConfirmOrder repeat
// harmlessly; a repeated ReserveTickets finds its seats taken if the first one held them).
// Bounded in count: workers start flows until finish_after(n) saw n more acknowledgements, or
// ops_max flows started.
//
// Then the final state is read back through the API (any node) and judged (history.ts).
import { status } from '@grpc/grpc-js';
import { setTimeout as sleep } from 'node:timers/promises';
import { suite, type Test } from 'uvu';
import * as assert from 'uvu/assert';
import { guarded_after } from '../guard.js';
import { guarded_setup, type Guarded } from './harness.js';
import { partition_of } from '../../src/runtime/partition.js';
import type { Event, NodeApi } from './cluster_api.js';
import { poll_pause_ms, settle_polls_max, TestCluster } from './cluster_harness.js';
import {
  check_history,
  excerpt,
  format_call,
  History,
  is_unknown,
  summary,
  type Call,
  type FinalState,
  type HoldProbe,
  type OrderRead,
  type Outcome,
  type Rpc,
  type Rpcs,
} from './history.js';

export interface LoadOptions {
  /** Concurrent clients. */
  workers: number;
  /** Bound on flows started, over all workers. */
  ops_max: number;
  /** Each call's gRPC deadline. */
  deadline_ms: number;
  /** Attempts of one call over the nodes while its outcome is unknown. */
  attempts_max: number;
  retry_pause_ms: number;
}

export const load_defaults: LoadOptions = {
  workers: 6,
  ops_max: 2_000,
  deadline_ms: 5_000,
  attempts_max: 60,
  retry_pause_ms: 200,
};
/** The reads after the load (and event creation): long, so that a busy box (load average 30
 *  measured) rarely turns a read into an unknown outcome and a retry. */
const final_read_deadline_ms = 30_000;
/** Seats per hold or draft, at most (random 1..max). */
const seats_per_flow_max = 2;
const hold_ttl_seconds = 900;

export const partitions = 8;

/** The node serving the most partitions (RoundRobin over 8: 3, 3, 2). */
export function busiest(owners: Map<number, number[]>): { node: number; partitions: number[] } {
  const [node, partitions] = [...owners].reduce((a, b) => (b[1].length > a[1].length ? b : a));
  assert.ok(partitions.length > 0, `node ${node} serves partitions`);
  return { node, partitions };
}
export interface ClusterCtx extends Guarded {
  cluster: TestCluster;
  events: Event[];
}

/** A suite on its own 3 brokers and 3 nodes (one event per partition), all stopped after. */
export function cluster_suite(label: string, seats = 80): Test<ClusterCtx> {
  const t = suite<ClusterCtx>(`cluster ${label}`);
  guarded_setup(t, async (ctx) => {
    ctx.cluster = await TestCluster.start({ mode: 'cluster', nodes: 3, partitions, label });
    ctx.events = events_per_partition(label, partitions, seats);
    await create_events(ctx.cluster, ctx.events);
  });
  guarded_after(t, async (ctx) => {
    await ctx.cluster?.stop();
  });
  return t;
}

/** One event per partition (ids searched by their hash), so every node has seats to sell. */
export function events_per_partition(label: string, partitions: number, seats: number): Event[] {
  const by_partition = new Map<number, Event>();
  for (let k = 0; by_partition.size < partitions; k++) {
    assert.ok(k < 100_000, 'found an event id for every partition');
    const event_id = `evt-${label}-${k}`;
    const p = partition_of(event_id, partitions);
    if (!by_partition.has(p)) by_partition.set(p, { event_id, seats });
  }
  return [...by_partition.entries()].sort(([a], [b]) => a - b).map(([, e]) => e);
}

/** Creates the events through any node, retrying while the cluster settles. */
export async function create_events(cluster: TestCluster, events: Event[]): Promise<void> {
  const admin = cluster.token('ops', 'admin');
  for (const [k, e] of events.entries()) {
    await retry_read(cluster, k, (api) => api.create_event(e, admin, final_read_deadline_ms));
  }
}

/** A read (or an idempotent setup call) through any up node, retried on an unknown outcome. */
export async function retry_read<T>(
  cluster: TestCluster,
  start: number,
  read: (api: NodeApi) => Promise<T>,
): Promise<T> {
  let last: unknown;
  for (let a = 0; a < settle_polls_max; a++) {
    const up = cluster.up();
    const node = up[(start + a) % up.length];
    if (node === undefined) throw new Error('no node up');
    try {
      return await read(node.api);
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (
        typeof code !== 'number' ||
        !(code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED)
      )
        throw error;
      last = error;
      await sleep(poll_pause_ms);
    }
  }
  throw new Error(`no answer through any node: ${String(last)}`);
}

export class Load {
  readonly history = new History();
  /** Changes acknowledged so far (ok outcomes of reserve, release, confirm, draft, ...). */
  acked = 0;
  /** Calls in flight per node index. */
  readonly in_flight = new Map<number, number>();
  private flows = 0;
  private next_node = 0;
  private finish_at = Infinity;
  private aborted = false;

  constructor(
    private readonly cluster: TestCluster,
    private readonly events: Event[],
    private readonly o: LoadOptions,
  ) {
    cluster.on_stop.push(() => {
      this.aborted = true;
    });
  }

  /** Runs `workers` clients until finish_after's target or ops_max; resolves when all
   *  stopped. Called again, it adds clients (e.g. ones that start after a partition moved). */
  async run(workers = this.o.workers): Promise<void> {
    const worker = async (): Promise<void> => {
      while (!this.aborted && this.acked < this.finish_at && this.flows < this.o.ops_max) {
        const n = this.flows++;
        await (n % 2 === 0 ? this.reservation(n) : this.purchase(n));
      }
    };
    const run = Promise.all(Array.from({ length: workers }, worker));
    // Handled here too: a test that fails before awaiting its load must not crash the runner
    // with an unhandled rejection (stop() ends the load; the test reports its own failure).
    run.catch(() => undefined);
    this.cluster.running.push(run);
    await run;
  }

  /** Workers stop starting flows once `more` further changes were acknowledged. */
  finish_after(more: number): void {
    this.finish_at = this.acked + more;
  }

  /** Resolves once `more` further changes were acknowledged (bounded polls). */
  async until_acked(more: number): Promise<void> {
    const target = this.acked + more;
    for (let i = 0; i < settle_polls_max * 10 && this.acked < target; i++)
      await sleep(poll_pause_ms / 10);
    assert.ok(
      this.acked >= target,
      `the load acknowledged ${this.acked} changes, waited for ${target}`,
    );
  }

  /** Resolves once a call to node i is in flight (bounded polls). */
  async until_in_flight(i: number): Promise<void> {
    for (let k = 0; k < settle_polls_max * 10 && (this.in_flight.get(i) ?? 0) === 0; k++)
      await sleep(poll_pause_ms / 10);
    assert.ok((this.in_flight.get(i) ?? 0) > 0, `a call to node ${i} in flight`);
  }

  /** The next node to send to: round robin over every node, down ones included (a client
   *  does not know; it gets UNAVAILABLE and retries), except a paused one (a client's balancer
   *  stops sending to a node that stopped answering; calls already there wait for it). */
  private pick(after?: number): number {
    const count = this.cluster.nodes.length;
    for (let k = 0; k < count; k++) {
      const i = after === undefined ? this.next_node++ % count : (after + 1 + k) % count;
      if (this.cluster.node(i).state !== 'paused') return i;
    }
    throw new Error('every node is paused');
  }

  /** One call, retried on the next node while its outcome is unknown. */
  private async call<R extends Rpc>(
    rpc: R,
    request: Rpcs[R]['request'],
    go: (api: NodeApi) => Promise<Rpcs[R]['reply']>,
  ): Promise<Outcome<Rpcs[R]['reply']>> {
    let node = this.pick();
    let outcome: Outcome<Rpcs[R]['reply']> | undefined;
    for (let a = 0; a < this.o.attempts_max; a++) {
      const api = this.cluster.node(node).api;
      const at = node;
      this.in_flight.set(at, (this.in_flight.get(at) ?? 0) + 1);
      outcome = await this.history
        .record(node, rpc, request, () => go(api))
        .finally(() => this.in_flight.set(at, (this.in_flight.get(at) ?? 1) - 1));
      if (outcome.ok) this.acked++;
      if (!is_unknown(outcome) || this.aborted) return outcome;
      node = this.pick(node);
      await sleep(this.o.retry_pause_ms);
    }
    assert.ok(outcome !== undefined, 'attempts_max is positive');
    return outcome;
  }

  private seats(n: number): { event_id: string; seat_ids: string[] } {
    const e = this.events[n % this.events.length]!;
    const count = 1 + Math.floor(Math.random() * seats_per_flow_max);
    const seats = new Set<string>();
    while (seats.size < count) seats.add(`1-A-${1 + Math.floor(Math.random() * e.seats)}`);
    return { event_id: e.event_id, seat_ids: [...seats] };
  }

  /** Reserve; then release (4 in 10), sell the hold (3 in 10), or keep it. */
  private async reservation(n: number): Promise<void> {
    const svc = this.cluster.token('svc', 'service');
    const d = this.o.deadline_ms;
    const request = { ...this.seats(n), user_id: `r${n}`, hold_ttl_seconds };
    const held = await this.call('reserve', request, (api) => api.reserve(request, svc, d));
    if (!held.ok) return;
    const hold_id = held.reply.hold_id;
    const fate = n % 10;
    if (fate < 4) {
      await this.call('release', { hold_id }, (api) => api.release(hold_id, svc, d));
    } else if (fate < 7) {
      const r = { order_id: `alloc-${n}`, hold_id };
      await this.call('confirm', r, (api) => api.confirm(r, svc, d));
    }
  }

  /** CreateDraft, Authorize, ConfirmOrder as the buyer, each with its retry key. */
  private async purchase(n: number): Promise<void> {
    const user_id = `p${n}`;
    const bearer = this.cluster.token(user_id, 'customer');
    const d = this.o.deadline_ms;
    const draft = { ...this.seats(n), user_id, idempotency_key: `k${n}` };
    const order = await this.call('create_draft', draft, (api) =>
      api.create_draft(draft, bearer, d),
    );
    if (!order.ok) return;
    const auth = {
      order_id: order.reply.id,
      amount_micros: order.reply.total_micros,
      idempotency_key: `pay${n}`,
    };
    const paid = await this.call('authorize', auth, (api) => api.authorize(auth, bearer, d));
    if (!paid.ok || paid.reply.status !== 'AUTHORIZED') return;
    const confirm = { order_id: order.reply.id, payment_id: paid.reply.payment_id };
    await this.call('confirm_order', confirm, (api) => api.confirm_order(confirm, bearer, d));
  }
}

/** GetOrder of every order the history acknowledged; waits (bounded) for captures in flight. */
async function read_orders(
  cluster: TestCluster,
  calls: Call[],
): Promise<Map<string, OrderRead | 'not_found'>> {
  const svc = cluster.token('svc', 'service');
  const ids = new Set(
    calls.flatMap((c) => (c.rpc === 'create_draft' && c.outcome.ok ? [c.outcome.reply.id] : [])),
  );
  let orders = new Map<string, OrderRead | 'not_found'>();
  for (let i = 0; i < settle_polls_max; i++) {
    orders = new Map();
    for (const [k, id] of [...ids].entries()) {
      const read = await retry_read(cluster, k, (api) =>
        api.get_order(id, svc, final_read_deadline_ms),
      ).catch((error: { code?: unknown }) => {
        if (error.code === status.NOT_FOUND) return 'not_found' as const;
        throw error;
      });
      orders.set(id, read);
    }
    // The settlement loop finishes captures the confirmations started (every second).
    const capturing = [...orders.values()].some(
      (o) => o !== 'not_found' && o.payment_status === 'CAPTURING',
    );
    if (!capturing) break;
    await sleep(poll_pause_ms * 5);
  }
  return orders;
}

/** ReleaseHold of every acknowledged hold: what it answers says what the hold was. */
async function probe_holds(cluster: TestCluster, calls: Call[]): Promise<Map<string, HoldProbe>> {
  const svc = cluster.token('svc', 'service');
  const probes = new Map<string, HoldProbe>();
  const ids = calls.flatMap((c) =>
    c.rpc === 'reserve' && c.outcome.ok ? [c.outcome.reply.hold_id] : [],
  );
  for (const [k, id] of ids.entries()) {
    let unknown_before = false;
    const probe = await retry_read(cluster, k, async (api): Promise<HoldProbe> => {
      try {
        return (await api.release(id, svc, final_read_deadline_ms)).released
          ? 'released'
          : 'not_live';
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        if (code === status.FAILED_PRECONDITION) return 'confirmed';
        if (code === status.NOT_FOUND) return 'not_found';
        unknown_before ||= code === status.UNAVAILABLE || code === status.DEADLINE_EXCEEDED;
        throw error;
      }
    });
    // A probe that may have released the hold itself, then found it ended: either.
    probes.set(id, unknown_before && probe === 'not_live' ? 'ambiguous' : probe);
  }
  return probes;
}

/** The final state, read through every up node in turn, after the load stopped. */
export async function read_final(
  cluster: TestCluster,
  calls: Call[],
  events: Event[],
): Promise<FinalState> {
  const read_ms = Date.now();
  const orders = await read_orders(cluster, calls);
  const svc = cluster.token('svc', 'service');
  const reads = new Map<string, { free_seat_ids: Set<string>; held: number; sold: number }>();
  for (const [k, e] of events.entries()) {
    const a = await retry_read(cluster, k, (api) =>
      api.availability(e.event_id, svc, final_read_deadline_ms),
    );
    assert.not.ok(a.truncated, 'every free seat id listed');
    reads.set(e.event_id, { free_seat_ids: new Set(a.free_seat_ids), held: a.held, sold: a.sold });
  }
  const holds = await probe_holds(cluster, calls);
  return { read_ms, events: reads, orders, holds };
}

/** Error codes a call of each rpc may answer under this load besides the unknown ones: a
 *  seat someone else holds (or the first attempt of this very call took). */
export const expected_refusals: { [R in Rpc]: number[] } = {
  reserve: [status.FAILED_PRECONDITION],
  create_draft: [status.FAILED_PRECONDITION],
  release: [],
  confirm: [],
  authorize: [],
  confirm_order: [],
};

/** Calls answered with a code the load does not expect (neither a refusal it provokes nor an
 *  unknown outcome): what "clients see at most UNAVAILABLE" forbids. */
export function unexpected_answers(calls: Call[]): Call[] {
  return calls.filter(
    (c) =>
      !c.outcome.ok && !is_unknown(c.outcome) && !expected_refusals[c.rpc].includes(c.outcome.code),
  );
}

function describe(calls: Call[], violations: string[]): string {
  const lines: string[] = [];
  for (const v of violations.slice(0, 20))
    lines.push(v, ...excerpt(calls, v).map((l) => `    ${l}`));
  return `${violations.length} violation(s):\n${lines.join('\n')}`;
}

/** Reads the final state back and judges the history; prints the outcome counts. */
export async function judge(
  cluster: TestCluster,
  load: Load,
  events: Event[],
  title: string,
): Promise<FinalState> {
  const calls = load.history.calls;
  await cluster.settled();
  const final = await read_final(cluster, calls, events);
  console.log(`[${title}] ${calls.length} calls: ${summary(calls)}`);
  const violations = check_history(calls, final);
  assert.equal(violations.length, 0, describe(calls, violations));
  const odd = unexpected_answers(calls);
  const lines = odd.slice(0, 20).map(format_call);
  assert.equal(
    odd.length,
    0,
    `answers beyond UNAVAILABLE/DEADLINE_EXCEEDED and the load's refusals:\n${lines.join('\n')}`,
  );
  assert.ok(load.acked > 0, 'the load acknowledged changes');
  return final;
}
