// ticketing.testing.v1.TestClockService, served only with --test-clock: moves the node's clock
// forward so end-to-end tests can expire holds without sleeping. Admin only.
import { require_role } from '../auth/policy.js';
import type { WorkerPool } from '../runtime/pool.js';
import { int64 } from './convert.js';
import { unary, type EdgeDeps } from './unary.js';

export const clock_advance_ms_max = 10 * 365 * 24 * 3600 * 1000;

export function test_clock_service(deps: EdgeDeps, pool: WorkerPool) {
  return {
    Advance: unary(deps, 'TestClockService', 'Advance', async (req: { millis: unknown }, ctx) => {
      require_role(ctx.principal, ['admin'], 'TestClockService.Advance');
      const millis = int64(req.millis, 'millis', 0, clock_advance_ms_max);
      const offset = pool.advance_clock(millis);
      return { now_unix_ms: String(Date.now() + offset) };
    }, { changes_state: true, retry_note: 'the clock may or may not have moved, and may still: Advance is not idempotent, so read the clock (Advance by 0) before retrying' }),
  };
}
