// Refuses a forwarded call seen before. A proof is accepted only within clock_skew_ms_max of
// its timestamp (peer_auth.ts), so a captured call could be replayed at most that long; the
// guard remembers each accepted proof for exactly that long and refuses it a second time.
import { assert } from '../util/assert.js';

export type Admission = 'fresh' | 'replay' | 'full';

export class ReplayGuard {
  /** A proof's MAC → when it can be forgotten (its timestamp + the window, ms since the epoch).
   *  Insertion order is nearly expiry order (senders' clocks agree within the window), so
   *  expired entries are swept from the front; one out of order lingers a little, bounded. */
  private readonly seen = new Map<string, number>();

  constructor(private readonly window_ms: number, private readonly entries_max: number) {
    assert(window_ms > 0 && entries_max > 0, 'the replay guard is bounded');
  }

  /** Remembers the proof if it is new. 'full': entries_max proofs are within the window. */
  admit(mac: string, ts_ms: number, now_ms: number): Admission {
    if (this.seen.has(mac)) return 'replay';
    this.sweep(now_ms);
    if (this.seen.size >= this.entries_max) return 'full';
    this.seen.set(mac, ts_ms + this.window_ms);
    return 'fresh';
  }

  get size(): number {
    return this.seen.size;
  }

  private sweep(now_ms: number): void {
    for (const [mac, expires_ms] of this.seen) {
      // A proof past its window is refused by the clock check before it gets here.
      if (expires_ms >= now_ms) return;
      this.seen.delete(mac);
    }
  }
}
