// Time is injected everywhere so tests can drive hold expiry without sleeping.
export interface Clock {
  now_ms(): number;
}

/** Wall clock plus an offset: the offset moves only forward (see TestClockService). */
export class OffsetClock implements Clock {
  offset_ms = 0;
  now_ms(): number {
    return Date.now() + this.offset_ms;
  }
}

/** Fully manual clock for unit and property tests. */
export class ManualClock implements Clock {
  constructor(private current_ms: number) {}
  now_ms(): number {
    return this.current_ms;
  }
  advance(delta_ms: number): void {
    if (!(delta_ms >= 0)) throw new RangeError('clock only moves forward');
    this.current_ms += delta_ms;
  }
}
