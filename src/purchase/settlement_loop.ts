// Finishes what crashes and gateway outages leave open: every interval, while any worker
// reports open payments, one settlement pass (src/purchase/purchases.ts settle_open). One pass
// at a time; a failing pass is logged and retried at the next interval.
import type { Purchases, PurchaseLog } from './purchases.js';

export interface SettlementLoopOptions {
  purchases: Purchases;
  interval_ms: number;
  /** Open payments reported by the workers (0: nothing to do, skip the pass). */
  open_payments: () => number;
  /** The partitions to settle (default: all; a cluster node settles those it serves). */
  partitions?: () => number[];
  log: PurchaseLog & { error(fields: object, message: string): void };
  on_pass?: (result: { due: number; settled: number }) => void;
}

export function start_settlement_loop(options: SettlementLoopOptions): { stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  let stopped = false;
  const tick = (): void => {
    if (stopped || running !== undefined || options.open_payments() === 0) return;
    running = options.purchases.settle_open(options.partitions?.()).then(
      (result) => options.on_pass?.(result),
      (error: unknown) => {
        if (!stopped) options.log.error({ err: error }, 'settlement pass failed; retrying at the next interval');
      },
    ).finally(() => {
      running = undefined;
    });
  };
  const timer = setInterval(tick, options.interval_ms);
  timer.unref();
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
