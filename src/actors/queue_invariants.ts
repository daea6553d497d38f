// The waiting room's invariants, part of check_invariants (invariants.ts): O(entries), run on
// each recovery and by the tests after every step. The receipt chain is not re-hashed here (a
// million sha256 on every recovery); the fairness tests recompute it from the receipts.
import { assert } from '../util/assert.js';
import type { PartitionState } from './partition_state.js';
import { seq_at, type QueueState } from './queue_state.js';

function fail(message: string): never {
  assert(false, message);
}

export function check_queue_invariants(state: PartitionState): void {
  const queues = state.queues;
  assert(queues.by_no.length === queues.by_event.size, 'each queue numbered once');
  if (!Number.isInteger(queues.pace_pct) || queues.pace_pct < 1 || queues.pace_pct > 100) {
    fail(`the queues' pace ${queues.pace_pct} is 1..100 %`);
  }
  queues.by_no.forEach((queue, no) => {
    if (queue.queue_no !== no || queues.by_event.get(queue.event_id) !== queue) {
      fail(`queue ${no} is numbered and found by its event`);
    }
    if (!state.events.has(queue.event_id)) fail(`queue ${no} has its event`);
    check_queue(queue);
  });
}

function check_queue(q: QueueState): void {
  const name = `queue of ${q.event_id}`;
  const e = q.entries;
  if (e.user.length !== q.count + 1) fail(`${name}: a user per entry`);
  if (q.admitted > q.count) fail(`${name}: admitted ≤ joined`);
  if (!q.drawn && (q.admitted !== 0 || q.early_count !== 0)) {
    fail(`${name}: nobody admitted before the draw`);
  }
  check_positions(q, name);
  let used = 0;
  for (let seq = 1; seq <= q.count; seq++) {
    if (e.used[seq] === 0) continue;
    used++;
    // used ⊆ admitted: a token is minted only for an admitted entry.
    const position = seq <= q.early_count ? q.position_of[seq]! : seq;
    if (!q.drawn || position > q.admitted) fail(`${name}: entry ${seq} used a token unadmitted`);
  }
  if (used !== q.tokens_used) fail(`${name}: tokens_used counts the used entries`);
  if (q.tokens_used + q.tokens_expired > q.admitted) fail(`${name}: used + expired ≤ admitted`);
  for (const [user, seq] of q.seq_of_user) {
    if (e.user[seq] !== user) fail(`${name}: ${user}'s entry is ${user}'s`);
  }
  for (let seq = 1; seq <= q.count; seq++) {
    const current = q.seq_of_user.get(e.user[seq]!);
    if (current === undefined || current < seq) {
      fail(`${name}: a user's current entry is its latest`);
    }
    if (seq > 1 && e.joined_at_ms[seq]! < e.joined_at_ms[seq - 1]!) {
      // Arrival order is seq order; a clock step back between joins would break "by seq".
      fail(`${name}: entries join in time order`);
    }
  }
  for (let i = 1; i < q.tick_to.length; i++) {
    if (q.tick_to[i]! <= q.tick_to[i - 1]!) fail(`${name}: ticks advance admission`);
    if (q.tick_at_ms[i]! < q.tick_at_ms[i - 1]!) fail(`${name}: ticks move forward in time`);
  }
  if (q.tick_to.length > 0 && q.tick_to[q.tick_to.length - 1] !== q.admitted) {
    fail(`${name}: the last tick admitted up to admitted`);
  }
  if (q.ticks_swept > q.tick_to.length) fail(`${name}: only ticks are swept`);
}

/** Early positions are a permutation of 1..early_count, position_of its inverse; the early
 *  joiners are exactly those before the sale start. */
function check_positions(q: QueueState, name: string): void {
  const n = q.early_count;
  if (q.order.length !== n || (q.drawn && q.position_of.length !== n + 1)) {
    fail(`${name}: one position per early joiner`);
  }
  const seen = new Uint8Array(n + 1);
  for (let p = 1; p <= n; p++) {
    const seq = seq_at(q, p);
    if (seq < 1 || seq > n || seen[seq] === 1) fail(`${name}: positions are a permutation`);
    seen[seq] = 1;
    if (q.position_of[seq] !== p) fail(`${name}: position_of inverts order`);
  }
  const start = q.settings.sale_starts_at_ms;
  for (let seq = 1; seq <= q.count; seq++) {
    const early = q.entries.joined_at_ms[seq]! < start;
    if (q.drawn && early !== (seq <= n)) fail(`${name}: entry ${seq} drawn iff it joined early`);
    if (!q.drawn && !early) fail(`${name}: entry ${seq} joined after the start undrawn`);
  }
}
