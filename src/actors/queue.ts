// The waiting room's decisions (issue 16; docs/contracts.md "Waiting room"): ConfigureQueue,
// SetAdmissionRate, CloseQueue, Join, GetPosition, GetFairness, and the partition timer that
// draws at the sale start and admits buyers at the rate. decide_* change nothing: their records
// go through apply() (inventory.ts → queue_records.ts). The hold gate is queue_gate.ts.
import {
  read, type DecideContext, type Decision, type Effects, type OutboxEntry,
} from '../runtime/behaviour.js';
import { assert } from '../util/assert.js';
import {
  InvalidArgumentError, PermissionDeniedError, QueueConfigConflictError, QueueFullError,
  QueueNotFoundError, QueueNotOpenError,
} from './errors.js';
import { validate_event_id } from './event_spec.js';
import { event_of, validate_user_id, type PartitionRecord } from './inventory.js';
import * as L from './limits.js';
import type { PartitionState } from './partition_state.js';
import {
  chain_next, fairness_scheme, mint_token, parse_ticket_id, receipt_body_head, sha256,
  sign_receipt, ticket_id_of, user_hash_of,
} from './queue_crypto.js';
import type { QueueRecord } from './queue_records.js';
import {
  effective_rate_per_minute, is_active, position_of_seq, queue_pace_pct_full, queue_wait_buckets_s,
  token_expiry_ms, type QueueSettings, type QueueState,
} from './queue_state.js';

export interface ConfigureQueueRequest {
  event_id: string; opens_at_ms: number; sale_starts_at_ms: number; admit_per_minute: number;
  admission_ttl_seconds: number; service_bypass: boolean; trace_id: string;
}
export interface ConfigureQueueReply { event_id: string; created: boolean; seed_commitment: string }
export interface SetAdmissionRateRequest {
  event_id: string; admit_per_minute: number; trace_id: string;
}
export interface SetAdmissionRateReply { admit_per_minute: number; admitted: number }
export interface CloseQueueRequest { event_id: string; trace_id: string }
export interface CloseQueueReply { closed: boolean }
export interface JoinQueueRequest {
  event_id: string; user_id: string; device_id: string; trace_id: string;
}
export interface QueueReceipt {
  body: string; signature: Uint8Array; event_id: string; ticket_id: string; seq: number;
  joined_at_ms: number; user_hash: string; chain: string;
}
export interface JoinQueueReply { ticket_id: string; receipt: QueueReceipt; created: boolean }
/** actor_user_id null: a service asking for anyone; else must be the entry's user. */
export interface QueuePositionRequest { ticket_id: string; actor_user_id: string | null }
export interface QueuePosition {
  ticket_id: string; event_id: string; position: number; admitted: boolean;
  admission_token: string; admission_expires_at_ms: number; estimated_wait_seconds: number;
  drawn: boolean; used: boolean; admitted_count: number;
}
/** The admission governor's pace for every queue of the partition (a broadcast kind). */
export interface PaceQueuesRequest { pace_pct: number; trace_id: string }
export interface PaceQueuesReply { pace_pct: number; changed: boolean }
export interface QueueFairnessRequest { event_id: string }
export interface QueueFairness {
  event_id: string; seed_commitment: string; seed: string; drawn: boolean; early_count: number;
  early_chain_head: string; receipt_public_key: string; opens_at_ms: number;
  sale_starts_at_ms: number; admit_per_minute: number; joined: number; admitted: number;
  scheme: string;
  /** The node's pace: the queue admits at floor(admit_per_minute × pace_pct / 100), at least 1. */
  pace_pct: number;
}

/** Buyers × ms per minute: the admission arithmetic's unit (exact in integers). */
const ms_per_minute = 60_000;

type QueueDecision<Reply> = Decision<PartitionRecord, Reply>;

function queue_of(state: PartitionState, event_id: string): QueueState {
  validate_event_id(event_id);
  const queue = state.queues.by_event.get(event_id);
  if (queue === undefined) throw new QueueNotFoundError(`event ${event_id} has no waiting room`);
  return queue;
}

function int_in(value: unknown, min: number, max: number, field: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new InvalidArgumentError(
      `${field} must be an integer ${min}..${max}, got ${String(value)}`);
  }
  return value;
}

function validate_settings(req: ConfigureQueueRequest): QueueSettings {
  const opens_at_ms = int_in(req.opens_at_ms, 0, Number.MAX_SAFE_INTEGER, 'opens_at');
  const sale_starts_at_ms = int_in(req.sale_starts_at_ms, 0, Number.MAX_SAFE_INTEGER,
    'sale_starts_at');
  if (sale_starts_at_ms < opens_at_ms) {
    throw new InvalidArgumentError('sale_starts_at must not be before opens_at');
  }
  return {
    opens_at_ms, sale_starts_at_ms,
    admit_per_minute: int_in(req.admit_per_minute, 1, L.queue_admit_per_minute_max,
      'admit_per_minute'),
    admission_ttl_seconds: int_in(req.admission_ttl_seconds, 1, L.queue_admission_ttl_seconds_max,
      'admission_ttl_seconds'),
    service_bypass: req.service_bypass === true,
  };
}

function same_settings(a: QueueSettings, b: QueueSettings): boolean {
  return a.opens_at_ms === b.opens_at_ms && a.sale_starts_at_ms === b.sale_starts_at_ms
    && a.admit_per_minute === b.admit_per_minute && a.service_bypass === b.service_bypass
    && a.admission_ttl_seconds === b.admission_ttl_seconds;
}

export function decide_configure_queue(
  state: PartitionState, req: ConfigureQueueRequest, ctx: DecideContext,
): QueueDecision<ConfigureQueueReply> {
  validate_event_id(req.event_id);
  event_of(state, req.event_id);
  const settings = validate_settings(req);
  const existing = state.queues.by_event.get(req.event_id);
  if (existing !== undefined) {
    const reply = {
      event_id: req.event_id, created: false, seed_commitment: existing.seed_commitment,
    };
    if (same_settings(existing.settings, settings)) return read(reply);
    if (existing.closed || existing.count > 0 || ctx.now_ms >= existing.settings.opens_at_ms) {
      throw new QueueConfigConflictError(`the waiting room of event ${req.event_id} has opened `
        + 'with other settings; they can no longer change (SetAdmissionRate changes the rate)');
    }
    const record: QueueRecord = {
      t: 'queue_settings_changed', event_id: req.event_id, settings, at_ms: ctx.now_ms,
    };
    return { records: [record], outbox: [], reply };
  }
  if (state.queues.by_no.length >= L.queues_per_partition_max) {
    throw new QueueConfigConflictError(`this partition has ${L.queues_per_partition_max} `
      + 'waiting rooms already (queues_per_partition_max)');
  }
  const keys = {
    seed: ctx.random_bytes(32), ticket_key: ctx.random_bytes(32), token_key: ctx.random_bytes(32),
    receipt_seed: ctx.random_bytes(32),
  };
  const record: QueueRecord = {
    t: 'queue_configured', event_id: req.event_id, queue_no: state.queues.by_no.length, settings,
    keys, at_ms: ctx.now_ms,
  };
  const seed_commitment = sha256(keys.seed).toString('hex');
  const reply = { event_id: req.event_id, created: true, seed_commitment };
  return { records: [record], outbox: [], reply };
}

/** The draw's record when it is due at `now_ms` and not made yet (the timer makes it at the
 *  sale start; a Join or SetAdmissionRate that finds it due first makes it itself). */
function draw_if_due(queue: QueueState, now_ms: number): QueueRecord[] {
  if (queue.drawn || queue.closed || now_ms < queue.settings.sale_starts_at_ms) return [];
  // Joins before the draw all came before the sale start: every entry so far is early.
  return [{ t: 'queue_drawn', event_id: queue.event_id, early_count: queue.count, at_ms: now_ms }];
}

interface Tick { record: Extract<QueueRecord, { t: 'queue_admitted' }>; from: number }

/** The admission tick at `now_ms`: what is due at the current rate (the admin's, scaled by the
 *  partition's pace_pct) since the last tick, whole buyers only (the remainder carried), never
 *  past the last entry. A queue that had run dry (caught_up) credits one tick's worth at most. */
export function admission_tick(queue: QueueState, now_ms: number, pace_pct: number): Tick {
  assert(queue.drawn, 'admission follows the draw');
  // Tick times never go back (a clock stepped back after a restart): tokens expire in order.
  const at_ms = Math.max(now_ms, queue.last_tick_ms);
  let elapsed_ms = at_ms - queue.last_tick_ms;
  if (queue.caught_up) elapsed_ms = Math.min(elapsed_ms, L.queue_admission_tick_ms);
  const due = effective_rate_per_minute(queue, pace_pct) * elapsed_ms + queue.carry;
  let to_position = Math.min(queue.admitted + Math.floor(due / ms_per_minute), queue.count);
  let carry = due % ms_per_minute;
  if (to_position === queue.count) carry = 0;
  to_position = Math.max(to_position, queue.admitted);
  assert(to_position <= queue.count && carry < ms_per_minute, 'a tick admits within the queue');
  return {
    record: { t: 'queue_admitted', event_id: queue.event_id, to_position, carry, at_ms },
    from: queue.admitted + 1,
  };
}

function admitted_event(tick: Tick): OutboxEntry[] {
  const r = tick.record;
  if (r.to_position < tick.from) return [];
  return [{
    type: 'QueueAdmitted', key: r.event_id,
    payload: {
      event_id: r.event_id, from_position: tick.from, to_position: r.to_position,
      admitted_total: r.to_position, admitted_at_unix: Math.floor(r.at_ms / 1000),
    },
  }];
}

export function decide_set_admission_rate(
  state: PartitionState, req: SetAdmissionRateRequest, ctx: DecideContext,
): QueueDecision<SetAdmissionRateReply> {
  const queue = queue_of(state, req.event_id);
  if (queue.closed) {
    throw new QueueNotFoundError(`the waiting room of event ${req.event_id} is closed`);
  }
  const rate = int_in(req.admit_per_minute, 0, L.queue_admit_per_minute_max, 'admit_per_minute');
  const records: PartitionRecord[] = draw_if_due(queue, ctx.now_ms);
  let outbox: OutboxEntry[] = [];
  let admitted = queue.admitted;
  if (queue.drawn) {
    // What is due at the old rate is admitted at the old rate.
    const tick = admission_tick(queue, ctx.now_ms, state.queues.pace_pct);
    records.push(tick.record);
    outbox = admitted_event(tick);
    admitted = tick.record.to_position;
  }
  records.push({
    t: 'queue_rate_set', event_id: req.event_id, admit_per_minute: rate, at_ms: ctx.now_ms,
  });
  return { records, outbox, reply: { admit_per_minute: rate, admitted } };
}

export function decide_close_queue(
  state: PartitionState, req: CloseQueueRequest, ctx: DecideContext,
): QueueDecision<CloseQueueReply> {
  const queue = queue_of(state, req.event_id);
  if (queue.closed) return read({ closed: true });
  const record: QueueRecord = { t: 'queue_closed', event_id: req.event_id, at_ms: ctx.now_ms };
  return { records: [record], outbox: [], reply: { closed: true } };
}

/** Entry `seq`'s receipt, rebuilt from the columns: Ed25519 is deterministic, so a repeat Join
 *  gets the same bytes as the first. */
export function receipt_of(state: PartitionState, queue: QueueState, seq: number): QueueReceipt {
  const e = queue.entries;
  const ticket_id = ticket_id_of(state.partition, queue.keys.ticket_key, queue.queue_no, seq);
  return make_receipt(ticket_id, queue, seq, e.joined_at_ms[seq]!,
    Buffer.from(e.user_hash.subarray(seq * 32, seq * 32 + 32)).toString('hex'),
    Buffer.from(e.chain.subarray(seq * 32, seq * 32 + 32)).toString('hex'));
}

function make_receipt(
  ticket_id: string, queue: QueueState, seq: number, joined_at_ms: number, user_hash: string,
  chain: string,
): QueueReceipt {
  const head = receipt_body_head(queue.event_id, ticket_id, seq, joined_at_ms, user_hash);
  const body = `${head}|${chain}`;
  return {
    body, signature: sign_receipt(queue.receipt_key, body), event_id: queue.event_id, ticket_id,
    seq, joined_at_ms, user_hash, chain,
  };
}

/** Whether entry `seq` was admitted and its token lapsed unused by `now_ms`: its user may join
 *  again, at the back. */
function lapsed(queue: QueueState, seq: number, now_ms: number): boolean {
  const position = position_of_seq(queue, seq);
  return position > 0 && position <= queue.admitted && queue.entries.used[seq] === 0
    && now_ms >= token_expiry_ms(queue, position);
}

function validate_device_id(device_id: unknown): string {
  if (typeof device_id !== 'string' || device_id.length > L.queue_device_id_length_max) {
    throw new InvalidArgumentError(
      `device_id must be a string of at most ${L.queue_device_id_length_max} characters`);
  }
  return device_id;
}

export function decide_join_queue(
  state: PartitionState, req: JoinQueueRequest, ctx: DecideContext,
): QueueDecision<JoinQueueReply> {
  const queue = queue_of(state, req.event_id);
  const user_id = validate_user_id(req.user_id);
  const device_id = validate_device_id(req.device_id);
  if (queue.closed) {
    throw new QueueNotOpenError(`the waiting room of event ${req.event_id} is closed`);
  }
  if (ctx.now_ms < queue.settings.opens_at_ms) {
    throw new QueueNotOpenError(`the waiting room of event ${req.event_id} opens at `
      + `${Math.floor(queue.settings.opens_at_ms / 1000)} (unix seconds)`);
  }
  const records: PartitionRecord[] = draw_if_due(queue, ctx.now_ms);
  const earlier = queue.seq_of_user.get(user_id);
  if (earlier !== undefined && !lapsed(queue, earlier, ctx.now_ms)) {
    const reply = { ticket_id: '', receipt: receipt_of(state, queue, earlier), created: false };
    reply.ticket_id = reply.receipt.ticket_id;
    return { records, outbox: [], reply };
  }
  if (queue.count >= L.queue_entries_per_event_max) {
    throw new QueueFullError(`the waiting room of event ${req.event_id} has `
      + `${L.queue_entries_per_event_max} buyers (queue_entries_per_event_max)`);
  }
  const seq = queue.count + 1;
  const joined_at_ms = join_time_ms(queue, ctx.now_ms);
  const user_hash = user_hash_of(req.event_id, user_id, device_id);
  const ticket_id = ticket_id_of(state.partition, queue.keys.ticket_key, queue.queue_no, seq);
  const head = receipt_body_head(req.event_id, ticket_id, seq, joined_at_ms,
    user_hash.toString('hex'));
  const previous = queue.entries.chain.subarray(queue.count * 32, queue.count * 32 + 32);
  const chain = chain_next(previous, head);
  records.push({
    t: 'queue_joined', event_id: req.event_id, seq, user_id, user_hash, chain,
    joined_at_ms: joined_at_ms,
  });
  const receipt = make_receipt(ticket_id, queue, seq, joined_at_ms,
    user_hash.toString('hex'), chain.toString('hex'));
  assert(receipt.seq === queue.count + 1, 'a new entry goes to the back');
  const outbox: OutboxEntry[] = [{
    type: 'QueueJoined', key: req.event_id,
    payload: {
      event_id: req.event_id, ticket_id, seq, joined_at_unix: Math.floor(joined_at_ms / 1000),
      early: joined_at_ms < queue.settings.sale_starts_at_ms,
    },
  }];
  return { records, outbox, reply: { ticket_id, receipt, created: true } };
}

/** A join's time: never before the previous join's, nor before the sale start once drawn, so
 *  arrival order is seq order and "early" is a prefix even if the clock steps back. */
function join_time_ms(queue: QueueState, now_ms: number): number {
  const previous = queue.entries.joined_at_ms[queue.count]!;
  const floor = queue.drawn ? queue.settings.sale_starts_at_ms : 0;
  return Math.max(now_ms, previous, floor);
}

/** The queue and seq a ticket id names on this partition; QueueNotFoundError otherwise (a
 *  forged id fails its MAC). */
function entry_of(state: PartitionState, ticket_id: string): { queue: QueueState; seq: number } {
  const parsed = typeof ticket_id === 'string' ? parse_ticket_id(ticket_id) : null;
  const queue = parsed === null ? undefined : state.queues.by_no[parsed.queue_no];
  if (parsed === null || queue === undefined || parsed.seq < 1 || parsed.seq > queue.count
    || ticket_id_of(state.partition, queue.keys.ticket_key, queue.queue_no, parsed.seq)
      !== ticket_id) {
    throw new QueueNotFoundError(`queue ticket ${String(ticket_id).slice(0, 64)} does not exist`);
  }
  return { queue, seq: parsed.seq };
}

/** GetPosition: a read. The token is minted here, while admitted, unexpired and unused. */
export function queue_position(
  state: PartitionState, req: QueuePositionRequest, now_ms: number,
): QueuePosition {
  const { queue, seq } = entry_of(state, req.ticket_id);
  if (req.actor_user_id !== null && req.actor_user_id !== queue.entries.user[seq]) {
    throw new PermissionDeniedError(`queue ticket ${req.ticket_id} is another user's`);
  }
  const position = position_of_seq(queue, seq);
  const admitted = position > 0 && position <= queue.admitted;
  const used = queue.entries.used[seq] === 1;
  const expires_ms = admitted ? token_expiry_ms(queue, position) : 0;
  const live = admitted && !used && !queue.closed && now_ms < expires_ms;
  const token = live
    ? mint_token(queue.keys.token_key, req.ticket_id, queue.entries.user[seq]!, queue.event_id,
      expires_ms)
    : '';
  return {
    ticket_id: req.ticket_id, event_id: queue.event_id, position, admitted, admission_token: token,
    admission_expires_at_ms: expires_ms,
    estimated_wait_seconds: wait_estimate_s(queue, position, now_ms, state.queues.pace_pct),
    drawn: queue.drawn, used, admitted_count: queue.admitted,
  };
}

/** Seconds until the entry at `position` is admitted at the current (paced) rate: 0 once
 *  admitted, -1 while admission is paused (rate 0). Before the draw (position 0) the worst
 *  case: every entry so far ahead, from the sale start. */
export function wait_estimate_s(
  queue: QueueState, position: number, now_ms: number, pace_pct: number,
): number {
  const rate = effective_rate_per_minute(queue, pace_pct);
  if (position > 0 && position <= queue.admitted) return 0;
  if (rate === 0) return -1;
  if (position === 0) {
    const until_start_s = Math.max(0, queue.settings.sale_starts_at_ms - now_ms) / 1000;
    return Math.ceil(until_start_s + (queue.count * 60) / rate);
  }
  return Math.ceil(((position - queue.admitted) * 60) / rate);
}

export function queue_fairness(state: PartitionState, req: QueueFairnessRequest): QueueFairness {
  const queue = queue_of(state, req.event_id);
  const n = queue.early_count;
  const s = queue.settings;
  return {
    event_id: queue.event_id, seed_commitment: queue.seed_commitment,
    seed: queue.drawn ? Buffer.from(queue.keys.seed).toString('hex') : '', drawn: queue.drawn,
    early_count: n,
    early_chain_head: queue.drawn
      ? Buffer.from(queue.entries.chain.subarray(n * 32, n * 32 + 32)).toString('hex') : '',
    receipt_public_key: queue.receipt_public_key, opens_at_ms: s.opens_at_ms,
    sale_starts_at_ms: s.sale_starts_at_ms, admit_per_minute: s.admit_per_minute,
    joined: queue.count, admitted: queue.admitted, scheme: fairness_scheme,
    pace_pct: state.queues.pace_pct,
  };
}

/** When queue `queue` has timer work: the draw at the sale start; the next admission tick while
 *  buyers wait at a rate > 0; the expiry of the oldest uncounted admission. null: none. */
function queue_deadline_ms(queue: QueueState): number | null {
  if (queue.closed) return null;
  if (!queue.drawn) return queue.settings.sale_starts_at_ms;
  let next: number | null = null;
  if (queue.settings.admit_per_minute > 0 && queue.admitted < queue.count) {
    next = queue.last_tick_ms + L.queue_admission_tick_ms;
  }
  if (queue.ticks_swept < queue.tick_at_ms.length) {
    const ttl_ms = queue.settings.admission_ttl_seconds * 1000;
    const expiry = queue.tick_at_ms[queue.ticks_swept]! + ttl_ms;
    next = next === null ? expiry : Math.min(next, expiry);
  }
  return next;
}

/** The earliest timer work of every queue of the partition (≤ queues_per_partition_max). */
export function queues_deadline_ms(state: PartitionState): number | null {
  let next: number | null = null;
  for (const queue of state.queues.by_no) {
    const at = queue_deadline_ms(queue);
    if (at !== null && (next === null || at < next)) next = at;
  }
  return next;
}

/** The queues' part of the partition's timer run: each due queue draws, or ticks (admits and
 *  counts lapsed tokens). One step per queue per run; the host runs again for the next. */
export function decide_queue_timers(
  state: PartitionState, ctx: DecideContext,
): Effects<PartitionRecord> {
  const records: PartitionRecord[] = [];
  const outbox: OutboxEntry[] = [];
  for (const queue of state.queues.by_no) {
    const at = queue_deadline_ms(queue);
    if (at === null || at > ctx.now_ms) continue;
    if (!queue.drawn) {
      records.push(...draw_if_due(queue, ctx.now_ms));
      continue;
    }
    const tick = admission_tick(queue, ctx.now_ms, state.queues.pace_pct);
    records.push(tick.record);
    outbox.push(...admitted_event(tick));
  }
  return { records, outbox };
}

/** pace_queues: every queue of the partition admits at pace_pct % of its admin's rate from now.
 *  What is due at the old pace is admitted at the old pace first (a tick per drawn queue, as
 *  SetAdmissionRate folds), so a change never re-prices the seconds before it. The same pace
 *  again journals nothing: the governor may repeat itself (after a restart, an adoption). */
export function decide_pace_queues(
  state: PartitionState, req: PaceQueuesRequest, ctx: DecideContext,
): QueueDecision<PaceQueuesReply> {
  const pace_pct = int_in(req.pace_pct, 1, queue_pace_pct_full, 'pace_pct');
  if (pace_pct === state.queues.pace_pct) return read({ pace_pct, changed: false });
  const records: PartitionRecord[] = [];
  const outbox: OutboxEntry[] = [];
  for (const queue of state.queues.by_no) {
    if (queue.closed || !queue.drawn) continue;
    const tick = admission_tick(queue, ctx.now_ms, state.queues.pace_pct);
    records.push(tick.record);
    outbox.push(...admitted_event(tick));
  }
  records.push({ t: 'queue_paced', pace_pct, at_ms: ctx.now_ms });
  return { records, outbox, reply: { pace_pct, changed: true } };
}

/** The queues' gauges, summed over the partition's queues (the edge sums partitions). */
export function queue_gauges(state: PartitionState): Record<string, number> {
  const g: Record<string, number> = {
    queue_waiting: 0, queue_admitted_total: 0, queue_tokens_used_total: 0,
    queue_tokens_expired_total: 0, queue_wait_seconds_sum: 0, queue_wait_seconds_count: 0,
  };
  const le = new Array<number>(queue_wait_buckets_s.length + 1).fill(0);
  for (const queue of state.queues.by_no) {
    if (is_active(queue)) g.queue_waiting! += queue.count - queue.admitted;
    g.queue_admitted_total! += queue.admitted;
    g.queue_tokens_used_total! += queue.tokens_used;
    g.queue_tokens_expired_total! += queue.tokens_expired;
    g.queue_wait_seconds_sum! += queue.wait_sum_s;
    g.queue_wait_seconds_count! += queue.admitted;
    queue.wait_le.forEach((n, i) => { le[i]! += n; });
  }
  let cumulative = 0;
  queue_wait_buckets_s.forEach((b, i) => {
    cumulative += le[i]!;
    g[`queue_wait_le_${b}`] = cumulative;
  });
  g.queue_wait_le_inf = cumulative + le[queue_wait_buckets_s.length]!;
  return g;
}
