// Test harness for the inventory actor: a DecideContext with a fake clock and seeded randomness,
// and step(), which does what the runtime host does with a decision: apply each record in order.
import { Packr } from 'msgpackr';
import type { DecideContext, Decision, Effects } from '../../src/runtime/behaviour.js';
import { ManualClock } from '../../src/runtime/clock.js';
import { seeded_random_bytes } from '../../src/runtime/random.js';
import {
  apply, decide_confirm, decide_create_event, decide_reserve, type PartitionRecord,
} from '../../src/actors/inventory.js';
import { decide_release, decide_timers } from '../../src/actors/orders.js';
import { create_state, type PartitionState } from '../../src/actors/partition_state.js';
import type { EventSpec } from '../../src/actors/event_spec.js';
import { get_availability, type Availability } from '../../src/actors/queries.js';
import { check_invariants } from '../../src/actors/invariants.js';
import { restore, snapshot } from '../../src/actors/snapshot.js';

export type RandomBytes = (count: number) => Uint8Array;

/**
 * A DecideContext at `now_ms`. `seed` is either a number (a fresh seeded generator) or an
 * existing generator, so a sequence of contexts can share one stream and never repeat ids.
 */
export function make_ctx(partition: number, now_ms: number, seed: number | RandomBytes): DecideContext {
  const random_bytes = typeof seed === 'number' ? seeded_random_bytes(seed) : seed;
  return { partition, now_ms, random_bytes };
}

/** Applies every record of `decision` to `state`, in order, exactly as the runtime does (a
 *  refusal's records too: the host journals them before it answers with the refusal). */
export function step<D extends Effects<PartitionRecord>>(state: PartitionState, decision: D): D {
  for (const record of decision.records) apply(state, record);
  return decision;
}

/** The reply of a decision that must not be a refusal. */
export function replied<Reply>(decision: Decision<unknown, Reply>): Reply {
  if (decision.refusal !== undefined) {
    throw new Error(`expected a reply, got refusal ${decision.refusal.name}: ${decision.refusal.message}`);
  }
  return decision.reply;
}

/** The sample event: 39 seats in two sections, two tiers. */
export function sample_spec(overrides: Partial<EventSpec> = {}): EventSpec {
  return {
    event_id: 'evt-1',
    name: 'Sample concert',
    starts_at_unix: 1_900_000_000,
    currency: 'EUR',
    price_tiers: { A: 50_000_000, B: 30_000_000 },
    sections: [
      { name: '101', rows: [{ name: 'A', seats: 24, tier: 'A' }, { name: 'B', seats: 10, tier: 'B' }] },
      { name: '102', rows: [{ name: 'A', seats: 5, tier: 'B' }] },
    ],
    max_seats_per_user: 8,
    promo_codes: [],
    ...overrides,
  };
}

/** Every seat id of the sample event, in index order. */
export function sample_seat_ids(): string[] {
  const ids: string[] = [];
  for (const s of sample_spec().sections) for (const r of s.rows) for (let n = 1; n <= r.seats; n++) ids.push(`${s.name}-${r.name}-${n}`);
  return ids;
}

/** msgpackr configured as the store configures it. */
export const store_packr = new Packr({ moreTypes: true });

/** snapshot -> msgpackr bytes -> restore: what a restart from the snapshot does. */
export function restart(state: PartitionState): PartitionState {
  const bytes = store_packr.pack({ seq: 1, state: snapshot(state) });
  const decoded = store_packr.unpack(bytes) as { seq: number; state: unknown };
  return restore(state.partition, decoded.state);
}

/** The snapshot a version-2 node wrote of `state`: holds as objects, `drop` fields left out
 *  (fields added after version 2 was first written). */
export function snapshot_v2(state: PartitionState, drop: string[] = []): unknown {
  const { hold_columns: _, ...rest } = snapshot(state);
  const holds = [...state.holds.values()].map((h) => {
    const plain = h.toJSON() as unknown as Record<string, unknown>;
    for (const key of drop) delete plain[key];
    return plain;
  });
  return { ...rest, version: 2, holds };
}

/** A restart from a version-2 snapshot of `state` (snapshot_v2) through msgpackr. */
export function restart_v2(state: PartitionState, drop: string[] = []): PartitionState {
  const bytes = store_packr.pack({ seq: 1, state: snapshot_v2(state, drop) });
  const decoded = store_packr.unpack(bytes) as { seq: number; state: unknown };
  return restore(state.partition, decoded.state);
}

/** Start of the fake clock; deliberately not a whole second. */
export const T0 = 1_700_000_000_250;

/** One partition driven through decide + apply with a manual clock. */
export class Harness {
  readonly clock: ManualClock;
  readonly random: RandomBytes;
  state: PartitionState;

  constructor(readonly partition = 0, now_ms = T0, seed = 42) {
    this.clock = new ManualClock(now_ms);
    this.random = seeded_random_bytes(seed);
    this.state = create_state(partition);
  }

  get now(): number {
    return this.clock.now_ms();
  }

  ctx(): DecideContext {
    return make_ctx(this.partition, this.clock.now_ms(), this.random);
  }

  advance(ms: number): void {
    this.clock.advance(ms);
  }

  create_event(spec: unknown = sample_spec()) {
    return step(this.state, decide_create_event(this.state, spec));
  }

  reserve(user_id: string, seat_ids: string[], hold_ttl_seconds = 0, event_id = 'evt-1', trace_id = 'trace-1') {
    const d = step(this.state, decide_reserve(this.state, { event_id, seat_ids, hold_ttl_seconds, user_id, trace_id }, this.ctx()));
    return { decision: d, reply: replied(d) };
  }

  release(hold_id: string, actor_user_id: string | null) {
    const d = step(this.state, decide_release(this.state, { hold_id, actor_user_id }, this.ctx()));
    return { decision: d, reply: replied(d) };
  }

  confirm(hold_id: string, order_id: string) {
    const d = step(this.state, decide_confirm(this.state, { hold_id, order_id }, this.ctx()));
    return { decision: d, reply: replied(d) };
  }

  timers(): Effects<PartitionRecord> {
    return step(this.state, decide_timers(this.state, this.ctx()));
  }

  availability(section = '', event_id = 'evt-1'): Availability {
    return get_availability(this.state, event_id, section);
  }

  check(): void {
    check_invariants(this.state);
  }
}

/**
 * Runs `fn`, which must throw a rejection named `name`; returns the error. Also asserts the
 * partition state did not change: same availability, invariants hold.
 */
export function rejects(h: Harness, name: string, fn: () => unknown, event_id = 'evt-1'): Error {
  const before = h.state.events.has(event_id) ? JSON.stringify(h.availability('', event_id)) : null;
  const holds_before = JSON.stringify([...h.state.holds.values()]);
  let caught: unknown = undefined;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  if (!(caught instanceof Error)) throw new Error(`expected ${name}, but nothing was thrown`);
  if (caught.name !== name) throw new Error(`expected ${name}, got ${caught.name}: ${caught.message}`);
  if ((caught as { rejection?: unknown }).rejection !== true) throw new Error(`${name} is not marked as a rejection`);
  const after = h.state.events.has(event_id) ? JSON.stringify(h.availability('', event_id)) : null;
  if (before !== after) throw new Error(`state changed on rejection ${name}: ${before} -> ${after}`);
  if (holds_before !== JSON.stringify([...h.state.holds.values()])) throw new Error(`holds changed on rejection ${name}`);
  check_invariants(h.state);
  return caught;
}
