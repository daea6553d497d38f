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
/** Off until a cluster component turns it on: once an AsyncLocalStorage has run, Node 20 tracks
 *  every promise of the process, which measured ~2x on a chain of awaits (notes: forward.md),
 *  and a single node, which never forwards, has no use for the scope. */
let enabled = false;

/** Turns scopes on for the rest of the process (ClusterSink and the peer server do). */
export function enable_call_scopes(): void {
  enabled = true;
}

/** Runs fn (and everything it awaits) inside the scope; just runs fn while scopes are off. */
export function run_in_call_scope<T>(scope: CallScope, fn: () => T): T {
  if (!enabled) return fn();
  assert(Number.isFinite(scope.deadline_ms_epoch), 'a call scope has a finite deadline');
  assert(scope.trace_id.length > 0, 'a call scope has a trace id');
  return storage.run(scope, fn);
}

/** The scope of the call being served, or undefined outside any (timers, background loops). */
export function current_call_scope(): CallScope | undefined {
  return storage.getStore();
}
