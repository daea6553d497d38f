// The nemesis schedule: which fault, when, for how long, drawn from the seed alone (a pure
// function: the same seed, minutes and mode give the same schedule, so `--seed S` replays it).
//
// Every kind appears `per_kind` times (at least once; ⌊minutes/3⌉ so a 10-minute run has each
// kind three times), in a shuffled order, one fault at a time: each slot is the run's length
// divided by the number of faults, the fault starts at a random point of the first half of its
// slot and lasts a random duration within the kind's range (the rest of the slot is recovery).
import { strict as assert } from 'node:assert';
import { Prng } from './prng.js';

export const single_kinds = [
  'node_kill',
  'node_pause',
  'broker_pause',
  'broker_kill',
  'disk_full',
  'clock_forward',
  'clock_back',
  'gateway_timeout',
] as const;
export const cluster_kinds = [
  'node_kill',
  'node_pause',
  'broker_kill',
  'broker_pause',
  'node_partition',
  'disk_full',
  'clock_forward',
  'gateway_timeout',
] as const;
export type FaultKind = (typeof single_kinds)[number] | (typeof cluster_kinds)[number];

/** How long each kind stays injected (ms): long enough for calls to time out under it (the
 *  load's deadline is 2 s) and for holds to be touched by it; short enough to fit a slot. */
const duration_ms: Record<FaultKind, [number, number]> = {
  node_kill: [200, 3_000], // down time before the restart
  node_pause: [1_000, 6_000],
  broker_pause: [2_000, 8_000],
  broker_kill: [500, 4_000],
  disk_full: [2_000, 8_000],
  clock_forward: [0, 0], // a step: instantaneous
  clock_back: [200, 1_000], // the restart that steps the clock back
  gateway_timeout: [3_000, 8_000],
  node_partition: [2_000, 8_000],
};

/** Clock steps (ms): forward past every hold's TTL (≤ 120 s) and a draft's (600 s). */
export const clock_forward_ms: [number, number] = [11 * 60_000, 16 * 60_000];
export const clock_back_ms: [number, number] = [2 * 60_000, 10 * 60_000];
/** Time at the start and at the end of a run without faults (load only: a baseline). */
export const quiet_edge_ms = 8_000;

export interface Fault {
  index: number;
  kind: FaultKind;
  /** Offset from the start of the load. */
  at_ms: number;
  duration_ms: number;
  /** Clock faults: the step (ms); node and broker faults in a cluster: which one; else 0. */
  amount: number;
}

export function per_kind(minutes: number): number {
  return Math.max(1, Math.round(minutes / 3));
}

export function schedule(seed: number, minutes: number, cluster: boolean): Fault[] {
  assert.ok(minutes > 0, 'a run lasts a positive number of minutes');
  const prng = new Prng(seed).fork(); // the schedule's own stream
  const kinds: FaultKind[] = [];
  for (const kind of cluster ? cluster_kinds : single_kinds) {
    for (let i = 0; i < per_kind(minutes); i++) kinds.push(kind);
  }
  prng.shuffle(kinds);
  const span_ms = minutes * 60_000 - 2 * quiet_edge_ms;
  const slot_ms = Math.floor(span_ms / kinds.length);
  return kinds.map((kind, index) => {
    const [lo, hi] = duration_ms[kind];
    let amount = 0;
    if (kind === 'clock_forward') amount = prng.int(...clock_forward_ms);
    else if (kind === 'clock_back') amount = prng.int(...clock_back_ms);
    else if (cluster && (kind.startsWith('node_') || kind.startsWith('broker_')))
      amount = prng.int(0, 2);
    return {
      index,
      kind,
      at_ms: quiet_edge_ms + index * slot_ms + prng.int(0, Math.floor(slot_ms / 2)),
      duration_ms: prng.int(lo, hi),
      amount,
    };
  });
}

/** How many faults of each kind a schedule (or the faults run) holds. */
export function count_kinds(faults: readonly { kind: FaultKind }[]): Map<FaultKind, number> {
  const counts = new Map<FaultKind, number>();
  for (const f of faults) counts.set(f.kind, (counts.get(f.kind) ?? 0) + 1);
  return counts;
}
