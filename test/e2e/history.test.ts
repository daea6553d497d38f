// The history checker against fabricated histories: a consistent one passes; a lost
// acknowledged hold, a seat in two holds, a double sale (from the history and from the final
// state), a lost draft, sale or payment each fail; an unknown outcome passes whether or not
// it happened, and nothing beyond what it could have done is accepted.
import { status } from '@grpc/grpc-js';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  check_events,
  check_history,
  excerpt,
  summary,
  type Call,
  type CallOf,
  type EventRead,
  type FinalState,
  type HoldProbe,
  type OrderRead,
  type Outcome,
  type Rpc,
  type Rpcs,
} from './history.js';

const E = 'evt-h';
const T0 = 1_900_000_000_000;
const ttl_s = 600;

/** A history built call by call; time advances 10 ms per call. */
class Fab {
  readonly calls: Call[] = [];
  private now = T0;

  call<R extends Rpc>(
    rpc: R,
    request: Rpcs[R]['request'],
    outcome: Outcome<Rpcs[R]['reply']>,
    at?: { start: number; end: number },
  ): CallOf<R> {
    const start_ms = at?.start ?? (this.now += 10);
    const end_ms = at?.end ?? (this.now += 10);
    const c: CallOf<R> = {
      id: this.calls.length,
      node: this.calls.length % 3,
      rpc,
      request,
      start_ms,
      end_ms,
      outcome,
    };
    this.calls.push(c as unknown as Call);
    return c;
  }

  reserve(
    hold_id: string,
    seats: string[],
    at?: { start: number; end: number },
  ): CallOf<'reserve'> {
    const expires_at_unix = Math.floor(T0 / 1000) + ttl_s;
    return this.call(
      'reserve',
      { event_id: E, seat_ids: seats, user_id: `u-${hold_id}`, hold_ttl_seconds: ttl_s },
      ok({ hold_id, expires_at_unix }),
      at,
    );
  }

  draft(order_id: string, seats: string[]): CallOf<'create_draft'> {
    const reply = {
      id: order_id,
      status: 'DRAFT',
      created_at_unix: Math.floor(T0 / 1000),
      total_micros: '1',
    };
    return this.call(
      'create_draft',
      { event_id: E, seat_ids: seats, user_id: `u-${order_id}`, idempotency_key: order_id },
      ok(reply),
    );
  }

  /** CreateDraft, Authorize and ConfirmOrder, all acknowledged. */
  purchase(order_id: string, seats: string[]): void {
    this.draft(order_id, seats);
    const payment_id = `pay_${order_id}`;
    this.call(
      'authorize',
      { order_id, amount_micros: '1', idempotency_key: order_id },
      ok({ payment_id, status: 'AUTHORIZED' }),
    );
    const reply = {
      id: order_id,
      status: 'CONFIRMED',
      created_at_unix: Math.floor(T0 / 1000),
      total_micros: '1',
    };
    this.call('confirm_order', { order_id, payment_id }, ok(reply));
  }
}

function ok<T>(reply: T): Outcome<T> {
  return { ok: true, reply };
}
function err(code: number): Outcome<never> {
  return { ok: false, code, details: `code ${code}` };
}

function order_read(
  id: string,
  seats: string[],
  status_: string,
  payment: string,
  payment_status: string,
): OrderRead {
  return {
    status: status_,
    user_id: `u-${id}`,
    event_id: E,
    seat_ids: seats,
    hold_id: `hold_of_${id}`,
    payment_id: payment,
    payment_status,
  };
}

/** A final state; `free` lists free seat ids of the event, `held`/`sold` its counts. */
function final(o: {
  holds?: [string, HoldProbe][];
  orders?: [string, OrderRead | 'not_found'][];
  held: number;
  sold: number;
  free?: string[];
}): FinalState {
  const event: EventRead = { free_seat_ids: new Set(o.free ?? []), held: o.held, sold: o.sold };
  return {
    read_ms: T0 + 60_000,
    events: new Map([[E, event]]),
    orders: new Map(o.orders ?? []),
    holds: new Map(o.holds ?? []),
  };
}

function fails(violations: string[], pattern: RegExp): void {
  assert.ok(
    violations.some((v) => pattern.test(v)),
    `expected a violation matching ${pattern}, got ${JSON.stringify(violations)}`,
  );
}

test('a consistent history passes: live, released and sold holds, a purchase, a refused reserve', () => {
  const h = new Fab();
  h.reserve('hold_1_a', ['1-A-1', '1-A-2']);
  h.reserve('hold_2_b', ['1-A-3']);
  h.call('release', { hold_id: 'hold_2_b' }, ok({ released: true }));
  h.reserve('hold_3_c', ['1-A-3']); // the released seat, held again after the release
  h.call('confirm', { order_id: 'x1', hold_id: 'hold_3_c' }, ok({ confirmed: true }));
  h.call(
    'reserve',
    { event_id: E, seat_ids: ['1-A-1'], user_id: 'late', hold_ttl_seconds: ttl_s },
    err(status.FAILED_PRECONDITION),
  );
  h.purchase('order_4_d', ['1-A-4']);
  h.draft('order_5_e', ['1-A-5']);
  const state = final({
    holds: [
      ['hold_1_a', 'released'],
      ['hold_2_b', 'not_live'],
      ['hold_3_c', 'confirmed'],
    ],
    orders: [
      ['order_4_d', order_read('order_4_d', ['1-A-4'], 'CONFIRMED', 'pay_order_4_d', 'CAPTURED')],
      ['order_5_e', order_read('order_5_e', ['1-A-5'], 'DRAFT', '', '')],
    ],
    held: 3,
    sold: 2,
    free: ['1-A-6'],
  });
  assert.equal(check_history(h.calls, state), []);
  assert.match(summary(h.calls), 'reserve OK 3, FAILED_PRECONDITION 1');
});

test('a lost acknowledged hold fails: NOT_FOUND, ended with nothing ending it, or not read back', () => {
  const h = new Fab();
  h.reserve('hold_1_a', ['1-A-1']);
  fails(
    check_history(h.calls, final({ holds: [['hold_1_a', 'not_found']], held: 0, sold: 0 })),
    /hold hold_1_a .*lost/,
  );
  fails(
    check_history(h.calls, final({ holds: [['hold_1_a', 'not_live']], held: 0, sold: 0 })),
    /hold hold_1_a .*not_live, expected released/,
  );
  fails(check_history(h.calls, final({ held: 1, sold: 0 })), /hold hold_1_a .*not read back/);
  // The probe found it, but the event says its seat is free and nothing is held.
  const v = check_history(
    h.calls,
    final({ holds: [['hold_1_a', 'released']], held: 0, sold: 0, free: ['1-A-1'] }),
  );
  fails(v, /seat evt-h\/1-A-1 of hold hold_1_a is free/);
  fails(v, /0 seats held/);
  assert.ok(
    excerpt(h.calls, v[0]!).some((line) => line.includes('reserve') && line.includes('hold_1_a')),
  );
});

test('a seat in two holds at once fails, from the history and from the final state', () => {
  const h = new Fab();
  h.reserve('hold_1_a', ['1-A-1', '1-A-2']);
  h.reserve('hold_2_b', ['1-A-2']);
  const state = final({
    holds: [
      ['hold_1_a', 'released'],
      ['hold_2_b', 'released'],
    ],
    held: 3,
    sold: 0,
  });
  const v = check_history(h.calls, state);
  fails(v, /^seat evt-h\/1-A-2 in two holds at once: hold hold_1_a .* and hold hold_2_b/);
  fails(v, /final state: seat evt-h\/1-A-2 in two holds/);
  // A release whose outcome is unknown may have freed the seat at the moment it started: a
  // hold after that start is fine, one before it is not.
  const g = new Fab();
  g.reserve('hold_1_a', ['1-A-1']);
  const r = g.call('release', { hold_id: 'hold_1_a' }, err(status.UNAVAILABLE));
  g.reserve('hold_2_b', ['1-A-1'], { start: r.start_ms + 1, end: r.end_ms + 5 });
  assert.equal(
    check_history(
      g.calls,
      final({
        holds: [
          ['hold_1_a', 'not_live'],
          ['hold_2_b', 'released'],
        ],
        held: 1,
        sold: 0,
      }),
    ),
    [],
  );
  const early = new Fab();
  early.reserve('hold_1_a', ['1-A-1']);
  early.reserve('hold_2_b', ['1-A-1']);
  early.call('release', { hold_id: 'hold_1_a' }, err(status.UNAVAILABLE));
  fails(
    check_history(
      early.calls,
      final({
        holds: [
          ['hold_1_a', 'not_live'],
          ['hold_2_b', 'released'],
        ],
        held: 1,
        sold: 0,
      }),
    ),
    /in two holds at once/,
  );
});

test('a double sale fails: two acknowledged sales of a seat; two confirmed orders in the final state', () => {
  const h = new Fab();
  h.purchase('order_1_a', ['1-A-1']);
  h.purchase('order_2_b', ['1-A-1']);
  const state = final({
    orders: [
      ['order_1_a', order_read('order_1_a', ['1-A-1'], 'CONFIRMED', 'pay_order_1_a', 'CAPTURED')],
      ['order_2_b', order_read('order_2_b', ['1-A-1'], 'CONFIRMED', 'pay_order_2_b', 'CAPTURED')],
    ],
    held: 0,
    sold: 2,
  });
  const v = check_history(h.calls, state);
  fails(v, /^seat evt-h\/1-A-1 sold twice: order order_1_a and order order_2_b/);
  fails(v, /final state: seat evt-h\/1-A-1 sold twice/);
  // A hold sold by ConfirmAllocation and an order on the same seat.
  const g = new Fab();
  g.reserve('hold_1_a', ['1-A-1']);
  g.call('confirm', { order_id: 'x', hold_id: 'hold_1_a' }, ok({ confirmed: true }));
  g.purchase('order_2_b', ['1-A-1']);
  fails(
    check_history(
      g.calls,
      final({
        holds: [['hold_1_a', 'confirmed']],
        orders: [
          [
            'order_2_b',
            order_read('order_2_b', ['1-A-1'], 'CONFIRMED', 'pay_order_2_b', 'CAPTURED'),
          ],
        ],
        held: 0,
        sold: 1,
      }),
    ),
    /sold twice/,
  );
});

test('a lost draft, sale or payment fails; a sold count the orders do not explain fails', () => {
  const h = new Fab();
  h.purchase('order_1_a', ['1-A-1']);
  const read = (s: string, pay: string, ps: string): FinalState =>
    final({
      orders: [['order_1_a', order_read('order_1_a', ['1-A-1'], s, pay, ps)]],
      held: s === 'DRAFT' ? 1 : 0,
      sold: s === 'CONFIRMED' ? 1 : 0,
    });
  assert.equal(check_history(h.calls, read('CONFIRMED', 'pay_order_1_a', 'CAPTURING')), []);
  fails(
    check_history(h.calls, final({ orders: [['order_1_a', 'not_found']], held: 0, sold: 0 })),
    /order order_1_a .*lost/,
  );
  fails(
    check_history(h.calls, read('DRAFT', 'pay_order_1_a', 'AUTHORIZED')),
    /order order_1_a .*DRAFT, expected CONFIRMED/,
  );
  fails(check_history(h.calls, read('CONFIRMED', 'pay_other', 'CAPTURED')), /payment pay_other/);
  fails(check_history(h.calls, read('CONFIRMED', 'pay_order_1_a', 'VOIDED')), /VOIDED/);
  const s = read('CONFIRMED', 'pay_order_1_a', 'CAPTURED');
  s.events.get(E)!.sold = 2;
  fails(check_history(h.calls, s), /2 seats sold, the sold holds and confirmed orders have 1/);
});

test('unknown outcomes pass whether or not they happened, and allow nothing more', () => {
  const h = new Fab();
  // A reserve that timed out, retried: the retry finds the seat taken (by the first attempt).
  h.call(
    'reserve',
    { event_id: E, seat_ids: ['1-A-1'], user_id: 'u', hold_ttl_seconds: ttl_s },
    err(status.DEADLINE_EXCEEDED),
  );
  h.call(
    'reserve',
    { event_id: E, seat_ids: ['1-A-1'], user_id: 'u', hold_ttl_seconds: ttl_s },
    err(status.FAILED_PRECONDITION),
  );
  h.reserve('hold_2_b', ['1-A-2']);
  h.call('release', { hold_id: 'hold_2_b' }, err(status.UNAVAILABLE));
  h.reserve('hold_3_c', ['1-A-3']);
  h.call('confirm', { order_id: 'x', hold_id: 'hold_3_c' }, err(status.UNAVAILABLE));
  h.draft('order_4_d', ['1-A-4']);
  h.call(
    'authorize',
    { order_id: 'order_4_d', amount_micros: '1', idempotency_key: 'k' },
    ok({ payment_id: 'pay_4', status: 'AUTHORIZED' }),
  );
  h.call('confirm_order', { order_id: 'order_4_d', payment_id: 'pay_4' }, err(status.UNAVAILABLE));
  const state = (
    hold1: boolean,
    p2: HoldProbe,
    p3: HoldProbe,
    o4: 'DRAFT' | 'CONFIRMED',
  ): FinalState => {
    const live =
      (hold1 ? 1 : 0) +
      (p2 === 'released' ? 1 : 0) +
      (p3 === 'released' ? 1 : 0) +
      (o4 === 'DRAFT' ? 1 : 0);
    return final({
      holds: [
        ['hold_2_b', p2],
        ['hold_3_c', p3],
      ],
      orders: [
        [
          'order_4_d',
          order_read(
            'order_4_d',
            ['1-A-4'],
            o4,
            'pay_4',
            o4 === 'DRAFT' ? 'AUTHORIZED' : 'CAPTURED',
          ),
        ],
      ],
      held: live,
      sold: (p3 === 'confirmed' ? 1 : 0) + (o4 === 'CONFIRMED' ? 1 : 0),
    });
  };
  for (const hold1 of [true, false]) {
    for (const p2 of ['released', 'not_live'] as const) {
      for (const p3 of ['released', 'confirmed'] as const) {
        for (const o4 of ['DRAFT', 'CONFIRMED'] as const) {
          assert.equal(
            check_history(h.calls, state(hold1, p2, p3, o4)),
            [],
            `${hold1} ${p2} ${p3} ${o4}`,
          );
        }
      }
    }
  }
  // Nothing else: a hold whose only unknown call was a release is not sold; one whose only
  // unknown call was a sale is not released; an unknown outcome is no licence to lose a hold.
  fails(
    check_history(h.calls, state(false, 'confirmed', 'released', 'DRAFT')),
    /hold hold_2_b .*confirmed, expected released or not_live/,
  );
  fails(
    check_history(h.calls, state(false, 'released', 'not_live', 'DRAFT')),
    /hold hold_3_c .*not_live/,
  );
  fails(
    check_history(h.calls, state(false, 'not_found', 'released', 'DRAFT')),
    /hold hold_2_b .*lost/,
  );
  // More seats held than every known and unknown hold together can explain.
  const s = state(true, 'released', 'released', 'DRAFT');
  s.events.get(E)!.held = 5;
  fails(check_history(h.calls, s), /5 seats held/);
});

test('an ambiguous probe (its own attempt unknown, then not live) passes only where live or ended would', () => {
  const h = new Fab();
  h.reserve('hold_1_a', ['1-A-1']);
  h.reserve('hold_2_b', ['1-A-2']);
  h.call('confirm', { order_id: 'x', hold_id: 'hold_2_b' }, ok({ confirmed: true }));
  const state = (p1: HoldProbe, held: number): FinalState =>
    final({
      holds: [
        ['hold_1_a', p1],
        ['hold_2_b', 'confirmed'],
      ],
      held,
      sold: 1,
    });
  assert.equal(check_history(h.calls, state('ambiguous', 1)), []);
  assert.equal(check_history(h.calls, state('ambiguous', 0)), []);
  fails(check_history(h.calls, state('ambiguous', 2)), /2 seats held/);
  const sold = final({
    holds: [
      ['hold_1_a', 'released'],
      ['hold_2_b', 'ambiguous'],
    ],
    held: 1,
    sold: 1,
  });
  fails(check_history(h.calls, sold), /hold hold_2_b .*ambiguous, expected confirmed/);
});

test('exactly-once events: one HoldCreated per hold, one OrderConfirmed per confirmed order, no duplicate', () => {
  const h = new Fab();
  h.reserve('hold_1_a', ['1-A-1']);
  h.purchase('order_2_b', ['1-A-2']);
  h.draft('order_3_c', ['1-A-3']);
  const state = final({
    holds: [['hold_1_a', 'released']],
    orders: [
      ['order_2_b', order_read('order_2_b', ['1-A-2'], 'CONFIRMED', 'pay_order_2_b', 'CAPTURED')],
      ['order_3_c', order_read('order_3_c', ['1-A-3'], 'DRAFT', '', '')],
    ],
    held: 2,
    sold: 1,
  });
  const all_holds = ['hold_1_a', 'hold_of_order_2_b', 'hold_of_order_3_c'];
  assert.equal(
    check_events(h.calls, state, { hold_created: all_holds, order_confirmed: ['order_2_b'] }),
    [],
  );
  // An unknown hold's event may be there once (its hold_id is nobody's we know).
  assert.equal(
    check_events(h.calls, state, {
      hold_created: [...all_holds, 'hold_9_z'],
      order_confirmed: ['order_2_b'],
    }),
    [],
  );
  fails(
    check_events(h.calls, state, {
      hold_created: [...all_holds, 'hold_1_a'],
      order_confirmed: ['order_2_b'],
    }),
    /HoldCreated of hold_1_a seen 2 times/,
  );
  fails(
    check_events(h.calls, state, {
      hold_created: [...all_holds, 'hold_9_z', 'hold_9_z'],
      order_confirmed: ['order_2_b'],
    }),
    /hold_9_z seen 2 times/,
  );
  fails(
    check_events(h.calls, state, {
      hold_created: all_holds.slice(1),
      order_confirmed: ['order_2_b'],
    }),
    /no HoldCreated for acknowledged hold hold_1_a/,
  );
  fails(
    check_events(h.calls, state, { hold_created: all_holds, order_confirmed: [] }),
    /no OrderConfirmed for confirmed order order_2_b/,
  );
  fails(
    check_events(h.calls, state, {
      hold_created: all_holds,
      order_confirmed: ['order_2_b', 'order_2_b'],
    }),
    /seen 2 times/,
  );
  fails(
    check_events(h.calls, state, {
      hold_created: all_holds,
      order_confirmed: ['order_2_b', 'order_3_c'],
    }),
    /order order_3_c, which is DRAFT/,
  );
});

test.run();
