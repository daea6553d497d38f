// The whole purchase over gRPC with clients generated from the seed's protos: CreateDraft,
// ScoreTransaction, Authorize, ConfirmOrder, Capture, Refund, GetOrder, ListOrders, against a
// spawned server with the sandbox gateway. Every outcome docs/contracts.md "Behaviour" names,
// and each retry.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  arena_file, arena_id, cleanup, clients, code_of, grpc, guarded_setup, run_cli, start_server, stop, temp_dir, token,
  type Clients, type Guarded, type Server,
} from './harness.js';
import { guarded_after } from '../guard.js';

const S = grpc.status;
interface Ctx extends Guarded { dir: string; server: Server; c: Clients; alice: string; bob: string; carol: string; svc: string; admin: string }
const t = suite<Ctx>('purchase e2e');

const blocked_ip = '203.0.113.66';
const price_a = 89_000_000;
const price_b = 49_000_000;

guarded_setup(t, async (ctx) => {
  ctx.dir = temp_dir('purchase');
  const blocklist = join(ctx.dir, 'blocklist.txt');
  writeFileSync(blocklist, `# card testers\n${blocked_ip}\n`);
  ctx.server = await start_server(ctx.dir, ['--test-clock', '--workers', '2', '--partitions', '8', '--fraud-ip-blocklist', blocklist]);
  ctx.c = clients(ctx.server.grpc_port);
  ctx.alice = token(ctx.dir, 'alice', 'customer');
  ctx.bob = token(ctx.dir, 'bob', 'customer');
  ctx.carol = token(ctx.dir, 'carol', 'customer');
  ctx.svc = token(ctx.dir, 'orders', 'service');
  ctx.admin = token(ctx.dir, 'ops', 'admin');
  const imported = run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir]);
  assert.is(imported.status, 0, imported.stderr);
});

guarded_after(t, async (ctx) => {
  if (ctx.server === undefined) return;
  ctx.c?.close();
  assert.is(await stop(ctx.server), 0, 'SIGTERM exits 0');
  cleanup(ctx.dir);
});

function money(amount_micros: number) {
  return { amount_micros: String(amount_micros), currency: 'EUR' };
}

async function draft(ctx: Ctx, bearer: string, user_id: string, seat_ids: string[], extra: Record<string, string> = {}) {
  return ctx.c.create_draft({ user_id, event_id: arena_id, seat_ids, promo_code: '', idempotency_key: '', ...extra }, bearer);
}

async function sold(ctx: Ctx): Promise<number> {
  return Number((await ctx.c.availability({ event_id: arena_id }, ctx.alice)).sold);
}

/** The settlement loop runs every second; poll (bounded) until the order's payment settles. */
async function until_payment(ctx: Ctx, order_id: string, bearer: string, status: string) {
  for (let i = 0; i < 100; i++) {
    const d = await ctx.c.get_order({ order_id }, bearer);
    if (d.payment_status === status) return d;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`payment of ${order_id} never became ${status}`);
}

t('happy path: draft priced from tiers, scored, authorized, confirmed, captured; seats sold; GetOrder tells it all', async (ctx) => {
  const sold_before = await sold(ctx);
  const order = await draft(ctx, ctx.alice, 'alice', ['101-A-1', '101-B-1']);
  assert.is(order.status, 'DRAFT');
  assert.equal(order.total, money(price_a + price_b));
  assert.match(order.id, /^order_[0-9]+_/);
  const scored = await ctx.c.score({ order_id: order.id, user_id: 'alice', ip: '198.51.100.7', device_id: 'dev-alice' }, ctx.svc);
  assert.is(scored.decision, 'APPROVE');
  assert.ok(scored.risk_score >= 0 && scored.risk_score < 0.5);
  const auth = await ctx.c.authorize({ order_id: order.id, amount: money(price_a + price_b), payment_token: 'tok_visa' }, ctx.alice);
  assert.is(auth.status, 'AUTHORIZED');
  assert.ok(Number(auth.authorized_at_unix) > 0);
  const confirmed = await ctx.c.confirm_order({ order_id: order.id, payment_id: auth.payment_id }, ctx.alice);
  assert.is(confirmed.status, 'CONFIRMED');
  assert.equal(confirmed.total, money(price_a + price_b));
  assert.is(await sold(ctx), sold_before + 2);
  const details = await ctx.c.get_order({ order_id: order.id }, ctx.alice);
  assert.is(details.order.status, 'CONFIRMED');
  assert.equal(details.seat_ids, ['101-A-1', '101-B-1']);
  assert.is(details.payment_id, auth.payment_id);
  assert.is(details.payment_status, 'CAPTURED');
  assert.equal(details.captured, money(price_a + price_b));
  assert.is(details.fraud_decision, 'APPROVE');
  // Repeats change nothing: ConfirmOrder returns the same order, Capture answers CAPTURED.
  const again = await ctx.c.confirm_order({ order_id: order.id, payment_id: auth.payment_id }, ctx.alice);
  assert.equal(again, confirmed);
  assert.equal(await ctx.c.capture({ payment_id: auth.payment_id }, ctx.alice), { payment_id: auth.payment_id, status: 'CAPTURED' });
  assert.is(await sold(ctx), sold_before + 2);
  // Someone else's order does not exist for them.
  assert.is((await code_of(ctx.c.get_order({ order_id: order.id }, ctx.bob))).code, S.NOT_FOUND);
  assert.is((await code_of(ctx.c.confirm_order({ order_id: order.id, payment_id: auth.payment_id }, ctx.bob))).code, S.NOT_FOUND);
});

t('a declined card: DECLINED, the order stays a draft, a second card can pay', async (ctx) => {
  const order = await draft(ctx, ctx.bob, 'bob', ['101-A-2']);
  const sold_before = await sold(ctx);
  const declined = await ctx.c.authorize({ order_id: order.id, amount: money(price_a), payment_token: 'tok_chargeDeclined' }, ctx.bob);
  assert.is(declined.status, 'DECLINED');
  const refused = await code_of(ctx.c.confirm_order({ order_id: order.id, payment_id: declined.payment_id }, ctx.bob));
  assert.is(refused.code, S.FAILED_PRECONDITION);
  assert.match(refused.details, 'DECLINED');
  const funds = await ctx.c.authorize({ order_id: order.id, amount: money(price_a), payment_token: 'tok_insufficientFunds' }, ctx.bob);
  assert.is(funds.status, 'DECLINED');
  const still = await ctx.c.get_order({ order_id: order.id }, ctx.bob);
  assert.equal([still.order.status, still.payment_id, still.payment_status, still.captured.amount_micros], ['DRAFT', funds.payment_id, 'DECLINED', '0'], 'the order stays a draft, no money moved');
  assert.is(await sold(ctx), sold_before, 'declines sell nothing');
  const ok = await ctx.c.authorize({ order_id: order.id, amount: money(price_a), payment_token: 'tok_mastercard' }, ctx.bob);
  assert.is(ok.status, 'AUTHORIZED');
  assert.is((await ctx.c.confirm_order({ order_id: order.id, payment_id: ok.payment_id }, ctx.bob)).status, 'CONFIRMED');
  assert.is(await sold(ctx), sold_before + 1, 'the second card bought the seat');
});

t('wrong amount, wrong currency, missing token: INVALID_ARGUMENT and nothing recorded', async (ctx) => {
  const order = await draft(ctx, ctx.carol, 'carol', ['102-A-1']);
  for (const [amount, token] of [[money(price_b - 1), 'tok_visa'], [{ amount_micros: String(price_b), currency: 'USD' }, 'tok_visa'], [money(price_b), '']] as const) {
    const r = await code_of(ctx.c.authorize({ order_id: order.id, amount, payment_token: token }, ctx.carol));
    assert.is(r.code, S.INVALID_ARGUMENT, r.details);
  }
  assert.is((await ctx.c.get_order({ order_id: order.id }, ctx.carol)).payment_id, '');
  const gone = await code_of(ctx.c.authorize({ order_id: order.id, amount: money(price_b), payment_token: 'tok_gatewayTimeout' }, ctx.carol));
  assert.is(gone.code, S.UNAVAILABLE);
  assert.match(gone.details, 'PENDING');
  assert.not.match(gone.details, 'tok_');
});

t('fraud decline: a blocklisted ip scores DECLINE and Authorize declines without calling the gateway', async (ctx) => {
  const order = await draft(ctx, ctx.alice, 'alice', ['101-A-3']);
  const scored = await ctx.c.score({ order_id: order.id, user_id: 'alice', ip: blocked_ip, device_id: 'dev-x' }, ctx.svc);
  assert.is(scored.decision, 'DECLINE');
  assert.is(scored.risk_score, 1);
  // tok_gatewayTimeout makes the sandbox gateway answer UNAVAILABLE: DECLINED proves it was not called.
  const auth = await ctx.c.authorize({ order_id: order.id, amount: money(price_a), payment_token: 'tok_gatewayTimeout' }, ctx.alice);
  assert.is(auth.status, 'DECLINED');
  const d = await ctx.c.get_order({ order_id: order.id }, ctx.alice);
  assert.is(d.order.status, 'DRAFT');
  assert.is(d.fraud_decision, 'DECLINE');
  assert.is(d.payment_status, 'DECLINED');
  // Scoring is for services: a customer could otherwise launder its own ip and device.
  assert.is((await code_of(ctx.c.score({ order_id: order.id, user_id: 'alice', ip: '', device_id: '' }, ctx.alice))).code, S.PERMISSION_DENIED);
  assert.is((await code_of(ctx.c.score({ order_id: order.id, user_id: 'bob', ip: '', device_id: '' }, ctx.svc))).code, S.INVALID_ARGUMENT);
});

t('payment after hold expiry: seats still free → retaken and confirmed; seats taken → voided, FAILED_PRECONDITION, EXPIRED', async (ctx) => {
  const free_order = await draft(ctx, ctx.alice, 'alice', ['101-B-10']);
  const taken_order = await draft(ctx, ctx.bob, 'bob', ['101-B-11']);
  const a1 = await ctx.c.authorize({ order_id: free_order.id, amount: money(price_b), payment_token: 'tok_visa' }, ctx.alice);
  const a2 = await ctx.c.authorize({ order_id: taken_order.id, amount: money(price_b), payment_token: 'tok_visa' }, ctx.bob);
  await ctx.c.advance({ millis: 601_000 }, ctx.admin);
  // The expiry ran (or runs now): both drafts are EXPIRED; carol takes bob's seat.
  for (let i = 0; i < 50 && (await ctx.c.get_order({ order_id: taken_order.id }, ctx.bob)).order.status !== 'EXPIRED'; i++) await new Promise((r) => setTimeout(r, 50));
  assert.is((await ctx.c.get_order({ order_id: taken_order.id }, ctx.bob)).order.status, 'EXPIRED');
  await ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-B-11'], hold_ttl_seconds: 0, user_id: 'carol' }, ctx.carol);
  const ok = await ctx.c.confirm_order({ order_id: free_order.id, payment_id: a1.payment_id }, ctx.alice);
  assert.is(ok.status, 'CONFIRMED');
  const d1 = await ctx.c.get_order({ order_id: free_order.id }, ctx.alice);
  assert.equal(d1.seat_ids, ['101-B-10']);
  assert.is(d1.payment_status, 'CAPTURED');
  const refused = await code_of(ctx.c.confirm_order({ order_id: taken_order.id, payment_id: a2.payment_id }, ctx.bob));
  assert.is(refused.code, S.FAILED_PRECONDITION);
  assert.match(refused.details, 'voided');
  const d2 = await until_payment(ctx, taken_order.id, ctx.bob, 'VOIDED');
  assert.is(d2.order.status, 'EXPIRED');
  assert.equal(d2.captured, money(0));
  // A retry gives the same refusal and keeps no money.
  assert.is((await code_of(ctx.c.confirm_order({ order_id: taken_order.id, payment_id: a2.payment_id }, ctx.bob))).code, S.FAILED_PRECONDITION);
});

t('refunds: partial, then the rest; over-refund refused; customers cannot refund; same idempotency-key → first result', async (ctx) => {
  const order = await draft(ctx, ctx.carol, 'carol', ['102-A-5', '102-A-6']);
  const total = 2 * price_b;
  const auth = await ctx.c.authorize({ order_id: order.id, amount: money(total), payment_token: 'tok_visa' }, ctx.carol);
  await ctx.c.confirm_order({ order_id: order.id, payment_id: auth.payment_id }, ctx.carol);
  assert.is((await code_of(ctx.c.refund({ payment_id: auth.payment_id, amount: money(1) }, ctx.carol))).code, S.PERMISSION_DENIED);
  const key = { 'idempotency-key': 'refund-carol-1' };
  const part = await ctx.c.refund({ payment_id: auth.payment_id, amount: money(price_b) }, ctx.svc, key);
  assert.is(part.status, 'PARTIALLY_REFUNDED');
  assert.match(part.refund_id, /^refund_[0-9]+_/);
  const retry = await ctx.c.refund({ payment_id: auth.payment_id, amount: money(price_b) }, ctx.svc, key);
  assert.equal(retry, part, 'a retry returns the first result and refunds nothing more');
  assert.is((await ctx.c.get_order({ order_id: order.id }, ctx.carol)).refunded.amount_micros, String(price_b));
  const reused = await code_of(ctx.c.refund({ payment_id: auth.payment_id, amount: money(5) }, ctx.svc, key));
  assert.is(reused.code, S.ALREADY_EXISTS);
  const over = await code_of(ctx.c.refund({ payment_id: auth.payment_id, amount: money(price_b + 1) }, ctx.svc));
  assert.is(over.code, S.FAILED_PRECONDITION);
  assert.match(over.details, 'exceeds');
  const rest = await ctx.c.refund({ payment_id: auth.payment_id, amount: money(price_b) }, ctx.svc);
  assert.is(rest.status, 'REFUNDED');
  assert.is((await code_of(ctx.c.refund({ payment_id: auth.payment_id, amount: money(1) }, ctx.svc))).code, S.FAILED_PRECONDITION);
  const d = await ctx.c.get_order({ order_id: order.id }, ctx.carol);
  assert.is(d.order.status, 'REFUNDED');
  assert.equal(d.refunded, money(total));
  assert.equal(d.captured, money(total));
  // The first result again, after the payment moved on.
  assert.equal(await ctx.c.refund({ payment_id: auth.payment_id, amount: money(price_b) }, ctx.svc, key), part);
});

t('idempotent retries: CreateDraft by key, Authorize by idempotency-key metadata', async (ctx) => {
  const req = { user_id: 'bob', event_id: arena_id, seat_ids: ['101-A-20'], promo_code: 'EARLY10', idempotency_key: 'checkout-77' };
  const first = await ctx.c.create_draft(req, ctx.bob);
  assert.equal(first.total, money(price_a - price_a / 10), 'EARLY10 takes 10% off');
  const second = await ctx.c.create_draft(req, ctx.bob);
  assert.equal(second, first, 'same key, same request: the same order');
  const other = await code_of(ctx.c.create_draft({ ...req, seat_ids: ['101-A-21'] }, ctx.bob));
  assert.is(other.code, S.ALREADY_EXISTS);
  const key = { 'idempotency-key': 'pay-77' };
  const a = await ctx.c.authorize({ order_id: first.id, amount: first.total, payment_token: 'tok_visa' }, ctx.bob, key);
  const b = await ctx.c.authorize({ order_id: first.id, amount: first.total, payment_token: 'tok_visa' }, ctx.bob, key);
  assert.equal(b, a, 'same idempotency-key: the first result, no second authorization');
  const without = await code_of(ctx.c.authorize({ order_id: first.id, amount: first.total, payment_token: 'tok_visa' }, ctx.bob));
  assert.is(without.code, S.FAILED_PRECONDITION, 'a second authorization of the same order is refused');
  assert.is((await ctx.c.confirm_order({ order_id: first.id, payment_id: a.payment_id }, ctx.bob)).status, 'CONFIRMED');
});

t('promo: unknown code FAILED_PRECONDITION; max_seats_per_user counts drafts; ListOrders pages newest first', async (ctx) => {
  const unknown = await code_of(ctx.c.create_draft({ user_id: 'dave', event_id: arena_id, seat_ids: ['101-A-22'], promo_code: 'NOPE', idempotency_key: '' }, token(ctx.dir, 'dave', 'customer')));
  assert.is(unknown.code, S.FAILED_PRECONDITION);
  const erin = token(ctx.dir, 'erin', 'customer');
  const ids: string[] = [];
  for (const seats of [['102-A-7', '102-A-8', '102-A-9'], ['101-B-20', '101-B-21', '101-B-22'], ['101-B-23', '101-B-24']]) {
    ids.push((await draft(ctx, erin, 'erin', seats)).id);
  }
  const limit = await code_of(draft(ctx, erin, 'erin', ['101-B-5']));
  assert.is(limit.code, S.RESOURCE_EXHAUSTED, 'max_seats_per_user 8 counts seats held by drafts');
  const page1 = await ctx.c.list_orders({ user_id: 'erin', page_size: 2, page_token: '' }, erin);
  assert.equal(page1.orders.map((o: any) => o.order.id), [ids[2], ids[1]]);
  assert.ok(page1.next_page_token !== '');
  const page2 = await ctx.c.list_orders({ user_id: 'erin', page_size: 2, page_token: page1.next_page_token }, erin);
  assert.equal(page2.orders.map((o: any) => o.order.id), [ids[0]]);
  assert.is(page2.next_page_token, '');
  assert.is((await code_of(ctx.c.list_orders({ user_id: 'erin', page_size: 2, page_token: '' }, ctx.bob))).code, S.PERMISSION_DENIED);
  assert.is((await code_of(ctx.c.list_orders({ user_id: 'erin', page_size: 0, page_token: 'garbage' }, erin))).code, S.INVALID_ARGUMENT);
  // Releasing a draft's hold cancels the draft.
  const d = await ctx.c.get_order({ order_id: ids[0] }, erin);
  assert.equal(await ctx.c.release({ hold_id: d.hold_id }, erin), { released: true });
  assert.is((await ctx.c.get_order({ order_id: ids[0] }, erin)).order.status, 'CANCELLED');
  // A draft's hold is sold only through ConfirmOrder.
  const d2 = await ctx.c.get_order({ order_id: ids[1] }, erin);
  const sold_before = await sold(ctx);
  assert.is((await code_of(ctx.c.confirm({ order_id: 'x-1', hold_id: d2.hold_id }, ctx.svc))).code, S.FAILED_PRECONDITION);
  assert.is(await sold(ctx), sold_before, 'InventoryService.Confirm sold nothing');
  assert.is((await ctx.c.get_order({ order_id: ids[1] }, erin)).order.status, 'DRAFT', 'the draft is untouched');
});

t('limits: each refusal is counted by its limit in ticketing_limit_refusals_total', async (ctx) => {
  const scrape = async (): Promise<Map<string, number>> => {
    const text = await (await fetch(`http://127.0.0.1:${ctx.server.http_port}/metrics`)).text();
    const counts = new Map<string, number>();
    for (const m of text.matchAll(/^ticketing_limit_refusals_total\{limit="([a-z_]+)"\} ([0-9.]+)$/gm)) counts.set(m[1]!, Number(m[2]));
    return counts;
  };
  const before = await scrape();
  assert.ok(before.has('seats_per_hold') && before.has('string_length') && before.has('rate_user'), 'every limit exported from the start');
  const eleven = Array.from({ length: 11 }, (_, i) => `101-B-${i + 1}`);
  assert.is((await code_of(draft(ctx, ctx.carol, 'carol', eleven))).code, S.RESOURCE_EXHAUSTED);
  assert.is((await code_of(ctx.c.get_order({ order_id: 'x'.repeat(200) }, ctx.carol))).code, S.INVALID_ARGUMENT);
  const after = await scrape();
  assert.is(after.get('seats_per_hold')! - before.get('seats_per_hold')!, 1);
  assert.is(after.get('string_length')! - before.get('string_length')!, 1);
});

t('logs: state changes and fraud reasons at info; no payment token in any line', async (ctx) => {
  const lines = ctx.server.log.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  const methods = new Set(lines.filter((l) => l['msg'] === 'state changed').map((l) => l['method']));
  for (const m of ['CreateDraft', 'Authorize', 'ConfirmOrder', 'Refund', 'ScoreTransaction']) assert.ok(methods.has(m), `${m} logged`);
  const fraud = lines.find((l) => l['msg'] === 'fraud decision' && l['decision'] === 'DECLINE');
  assert.ok(fraud !== undefined && Array.isArray(fraud['reasons']) && (fraud['reasons'] as string[]).includes('ip is on the blocklist'));
  for (const line of ctx.server.log) assert.not.match(line, /tok_[A-Za-z]/, 'payment tokens are never logged');
});

t.run();
