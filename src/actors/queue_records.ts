// Journal records of the waiting room and the only code that applies them. Like inventory.ts's
// apply(), the same function runs live and on replay; the draw is recomputed from the seed on
// replay (queue_drawn carries no order), so the journal cannot disagree with the scheme.
import { assert } from '../util/assert.js';
import * as L from './limits.js';
import { chain_zero, draw_order, receipt_key_of, sha256 } from './queue_crypto.js';
import {
  queue_pace_pct_full, queue_wait_buckets_s, seq_at, type QueueEntries, type QueueKeys,
  type QueueSettings, type QueueState, type QueuesState,
} from './queue_state.js';

export type QueueRecord =
  | { t: 'queue_configured'; event_id: string; queue_no: number; settings: QueueSettings;
    keys: QueueKeys; at_ms: number }
  /** ConfigureQueue with other settings before the queue opened. */
  | { t: 'queue_settings_changed'; event_id: string; settings: QueueSettings; at_ms: number }
  | { t: 'queue_rate_set'; event_id: string; admit_per_minute: number; at_ms: number }
  | { t: 'queue_closed'; event_id: string; at_ms: number }
  | { t: 'queue_joined'; event_id: string; seq: number; user_id: string; user_hash: Uint8Array;
    chain: Uint8Array; joined_at_ms: number }
  /** Entries 1..early_count are ordered by the draw from here. */
  | { t: 'queue_drawn'; event_id: string; early_count: number; at_ms: number }
  /** An admission tick: positions up to to_position are admitted; carry is the remainder. */
  | { t: 'queue_admitted'; event_id: string; to_position: number; carry: number; at_ms: number }
  /** Entry seq's admission token made a hold (in the same decision as the hold). */
  | { t: 'queue_token_used'; event_id: string; seq: number }
  /** The node's pace for every queue of the partition (pace_queues): journaled only when it
   *  changes; each admission tick admits at pace_pct % of the admin's rate from here. */
  | { t: 'queue_paced'; pace_pct: number; at_ms: number };

const queue_record_types = new Set([
  'queue_configured', 'queue_settings_changed', 'queue_rate_set', 'queue_closed', 'queue_joined',
  'queue_drawn', 'queue_admitted', 'queue_token_used', 'queue_paced',
]);

export function is_queue_record(record: { t: string }): record is QueueRecord {
  return queue_record_types.has(record.t);
}

/** Columns for `capacity` entries (seq 0..capacity-1). */
export function new_entries(capacity: number): QueueEntries {
  return {
    joined_at_ms: new Float64Array(capacity), user_hash: new Uint8Array(capacity * 32),
    chain: new Uint8Array(capacity * 32), used: new Uint8Array(capacity), user: [''],
  };
}

/** A queue as configured: no entries, chain_0 in place. Restore builds on it too. */
export function new_queue(
  event_id: string, queue_no: number, settings: QueueSettings, keys: QueueKeys,
): QueueState {
  const seed_commitment = sha256(keys.seed).toString('hex');
  const receipt = receipt_key_of(keys.receipt_seed);
  const entries = new_entries(16);
  entries.chain.set(chain_zero(seed_commitment), 0);
  return {
    event_id, queue_no, settings: { ...settings }, keys, seed_commitment,
    receipt_key: receipt.key, receipt_public_key: receipt.public_der_b64, closed: false,
    count: 0, entries, seq_of_user: new Map(), drawn: false, early_count: 0,
    order: new Int32Array(0), position_of: new Int32Array(0), admitted: 0, carry: 0,
    last_tick_ms: 0, caught_up: false, tick_to: [], tick_at_ms: [], ticks_swept: 0,
    tokens_used: 0, tokens_expired: 0, wait_sum_s: 0,
    wait_le: new Array<number>(queue_wait_buckets_s.length + 1).fill(0),
  };
}

function queue_of(queues: QueuesState, event_id: string): QueueState {
  const queue = queues.by_event.get(event_id);
  assert(queue !== undefined, `queue of event ${event_id} exists`);
  return queue;
}

/** Grows the columns by a quarter until seq fits (capacity ≤ queue_entries_per_event_max + 1).
 *  A quarter, not double: the slack counts against the 200 B per entry (73 B of columns per
 *  entry, so doubling could waste 73 B); copying stays amortised O(1) per join. */
export function ensure_capacity(queue: QueueState, seq: number): void {
  const old = queue.entries;
  if (seq < old.joined_at_ms.length) return;
  const capacity = Math.min(Math.max(Math.ceil(old.joined_at_ms.length * 1.25), seq + 1),
    L.queue_entries_per_event_max + 1);
  assert(seq < capacity, 'an entry within queue_entries_per_event_max');
  const grown = new_entries(capacity);
  grown.joined_at_ms.set(old.joined_at_ms);
  grown.user_hash.set(old.user_hash);
  grown.chain.set(old.chain);
  grown.used.set(old.used);
  grown.user = old.user;
  queue.entries = grown;
}

export function apply_queue(queues: QueuesState, record: QueueRecord): void {
  switch (record.t) {
    case 'queue_configured': {
      assert(!queues.by_event.has(record.event_id), 'a queue is configured once');
      assert(record.queue_no === queues.by_no.length, 'queue numbers are dense');
      // Copies: a decoded journal record's bytes may be views into its whole segment.
      const k = record.keys;
      const keys: QueueKeys = {
        seed: new Uint8Array(k.seed), ticket_key: new Uint8Array(k.ticket_key),
        token_key: new Uint8Array(k.token_key), receipt_seed: new Uint8Array(k.receipt_seed),
      };
      const queue = new_queue(record.event_id, record.queue_no, record.settings, keys);
      queues.by_event.set(record.event_id, queue);
      queues.by_no.push(queue);
      return;
    }
    case 'queue_settings_changed': {
      const queue = queue_of(queues, record.event_id);
      assert(queue.count === 0 && !queue.drawn, 'settings change only before anyone joined');
      queue.settings = { ...record.settings };
      return;
    }
    case 'queue_rate_set':
      queue_of(queues, record.event_id).settings.admit_per_minute = record.admit_per_minute;
      return;
    case 'queue_closed':
      queue_of(queues, record.event_id).closed = true;
      return;
    case 'queue_joined': return apply_joined(queue_of(queues, record.event_id), record);
    case 'queue_drawn': return apply_drawn(queue_of(queues, record.event_id), record);
    case 'queue_admitted': return apply_admitted(queue_of(queues, record.event_id), record);
    case 'queue_token_used': {
      const queue = queue_of(queues, record.event_id);
      assert(record.seq >= 1 && record.seq <= queue.count, 'a used token names an entry');
      assert(queue.entries.used[record.seq] === 0, 'a token is used once');
      queue.entries.used[record.seq] = 1;
      queue.tokens_used += 1;
      return;
    }
    case 'queue_paced':
      assert(Number.isInteger(record.pace_pct) && record.pace_pct >= 1
        && record.pace_pct <= queue_pace_pct_full, 'pace is 1..100 %');
      assert(record.pace_pct !== queues.pace_pct, 'a pace is journaled only when it changes');
      queues.pace_pct = record.pace_pct;
      return;
  }
}

type Rec<T extends QueueRecord['t']> = Extract<QueueRecord, { t: T }>;

function apply_joined(queue: QueueState, record: Rec<'queue_joined'>): void {
  assert(record.seq === queue.count + 1, 'entries join in seq order');
  assert(record.user_hash.length === 32 && record.chain.length === 32, 'hashes are 32 bytes');
  ensure_capacity(queue, record.seq);
  const e = queue.entries;
  e.joined_at_ms[record.seq] = record.joined_at_ms;
  e.user_hash.set(record.user_hash, record.seq * 32);
  e.chain.set(record.chain, record.seq * 32);
  // One string for the column and the map's key (the memory budget counts it once).
  e.user.push(record.user_id);
  queue.seq_of_user.set(record.user_id, record.seq);
  queue.count = record.seq;
  assert(e.user.length === queue.count + 1, 'the user column follows count');
}

function apply_drawn(queue: QueueState, record: Rec<'queue_drawn'>): void {
  assert(!queue.drawn, 'a queue draws once');
  const n = record.early_count;
  assert(n <= queue.count, 'early joiners have joined');
  const e = queue.entries;
  assert(n === 0 || e.joined_at_ms[n]! < queue.settings.sale_starts_at_ms, 'early joined early');
  assert(n === queue.count || e.joined_at_ms[n + 1]! >= queue.settings.sale_starts_at_ms,
    'every early joiner is drawn');
  const head = e.chain.subarray(n * 32, n * 32 + 32);
  queue.order = draw_order(queue.keys.seed, head, n);
  queue.position_of = new Int32Array(n + 1);
  for (let p = 1; p <= n; p++) queue.position_of[queue.order[p - 1]!] = p;
  queue.early_count = n;
  queue.drawn = true;
  queue.last_tick_ms = record.at_ms;
}

function apply_admitted(queue: QueueState, record: Rec<'queue_admitted'>): void {
  assert(queue.drawn, 'admission follows the draw');
  const from = queue.admitted + 1;
  const to = record.to_position;
  assert(to >= queue.admitted && to <= queue.count, 'admission moves forward within the queue');
  assert(Number.isSafeInteger(record.carry) && record.carry >= 0 && record.carry < 60_000,
    'the carry is less than a buyer');
  assert(record.at_ms >= queue.last_tick_ms, 'ticks move forward in time');
  for (let p = from; p <= to; p++) {
    const wait_s = (record.at_ms - queue.entries.joined_at_ms[seq_at(queue, p)]!) / 1000;
    queue.wait_sum_s += wait_s;
    const bucket = queue_wait_buckets_s.findIndex((b) => wait_s <= b);
    queue.wait_le[bucket === -1 ? queue_wait_buckets_s.length : bucket]! += 1;
  }
  if (to > queue.admitted) {
    queue.tick_to.push(to);
    queue.tick_at_ms.push(record.at_ms);
  }
  queue.admitted = to;
  queue.carry = record.carry;
  queue.last_tick_ms = record.at_ms;
  queue.caught_up = to === queue.count;
  sweep_expired(queue, record.at_ms);
}

/** Counts the admitted entries whose tokens lapsed unused by `now_ms`, a tick at a time. */
function sweep_expired(queue: QueueState, now_ms: number): void {
  const ttl_ms = queue.settings.admission_ttl_seconds * 1000;
  while (queue.ticks_swept < queue.tick_to.length
    && queue.tick_at_ms[queue.ticks_swept]! + ttl_ms <= now_ms) {
    const i = queue.ticks_swept;
    const from = i === 0 ? 1 : queue.tick_to[i - 1]! + 1;
    for (let p = from; p <= queue.tick_to[i]!; p++) {
      if (queue.entries.used[seq_at(queue, p)] === 0) queue.tokens_expired += 1;
    }
    queue.ticks_swept += 1;
  }
}

/** A queue in a snapshot: its journaled facts; the receipt key, seq_of_user, position_of and
 *  tokens_used are rebuilt from them. Columns are cut to count + 1. */
export interface QueueSnapshot {
  event_id: string; queue_no: number; settings: QueueSettings; keys: QueueKeys; closed: boolean;
  count: number; joined_at_ms: Float64Array; user_hash: Uint8Array; chain: Uint8Array;
  used: Uint8Array; user: string[]; drawn: boolean; early_count: number; order: Int32Array;
  admitted: number; carry: number; last_tick_ms: number; caught_up: boolean; tick_to: number[];
  tick_at_ms: number[]; ticks_swept: number; tokens_expired: number; wait_sum_s: number;
  wait_le: number[];
}

export function snapshot_queue(q: QueueState): QueueSnapshot {
  const n = q.count + 1;
  const e = q.entries;
  return {
    event_id: q.event_id, queue_no: q.queue_no, settings: q.settings, keys: q.keys,
    closed: q.closed, count: q.count, joined_at_ms: e.joined_at_ms.subarray(0, n),
    user_hash: e.user_hash.subarray(0, n * 32),
    chain: e.chain.subarray(0, n * 32), used: e.used.subarray(0, n), user: e.user, drawn: q.drawn,
    early_count: q.early_count, order: q.order, admitted: q.admitted, carry: q.carry,
    last_tick_ms: q.last_tick_ms, caught_up: q.caught_up, tick_to: q.tick_to,
    tick_at_ms: q.tick_at_ms,
    ticks_swept: q.ticks_swept, tokens_expired: q.tokens_expired, wait_sum_s: q.wait_sum_s,
    wait_le: q.wait_le,
  };
}

export function restore_queue(s: QueueSnapshot): QueueState {
  const keys: QueueKeys = {
    seed: new Uint8Array(s.keys.seed), ticket_key: new Uint8Array(s.keys.ticket_key),
    token_key: new Uint8Array(s.keys.token_key), receipt_seed: new Uint8Array(s.keys.receipt_seed),
  };
  const q = new_queue(s.event_id, s.queue_no, s.settings, keys);
  assert(s.user.length === s.count + 1 && s.joined_at_ms.length === s.count + 1
    && s.chain.length === (s.count + 1) * 32, 'queue columns fit the count');
  ensure_capacity(q, s.count);
  // Copy out of the decoded buffer so the columns own aligned memory.
  q.entries.joined_at_ms.set(s.joined_at_ms);
  q.entries.user_hash.set(s.user_hash);
  q.entries.chain.set(s.chain);
  q.entries.used.set(s.used);
  q.entries.user = s.user;
  q.count = s.count;
  // The latest entry of a user is its current one (a user joins again only at the back).
  for (let seq = 1; seq <= s.count; seq++) q.seq_of_user.set(s.user[seq]!, seq);
  for (let seq = 1; seq <= s.count; seq++) q.tokens_used += q.entries.used[seq]!;
  Object.assign(q, {
    closed: s.closed, drawn: s.drawn, early_count: s.early_count, order: new Int32Array(s.order),
    admitted: s.admitted, carry: s.carry, last_tick_ms: s.last_tick_ms, caught_up: s.caught_up,
    tick_to: s.tick_to, tick_at_ms: s.tick_at_ms, ticks_swept: s.ticks_swept,
    tokens_expired: s.tokens_expired, wait_sum_s: s.wait_sum_s, wait_le: s.wait_le,
  });
  q.position_of = new Int32Array(s.early_count + 1);
  for (let p = 1; p <= s.early_count; p++) q.position_of[q.order[p - 1]!] = p;
  return q;
}
