// Helpers of the lifecycle model (lifecycle.property.test.ts): the event's places as the model
// sees them (ids, tiers, sections, accessible seats, areas), computed from the event file alone
// so the model never asks the actor what a place is, and the refusal check every command uses.
import * as assert from 'uvu/assert';
import type * as fc from 'fast-check';
import type { EventSpec } from '../../src/actors/event_spec.js';
import type { PartitionState } from '../../src/actors/partition_state.js';
import { restore, snapshot } from '../../src/actors/snapshot.js';
import { restart, restart_v2, store_packr, type Harness } from './helpers.js';

export interface ModelArea { name: string; offset: number; capacity: number; tier: string }

/** Every place of an event by index: seats section by section, row by row, then each area's
 *  standing places (the order seat_map.ts documents). */
export interface Layout {
  ids: string[]; tier: string[]; section: string[]; accessible: boolean[];
  seats: number; places: number; areas: ModelArea[];
}

export function layout_of(spec: EventSpec): Layout {
  const l: Layout = {
    ids: [], tier: [], section: [], accessible: [], seats: 0, places: 0, areas: [],
  };
  for (const s of spec.sections) {
    for (const r of s.rows) {
      const accessible = new Set(r.accessible_seats ?? []);
      for (let n = 1; n <= r.seats; n++) {
        l.ids.push(`${s.name}-${r.name}-${n}`);
        l.tier.push(r.tier);
        l.section.push(s.name);
        l.accessible.push(accessible.has(n));
      }
    }
  }
  l.seats = l.ids.length;
  for (const a of spec.areas ?? []) {
    l.areas.push({ name: a.name, offset: l.ids.length, capacity: a.capacity, tier: a.tier });
    for (let n = 1; n <= a.capacity; n++) {
      l.ids.push(`${a.name}-GA-${n}`);
      l.tier.push(a.tier);
      l.section.push(a.name);
      l.accessible.push(false);
    }
  }
  l.places = l.ids.length;
  return l;
}

/** The area place `index` belongs to, or undefined for a seat. */
export function area_of(l: Layout, index: number): ModelArea | undefined {
  return l.areas.find((a) => index >= a.offset && index < a.offset + a.capacity);
}

/** ref 0 is the newest item, 1 the one before, and so on round. */
export function pick<T>(items: T[], ref: number): T | undefined {
  return items.length === 0 ? undefined : items[items.length - 1 - (ref % items.length)];
}

/** The partition as a restart would write it: equal bytes, equal state. */
function fingerprint(state: PartitionState): Buffer {
  return store_packr.pack(snapshot(state));
}

/**
 * Runs `fn` against `state()`: 'ok', or the name of the rejection it threw (an assertion error
 * or a non-rejection propagates). A refusal must change nothing: the partition's snapshot is
 * the same bytes before and after.
 */
export function attempt(state: () => PartitionState, fn: () => unknown): string {
  const before = fingerprint(state());
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (!(error instanceof Error) || error.name === 'AssertionError') throw error;
    assert.is((error as { rejection?: unknown }).rejection, true, `${error.name} is a rejection`);
    assert.ok(before.equals(fingerprint(state())), `refusal ${error.name} changed nothing`);
    return error.name;
  }
}

/** The actor side of a model test: the harness whose state the commands drive. */
export interface Real { h: Harness }

/** A restart of the partition: through msgpackr (as the store writes a snapshot), from the
 *  in-memory snapshot object, or from a version-2 snapshot (holds as objects, as nodes before
 *  the hold table wrote them); `after` lets a model note what a restart means to it. */
export class Restart<M extends object> implements fc.Command<M, Real> {
  constructor(readonly via: 'msgpackr' | 'memory' | 'v2', readonly after: (m: M) => void = () => {}) {}
  check(): boolean {
    return true;
  }
  run(m: M, r: Real): void {
    r.h.state = this.via === 'msgpackr' ? restart(r.h.state)
      : this.via === 'v2' ? restart_v2(r.h.state) : restore(r.h.partition, snapshot(r.h.state));
    this.after(m);
  }
  toString(): string {
    return `restart(${this.via})`;
  }
}

/** Wraps commands so that the whole of model and actor is checked (`verify`) after each runs. */
export function checked_by<M extends object>(
  verify: (m: M, r: Real) => void,
): (cmd: fc.Command<M, Real>) => fc.Command<M, Real> {
  return (cmd) => ({
    check: (m) => cmd.check(m),
    run: (m, r) => {
      cmd.run(m, r);
      verify(m, r);
    },
    toString: () => cmd.toString(),
  });
}
