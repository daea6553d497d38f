// Every served RPC × {no token, expired, bad signature, wrong role, another user's resource}:
// each answered with the right code, and nothing changed. Cells that cannot apply to an RPC are
// listed with the reason, so the matrix stays complete on paper too. The purchase services
// (OrderService, OrderQueryService, PaymentService, FraudService) are attacked on alice's own
// orders and payments in three states (a bare draft, an authorized draft, a captured order):
// after every cell her orders, her order list and the seat counts are exactly as before.
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load_secret, sign_token, type Role } from '../../src/auth/token.js';
import { arena_file, arena_id, clients, code_of, grpc, run_cli, stop, with_server, type Clients } from './harness.js';
import { lifecycle_clients } from './lifecycle_clients.js';

const S = grpc.status;
type Case = 'no token' | 'expired' | 'bad signature' | 'wrong role' | "another user's resource";

interface Row {
  rpc: string;
  call: (c: Clients, bearer: string | undefined) => Promise<unknown>;
  /** Role that may call it when the caller acts on its own resources. */
  allowed: Role;
  wrong_role?: Role;
  /** A customer token for someone else: the request names alice or alice's resource. */
  other_user: number | `n/a: ${string}`;
  /** The other user's role when not `allowed` (service-only RPCs: mallory's customer token). */
  other_role?: Role;
}

const money = (amount_micros: number) => ({ amount_micros: String(amount_micros), currency: 'EUR' });
const price_a = 89_000_000;

test('authorization matrix over every served RPC', () => with_server('matrix', ['--workers', '1', '--partitions', '4', '--test-clock'], async (server, dir) => {
  const c = clients(server.grpc_port);
  assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
  const secret = load_secret(dir, process.env, false);
  const mint = (user_id: string, role: Role) => sign_token(secret, { user_id, role }, 3600);
  const svc = mint('svc', 'service');
  const alice = mint('alice', 'customer');
  const alice_hold = (await c.reserve({ event_id: arena_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 600, user_id: 'alice' }, alice)).hold_id as string;
  // Alice's purchases, one per state the RPCs act on: a bare draft (Authorize, ScoreTransaction),
  // a draft with an AUTHORIZED payment (ConfirmOrder, Capture; authorized with an idempotency-key
  // mallory replays) and a CONFIRMED order whose payment is CAPTURED (Refund, GetOrder).
  const new_draft = async (seat: string) => c.create_draft({ user_id: 'alice', event_id: arena_id, seat_ids: [seat], promo_code: '', idempotency_key: '' }, alice);
  const bare = await new_draft('101-A-3');
  const authed = await new_draft('101-A-4');
  const alice_key = { 'idempotency-key': 'alice-pay-1' };
  const authed_pay = await c.authorize({ order_id: authed.id, amount: money(price_a), payment_token: 'tok_visa' }, alice, alice_key);
  assert.is(authed_pay.status, 'AUTHORIZED');
  const paid = await new_draft('101-A-5');
  const paid_pay = await c.authorize({ order_id: paid.id, amount: money(price_a), payment_token: 'tok_visa' }, alice);
  assert.is((await c.confirm_order({ order_id: paid.id, payment_id: paid_pay.payment_id }, alice)).status, 'CONFIRMED');
  const alice_orders = [bare.id, authed.id, paid.id];
  const l = lifecycle_clients(server.grpc_port);
  const event = { event_id: 'evt-matrix', name: 'M', currency: 'EUR', price_tiers: { A: '1' }, sections: [{ name: '1', rows: [{ name: 'A', seats: 3, tier: 'A' }] }] };

  const rows: Row[] = [
    { rpc: 'InventoryService.ReserveTickets', allowed: 'customer', other_user: S.PERMISSION_DENIED,
      call: (x, b) => x.reserve({ event_id: arena_id, seat_ids: ['101-A-2'], hold_ttl_seconds: 60, user_id: 'alice' }, b) },
    { rpc: 'InventoryService.ReleaseHold', allowed: 'customer', other_user: S.NOT_FOUND,
      call: (x, b) => x.release({ hold_id: alice_hold }, b) },
    { rpc: 'InventoryService.ConfirmAllocation', allowed: 'service', wrong_role: 'customer', other_user: 'n/a: service-only RPC; a service acts for every user',
      call: (x, b) => x.confirm({ order_id: 'order-m', hold_id: alice_hold }, b) },
    { rpc: 'CatalogService.CreateEvent', allowed: 'admin', wrong_role: 'service', other_user: 'n/a: admin-only RPC',
      call: (x, b) => x.create_event({ event }, b) },
    { rpc: 'CatalogService.GetEvent', allowed: 'customer', other_user: 'n/a: events are readable by every authenticated caller',
      call: (x, b) => x.get_event({ event_id: arena_id }, b) },
    { rpc: 'CatalogService.GetAvailability', allowed: 'customer', other_user: 'n/a: events are readable by every authenticated caller',
      call: (x, b) => x.availability({ event_id: arena_id }, b) },
    { rpc: 'TestClockService.Advance', allowed: 'admin', wrong_role: 'service', other_user: 'n/a: admin-only RPC',
      call: (x, b) => x.advance({ millis: 60_000 }, b) },
    { rpc: 'OrderService.CreateDraft', allowed: 'customer', other_user: S.PERMISSION_DENIED,
      call: (x, b) => x.create_draft({ user_id: 'alice', event_id: arena_id, seat_ids: ['101-A-6'], promo_code: '', idempotency_key: 'matrix-draft' }, b) },
    { rpc: 'OrderService.ConfirmOrder', allowed: 'customer', other_user: S.NOT_FOUND,
      call: (x, b) => x.confirm_order({ order_id: authed.id, payment_id: authed_pay.payment_id }, b) },
    { rpc: 'OrderQueryService.GetOrder', allowed: 'customer', other_user: S.NOT_FOUND,
      call: (x, b) => x.get_order({ order_id: paid.id }, b) },
    { rpc: 'OrderQueryService.ListOrders', allowed: 'customer', other_user: S.PERMISSION_DENIED,
      call: (x, b) => x.list_orders({ user_id: 'alice', page_size: 0, page_token: '' }, b) },
    { rpc: 'PaymentService.Authorize', allowed: 'customer', other_user: S.NOT_FOUND,
      call: (x, b) => x.authorize({ order_id: bare.id, amount: money(price_a), payment_token: 'tok_visa' }, b, { 'idempotency-key': 'matrix-pay' }) },
    // The same RPC again, replaying alice's own request and idempotency-key: a cached first
    // result must not be handed to anyone else (nor to a caller without a valid token).
    { rpc: "PaymentService.Authorize (alice's idempotency-key replayed)", allowed: 'customer', other_user: S.NOT_FOUND,
      call: (x, b) => x.authorize({ order_id: authed.id, amount: money(price_a), payment_token: 'tok_visa' }, b, alice_key) },
    { rpc: 'PaymentService.Capture', allowed: 'customer', other_user: S.NOT_FOUND,
      call: (x, b) => x.capture({ payment_id: authed_pay.payment_id }, b) },
    { rpc: 'PaymentService.Refund', allowed: 'service', wrong_role: 'customer', other_user: S.PERMISSION_DENIED, other_role: 'customer',
      call: (x, b) => x.refund({ payment_id: paid_pay.payment_id, amount: money(1) }, b, { 'idempotency-key': 'matrix-refund' }) },
    { rpc: 'FraudService.ScoreTransaction', allowed: 'service', wrong_role: 'customer', other_user: S.PERMISSION_DENIED, other_role: 'customer',
      call: (x, b) => x.score({ order_id: bare.id, user_id: 'alice', ip: '203.0.113.9', device_id: 'dev-matrix' }, b) },
    { rpc: 'SeatSelectionService.ExtendHold', allowed: 'customer', other_user: S.NOT_FOUND,
      call: (_x, b) => l.extend({ hold_id: alice_hold, extend_seconds: '60' }, b) },
    { rpc: 'CheckoutService.CreateDraftFromHold', allowed: 'customer', other_user: S.NOT_FOUND,
      call: (_x, b) => l.from_hold({ hold_id: alice_hold, promo_code: '', idempotency_key: 'matrix-from-hold' }, b) },
    { rpc: 'OrderAdminService.ReturnSeats', allowed: 'service', wrong_role: 'customer', other_user: S.PERMISSION_DENIED, other_role: 'customer',
      call: (_x, b) => l.return_seats({ order_id: paid.id, seat_ids: [], refund_amount: money(1), idempotency_key: 'matrix-return' }, b) },
  ];

  // Everything a refused call could have touched: seat counts, the admin's event, each of
  // alice's orders in full (status, payment id and status, captured, refunded, fraud decision,
  // risk score, hold, updated_at) and her order list.
  const state = async () => JSON.stringify([
    await c.availability({ event_id: arena_id }, svc),
    await c.get_event({ event_id: 'evt-matrix' }, svc).then(() => 'exists', (e: grpc.ServiceError) => e.code),
    ...await Promise.all(alice_orders.map((order_id) => c.get_order({ order_id }, svc))),
    (await c.list_orders({ user_id: 'alice', page_size: 100, page_token: '' }, svc)).orders.map((o: any) => o.order.id),
  ]);
  const before = await state();
  const expired = sign_token(secret, { user_id: 'alice', role: 'admin' }, 60, Date.now() - 2 * 3600_000);
  const forged = sign_token(randomBytes(32), { user_id: 'alice', role: 'admin' }, 3600);
  const cells: string[] = [];
  for (const row of rows) {
    const cases: [Case, string | undefined, number][] = [
      ['no token', undefined, S.UNAUTHENTICATED],
      ['expired', expired, S.UNAUTHENTICATED],
      ['bad signature', forged, S.UNAUTHENTICATED],
    ];
    if (row.wrong_role !== undefined) cases.push(['wrong role', mint('alice', row.wrong_role), S.PERMISSION_DENIED]);
    else cells.push(`${row.rpc} × wrong role: n/a, every role may call it`);
    if (typeof row.other_user === 'number') cases.push(["another user's resource", mint('mallory', row.other_role ?? row.allowed), row.other_user]);
    else cells.push(`${row.rpc} × another user's resource: ${row.other_user}`);
    for (const [name, bearer, expected] of cases) {
      const { code, details } = await code_of(row.call(c, bearer)).catch((error: Error) => {
        throw new Error(`${row.rpc} × ${name}: ${error.message}`);
      });
      assert.is(code, expected, `${row.rpc} × ${name}: expected ${S[expected]}, got ${S[code]} (${details})`);
      assert.ok(details.length > 0, `${row.rpc} × ${name}: a message`);
      if (bearer !== undefined) assert.not.ok(details.includes(bearer.split('.')[2]!), `${row.rpc} × ${name}: token not echoed`);
      assert.is(await state(), before, `${row.rpc} × ${name}: refused, and nothing changed`);
      cells.push(`${row.rpc} × ${name}: ${S[code]}`);
    }
  }
  assert.is(await state(), before, 'no refused call changed anything');
  assert.is(cells.length, rows.length * 5, 'every cell of the matrix accounted for');

  // Someone else's order or payment is answered exactly like one that does not exist (same
  // code, same message but for the id): NOT_FOUND is no oracle for what alice has.
  const mallory = mint('mallory', 'customer');
  const unknown_like = (id: string) => id.replace(/_[A-Za-z0-9_-]{22}$/, `_${randomBytes(16).toString('base64url')}`);
  const probes: [string, string, (id: string) => Promise<unknown>][] = [
    ['GetOrder', paid.id, (order_id) => c.get_order({ order_id }, mallory)],
    ['ConfirmOrder', authed.id, (order_id) => c.confirm_order({ order_id, payment_id: authed_pay.payment_id }, mallory)],
    ['Authorize', bare.id, (order_id) => c.authorize({ order_id, amount: money(price_a), payment_token: 'tok_visa' }, mallory)],
    ['Capture', authed_pay.payment_id, (payment_id) => c.capture({ payment_id }, mallory)],
  ];
  for (const [rpc, real, probe] of probes) {
    const fake = unknown_like(real);
    assert.is.not(fake, real);
    const theirs = await code_of(probe(real));
    const missing = await code_of(probe(fake));
    assert.is(theirs.code, S.NOT_FOUND, `${rpc}: alice's id`);
    assert.is(missing.code, S.NOT_FOUND, `${rpc}: an id that does not exist`);
    assert.is(theirs.details.replaceAll(real, '<id>'), missing.details.replaceAll(fake, '<id>'), `${rpc}: the same answer for alice's id as for a missing one`);
  }
  assert.is(await state(), before, 'the probes changed nothing');

  // Alice's purchases still work after all that: the refused calls left nothing half-done.
  assert.equal(await c.release({ hold_id: alice_hold }, alice), { released: true }, "alice's hold untouched by the others");
  assert.is((await c.confirm_order({ order_id: authed.id, payment_id: authed_pay.payment_id }, alice)).status, 'CONFIRMED', 'her authorized draft confirms');
  assert.is((await c.authorize({ order_id: bare.id, amount: money(price_a), payment_token: 'tok_visa' }, alice)).status, 'AUTHORIZED', 'her bare draft authorizes');
  assert.is((await c.refund({ payment_id: paid_pay.payment_id, amount: money(price_a) }, svc, { 'idempotency-key': 'matrix-refund' })).status, 'REFUNDED',
    'a real refund under the key the refused calls carried is a first refund, not a replay');
  c.close();
  l.close();
  assert.is(await stop(server), 0);
}));

test.run();
