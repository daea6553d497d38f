// Hostile and malformed input: each gets a clear gRPC error (no stack, no path), changes
// nothing, and the server keeps serving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arena_file, arena_id, cleanup, clients, code_of, grpc, run_cli, start_server, stop, temp_dir, token } from './harness.js';

const S = grpc.status;

test('bad input is refused clearly and changes nothing', async () => {
  const dir = temp_dir('bad');
  const server = await start_server(dir, ['--workers', '1', '--partitions', '4']);
  const c = clients(server.grpc_port);
  const svc = token(dir, 'svc', 'service');
  assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
  const snapshot = async () => JSON.stringify(await c.availability({ event_id: arena_id }, svc));
  const before = await snapshot();
  const mb = 'x'.repeat(1_000_000);
  const ok = { event_id: arena_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 60, user_id: 'u1' };
  const cases: [string, () => Promise<unknown>, number[]][] = [
    ['empty event_id', () => c.reserve({ ...ok, event_id: '' }, svc), [S.INVALID_ARGUMENT]],
    ['empty user_id', () => c.reserve({ ...ok, user_id: '' }, svc), [S.INVALID_ARGUMENT]],
    ['empty seat id', () => c.reserve({ ...ok, seat_ids: [''] }, svc), [S.INVALID_ARGUMENT]],
    ['unknown event', () => c.reserve({ ...ok, event_id: 'evt-unknown' }, svc), [S.NOT_FOUND]],
    ['unknown seat', () => c.reserve({ ...ok, seat_ids: ['999-Q-1'] }, svc), [S.INVALID_ARGUMENT]],
    ['duplicate seats', () => c.reserve({ ...ok, seat_ids: ['101-A-1', '101-A-1'] }, svc), [S.INVALID_ARGUMENT]],
    ['10,000 seat ids', () => c.reserve({ ...ok, seat_ids: Array.from({ length: 10_000 }, (_, i) => `101-A-${i}`) }, svc), [S.RESOURCE_EXHAUSTED]],
    ['1 MB event_id', () => c.reserve({ ...ok, event_id: mb }, svc), [S.INVALID_ARGUMENT, S.RESOURCE_EXHAUSTED]],
    ['1 MB user_id', () => c.reserve({ ...ok, user_id: mb }, svc), [S.INVALID_ARGUMENT, S.RESOURCE_EXHAUSTED]],
    ['1 MB seat id', () => c.reserve({ ...ok, seat_ids: [mb] }, svc), [S.INVALID_ARGUMENT, S.RESOURCE_EXHAUSTED]],
    ['1 MB hold_id', () => c.release({ hold_id: mb }, svc), [S.INVALID_ARGUMENT, S.RESOURCE_EXHAUSTED]],
    ['control chars in seat id', () => c.reserve({ ...ok, seat_ids: ['101-A-1\u0000'] }, svc), [S.INVALID_ARGUMENT]],
    ['negative ttl', () => c.reserve({ ...ok, hold_ttl_seconds: -5 }, svc), [S.INVALID_ARGUMENT]],
    ['huge ttl', () => c.reserve({ ...ok, hold_ttl_seconds: '9223372036854775807' }, svc), [S.INVALID_ARGUMENT]],
    ['most negative ttl', () => c.reserve({ ...ok, hold_ttl_seconds: '-9223372036854775808' }, svc), [S.INVALID_ARGUMENT]],
    ['empty hold_id', () => c.release({ hold_id: '' }, svc), [S.INVALID_ARGUMENT]],
    ['malformed hold_id', () => c.release({ hold_id: 'hold_99999_AAAAAAAAAAAAAAAAAAAAAA' }, svc), [S.INVALID_ARGUMENT]],
    ['empty order_id', () => c.confirm({ hold_id: 'hold_1_AAAAAAAAAAAAAAAAAAAAAA', order_id: '' }, svc), [S.INVALID_ARGUMENT]],
    ['unknown section', () => c.availability({ event_id: arena_id, section: 'nope' }, svc), [S.INVALID_ARGUMENT]],
    ['event without sections', () => c.create_event({ event: { event_id: 'e2', name: 'n', currency: 'EUR', price_tiers: { A: '1' } } }, token(dir, 'ops', 'admin')), [S.INVALID_ARGUMENT]],
    ['price beyond 2^53', () => c.create_event({ event: { event_id: 'e3', name: 'n', currency: 'EUR', price_tiers: { A: '9007199254740993' }, sections: [{ name: '1', rows: [{ name: 'A', seats: 1, tier: 'A' }] }] } }, token(dir, 'ops', 'admin')), [S.INVALID_ARGUMENT]],
  ];
  for (const [name, call, codes] of cases) {
    const { code, details } = await code_of(call());
    assert.ok(codes.includes(code), `${name}: expected ${codes.map((x) => S[x]).join('/')}, got ${S[code]} (${details})`);
    assert.ok(details.length > 0 && details.length < 2000, `${name}: a short message a person can act on`);
    assert.not.match(details, /\n\s+at |\/work\/|node_modules|dist\//, `${name}: no stack trace or path`);
  }
  assert.is(await snapshot(), before, 'nothing changed');
  const get = await c.get_event({ event_id: 'e2' }, svc).then(() => 'exists', (e: grpc.ServiceError) => e.code);
  assert.is(get, S.NOT_FOUND, 'invalid events were not created');
  // Still serving.
  const hold = await c.reserve(ok, svc);
  assert.equal(await c.release({ hold_id: hold.hold_id }, svc), { released: true });
  c.close();
  assert.is(await stop(server), 0);
  cleanup(dir);
});

test.run();
