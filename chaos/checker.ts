// The chaos run's checker: a pure function of what was recorded (the history, the clock
// bounds, the faults as run) and what was read at the end (the final state through the public
// API, the events a read_committed consumer saw). It returns every violation with the calls
// involved; none means the run is consistent. Tests run it on recorded bad histories.
import type { Call, ClockStep, FaultRun } from './history.js';
import type { FinalState, SeenEvent } from './checker_state.js';
import { index_of, NodeClock, type Violation } from './checker_index.js';
import { check_final_seats, check_occupancy } from './check_seats.js';
import { check_holds, check_orders } from './check_orders.js';
import { check_events } from './check_events.js';

export type { Violation } from './checker_index.js';

export interface Recorded {
  calls: Call[];
  clock: ClockStep[];
  faults: FaultRun[];
  final: FinalState;
  /** null: Kafka not checked (the run had no broker). */
  events: SeenEvent[] | null;
}

export interface Bounds {
  /** After a fault is lifted, serving again within this (ms), else a violation. */
  recover_ms_max: number;
}

function check_recovery(faults: FaultRun[], bounds: Bounds, out: Violation[]): void {
  for (const f of faults) {
    if (f.recover_ms !== null && f.recover_ms <= bounds.recover_ms_max) continue;
    out.push({
      check: 'recovery',
      message:
        `fault #${f.fault.index} ${f.fault.kind}: ` +
        (f.recover_ms === null
          ? `not serving again within ${bounds.recover_ms_max} ms`
          : `serving again after ${f.recover_ms} ms, over the bound ${bounds.recover_ms_max} ms`),
      calls: [],
    });
  }
}

export function check(recorded: Recorded, bounds: Bounds): Violation[] {
  const calls = recorded.calls.filter((c) => c.user !== 'checker');
  const ix = index_of(calls);
  const clock = new NodeClock(recorded.clock, recorded.final.read_ms);
  const out: Violation[] = [];
  check_occupancy(ix, clock, out);
  check_holds(ix, recorded.final, clock, out);
  check_orders(ix, recorded.final, clock, out);
  check_final_seats(ix, recorded.final, out);
  if (recorded.events !== null) check_events(ix, recorded.final, recorded.events, out);
  check_recovery(recorded.faults, bounds, out);
  return out;
}
