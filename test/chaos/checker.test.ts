// The chaos checker on recorded histories: a consistent one passes; one from an "ack before
// commit" build (acknowledged changes absent from the final state and from Kafka) and one from a
// "skip the seat check" build (a seat in two holds, sold twice) are caught, as are an unknown
// call applied twice, a refund beyond the capture, money captured for an unconfirmed order, an
// event for a change that never happened, and a fault the node did not recover from in time.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { check, type Recorded } from '../../chaos/checker.js';
import type { FinalState, OrderRead, SeenEvent } from '../../chaos/checker_state.js';
import {
  parse_history,
  type Call,
  type JsonObject,
  type Result,
  type Rpc,
} from '../../chaos/history.js';

const E = 'evt-chaos-0';
const T0 = 1_900_000_000_000;
const offset = 7_200_000;
const node_s = (wall_ms: number): number => Math.floor((wall_ms + offset) / 1000);
const bounds = { recover_ms_max: 120_000 };

/** A history built call by call, 10 ms apart, and what the end read back. */
class Run {
  readonly calls: Call[] = [];
  readonly final: FinalState = {
    read_ms: 0,
    node_now_ms: 0,
    events: {},
    orders: {},
    user_orders: {},
    holds: {},
  };
  readonly events: SeenEvent[] = [];
  private now = T0;
  private seq = 0;

  call(
    user: string,
    rpc: Rpc,
    request: JsonObject,
    result: Result,
    reply: JsonObject | null,
    key = '',
    code = 0,
  ): Call {
    const c: Call = {
      id: this.calls.length,
      user,
      rpc,
      request,
      key,
      start_ms: (this.now += 10),
      end_ms: (this.now += 10),
      result,
      reply,
      code,
      details: '',
    };
    this.calls.push(c);
    return c;
  }

  event(type: string, message: JsonObject): void {
    this.events.push({
      event_id: `abc-p0-${++this.seq}`,
      type,
      topic: `ticketing.events.v1.${type}`,
      partition: 0,
      offset: String(this.seq),
      message,
    });
  }

  reserve(user: string, hold_id: string, seats: string[], emit = true): Call {
    const c = this.call(
      user,
      'reserve',
      { event_id: E, seat_ids: seats, hold_ttl_seconds: 60, user_id: user },
      'ok',
      { hold_id, expires_at_unix: String(node_s(this.now) + 60) },
    );
    if (emit) this.event('HoldCreated', { hold_id, event_id: E, user_id: user, seat_ids: seats });
    return c;
  }

  /** A whole purchase: draft, authorize, confirm; captured; `refunded` of it refunded. */
  buy(user: string, n: number, seats: string[], refunded = 0): OrderRead {
    const order_id = `order_${n}_x`;
    const payment_id = `pay_${n}_x`;
    const key = `${user}-p${n}`;
    const total = { amount_micros: String(25_000_000 * seats.length), currency: 'EUR' };
    this.call(
      user,
      'create_draft',
      { user_id: user, event_id: E, seat_ids: seats, promo_code: '', idempotency_key: key },
      'ok',
      { id: order_id, status: 'DRAFT', created_at_unix: String(node_s(this.now)), total },
      key,
    );
    this.call(
      user,
      'authorize',
      { order_id, amount: total, payment_token: 'tok_visa' },
      'ok',
      { payment_id, status: 'AUTHORIZED' },
      `${key}-a1`,
    );
    this.call(user, 'confirm_order', { order_id, payment_id }, 'ok', {
      id: order_id,
      status: 'CONFIRMED',
      total,
    });
    const read: OrderRead = {
      order_id,
      status: 'CONFIRMED',
      user_id: user,
      event_id: E,
      seat_ids: seats,
      hold_id: `hold_${n}_d`,
      payment_id,
      payment_status: 'CAPTURED',
      total_micros: 25_000_000 * seats.length,
      captured_micros: 25_000_000 * seats.length,
      refunded_micros: 0,
    };
    this.event('HoldCreated', {
      hold_id: read.hold_id,
      event_id: E,
      user_id: user,
      seat_ids: seats,
    });
    this.event('OrderConfirmed', { order_id });
    this.event('PaymentCaptured', { order_id, payment_id });
    if (refunded > 0) {
      const status = refunded === read.captured_micros ? 'REFUNDED' : 'PARTIALLY_REFUNDED';
      this.call(
        'load-service',
        'refund',
        { payment_id, amount: { amount_micros: String(refunded), currency: 'EUR' } },
        'ok',
        { refund_id: `refund_${n}_x`, status },
        `${key}-r1`,
      );
      this.event('OrderRefunded', {
        order_id,
        payment_id,
        refund_id: `refund_${n}_x`,
        amount: { amount_micros: String(refunded), currency: 'EUR' },
      });
      Object.assign(read, { status, payment_status: status, refunded_micros: refunded });
    }
    this.final.orders[order_id] = read;
    this.final.user_orders[user] = [...(this.final.user_orders[user] ?? []), order_id];
    return read;
  }

  /** The end: availability from what is sold and held, the probes' answers. */
  end(free: string[], held: number, sold: number): Recorded {
    this.final.read_ms = this.now + 1000;
    this.final.node_now_ms = this.final.read_ms + offset;
    this.final.events[E] = { free_seat_ids: free, held, sold };
    return {
      calls: this.calls,
      clock: [{ at_ms: T0, lo_ms: offset, hi_ms: offset }],
      faults: [],
      final: this.final,
      events: this.events,
    };
  }
}

/** The consistent history every bad one is a variation of. */
function good(): Run {
  const r = new Run();
  const h1 = r.reserve('user-1', 'hold_1_a', ['S1-R1-1', 'S1-R1-2']);
  r.call('user-1', 'release', { hold_id: 'hold_1_a' }, 'ok', { released: true });
  r.event('HoldReleased', { hold_id: 'hold_1_a' });
  r.final.holds['hold_1_a'] = 'not_live';
  r.reserve('user-2', 'hold_2_a', ['S1-R1-1']); // the released seat, taken again: fine
  r.final.holds['hold_2_a'] = 'released';
  r.event('HoldReleased', { hold_id: 'hold_2_a' }); // the probe's release
  r.buy('user-3', 3, ['S1-R1-5'], 12_500_000);
  r.buy('user-4', 4, ['S1-R1-6']);
  // An unknown reserve that did happen: its HoldCreated is explained by it.
  r.call(
    'user-5',
    'reserve',
    { event_id: E, seat_ids: ['S1-R1-9'], hold_ttl_seconds: 60, user_id: 'user-5' },
    'unknown',
    null,
    '',
    4,
  );
  r.event('HoldCreated', {
    hold_id: 'hold_5_u',
    event_id: E,
    user_id: 'user-5',
    seat_ids: ['S1-R1-9'],
  });
  void h1;
  return r;
}
const good_free = ['S1-R1-2', 'S1-R1-3', 'S1-R1-4', 'S1-R1-7', 'S1-R1-8'];

const checks_of = (recorded: Recorded): string[] =>
  check(recorded, bounds).map((v) => `${v.check}: ${v.message}`);

test('a consistent history passes', () => {
  assert.equal(checks_of(good().end(good_free, 2, 2)), []);
});

test('the JSON-lines history reads back as recorded (a call never completed stays unknown)', () => {
  const text = [
    JSON.stringify({
      type: 'invoke',
      id: 0,
      user: 'u',
      rpc: 'reserve',
      request: { event_id: E },
      key: '',
      start_ms: 5,
    }),
    JSON.stringify({
      type: 'complete',
      id: 0,
      result: 'ok',
      reply: { hold_id: 'h' },
      code: 0,
      details: '',
      end_ms: 9,
    }),
    JSON.stringify({
      type: 'invoke',
      id: 1,
      user: 'u',
      rpc: 'release',
      request: { hold_id: 'h' },
      key: '',
      start_ms: 10,
    }),
  ].join('\n');
  const calls = parse_history(text);
  assert.equal(
    calls.map((c) => [c.rpc, c.result, c.end_ms]),
    [
      ['reserve', 'ok', 9],
      ['release', 'unknown', Number.MAX_SAFE_INTEGER],
    ],
  );
});

test('"ack before commit": an acknowledged hold, draft and sale absent afterwards are reported', () => {
  const r = good();
  // The build answered these, but its journal never had them: nothing on Kafka, nothing read back.
  r.reserve('user-6', 'hold_6_a', ['S1-R1-3'], false);
  r.final.holds['hold_6_a'] = 'not_found';
  const lost = r.buy('user-7', 7, ['S1-R1-7']);
  r.final.orders[lost.order_id] = 'not_found';
  r.final.user_orders['user-7'] = [];
  r.events.splice(
    r.events.findIndex((e) => e.type === 'HoldCreated' && e.message['user_id'] === 'user-7'),
    3,
  );
  const v = checks_of(r.end(['S1-R1-2', 'S1-R1-3', 'S1-R1-4', 'S1-R1-7', 'S1-R1-8'], 2, 2));
  assert.ok(
    v.some((x) => x.startsWith('lost_hold: acknowledged hold hold_6_a: lost')),
    v.join('\n'),
  );
  assert.ok(
    v.some((x) => x.startsWith('lost_order: acknowledged order order_7_x')),
    v.join('\n'),
  );
  assert.ok(
    v.some((x) => x.includes('no HoldCreated of acknowledged hold hold_6_a')),
    v.join('\n'),
  );
});

test('"skip the seat check": a seat in two live holds and a seat sold twice are reported', () => {
  const r = good();
  r.reserve('user-8', 'hold_8_a', ['S1-R1-4']);
  r.reserve('user-9', 'hold_9_a', ['S1-R1-4']); // while hold_8_a is live
  r.final.holds['hold_8_a'] = 'released';
  r.final.holds['hold_9_a'] = 'released';
  r.event('HoldReleased', { hold_id: 'hold_8_a' });
  r.event('HoldReleased', { hold_id: 'hold_9_a' });
  r.buy('user-10', 10, ['S1-R1-6']); // user-4 bought it already
  const v = checks_of(r.end(['S1-R1-2', 'S1-R1-3', 'S1-R1-7', 'S1-R1-8'], 4, 3));
  assert.ok(
    v.some((x) =>
      x.startsWith(
        'two_live_holds: seat evt-chaos-0/S1-R1-4 in two live holds at once: hold hold_8_a and hold hold_9_a',
      ),
    ),
    v.join('\n'),
  );
  assert.ok(
    v.some((x) =>
      x.startsWith(
        'sold_twice: seat evt-chaos-0/S1-R1-6 sold twice: order order_4_x and order order_10_x',
      ),
    ),
    v.join('\n'),
  );
  assert.ok(
    v.some((x) => x.startsWith('sold_twice: final state: seat evt-chaos-0/S1-R1-6 sold twice')),
    v.join('\n'),
  );
});

test('an unknown draft applied twice, and an order nobody asked for, are reported', () => {
  const r = good();
  const key = 'user-11-p1';
  r.call(
    'user-11',
    'create_draft',
    {
      user_id: 'user-11',
      event_id: E,
      seat_ids: ['S1-R1-8'],
      promo_code: '',
      idempotency_key: key,
    },
    'unknown',
    null,
    key,
    4,
  );
  for (const id of ['order_11_a', 'order_11_b']) {
    r.final.orders[id] = {
      order_id: id,
      status: 'DRAFT',
      user_id: 'user-11',
      event_id: E,
      seat_ids: ['S1-R1-8'],
      hold_id: `h-${id}`,
      payment_id: '',
      payment_status: '',
      total_micros: 25_000_000,
      captured_micros: 0,
      refunded_micros: 0,
    };
    r.event('HoldCreated', {
      hold_id: `h-${id}`,
      event_id: E,
      user_id: 'user-11',
      seat_ids: ['S1-R1-8'],
    });
  }
  r.final.user_orders['user-11'] = ['order_11_a', 'order_11_b'];
  const v = checks_of(r.end(['S1-R1-2', 'S1-R1-3', 'S1-R1-4', 'S1-R1-7'], 3, 2));
  assert.equal(v.filter((x) => x.startsWith('change_not_made: order')).length, 1, v.join('\n'));
  assert.ok(
    v.some((x) => x.includes('taken twice: order order_11_a and order order_11_b')),
    v.join('\n'),
  );
});

test('money: a refund beyond the capture, a capture for an unconfirmed order, a lost refund', () => {
  const r = good();
  const o = r.buy('user-12', 12, ['S1-R1-7'], 25_000_000);
  o.refunded_micros = 30_000_000; // beyond the capture
  r.final.orders['order_3_x'] = {
    ...(r.final.orders['order_3_x'] as OrderRead),
    refunded_micros: 0,
    status: 'CONFIRMED',
    payment_status: 'CAPTURED',
  };
  const unconfirmed: OrderRead = {
    order_id: 'order_13_x',
    status: 'DRAFT',
    user_id: 'user-13',
    event_id: E,
    seat_ids: ['S1-R1-8'],
    hold_id: 'h13',
    payment_id: 'pay_13',
    payment_status: 'CAPTURED',
    total_micros: 25_000_000,
    captured_micros: 25_000_000,
    refunded_micros: 0,
  };
  r.final.orders['order_13_x'] = unconfirmed;
  const v = checks_of(r.end(['S1-R1-2', 'S1-R1-3', 'S1-R1-4'], 3, 3));
  assert.ok(
    v.some((x) => x.includes('order_12_x') && x.includes('beyond the capture')),
    v.join('\n'),
  );
  assert.ok(
    v.some((x) => x.includes('order_13_x') && x.includes('not confirmed')),
    v.join('\n'),
  );
  assert.ok(
    v.some((x) =>
      x.startsWith('money: order order_3_x: refunded 0, the refunds acknowledged 12500000'),
    ),
    v.join('\n'),
  );
});

test('Kafka: a missing event, an event of a change that did not happen, one change twice', () => {
  const r = good();
  r.events.splice(
    r.events.findIndex((e) => e.type === 'OrderConfirmed'),
    1,
  );
  r.event('OrderConfirmed', { order_id: 'order_99_never' });
  r.event('HoldCreated', {
    hold_id: 'hold_1_a',
    event_id: E,
    user_id: 'user-1',
    seat_ids: ['S1-R1-1', 'S1-R1-2'],
  });
  const redelivered = r.events[0]!;
  r.events.push({ ...redelivered }); // a redelivery (same event-id): fine
  const v = checks_of(r.end(good_free, 2, 2));
  assert.ok(
    v.some((x) => x.includes('no OrderConfirmed of confirmed order order_3_x')),
    v.join('\n'),
  );
  assert.ok(
    v.some((x) => x.includes('OrderConfirmed of order_99_never, an order nobody made')),
    v.join('\n'),
  );
  assert.ok(
    v.some((x) => x.includes('HoldCreated of acknowledged hold hold_1_a on Kafka 2 times')),
    v.join('\n'),
  );
  assert.is(v.length, 3, v.join('\n'));
});

test('recovery: a fault the node did not come back from within the bound is a violation', () => {
  const recorded = good().end(good_free, 2, 2);
  const fault = { index: 0, kind: 'node_kill' as const, at_ms: 0, duration_ms: 100, amount: 0 };
  recorded.faults = [
    { fault, started_ms: T0, lifted_ms: T0 + 100, recover_ms: 3_000, note: '' },
    {
      fault: { ...fault, index: 1 },
      started_ms: T0,
      lifted_ms: T0 + 100,
      recover_ms: 130_000,
      note: '',
    },
    {
      fault: { ...fault, index: 2 },
      started_ms: T0,
      lifted_ms: T0 + 100,
      recover_ms: null,
      note: '',
    },
  ];
  assert.equal(checks_of(recorded), [
    'recovery: fault #1 node_kill: serving again after 130000 ms, over the bound 120000 ms',
    'recovery: fault #2 node_kill: not serving again within 120000 ms',
  ]);
});

test('a hold past its expiry may be read back ended; before it, only live', () => {
  const r = good();
  r.reserve('user-14', 'hold_14_a', ['S1-R1-3']);
  r.final.holds['hold_14_a'] = 'not_live';
  const early = r.end(['S1-R1-2', 'S1-R1-4', 'S1-R1-7', 'S1-R1-8'], 2, 2);
  assert.ok(
    checks_of(early).some((x) =>
      x.startsWith('hold_state: acknowledged hold hold_14_a: not_live, expected released'),
    ),
  );
  // The clock stepped forward 15 minutes: expired holds may be read back ended.
  early.clock.push({
    at_ms: early.final.read_ms - 500,
    lo_ms: offset + 900_000,
    hi_ms: offset + 900_000,
  });
  assert.equal(checks_of(early), []);
});

test.run();
