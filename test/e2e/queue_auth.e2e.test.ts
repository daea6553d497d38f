// The waiting room's edge against a spawned server: who may call which of the 7 QueueService
// RPCs, what bad input gets (INVALID_ARGUMENT, and nothing changes), the admission-token
// metadata cap, the service bypass, CloseQueue, and WatchPosition's stream cap.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { guarded_after } from '../guard.js';
import {
  arena_file, arena_id, cleanup, code_of, grpc, guarded_setup, run_cli, start_server, stop,
  temp_dir, token, type Guarded, type Server,
} from './harness.js';
import { queue_clients, type QueueClients, type Reply } from './queue_clients.js';

const S = grpc.status;
const other_event = 'evt-bypass';

interface Ctx extends Guarded {
  dir: string; server: Server; q: QueueClients;
  admin: string; svc: string; alice: string; bob: string;
  now_s: number; alice_ticket: string; settings: Reply;
}

const t = suite<Ctx>('waiting room auth and input e2e');

guarded_setup(t, async (ctx) => {
  ctx.dir = temp_dir('queue-auth');
  ctx.server = await start_server(ctx.dir, ['--workers', '1', '--partitions', '4', '--queue-watch-streams-max', '2']);
  ctx.q = queue_clients(ctx.server.grpc_port);
  ctx.admin = token(ctx.dir, 'ops', 'admin');
  ctx.svc = token(ctx.dir, 'orders', 'service');
  ctx.alice = token(ctx.dir, 'alice', 'customer');
  ctx.bob = token(ctx.dir, 'bob', 'customer');
  const imported = run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir]);
  assert.is(imported.status, 0, imported.stderr);
  ctx.now_s = Math.floor(Date.now() / 1000);
  ctx.settings = {
    event_id: arena_id, opens_at_unix: String(ctx.now_s - 60), sale_starts_at_unix: String(ctx.now_s + 3600),
    admit_per_minute: 100, admission_ttl_seconds: 600, service_bypass: false,
  };
});

guarded_after(t, async (ctx) => {
  if (ctx.server === undefined) return;
  ctx.q?.close();
  assert.is(await stop(ctx.server), 0, 'SIGTERM exits 0');
  cleanup(ctx.dir);
});

type Rpc = 'configure' | 'set_rate' | 'close_queue' | 'join' | 'position' | 'fairness';

t('the auth matrix of the 7 RPCs', async (ctx) => {
  const configured = await ctx.q.configure(ctx.settings, ctx.admin);
  assert.is(configured['created'], true);
  const joined = await ctx.q.join({ event_id: arena_id, user_id: 'alice', device_id: 'd1' }, ctx.alice);
  ctx.alice_ticket = String(joined['ticket_id']);
  const requests: Record<Rpc, Reply> = {
    configure: ctx.settings, set_rate: { event_id: arena_id, admit_per_minute: 50 },
    close_queue: { event_id: arena_id }, join: { event_id: arena_id, user_id: 'alice', device_id: 'd1' },
    position: { ticket_id: ctx.alice_ticket }, fairness: { event_id: arena_id },
  };
  for (const rpc of Object.keys(requests) as Rpc[]) {
    assert.is((await code_of(ctx.q[rpc](requests[rpc]))).code, S.UNAUTHENTICATED, `${rpc} without a token`);
  }
  const no_token_watch = await ctx.q.watch({ ticket_id: ctx.alice_ticket }, 'not-a-token');
  assert.is(no_token_watch.code, S.UNAUTHENTICATED);
  // Admin only: customers and services are refused, and nothing changes.
  for (const bearer of [ctx.alice, ctx.svc]) {
    for (const rpc of ['configure', 'set_rate', 'close_queue'] as const) {
      const refused = await code_of(ctx.q[rpc](requests[rpc], bearer));
      assert.is(refused.code, S.PERMISSION_DENIED, rpc);
      assert.match(refused.details, /needs role admin/);
    }
  }
  const f = await ctx.q.fairness({ event_id: arena_id }, ctx.alice);
  assert.equal([f['admit_per_minute'], f['joined']], [100, '1'], 'the refused calls changed nothing');
  // Others' tickets and others' names are refused; a service acts for anyone.
  assert.is((await code_of(ctx.q.join({ event_id: arena_id, user_id: 'alice', device_id: 'd' }, ctx.bob))).code, S.PERMISSION_DENIED);
  assert.is((await code_of(ctx.q.position({ ticket_id: ctx.alice_ticket }, ctx.bob))).code, S.PERMISSION_DENIED);
  const bobs_watch = await ctx.q.watch({ ticket_id: ctx.alice_ticket }, ctx.bob);
  assert.is(bobs_watch.code, S.PERMISSION_DENIED);
  assert.is(bobs_watch.messages.length, 0);
  const own = await ctx.q.position({ ticket_id: ctx.alice_ticket }, ctx.alice);
  assert.equal([own['ticket_id'], own['event_id'], own['position'], own['drawn']], [ctx.alice_ticket, arena_id, '0', false]);
  assert.is((await ctx.q.position({ ticket_id: ctx.alice_ticket }, ctx.svc))['ticket_id'], ctx.alice_ticket);
  const for_carol = await ctx.q.join({ event_id: arena_id, user_id: 'carol', device_id: 'd' }, ctx.svc);
  assert.is(for_carol['created'], true);
  const again = await ctx.q.join({ event_id: arena_id, user_id: 'alice', device_id: 'd1' }, ctx.alice);
  assert.equal([again['created'], again['ticket_id']], [false, ctx.alice_ticket]);
  // Admin may do all; SetAdmissionRate answers what was admitted.
  const rate = await ctx.q.set_rate({ event_id: arena_id, admit_per_minute: 120 }, ctx.admin);
  assert.equal(rate, { admit_per_minute: 120, admitted: '0' });
});

t('WatchPosition: the position at once; at --queue-watch-streams-max one more is refused', async (ctx) => {
  const first = await ctx.q.watch({ ticket_id: ctx.alice_ticket }, ctx.alice, 1);
  assert.is(first.messages.length, 1);
  assert.equal([first.messages[0]!['ticket_id'], first.messages[0]!['position']], [ctx.alice_ticket, '0']);
  const metrics = async () => (await fetch(`http://127.0.0.1:${ctx.server.http_port}/metrics`)).text();
  const streams_open = async (n: number): Promise<void> => {
    const pattern = new RegExp(`ticketing_queue_watch_streams ${n}\\n`);
    for (let i = 0; i < 100 && !pattern.test(await metrics()); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(await metrics(), pattern);
  };
  // The cancelled stream has left the server before two more open (the cap is 2).
  await streams_open(0);
  let release = (): void => undefined;
  const released = new Promise<void>((resolve) => { release = resolve; });
  const open = [ctx.q.watch({ ticket_id: ctx.alice_ticket }, ctx.alice, undefined, released), ctx.q.watch({ ticket_id: ctx.alice_ticket }, ctx.svc, undefined, released)];
  // Both are open once the server counts them: poll the metric rather than sleep.
  await streams_open(2);
  const third = await ctx.q.watch({ ticket_id: ctx.alice_ticket }, ctx.alice);
  assert.is(third.code, S.RESOURCE_EXHAUSTED);
  assert.match(third.details, /queue_watch_streams_max 2/);
  assert.match(await metrics(), /ticketing_limit_refusals_total\{limit="queue_watch_streams_max"\} 1/);
  // Each stream wrote on every change (the estimate counts down each second), then is cancelled.
  release();
  for (const stream of await Promise.all(open)) {
    assert.is(stream.code, S.CANCELLED);
    assert.ok(stream.messages.length >= 1);
  }
  await streams_open(0);
});

t('bad input: INVALID_ARGUMENT, and nothing changes', async (ctx) => {
  const before = await ctx.q.fairness({ event_id: arena_id }, ctx.admin);
  const bad_configure: Reply[] = [
    { ...ctx.settings, event_id: '' }, { ...ctx.settings, event_id: 'bad id!' },
    { ...ctx.settings, admit_per_minute: 0 }, { ...ctx.settings, admit_per_minute: -1 },
    { ...ctx.settings, admit_per_minute: 1_000_001 }, { ...ctx.settings, admission_ttl_seconds: 0 },
    { ...ctx.settings, admission_ttl_seconds: 3601 }, { ...ctx.settings, opens_at_unix: '-1' },
    { ...ctx.settings, opens_at_unix: '9007199254740991' },
    { ...ctx.settings, opens_at_unix: String(ctx.now_s + 10), sale_starts_at_unix: String(ctx.now_s) },
  ];
  for (const request of bad_configure) {
    const refused = await code_of(ctx.q.configure(request, ctx.admin));
    assert.is(refused.code, S.INVALID_ARGUMENT, JSON.stringify(request));
  }
  for (const admit_per_minute of [-1, 1_000_001]) {
    assert.is((await code_of(ctx.q.set_rate({ event_id: arena_id, admit_per_minute }, ctx.admin))).code, S.INVALID_ARGUMENT);
  }
  const bad_joins: Reply[] = [
    { event_id: arena_id, user_id: '', device_id: 'd' }, { event_id: arena_id, user_id: 'a b', device_id: 'd' },
    { event_id: arena_id, user_id: 'dave', device_id: 'x'.repeat(129) }, { event_id: '', user_id: 'dave', device_id: 'd' },
  ];
  for (const request of bad_joins) {
    assert.is((await code_of(ctx.q.join(request, ctx.svc))).code, S.INVALID_ARGUMENT, JSON.stringify(request));
  }
  for (const ticket_id of ['', 'nope', 'ticket_99_AAAAAAAAAAAAAAAAAAAAAA', 'hold_1_AAAAAAAAAAAAAAAAAAAAAA']) {
    assert.is((await code_of(ctx.q.position({ ticket_id }, ctx.svc))).code, S.INVALID_ARGUMENT, ticket_id);
  }
  const watch = await ctx.q.watch({ ticket_id: 'nope' }, ctx.svc);
  assert.is(watch.code, S.INVALID_ARGUMENT);
  assert.is((await code_of(ctx.q.fairness({ event_id: 'bad id!' }, ctx.svc))).code, S.INVALID_ARGUMENT);
  const long_token = await code_of(ctx.q.reserve({ event_id: arena_id, seat_ids: ['101-A-1'], user_id: 'alice', hold_ttl_seconds: '60' },
    ctx.alice, { 'admission-token': 'a'.repeat(257) }));
  assert.is(long_token.code, S.INVALID_ARGUMENT);
  assert.match(long_token.details, /admission-token metadata is longer than 256/);
  const forged = await code_of(ctx.q.reserve({ event_id: arena_id, seat_ids: ['101-A-1'], user_id: 'alice', hold_ttl_seconds: '60' },
    ctx.alice, { 'admission-token': 'at1.nope.1.x' }));
  assert.is(forged.code, S.PERMISSION_DENIED);
  const after = await ctx.q.fairness({ event_id: arena_id }, ctx.admin);
  assert.equal(after, before, 'nothing changed');
  assert.is((await code_of(ctx.q.fairness({ event_id: other_event }, ctx.svc))).code, S.NOT_FOUND);
  assert.is((await code_of(ctx.q.configure({ ...ctx.settings, event_id: 'evt-none' }, ctx.admin))).code, S.NOT_FOUND);
});

t('a queue not open yet refuses joins; service bypass only when configured; CloseQueue', async (ctx) => {
  // Another event, same venue, from an event file whose `queue` key opens it in an hour.
  const file = join(ctx.dir, 'bypass.json');
  const queue = {
    opens_at_unix: ctx.now_s + 3600, sale_starts_at_unix: ctx.now_s + 7200, admit_per_minute: 100,
    admission_ttl_seconds: 600, service_bypass: true,
  };
  writeFileSync(file, JSON.stringify({ ...arena_as(other_event), queue }));
  const imported = run_cli(['events', 'import', file, '--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir]);
  assert.is(imported.status, 0, imported.stderr);
  assert.match(imported.stdout, /evt-bypass: waiting room configured, seed commitment [0-9a-f]{64}/);
  const repeat = run_cli(['events', 'import', file, '--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir]);
  assert.match(repeat.stdout, /already configured \(same settings\)/);
  writeFileSync(file, JSON.stringify({ ...arena_as('evt-typo'), queue: { ...queue, admit_per_minit: 5 } }));
  const typo = run_cli(['events', 'import', file, '--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir]);
  assert.is.not(typo.status, 0);
  assert.match(typo.stderr, /queue has unknown keys: admit_per_minit/);
  const f = await ctx.q.fairness({ event_id: other_event }, ctx.alice);
  assert.equal([f['opens_at_unix'], f['admit_per_minute']], [String(ctx.now_s + 3600), 100]);
  const early = await code_of(ctx.q.join({ event_id: other_event, user_id: 'alice', device_id: 'd' }, ctx.alice));
  assert.is(early.code, S.FAILED_PRECONDITION);
  const hold = (bearer: string) => ctx.q.reserve({ event_id: other_event, seat_ids: ['101-A-3'], user_id: 'alice', hold_ttl_seconds: '60' }, bearer);
  assert.is((await code_of(hold(ctx.alice))).code, S.FAILED_PRECONDITION, 'a customer needs a token');
  const bypassed = await hold(ctx.svc);
  assert.match(String(bypassed['hold_id']), /^hold_/, 'a service bypasses: the admin said so');
  // On the arena (no bypass) the service is refused; after CloseQueue anyone holds again.
  const arena_hold = (bearer: string) => ctx.q.reserve({ event_id: arena_id, seat_ids: ['101-A-4'], user_id: 'alice', hold_ttl_seconds: '60' }, bearer);
  assert.is((await code_of(arena_hold(ctx.svc))).code, S.FAILED_PRECONDITION);
  assert.equal(await ctx.q.close_queue({ event_id: arena_id }, ctx.admin), { closed: true });
  assert.match(String((await arena_hold(ctx.alice))['hold_id']), /^hold_/);
});

/** The arena fixture under another event id, as the event file has it. */
function arena_as(event_id: string): Reply {
  return { ...(JSON.parse(readFileSync(arena_file, 'utf8')) as Reply), event_id };
}

t.run();
