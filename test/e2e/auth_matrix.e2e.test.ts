// Every served RPC × {no token, expired, bad signature, wrong role, another user's resource}:
// each answered with the right code, and nothing changed. Cells that cannot apply to an RPC are
// listed with the reason, so the matrix stays complete on paper too.
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load_secret, sign_token, type Role } from '../../src/auth/token.js';
import { arena_file, arena_id, clients, code_of, grpc, run_cli, stop, with_server, type Clients } from './harness.js';

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
}

test('authorization matrix over every served RPC', () => with_server('matrix', ['--workers', '1', '--partitions', '4', '--test-clock'], async (server, dir) => {
  const c = clients(server.grpc_port);
  assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
  const secret = load_secret(dir, process.env, false);
  const mint = (user_id: string, role: Role) => sign_token(secret, { user_id, role }, 3600);
  const svc = mint('svc', 'service');
  const alice = mint('alice', 'customer');
  const alice_hold = (await c.reserve({ event_id: arena_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 600, user_id: 'alice' }, alice)).hold_id as string;
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
  ];

  const state = async () => JSON.stringify([
    await c.availability({ event_id: arena_id }, svc),
    await c.get_event({ event_id: 'evt-matrix' }, svc).then(() => 'exists', (e: grpc.ServiceError) => e.code),
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
    if (typeof row.other_user === 'number') cases.push(["another user's resource", mint('mallory', row.allowed), row.other_user]);
    else cells.push(`${row.rpc} × another user's resource: ${row.other_user}`);
    for (const [name, bearer, expected] of cases) {
      const { code, details } = await code_of(row.call(c, bearer));
      assert.is(code, expected, `${row.rpc} × ${name}: expected ${S[expected]}, got ${S[code]} (${details})`);
      assert.ok(details.length > 0, `${row.rpc} × ${name}: a message`);
      if (bearer !== undefined) assert.not.ok(details.includes(bearer.split('.')[2]!), `${row.rpc} × ${name}: token not echoed`);
      cells.push(`${row.rpc} × ${name}: ${S[code]}`);
    }
  }
  assert.is(await state(), before, 'no refused call changed anything');
  assert.equal(await c.release({ hold_id: alice_hold }, alice), { released: true }, "alice's hold untouched by the others");
  assert.is(cells.length, rows.length * 5, 'every cell of the matrix accounted for');
  c.close();
  assert.is(await stop(server), 0);
}));

test.run();
