// Hold lifecycle over gRPC with clients generated from the protos, against a spawned server with
// the sandbox gateway: ReserveTickets → ExtendHold → CheckoutService.CreateDraftFromHold →
// Authorize → ConfirmOrder → OrderAdminService.ReturnSeats with a refund → GetOrder, with the
// refusals each step owes a hostile or unauthorized caller.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  arena_file, arena_id, cleanup, clients, code_of, grpc, guarded_setup, kill9, run_cli, start_server, stop,
  temp_dir, token, type Clients, type Guarded, type Server,
} from './harness.js';
import { lifecycle_clients, type Lifecycle } from './lifecycle_clients.js';
import { guarded_after } from '../guard.js';

const S = grpc.status;
const price_a = 89_000_000;

interface Ctx extends Guarded { dir: string; server: Server; c: Clients; l: Lifecycle; alice: string; bob: string; svc: string }
const t = suite<Ctx>('lifecycle e2e');

guarded_setup(t, async (ctx) => {
  ctx.dir = temp_dir('lifecycle');
  ctx.server = await start_server(ctx.dir, ['--workers', '2', '--partitions', '8']);
  ctx.c = clients(ctx.server.grpc_port);
  ctx.l = lifecycle_clients(ctx.server.grpc_port);
  ctx.alice = token(ctx.dir, 'alice', 'customer');
  ctx.bob = token(ctx.dir, 'bob', 'customer');
  ctx.svc = token(ctx.dir, 'orders', 'service');
  const imported = run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir]);
  assert.is(imported.status, 0, imported.stderr);
});

guarded_after(t, async (ctx) => {
  if (ctx.server === undefined) return;
  ctx.c?.close();
  ctx.l?.close();
  assert.is(await stop(ctx.server), 0, 'SIGTERM exits 0');
  cleanup(ctx.dir);
});

function money(amount_micros: number) {
  return { amount_micros: String(amount_micros), currency: 'EUR' };
}

async function sold(ctx: Ctx): Promise<number> {
  return Number((await ctx.c.availability({ event_id: arena_id }, ctx.alice)).sold);
}

t('reserve, extend, draft from the hold, authorize, confirm, return a seat with a refund, read it back', async (ctx) => {
  const seats = ['101-A-1', '101-A-2'];
  const hold = await ctx.c.reserve({ event_id: arena_id, seat_ids: seats, user_id: 'alice', hold_ttl_seconds: '600' }, ctx.alice);
  assert.is((await code_of(ctx.l.extend({ hold_id: hold.hold_id, extend_seconds: '60' }, ctx.bob))).code, S.NOT_FOUND);
  for (const s of ['0', '-5', '3601']) {
    assert.is((await code_of(ctx.l.extend({ hold_id: hold.hold_id, extend_seconds: s }, ctx.alice))).code, S.INVALID_ARGUMENT);
  }
  const extended = await ctx.l.extend({ hold_id: hold.hold_id, extend_seconds: '60' }, ctx.alice);
  assert.equal(extended, { expires_at_unix: String(Number(hold.expires_at_unix) + 60), extensions_left: 2 });
  assert.is((await code_of(ctx.l.from_hold({ hold_id: hold.hold_id }, ctx.bob))).code, S.NOT_FOUND);
  const order = await ctx.l.from_hold({ hold_id: hold.hold_id, promo_code: '', idempotency_key: 'k1' }, ctx.alice);
  assert.is(order.status, 'DRAFT');
  assert.equal(order.total, money(2 * price_a));
  assert.equal(await ctx.l.from_hold({ hold_id: hold.hold_id, promo_code: '', idempotency_key: 'k1' }, ctx.alice), order, 'a retry answers the same order');
  const other = await code_of(ctx.l.from_hold({ hold_id: hold.hold_id, idempotency_key: 'k2' }, ctx.alice));
  assert.equal([other.code, other.details.includes(String(order.id))], [S.FAILED_PRECONDITION, true]);
  const order_id = String(order.id);
  const auth = await ctx.c.authorize({ order_id, amount: money(2 * price_a), payment_token: 'tok_visa' }, ctx.alice);
  assert.is(auth.status, 'AUTHORIZED');
  assert.is((await ctx.c.confirm_order({ order_id, payment_id: auth.payment_id }, ctx.alice)).status, 'CONFIRMED');
  const before = await sold(ctx);
  const req = { order_id, seat_ids: ['101-A-2'], refund_amount: money(price_a), idempotency_key: 'ret-1' };
  assert.is((await code_of(ctx.l.return_seats(req, ctx.alice))).code, S.PERMISSION_DENIED);
  assert.is((await code_of(ctx.l.return_seats({ ...req, idempotency_key: '' }, ctx.svc))).code, S.INVALID_ARGUMENT);
  assert.is((await code_of(ctx.l.return_seats({ ...req, seat_ids: ['101-A-3'] }, ctx.svc))).code, S.INVALID_ARGUMENT);
  const too_much = await code_of(ctx.l.return_seats({ ...req, refund_amount: money(2 * price_a + 1) }, ctx.svc));
  assert.is(too_much.code, S.FAILED_PRECONDITION);
  const returned = await ctx.l.return_seats(req, ctx.svc);
  assert.equal([returned.returned_seat_ids, returned.refunded, returned.payment_status], [['101-A-2'], money(price_a), 'PARTIALLY_REFUNDED']);
  assert.is((returned.order as { status: string }).status, 'PARTIALLY_RETURNED');
  assert.equal(await ctx.l.return_seats(req, ctx.svc), returned, 'a retry answers the first result');
  assert.is(await sold(ctx), before - 1, 'the seat is back on sale');
  const read = await ctx.c.get_order({ order_id }, ctx.alice);
  assert.equal([read.order.status, read.returned_seat_ids, read.seat_ids], ['PARTIALLY_RETURNED', ['101-A-2'], seats]);
  assert.equal([read.hold_extensions, read.hold_extensions_left], [1, 0], 'one extension; a sold hold has none left');
  // Someone else buys the returned seat.
  const bobs = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-A-2'], user_id: 'bob', hold_ttl_seconds: '0' }, ctx.bob);
  assert.ok(String(bobs.hold_id).startsWith('hold_'));
  assert.is((await code_of(ctx.l.extend({ hold_id: hold.hold_id, extend_seconds: '60' }, ctx.alice))).code, S.FAILED_PRECONDITION, 'a sold hold is not extended');

  // kill -9 and start again on the same data: the journal replays the extension and the return.
  const sold_now = await sold(ctx);
  ctx.c.close();
  ctx.l.close();
  await kill9(ctx.server);
  ctx.server = await start_server(ctx.dir, ['--workers', '2', '--partitions', '8']);
  ctx.c = clients(ctx.server.grpc_port);
  ctx.l = lifecycle_clients(ctx.server.grpc_port);
  assert.equal(await ctx.c.get_order({ order_id }, ctx.alice), read, 'the order reads the same after the restart');
  assert.is(await sold(ctx), sold_now);
  assert.equal(await ctx.l.return_seats(req, ctx.svc), returned, 'a retry after the restart answers the first result');
  const rest = await ctx.l.return_seats({ order_id, seat_ids: [], idempotency_key: 'ret-2' }, ctx.svc);
  assert.equal([(rest.order as { status: string }).status, rest.returned_seat_ids], ['RETURNED', seats.slice().reverse()]);
  assert.is(await sold(ctx), sold_now - 1, 'the last seat is back on sale too');

  // The events, as `ticketing outbox tail` decodes them with the protos (no broker here).
  const tail = run_cli(['outbox', 'tail', '--data', ctx.dir, '--limit', '1000']);
  assert.is(tail.status, 0, tail.stderr);
  const lines = tail.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; key: string; message: Record<string, unknown> });
  const of = (type: string) => lines.filter((l) => l.type === type && [hold.hold_id, order_id].includes(String(l.message['hold_id'] ?? l.message['order_id'])));
  assert.equal(of('HoldExtended').map((l) => [l.key, l.message['expires_at_unix'], l.message['extensions_left'], l.message['order_id']]),
    [[arena_id, extended.expires_at_unix, 2, '']]);
  assert.equal(of('HoldCreated').length, 1, 'CreateDraftFromHold made no second HoldCreated');
  assert.equal(of('OrderSeatsReturned').map((l) => [l.key, l.message['seat_ids'], l.message['status'], l.message['refund_amount']]), [
    [order_id, ['101-A-2'], 'PARTIALLY_RETURNED', money(price_a)],
    [order_id, ['101-A-1'], 'RETURNED', money(0)],
  ]);
});

t('hostile input to the new fields is refused at the edge, and changes nothing', async (ctx) => {
  const before = await sold(ctx);
  const hold = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['102-A-1'], user_id: 'alice', hold_ttl_seconds: '0' }, ctx.alice);
  const bad_extends = ['99999999999999999999', '9223372036854775807', '-9223372036854775808', '3601', '0'];
  for (const extend_seconds of bad_extends) {
    const r = await code_of(ctx.l.extend({ hold_id: hold.hold_id, extend_seconds }, ctx.alice));
    assert.is(r.code, S.INVALID_ARGUMENT, `extend_seconds ${extend_seconds}: ${r.details}`);
  }
  for (const hold_id of ['', 'not a hold', 'hold_9999_AAAAAAAAAAAAAAAAAAAAAA', 'x'.repeat(65)]) {
    assert.is((await code_of(ctx.l.extend({ hold_id, extend_seconds: '60' }, ctx.alice))).code, S.INVALID_ARGUMENT, `hold_id ${hold_id}`);
    assert.is((await code_of(ctx.l.from_hold({ hold_id }, ctx.alice))).code, S.INVALID_ARGUMENT, `hold_id ${hold_id}`);
  }
  assert.is((await code_of(ctx.l.from_hold({ hold_id: hold.hold_id, promo_code: 'x'.repeat(33) }, ctx.alice))).code, S.INVALID_ARGUMENT);
  assert.is((await code_of(ctx.l.from_hold({ hold_id: hold.hold_id, idempotency_key: 'bad key!' }, ctx.alice))).code, S.INVALID_ARGUMENT);
  const order = await ctx.l.from_hold({ hold_id: hold.hold_id, idempotency_key: 'hostile-1' }, ctx.alice);
  const order_id = String(order.id);
  const base = { order_id, seat_ids: [], idempotency_key: 'hostile-ret' };
  const bad_returns: [string, object][] = [
    ['eleven seats', { ...base, seat_ids: Array.from({ length: 11 }, (_, i) => `102-A-${i + 1}`) }],
    ['a seat id with a space', { ...base, seat_ids: ['102 A 1'] }],
    ['a negative refund', { ...base, refund_amount: { amount_micros: '-1', currency: 'EUR' } }],
    ['a huge refund', { ...base, refund_amount: { amount_micros: '99999999999999999999', currency: 'EUR' } }],
    ['a lower-case currency', { ...base, refund_amount: { amount_micros: '1', currency: 'eur' } }],
    ['no key', { ...base, idempotency_key: '' }],
  ];
  for (const [what, request] of bad_returns) {
    assert.is((await code_of(ctx.l.return_seats(request, ctx.svc))).code, S.INVALID_ARGUMENT, what);
  }
  assert.is((await code_of(ctx.l.return_seats(base, ctx.svc))).code, S.FAILED_PRECONDITION, 'a draft returns nothing');
  assert.is((await code_of(ctx.l.return_seats({ ...base, order_id: 'order_9999_AAAAAAAAAAAAAAAAAAAAAA' }, ctx.svc))).code, S.INVALID_ARGUMENT);
  const read = await ctx.c.get_order({ order_id }, ctx.alice);
  assert.equal([read.order.status, read.returned_seat_ids, read.hold_extensions, read.hold_extensions_left], ['DRAFT', [], 0, 3]);
  assert.is(await sold(ctx), before, 'nothing sold or returned');
});

t.run();
