// The admission governor (issue 16 §1): the waiting rooms' rate follows the node's capacity.
// Every second it reads the workers' mailbox depths and the commit durations they reported;
// while either is high it paces every partition to queue_pace_slow_pct (pace_queues, journaled
// by the partition as a factor on the admin's rate, which it never overwrites), and after
// healthy_s healthy seconds back to 100. The decision is the pure decide_pace.
import type { Logger } from 'pino';
import type { Router } from '../route/router.js';
import type { WorkerStats } from '../runtime/protocol.js';
import { assert } from '../util/assert.js';

/** The pace while overloaded: half the admin's rate. */
export const queue_pace_slow_pct = 50;
export const queue_pace_full_pct = 100;
/** The governor repeats its pace this often even unchanged: a worker restored from an older
 *  journal or a partition adopted from another node learns it (a repeat journals nothing). */
export const queue_pace_refresh_ticks = 10;

export interface PaceThresholds {
  mailbox_depth_high: number;
  commit_ms_high: number;
  healthy_s: number;
}

export interface PaceSignals { mailbox_depth: number; commit_p99_ms: number }
export interface PaceState { pace_pct: number; healthy_s: number }

export const pace_initial: PaceState = { pace_pct: queue_pace_full_pct, healthy_s: 0 };

/** One second's decision: slow at once when overloaded, full again after healthy_s healthy
 *  seconds in a row (hysteresis: a sale near the threshold does not flap every second). */
export function decide_pace(state: PaceState, s: PaceSignals, t: PaceThresholds): PaceState {
  assert(t.healthy_s >= 1 && t.mailbox_depth_high >= 1 && t.commit_ms_high > 0, 'thresholds');
  const overloaded = s.mailbox_depth > t.mailbox_depth_high || s.commit_p99_ms > t.commit_ms_high;
  if (overloaded) return { pace_pct: queue_pace_slow_pct, healthy_s: 0 };
  const healthy_s = state.healthy_s + 1;
  if (state.pace_pct !== queue_pace_full_pct && healthy_s >= t.healthy_s) {
    return { pace_pct: queue_pace_full_pct, healthy_s };
  }
  return { pace_pct: state.pace_pct, healthy_s };
}

/** The 99th percentile of durations in seconds, in ms; 0 when there were no commits. */
export function p99_ms(durations_s: readonly number[]): number {
  if (durations_s.length === 0) return 0;
  const sorted = [...durations_s].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.99) - 1)]! * 1000;
}

export interface GovernorParts {
  pool: {
    mailbox_depths(): number[];
    on(event: 'stats', listener: (worker: number, stats: WorkerStats) => void): unknown;
    off(event: 'stats', listener: (worker: number, stats: WorkerStats) => void): unknown;
  };
  router: Pick<Router, 'call_partition' | 'partition_count'>;
  /** The partitions this node serves (a cluster node paces its own). */
  partitions: () => readonly number[];
  thresholds: PaceThresholds;
  on_pace: (pace_pct: number) => void;
  log: Logger;
}

export interface Governor { tick(): Promise<void>; stop(): void; pace_pct(): number }

/** The governor without its timer: tick() is one second's work (tests call it directly). */
export function create_governor(parts: GovernorParts): Governor {
  let state = pace_initial;
  let durations: number[] = [];
  let ticks = 0;
  let resend = true; // the first tick tells every partition (a pace may survive a restart)
  const on_stats = (_worker: number, stats: WorkerStats) => {
    // Bounded by the workers' own report (one second of commits each).
    durations.push(...stats.commit_durations_s);
  };
  parts.pool.on('stats', on_stats);
  parts.on_pace(state.pace_pct / queue_pace_full_pct);
  return {
    pace_pct: () => state.pace_pct,
    stop: () => { parts.pool.off('stats', on_stats); },
    async tick() {
      const signals = {
        mailbox_depth: Math.max(0, ...parts.pool.mailbox_depths()),
        commit_p99_ms: p99_ms(durations),
      };
      durations = [];
      const next = decide_pace(state, signals, parts.thresholds);
      ticks += 1;
      const send = resend || next.pace_pct !== state.pace_pct
        || ticks % queue_pace_refresh_ticks === 0;
      if (next.pace_pct !== state.pace_pct) {
        parts.log.info({ ...signals, pace_pct: next.pace_pct }, 'admission pace changed');
        parts.on_pace(next.pace_pct / queue_pace_full_pct);
      }
      state = next;
      if (!send) return;
      const request = { pace_pct: next.pace_pct, trace_id: 'pace' };
      const results = await Promise.allSettled(parts.partitions().map((p) =>
        parts.router.call_partition(p, 'pace_queues', request)));
      // A refused call (a full mailbox, a worker restarting) is sent again next second.
      resend = results.some((r) => r.status === 'rejected');
    },
  };
}

/** The governor on a one-second timer; stop() clears it. */
export function start_admission_governor(parts: GovernorParts, interval_ms = 1000): Governor {
  const governor = create_governor(parts);
  let running = false;
  const timer = setInterval(() => {
    if (running) return; // a tick still waiting for its calls: skip, never pile up
    running = true;
    governor.tick().catch((error: unknown) => parts.log.warn({ error }, 'admission governor'))
      .finally(() => { running = false; });
  }, interval_ms);
  timer.unref();
  return { ...governor, stop: () => { clearInterval(timer); governor.stop(); } };
}
