// The waiting room's decisions, one by one (issue 16): ConfigureQueue, Join, GetPosition,
// admission at the rate (ticks, carry, SetAdmissionRate, pauses), the hold gate in all four
// hold decisions and each of its refusals, expiry and joining again, CloseQueue, the limits, and
// recovery after kill -9 from a snapshot and from the journal alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, createPublicKey, verify } from 'node:crypto';
import * as L from '../../src/actors/limits.js';
import type { PartitionRecord } from '../../src/actors/inventory.js';
import { behaviour } from '../../src/actors/behaviour.js';
import { queues_deadline_ms, type QueuePosition } from '../../src/actors/queue.js';
import { ticket_id_of } from '../../src/actors/queue_crypto.js';
import { T0 } from './helpers.js';
import { EVENT, fingerprint, MINUTE_MS, QueueHarness, refused, with_queue } from './queue_helpers.js';
import { sample_spec, store_packr } from './helpers.js';

const OPEN = T0 + MINUTE_MS;
const START = T0 + 10 * MINUTE_MS;

function join(h: QueueHarness, user: string, device = 'dev') {
  return h.call('join_queue', { event_id: EVENT, user_id: user, device_id: device, trace_id: 't' });
}

function position(h: QueueHarness, ticket_id: string, actor: string | null = null): QueuePosition {
  return h.call('queue_position', { ticket_id, actor_user_id: actor });
}

function reserve(h: QueueHarness, user: string, seat: string, token: string | undefined, by_service = false) {
  return h.call('reserve', {
    event_id: EVENT, seat_ids: [seat], hold_ttl_seconds: 0, user_id: user, trace_id: 't',
    admission_token: token, by_service,
  });
}

/** The ticket of the entry at `position` (after the draw), found through the state. */
function ticket_at(h: QueueHarness, position: number): string {
  const queue = h.state.queues.by_event.get(EVENT)!;
  const seq = position <= queue.early_count ? queue.order[position - 1]! : position;
  return ticket_id_of(0, queue.keys.ticket_key, queue.queue_no, seq);
}

/** Users u0..u(n-1) join before the start; the clock then reaches the start (the draw). */
function early_joiners(h: QueueHarness, n: number): string[] {
  h.advance_to(OPEN);
  const tickets: string[] = [];
  for (let i = 0; i < n; i++) {
    tickets.push(join(h, `u${i}`).ticket_id);
    h.advance(1000);
  }
  h.advance_to(START);
  return tickets;
}

test('ConfigureQueue: created once, a repeat is idempotent, other settings only before it opens', () => {
  const h = with_queue();
  const fairness = h.call('queue_fairness', { event_id: EVENT });
  assert.is(fairness.seed, '', 'the seed is secret before the draw');
  assert.match(fairness.seed_commitment, /^[0-9a-f]{64}$/);
  const same = {
    event_id: EVENT, opens_at_ms: OPEN, sale_starts_at_ms: START, admit_per_minute: 60,
    admission_ttl_seconds: 120, service_bypass: false, trace_id: 't',
  };
  const again = h.call('configure_queue', same);
  assert.equal(again, { event_id: EVENT, created: false, seed_commitment: fairness.seed_commitment });
  // Before it opens the settings may change; the commitment stays.
  const changed = h.call('configure_queue', { ...same, admit_per_minute: 120 });
  assert.is(changed.seed_commitment, fairness.seed_commitment);
  assert.is(h.call('queue_fairness', { event_id: EVENT }).admit_per_minute, 120);
  h.advance_to(OPEN);
  assert.is(refused(h, () => h.call('configure_queue', same)).name, 'QueueConfigConflictError');
  assert.is(refused(h, () => h.call('configure_queue', { ...same, event_id: 'evt-none' })).name,
    'EventNotFoundError');
  for (const bad of [{ admit_per_minute: 0 }, { admission_ttl_seconds: L.queue_admission_ttl_seconds_max + 1 },
    { sale_starts_at_ms: OPEN - 1 }, { admit_per_minute: 1.5 }]) {
    assert.is(refused(h, () => h.call('configure_queue', { ...same, ...bad })).name, 'InvalidArgumentError');
  }
  assert.is(refused(h, () => h.call('queue_fairness', { event_id: 'evt-none' })).name, 'QueueNotFoundError');
  h.check();
});

test('Join: not before opens_at; one entry per user, the same receipt bytes on a repeat', () => {
  const h = with_queue();
  assert.is(refused(h, () => join(h, 'alice')).name, 'QueueNotOpenError');
  h.advance_to(OPEN);
  const first = join(h, 'alice', 'phone');
  assert.is(first.created, true);
  assert.is(first.receipt.seq, 1);
  assert.match(first.ticket_id, /^ticket_0_[A-Za-z0-9_-]{22}$/);
  const joined = h.outbox.find((o) => o.type === 'QueueJoined');
  assert.equal(joined?.payload, {
    event_id: EVENT, ticket_id: first.ticket_id, seq: 1, joined_at_unix: Math.floor(OPEN / 1000), early: true,
  });
  h.advance(5000);
  const repeat = join(h, 'alice', 'laptop');
  assert.is(repeat.created, false);
  assert.is(repeat.ticket_id, first.ticket_id);
  assert.equal(Buffer.from(repeat.receipt.signature), Buffer.from(first.receipt.signature));
  assert.is(repeat.receipt.body, first.receipt.body);
  const key = createPublicKey({
    key: Buffer.from(h.call('queue_fairness', { event_id: EVENT }).receipt_public_key, 'base64'),
    format: 'der', type: 'spki',
  });
  assert.ok(verify(null, Buffer.from(first.receipt.body), key, first.receipt.signature), 'signed');
  const user_hash = createHash('sha256').update(`${EVENT}|alice|phone`).digest('hex');
  assert.is(first.receipt.user_hash, user_hash);
  assert.is(join(h, 'bob').receipt.seq, 2);
  assert.is(refused(h, () => join(h, 'bad user')).name, 'InvalidArgumentError');
  assert.is(refused(h, () => join(h, 'carol', 'd'.repeat(L.queue_device_id_length_max + 1))).name,
    'InvalidArgumentError');
  h.check();
});

test('GetPosition: 0 before the draw, drawn positions after; only its user or a service', () => {
  const h = with_queue();
  const tickets = early_joiners(h, 5);
  assert.ok(h.state.queues.by_event.get(EVENT)!.drawn, 'the timer drew at the sale start');
  const positions = tickets.map((t) => position(h, t).position).sort((a, b) => a - b);
  assert.equal(positions, [1, 2, 3, 4, 5]);
  assert.is(position(h, tickets[0]!, 'u0').ticket_id, tickets[0]);
  assert.is(refused(h, () => position(h, tickets[0]!, 'u1')).name, 'PermissionDeniedError');
  const forged = `${tickets[0]!.slice(0, -3)}AAA`;
  assert.is(refused(h, () => position(h, forged)).name, 'QueueNotFoundError');
  assert.is(refused(h, () => position(h, 'ticket_0_x')).name, 'QueueNotFoundError');
  // A later joiner goes to the back, in arrival order.
  const late = join(h, 'late');
  assert.is(position(h, late.ticket_id).position, 6);
  assert.is(h.outbox.filter((o) => o.type === 'QueueJoined').at(-1)?.payload.early, false);
  h.check();
});

test('before the draw an early joiner waits: position 0, no token, an estimate from the start', () => {
  const h = with_queue();
  h.advance_to(OPEN);
  const t = join(h, 'alice').ticket_id;
  const p = position(h, t);
  assert.equal([p.position, p.admitted, p.admission_token, p.drawn], [0, false, '', false]);
  assert.is(p.estimated_wait_seconds, (START - OPEN) / 1000 + 1);
});

test('admission at the rate: whole buyers per tick, the fraction carried, QueueAdmitted per tick', () => {
  const h = with_queue({ admit_per_minute: 30 });
  early_joiners(h, 10);
  const queue = h.state.queues.by_event.get(EVENT)!;
  assert.is(queue.admitted, 0);
  h.advance(1000); // 0.5 buyer due
  assert.is(queue.admitted, 0);
  assert.is(queue.carry, 30_000);
  h.advance(1000); // 1 buyer
  assert.is(queue.admitted, 1);
  h.advance(10_000); // 5 more
  assert.is(queue.admitted, 6);
  const admitted = h.outbox.filter((o) => o.type === 'QueueAdmitted');
  assert.equal(admitted[0]?.payload, {
    event_id: EVENT, from_position: 1, to_position: 1, admitted_total: 1,
    admitted_at_unix: Math.floor((START + 2000) / 1000),
  });
  assert.is(admitted.at(-1)?.payload.to_position, 6);
  // The estimate: positions ahead at the rate (30/min: 2 s a buyer); 0 once admitted.
  const waits = h.state.queues.by_event.get(EVENT)!;
  const last = h.call('queue_position', { ticket_id: ticket_at(h, 10), actor_user_id: null });
  assert.is(last.estimated_wait_seconds, (10 - waits.admitted) * 2);
  assert.is(h.call('queue_position', { ticket_id: ticket_at(h, 1), actor_user_id: null }).estimated_wait_seconds, 0);
  // SetAdmissionRate folds in what is due at the old rate first, then pauses.
  h.now += 2500; // 1.25 due at 30/min; the timer has not run
  const set = h.call('set_admission_rate', { event_id: EVENT, admit_per_minute: 0, trace_id: 't' });
  assert.equal(set, { admit_per_minute: 0, admitted: 7 });
  assert.is(h.call('queue_position', { ticket_id: ticket_at(h, 10), actor_user_id: null }).estimated_wait_seconds,
    -1, 'paused: unknown');
  h.advance(MINUTE_MS);
  assert.is(queue.admitted, 7, 'paused');
  assert.is(behaviour.next_deadline_ms(h.state), queue.tick_at_ms[0]! + 120_000, 'only the expiry sweep');
  h.call('set_admission_rate', { event_id: EVENT, admit_per_minute: 600, trace_id: 't' });
  h.advance(1000);
  assert.is(queue.admitted, 10, 'the rest, capped at the last entry');
  assert.is(refused(h, () => h.call('set_admission_rate', { event_id: EVENT, admit_per_minute: -1, trace_id: 't' })).name,
    'InvalidArgumentError');
  h.check();
});

test('a queue that ran dry banks no admissions: a later burst is admitted at the rate', () => {
  const h = with_queue({ admit_per_minute: 60 });
  early_joiners(h, 1);
  h.advance(2000);
  const queue = h.state.queues.by_event.get(EVENT)!;
  assert.is(queue.admitted, 1);
  h.advance(10 * MINUTE_MS); // nobody waits: no ticks
  for (let i = 0; i < 20; i++) join(h, `late${i}`);
  h.advance(0); // the overdue tick runs at once
  assert.is(queue.admitted, 2, 'one tick\'s worth at most, not ten minutes\' worth');
  h.advance(10_000);
  assert.is(queue.admitted, 12, 'then the rate');
  h.check();
});

/** The early joiner at position p and its live token. */
function admitted_buyer(h: QueueHarness, tickets: string[], p: number): { user: string; token: string; ticket: string } {
  for (let i = 0; i < tickets.length; i++) {
    const pos = position(h, tickets[i]!);
    if (pos.position === p) {
      assert.ok(pos.admitted && pos.admission_token !== '', `position ${p} admitted with a token`);
      return { user: `u${i}`, token: pos.admission_token, ticket: tickets[i]! };
    }
  }
  throw new Error(`no entry at position ${p}`);
}

test('the gate: no token, garbage, another user\'s, a replay are refused; a valid one holds once', () => {
  const h = with_queue({ admit_per_minute: 60 });
  const tickets = early_joiners(h, 3);
  h.advance(2000);
  const none = refused(h, () => reserve(h, 'u0', '101-A-1', undefined));
  assert.is(none.name, 'QueueAdmissionRequiredError');
  assert.match(none.message, 'join it (ticketing.queue.v1.QueueService/Join) and send the admission-token');
  assert.is(refused(h, () => reserve(h, 'u0', '101-A-1', '')).name, 'QueueAdmissionRequiredError');
  const first = admitted_buyer(h, tickets, 1);
  const second = admitted_buyer(h, tickets, 2);
  assert.is(refused(h, () => reserve(h, first.user, '101-A-1', 'at1.x.1.y')).name, 'AdmissionTokenInvalidError');
  assert.is(refused(h, () => reserve(h, first.user, '101-A-1', 'x'.repeat(300))).name, 'AdmissionTokenInvalidError');
  const other = refused(h, () => reserve(h, second.user, '101-A-1', first.token));
  assert.is(other.name, 'AdmissionTokenInvalidError');
  assert.match(other.message, 'join the queue');
  const forged_expiry = first.token.replace(/\.(\d+)\./, (_m, e: string) => `.${Number(e) + 60_000}.`);
  assert.is(refused(h, () => reserve(h, first.user, '101-A-1', forged_expiry)).name, 'AdmissionTokenInvalidError');
  const before = h.journal.length;
  const hold = reserve(h, first.user, '101-A-1', first.token);
  assert.ok(hold.hold_id !== '');
  const records = h.journal.slice(before).map((b) => (store_packr.unpack(b) as PartitionRecord).t);
  assert.equal(records, ['queue_token_used', 'hold_created'], 'the token\'s use and the hold in one decision');
  assert.is(position(h, first.ticket).used, true);
  assert.is(position(h, first.ticket).admission_token, '', 'no token once used');
  const replay = refused(h, () => reserve(h, first.user, '101-A-2', first.token));
  assert.is(replay.name, 'AdmissionTokenUsedError');
  assert.match(replay.message, 'join the queue of event evt-1 again');
  h.check();
});

test('a refused hold leaves the token unused; the four hold decisions are all gated', () => {
  const h = with_queue({ admit_per_minute: 600 });
  h.state.events.get(EVENT); // the sample event has no area: add one for ReserveGeneralAdmission
  h.call('create_event', {
    event_id: 'evt-ga', spec: sample_spec({ event_id: 'evt-ga', areas: [{ name: 'FLOOR', capacity: 5, tier: 'A' }] }),
  });
  const tickets = early_joiners(h, 4);
  h.advance(1000);
  const a = admitted_buyer(h, tickets, 1);
  reserve(h, a.user, '101-A-1', a.token);
  const b = admitted_buyer(h, tickets, 2);
  assert.is(refused(h, () => reserve(h, b.user, '101-A-1', b.token)).name, 'SeatsUnavailableError');
  assert.is(position(h, b.ticket).used, false, 'the refused hold used nothing');
  const draft = { event_id: EVENT, seat_ids: ['101-A-2'], user_id: b.user, promo_code: '', idempotency_key: 'k1', trace_id: 't' };
  assert.is(refused(h, () => h.call('create_draft', draft)).name, 'QueueAdmissionRequiredError');
  const order = h.call('create_draft', { ...draft, admission_token: b.token });
  // The idempotent retry answers before any token check.
  assert.equal(h.call('create_draft', draft), order);
  const c = admitted_buyer(h, tickets, 3);
  const best = { event_id: EVENT, user_id: c.user, quantity: 2, tiers: [], sections: [], accessible_quantity: 0, hold_ttl_seconds: 0, trace_id: 't' };
  assert.is(refused(h, () => h.call('reserve_best', best)).name, 'QueueAdmissionRequiredError');
  assert.is(h.call('reserve_best', { ...best, admission_token: c.token }).seat_ids.length, 2);
  assert.is(refused(h, () => h.call('reserve_best', { ...best, admission_token: c.token })).name, 'AdmissionTokenUsedError');
  const d = admitted_buyer(h, tickets, 4);
  const ga = { event_id: EVENT, area: 'FLOOR', quantity: 1, user_id: d.user, hold_ttl_seconds: 0, trace_id: 't' };
  // The queue is evt-1's: a token of it is another event's on evt-ga, which has no queue.
  assert.is(refused(h, () => h.call('reserve_ga', ga)).name, 'InvalidArgumentError', 'evt-1 has no area');
  assert.is(refused(h, () => h.call('reserve_ga', { ...ga, admission_token: d.token })).name, 'InvalidArgumentError');
  h.call('reserve_ga', { ...ga, event_id: 'evt-ga' });
  assert.is(h.state.queues.by_event.get(EVENT)!.tokens_used, 3);
  h.check();
});

test('reserve_ga on an event with a queue is gated', () => {
  const h = new QueueHarness();
  h.call('create_event', { event_id: EVENT, spec: sample_spec({ areas: [{ name: 'FLOOR', capacity: 5, tier: 'A' }] }) });
  h.call('configure_queue', {
    event_id: EVENT, opens_at_ms: T0, sale_starts_at_ms: T0 + 1000, admit_per_minute: 600,
    admission_ttl_seconds: 60, service_bypass: false, trace_id: 't',
  });
  const t = join(h, 'u0').ticket_id;
  h.advance(2000);
  const token = position(h, t).admission_token;
  const ga = { event_id: EVENT, area: 'FLOOR', quantity: 2, user_id: 'u0', hold_ttl_seconds: 0, trace_id: 't' };
  assert.is(refused(h, () => h.call('reserve_ga', ga)).name, 'QueueAdmissionRequiredError');
  h.call('reserve_ga', { ...ga, admission_token: token });
  assert.is(refused(h, () => h.call('reserve_ga', { ...ga, admission_token: token })).name, 'AdmissionTokenUsedError');
  h.check();
});

test('expiry: a lapsed token is refused, counted once, and its user may join again at the back', () => {
  const h = with_queue({ admit_per_minute: 60, admission_ttl_seconds: 30 });
  const tickets = early_joiners(h, 3);
  h.advance(1000);
  const a = admitted_buyer(h, tickets, 1);
  assert.is(join(h, a.user).created, false, 'admitted and live: the same entry');
  h.advance(30_000);
  assert.is(refused(h, () => reserve(h, a.user, '101-A-1', a.token)).name, 'AdmissionTokenExpiredError');
  assert.is(h.state.queues.by_event.get(EVENT)!.tokens_expired, 1, 'the first tick\'s lapsed');
  h.advance(2000);
  assert.is(position(h, a.ticket).admission_token, '');
  const queue = h.state.queues.by_event.get(EVENT)!;
  assert.is(queue.tokens_expired, 3, 'all three lapsed unused (counted by the ticks)');
  const gauges = behaviour.gauges(h.state);
  assert.is(gauges.queue_tokens_expired_total, 3);
  const again = join(h, a.user);
  assert.is(again.created, true);
  assert.is(again.receipt.seq, 4);
  assert.is(position(h, again.ticket_id).position, 4);
  h.check();
});

test('service bypass only when the admin allowed it; a closed queue gates nothing', () => {
  const strict = with_queue();
  early_joiners(strict, 1);
  assert.is(refused(strict, () => reserve(strict, 'svc', '101-A-1', undefined, true)).name, 'QueueAdmissionRequiredError');
  const lax = with_queue({ service_bypass: true });
  early_joiners(lax, 1);
  assert.is(refused(lax, () => reserve(lax, 'svc', '101-A-1', undefined, false)).name, 'QueueAdmissionRequiredError');
  reserve(lax, 'svc', '101-A-1', undefined, true);
  assert.equal(strict.call('close_queue', { event_id: EVENT, trace_id: 't' }), { closed: true });
  reserve(strict, 'anyone', '101-A-2', undefined);
  assert.is(refused(strict, () => join(strict, 'late')).name, 'QueueNotOpenError');
  assert.equal(strict.call('close_queue', { event_id: EVENT, trace_id: 't' }), { closed: true });
  assert.is(queues_deadline_ms(strict.state), null, 'a closed queue has no timer work');
  strict.check();
  lax.check();
});

test('an event without a queue sells as before', () => {
  const h = new QueueHarness();
  h.call('create_event', { event_id: EVENT, spec: sample_spec() });
  reserve(h, 'u', '101-A-1', undefined);
  assert.is(refused(h, () => join(h, 'u')).name, 'QueueNotFoundError');
});

test('QueueFull at queue_entries_per_event_max', () => {
  const h = with_queue();
  h.advance_to(OPEN);
  join(h, 'u0');
  // Pretend the queue is full (a million joins would make this test slow, not stronger).
  h.state.queues.by_event.get(EVENT)!.count = L.queue_entries_per_event_max;
  const error = refused(h, () => join(h, 'u1'));
  assert.is(error.name, 'QueueFullError');
  assert.match(error.message, 'queue_entries_per_event_max');
});

test('kill -9: the queue, the draw and the used tokens survive a snapshot and the journal alone', () => {
  const h = with_queue({ admit_per_minute: 120 });
  const tickets = early_joiners(h, 6);
  h.take_snapshot();
  h.advance(2000);
  const a = admitted_buyer(h, tickets, 1);
  reserve(h, a.user, '101-A-1', a.token);
  join(h, 'late');
  const live = fingerprint(h.state);
  const positions = tickets.map((t) => position(h, t));
  h.restart('snapshot');
  assert.ok(fingerprint(h.state).equals(live), 'snapshot + journal: the same state');
  assert.equal(tickets.map((t) => position(h, t)), positions);
  assert.is(refused(h, () => reserve(h, a.user, '101-A-2', a.token)).name, 'AdmissionTokenUsedError');
  h.restart('journal');
  assert.ok(fingerprint(h.state).equals(live), 'journal alone: the same state (the draw recomputed)');
  assert.equal(tickets.map((t) => position(h, t)), positions);
  assert.is(refused(h, () => reserve(h, a.user, '101-A-2', a.token)).name, 'AdmissionTokenUsedError');
  // A snapshot taken after the draw restores the draw without recomputing it.
  h.take_snapshot();
  h.restart('snapshot');
  assert.ok(fingerprint(h.state).equals(live));
  const b = admitted_buyer(h, tickets, 2);
  reserve(h, b.user, '101-A-3', b.token);
  h.check();
});

test('gauges: waiting, admitted, used, the wait histogram (cumulative)', () => {
  const h = with_queue({ admit_per_minute: 60 });
  const tickets = early_joiners(h, 3);
  h.advance(3000);
  const a = admitted_buyer(h, tickets, 1);
  reserve(h, a.user, '101-A-1', a.token);
  const g = behaviour.gauges(h.state);
  assert.is(g.queue_waiting, 0);
  assert.is(g.queue_admitted_total, 3);
  assert.is(g.queue_tokens_used_total, 1);
  assert.is(g.queue_wait_seconds_count, 3);
  // Joined at OPEN, +1 s, +2 s; admitted at START + 1, 2, 3 s: each waited ≈ 9 min.
  assert.is(g.queue_wait_le_300, 0);
  assert.is(g.queue_wait_le_600, 3);
  assert.is(g.queue_wait_le_inf, 3);
  assert.ok(Math.abs(g.queue_wait_seconds_sum! - 3 * (START + 2000 - OPEN - 1000) / 1000) < 1e-6);
});

test.run();
