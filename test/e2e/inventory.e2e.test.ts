// InventoryService and CatalogService end to end: a spawned server, a real socket, a client
// generated from the protos, the event imported with `ticketing events import`.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  arena_file, arena_id, cleanup, clients, code_of, grpc, guarded_setup, run_cli, start_server, stop, temp_dir, token,
  type Clients, type Guarded, type Server,
} from './harness.js';
import { guarded_after } from '../guard.js';

const S = grpc.status;
const t = suite<Guarded & { dir: string; server: Server; c: Clients; alice: string; bob: string; svc: string; admin: string }>('inventory e2e');

guarded_setup(t, async (ctx) => {
  ctx.dir = temp_dir('inv');
  ctx.server = await start_server(ctx.dir, ['--test-clock', '--workers', '2', '--partitions', '8']);
  ctx.c = clients(ctx.server.grpc_port);
  ctx.alice = token(ctx.dir, 'alice', 'customer');
  ctx.bob = token(ctx.dir, 'bob', 'customer');
  ctx.svc = token(ctx.dir, 'orders', 'service');
  ctx.admin = token(ctx.dir, 'ops', 'admin');
  const imported = run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir]);
  assert.is(imported.status, 0, imported.stderr);
  assert.match(imported.stdout, `${arena_id}: created, 58 seats`);
});

guarded_after(t, async (ctx) => {
  if (ctx.server === undefined) return;
  ctx.c?.close();
  assert.is(await stop(ctx.server), 0, 'SIGTERM exits 0');
  cleanup(ctx.dir);
});

async function counts(ctx: { c: Clients; alice: string }) {
  const a = await ctx.c.availability({ event_id: arena_id }, ctx.alice);
  return { free: Number(a.free), held: Number(a.held), sold: Number(a.sold) };
}

t('import is idempotent and GetEvent returns the definition', async (ctx) => {
  const again = run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir]);
  assert.is(again.status, 0);
  assert.match(again.stdout, 'already exists');
  const event = await ctx.c.get_event({ event_id: arena_id }, ctx.alice);
  assert.is(event.name, 'Arena, 1 June 2027');
  assert.is(event.price_tiers.A, '89000000');
  assert.is(event.seat_count, '58');
  assert.is(event.max_seats_per_user, 8);
});

t('reserve, then release frees the seats; releasing again answers released=false', async (ctx) => {
  const before = await counts(ctx);
  const now_s = Math.floor(Date.now() / 1000);
  const hold = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-A-1', '101-A-2'], hold_ttl_seconds: 0, user_id: 'alice' }, ctx.alice);
  assert.match(hold.hold_id, /^hold_[0-9]+_[A-Za-z0-9_-]{22}$/);
  const expires = Number(hold.expires_at_unix);
  assert.ok(expires >= now_s + 600 && expires <= now_s + 600 + 120, 'default ttl is 600 s');
  assert.equal(await counts(ctx), { ...before, free: before.free - 2, held: before.held + 2 });
  const a = await ctx.c.availability({ event_id: arena_id, section: '101' }, ctx.alice);
  assert.not.ok(a.sections[0].free_seat_ids.includes('101-A-1'), 'held seat not listed free');
  assert.equal(await ctx.c.release({ hold_id: hold.hold_id }, ctx.alice), { released: true });
  assert.equal(await counts(ctx), before);
  assert.equal(await ctx.c.release({ hold_id: hold.hold_id }, ctx.alice), { released: false });
});

t('seat taken: FAILED_PRECONDITION naming the seats, and nothing of the second hold is held', async (ctx) => {
  const hold = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-A-3'], hold_ttl_seconds: 60, user_id: 'alice' }, ctx.alice);
  const before = await counts(ctx);
  const refused = await code_of(ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-A-4', '101-A-3'], hold_ttl_seconds: 60, user_id: 'bob' }, ctx.bob));
  assert.is(refused.code, S.FAILED_PRECONDITION);
  assert.match(refused.details, '101-A-3');
  assert.equal(await counts(ctx), before, 'all-or-nothing');
  await ctx.c.release({ hold_id: hold.hold_id }, ctx.alice);
});

t('ConfirmAllocation sells the seats; repeating is a no-op; release after confirm is FAILED_PRECONDITION', async (ctx) => {
  const hold = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['102-A-1'], hold_ttl_seconds: 120, user_id: 'alice' }, ctx.alice);
  const before = await counts(ctx);
  assert.equal(await ctx.c.confirm({ order_id: 'order-1', hold_id: hold.hold_id }, ctx.svc), { confirmed: true });
  assert.equal(await counts(ctx), { ...before, held: before.held - 1, sold: before.sold + 1 });
  assert.equal(await ctx.c.confirm({ order_id: 'order-1', hold_id: hold.hold_id }, ctx.svc), { confirmed: true });
  assert.equal(await counts(ctx), { ...before, held: before.held - 1, sold: before.sold + 1 }, 'repeat changes nothing');
  assert.is((await code_of(ctx.c.confirm({ order_id: 'order-2', hold_id: hold.hold_id }, ctx.svc))).code, S.FAILED_PRECONDITION);
  assert.is((await code_of(ctx.c.release({ hold_id: hold.hold_id }, ctx.alice))).code, S.FAILED_PRECONDITION);
  const taken = await code_of(ctx.c.reserve({ event_id: arena_id, seat_ids: ['102-A-1'], hold_ttl_seconds: 60, user_id: 'bob' }, ctx.bob));
  assert.is(taken.code, S.FAILED_PRECONDITION, 'a sold seat is never held again');
});

t('confirming a released hold is FAILED_PRECONDITION', async (ctx) => {
  const hold = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['102-A-2'], hold_ttl_seconds: 60, user_id: 'alice' }, ctx.alice);
  await ctx.c.release({ hold_id: hold.hold_id }, ctx.alice);
  const before = await counts(ctx);
  assert.is((await code_of(ctx.c.confirm({ order_id: 'order-3', hold_id: hold.hold_id }, ctx.svc))).code, S.FAILED_PRECONDITION);
  assert.equal(await counts(ctx), before, 'the refusal sold nothing and held nothing');
  // The seat is still free: another buyer can hold it.
  const again = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['102-A-2'], hold_ttl_seconds: 60, user_id: 'bob' }, ctx.bob);
  await ctx.c.release({ hold_id: again.hold_id }, ctx.bob);
});

t('hold expiry: at expires_at the seats are free again, release answers false, confirm is refused', async (ctx) => {
  const hold = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-B-1', '101-B-2'], hold_ttl_seconds: 30, user_id: 'bob' }, ctx.bob);
  const held = await counts(ctx);
  await ctx.c.advance({ millis: 31_000 }, ctx.admin);
  // Expiry runs on the worker's timer right after the clock moves; poll (bounded) until it did.
  let after = await counts(ctx);
  for (let i = 0; i < 200 && after.held === held.held; i++) {
    await new Promise((r) => setTimeout(r, 10));
    after = await counts(ctx);
  }
  assert.equal(after, { ...held, free: held.free + 2, held: held.held - 2 });
  assert.equal(await ctx.c.release({ hold_id: hold.hold_id }, ctx.bob), { released: false });
  const refused = await code_of(ctx.c.confirm({ order_id: 'order-4', hold_id: hold.hold_id }, ctx.svc));
  assert.is(refused.code, S.FAILED_PRECONDITION);
  assert.match(refused.details, 'expired');
});

t('error codes: NOT_FOUND, INVALID_ARGUMENT, RESOURCE_EXHAUSTED', async (ctx) => {
  const before = await counts(ctx);
  const r = (req: object, who = ctx.alice) => code_of(ctx.c.reserve({ event_id: arena_id, hold_ttl_seconds: 60, user_id: 'alice', ...req }, who));
  assert.is((await r({ event_id: 'evt-nope' , seat_ids: ['101-A-1'] })).code, S.NOT_FOUND);
  assert.is((await r({ seat_ids: ['101-Z-1'] })).code, S.INVALID_ARGUMENT);
  assert.is((await r({ seat_ids: ['101-A-9', '101-A-9'] })).code, S.INVALID_ARGUMENT);
  assert.is((await r({ seat_ids: ['101-A-9'], hold_ttl_seconds: 29 })).code, S.INVALID_ARGUMENT);
  assert.is((await r({ seat_ids: ['101-A-9'], hold_ttl_seconds: 3601 })).code, S.INVALID_ARGUMENT);
  assert.is((await r({ seat_ids: [] })).code, S.INVALID_ARGUMENT);
  const eleven = Array.from({ length: 11 }, (_, i) => `101-B-${i + 10}`);
  assert.is((await r({ seat_ids: eleven })).code, S.RESOURCE_EXHAUSTED);
  // max_seats_per_user = 8: 6 + 3 > 8
  const six = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-B-10', '101-B-11', '101-B-12', '101-B-13', '101-B-14', '101-B-15'], hold_ttl_seconds: 60, user_id: 'carol' }, ctx.svc);
  const limit = await code_of(ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-B-16', '101-B-17', '101-B-18'], hold_ttl_seconds: 60, user_id: 'carol' }, ctx.svc));
  assert.is(limit.code, S.RESOURCE_EXHAUSTED);
  assert.match(limit.details, 'max_seats_per_user');
  await ctx.c.release({ hold_id: six.hold_id }, ctx.svc);
  assert.is((await code_of(ctx.c.release({ hold_id: 'hold_1_AAAAAAAAAAAAAAAAAAAAAA' }, ctx.alice))).code, S.NOT_FOUND);
  assert.is((await code_of(ctx.c.release({ hold_id: 'not-a-hold' }, ctx.alice))).code, S.INVALID_ARGUMENT);
  assert.is((await code_of(ctx.c.confirm({ order_id: 'o', hold_id: 'hold_1_AAAAAAAAAAAAAAAAAAAAAA' }, ctx.svc))).code, S.NOT_FOUND);
  assert.is((await code_of(ctx.c.get_event({ event_id: 'evt-nope' }, ctx.alice))).code, S.NOT_FOUND);
  assert.equal(await counts(ctx), before, 'refused calls changed nothing');
});

t('authentication and authorization', async (ctx) => {
  const req = { event_id: arena_id, seat_ids: ['101-A-20'], hold_ttl_seconds: 60, user_id: 'alice' };
  const before = await counts(ctx);
  assert.is((await code_of(ctx.c.reserve(req))).code, S.UNAUTHENTICATED, 'no token');
  assert.is((await code_of(ctx.c.reserve(req, 'x.y.z'))).code, S.UNAUTHENTICATED, 'garbage token');
  // Change the signature's first character: its last one carries 2 unused bits in base64url, so
  // changing it can leave the signature bytes as they were (a flaky test, once in 16 runs).
  const good = token(ctx.dir, 'alice', 'customer', 1);
  const at = good.lastIndexOf('.') + 1;
  const forged = good.slice(0, at) + (good[at] === 'A' ? 'B' : 'A') + good.slice(at + 1);
  assert.is((await code_of(ctx.c.reserve(req, forged))).code, S.UNAUTHENTICATED, 'bad signature');
  assert.is((await code_of(ctx.c.reserve(req, ctx.bob))).code, S.PERMISSION_DENIED, 'customer acting for another user');
  assert.equal(await counts(ctx), before);
  const hold = await ctx.c.reserve(req, ctx.alice);
  assert.is((await code_of(ctx.c.release({ hold_id: hold.hold_id }, ctx.bob))).code, S.NOT_FOUND, "another user's hold does not leak");
  assert.is((await code_of(ctx.c.confirm({ order_id: 'o-9', hold_id: hold.hold_id }, ctx.alice))).code, S.PERMISSION_DENIED, 'customers cannot allocate');
  assert.is((await code_of(ctx.c.advance({ millis: 1 }, ctx.alice))).code, S.PERMISSION_DENIED);
  assert.is((await code_of(ctx.c.create_event({ event: { event_id: 'x' } }, ctx.alice))).code, S.PERMISSION_DENIED);
  assert.equal(await ctx.c.release({ hold_id: hold.hold_id }, ctx.svc), { released: true }, 'a service may act for any user');
  assert.equal(await counts(ctx), before);
});

t('health: /healthz, /readyz and /metrics answer', async (ctx) => {
  const base = `http://127.0.0.1:${ctx.server.http_port}`;
  assert.is((await fetch(`${base}/healthz`)).status, 200);
  const ready = await fetch(`${base}/readyz`);
  assert.is(ready.status, 200);
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /ticketing_grpc_requests_total\{service="InventoryService",method="ReserveTickets",code="OK"\} [1-9]/);
  assert.match(metrics, /ticketing_grpc_requests_total\{service="InventoryService",method="ReserveTickets",code="FAILED_PRECONDITION"\} [1-9]/);
  // Worker figures arrive with the workers' once-a-second report: poll (bounded) until they do.
  const hold = await ctx.c.reserve({ event_id: arena_id, seat_ids: ['101-B-24'], hold_ttl_seconds: 600, user_id: 'dave' }, ctx.svc);
  const value = (text: string, name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? NaN);
  let scraped = '';
  for (let i = 0; i < 100; i++) {
    scraped = await (await fetch(`${base}/metrics`)).text();
    if (value(scraped, 'ticketing_seat_holds_active') >= 1 && value(scraped, 'ticketing_seats_sold_total') >= 1) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(value(scraped, 'ticketing_seat_holds_active') >= 1, 'active holds reported by the workers');
  assert.ok(value(scraped, 'ticketing_seats_sold_total') >= 1, 'sold seats counted');
  assert.ok(value(scraped, 'ticketing_journal_batch_size_count') >= 1, 'journal commits observed');
  assert.ok(value(scraped, 'ticketing_journal_commit_duration_seconds_sum') > 0, 'commit time observed');
  assert.ok(value(scraped, 'ticketing_outbox_pending') >= 1, 'the expiry event waits in the outbox');
  assert.match(scraped, /^ticketing_mailbox_depth\{worker="1"\} [0-9]+$/m);
  await ctx.c.release({ hold_id: hold.hold_id }, ctx.svc);
});

t.run();
