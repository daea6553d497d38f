// The scope of one incoming call, carried across awaits: its absolute deadline and trace id.
// src/grpc/unary.ts runs each handler inside one; a forward to another node reads it, so the
// owner works under the caller's deadline and logs under the caller's trace id.
import { AsyncLocalStorage } from 'node:async_hooks';
import { assert } from '../util/assert.js';

export interface CallScope {
  /** When the caller stops waiting, in ms since the epoch (finite). */
  deadline_ms_epoch: number;
  trace_id: string;
}

const storage = new AsyncLocalStorage<CallScope>();

/** Runs fn (and everything it awaits) inside the scope. */
export function run_in_call_scope<T>(scope: CallScope, fn: () => T): T {
  assert(Number.isFinite(scope.deadline_ms_epoch), 'a call scope has a finite deadline');
  assert(scope.trace_id.length > 0, 'a call scope has a trace id');
  return storage.run(scope, fn);
}

/** The scope of the call being served, or undefined outside any (timers, background loops). */
export function current_call_scope(): CallScope | undefined {
  return storage.getStore();
}
