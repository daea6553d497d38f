// Property-based fuzzing of a running server (fast-check): arbitrary values in every request
// field (empty, huge, control characters, invalid UTF-8, int64 extremes, duplicates, thousands of
// seats). Every answer must be a gRPC status with a short message and no internals, the server
// must stay up, and a refused call must leave the state exactly as it was.
import * as loader from '@grpc/proto-loader';
import fc from 'fast-check';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arena_file, arena_id, clients, grpc, repo_root, run_cli, stop, token, with_server } from './harness.js';

const S = grpc.status;
const allowed_codes = new Set([S.OK, S.INVALID_ARGUMENT, S.NOT_FOUND, S.FAILED_PRECONDITION, S.RESOURCE_EXHAUSTED, S.PERMISSION_DENIED, S.ALREADY_EXISTS]);
const raw_root = grpc.loadPackageDefinition(loader.loadSync(join(repo_root, 'test/fixtures/raw/inventory_raw.proto'), { keepCase: true, longs: String, defaults: true })) as any;

const int64_edges = ['0', '-1', '30', '3600', '3601', '9223372036854775807', '-9223372036854775808', '9007199254740993', '-9007199254740993'];
const nasty = ['', '-', '--', '101-A-', '-A-1', '101--1', '101-A-1 ', ' 101-A-1', '101-A-1\u0000', '\u202e101-A-1', '１０１-A-1', '101-A-1e0', '101-A-0x1', '101-A-NaN', '\uffff', '\ud800', 'hold_0_AAAAAAAAAAAAAAAAAAAAAA', 'hold_99_AAAAAAAAAAAAAAAAAAAAAA', 'evt-arena-2027-06-01'];
const text = fc.oneof(
  fc.constantFrom(...nasty),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('x'.repeat(70), 'y'.repeat(5000), 'z'.repeat(300_000)),
);
const seat = fc.oneof(fc.constantFrom('101-A-1', '101-A-2', '101-B-24', '102-A-10', '102-A-11'), text);
const seats = fc.oneof(
  fc.array(seat, { maxLength: 14 }),
  fc.constant(Array.from({ length: 5000 }, (_, i) => `101-A-${i}`)),
  fc.constant<string[]>(['101-A-3', '101-A-3']),
);
const int64 = fc.oneof(fc.constantFrom(...int64_edges), fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String));
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 30 }),
  fc.constantFrom(Uint8Array.of(0xff, 0xfe), Uint8Array.of(0xc3, 0x28), Uint8Array.of(0xed, 0xa0, 0x80), Uint8Array.of(0xf4, 0x90, 0x80, 0x80)),
);

type Op =
  | { op: 'reserve'; event_id: string; seat_ids: string[]; ttl: string; user_id: string }
  | { op: 'release'; hold_id: string }
  | { op: 'confirm'; hold_id: string; order_id: string }
  | { op: 'availability'; event_id: string; section: string }
  | { op: 'create_event'; event: Record<string, unknown> }
  | { op: 'raw_reserve'; event_id: Uint8Array; seat_ids: Uint8Array[]; ttl: string; user_id: Uint8Array }
  | { op: 'raw_release'; hold_id: Uint8Array };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('reserve' as const), event_id: fc.oneof(fc.constant(arena_id), text), seat_ids: seats, ttl: int64, user_id: fc.oneof(fc.constant('fuzz-user'), text) }),
  fc.record({ op: fc.constant('release' as const), hold_id: text }),
  fc.record({ op: fc.constant('confirm' as const), hold_id: text, order_id: text }),
  fc.record({ op: fc.constant('availability' as const), event_id: fc.oneof(fc.constant(arena_id), text), section: fc.oneof(fc.constant(''), fc.constant('101'), text) }),
  fc.record({ op: fc.constant('create_event' as const), event: fc.record({
    event_id: fc.oneof(fc.constant(arena_id), text), name: text, currency: fc.oneof(fc.constant('EUR'), text),
    price_tiers: fc.dictionary(fc.oneof(fc.constant('A'), text), int64, { maxKeys: 3 }),
    sections: fc.array(fc.record({ name: text, rows: fc.array(fc.record({ name: text, seats: fc.integer({ min: -5, max: 2_000_000 }), tier: text }), { maxLength: 3 }) }), { maxLength: 3 }),
    max_seats_per_user: fc.integer({ min: -1000, max: 1000 }),
  }) }),
  fc.record({ op: fc.constant('raw_reserve' as const), event_id: bytes, seat_ids: fc.array(bytes, { maxLength: 4 }), ttl: int64, user_id: bytes }),
  fc.record({ op: fc.constant('raw_release' as const), hold_id: bytes }),
);

test('fuzzed requests: clear statuses, server stays up, refused calls change nothing', () => with_server('fuzz', ['--workers', '1', '--partitions', '4'], async (server, dir) => {
  const c = clients(server.grpc_port);
  assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
  const svc = token(dir, 'svc', 'service');
  const admin = token(dir, 'ops', 'admin');
  const raw = new raw_root.ticketing.inventory.v1.InventoryService(`127.0.0.1:${server.grpc_port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 8 * 1024 * 1024 });
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${svc}`);
  const raw_call = (method: string, request: unknown) => new Promise((resolve, reject) => raw[method](request, metadata, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r))));
  const state = async () => JSON.stringify(await c.availability({ event_id: arena_id }, svc));
  let calls = 0;
  let refused = 0;

  await fc.assert(fc.asyncProperty(op, async (o) => {
    const before = await state();
    let outcome: unknown;
    let error: grpc.ServiceError | undefined;
    try {
      switch (o.op) {
        case 'reserve': outcome = await c.reserve({ event_id: o.event_id, seat_ids: o.seat_ids, hold_ttl_seconds: o.ttl, user_id: o.user_id }, svc); break;
        case 'release': outcome = await c.release({ hold_id: o.hold_id }, svc); break;
        case 'confirm': outcome = await c.confirm({ hold_id: o.hold_id, order_id: o.order_id }, svc); break;
        case 'availability': outcome = await c.availability({ event_id: o.event_id, section: o.section }, svc); break;
        case 'create_event': outcome = await c.create_event({ event: o.event }, admin); break;
        case 'raw_reserve': outcome = await raw_call('ReserveTickets', { event_id: o.event_id, seat_ids: o.seat_ids, hold_ttl_seconds: o.ttl, user_id: o.user_id }); break;
        case 'raw_release': outcome = await raw_call('ReleaseHold', { hold_id: o.hold_id }); break;
      }
    } catch (e) {
      error = e as grpc.ServiceError;
    }
    calls++;
    if (error === undefined) {
      // A fuzzed input that happens to be valid: undo a hold so the baseline stays fixed.
      const hold_id = (outcome as { hold_id?: string }).hold_id;
      if (hold_id) assert.equal(await c.release({ hold_id }, svc), { released: true });
      return;
    }
    refused++;
    assert.ok(typeof error.code === 'number' && allowed_codes.has(error.code), `${o.op}: unexpected status ${S[error.code]}: ${error.details}`);
    assert.ok(typeof error.details === 'string' && error.details.length > 0 && error.details.length < 2000, `${o.op}: short, non-empty message`);
    assert.not.match(error.details, /\n\s+at |\/work\/|node_modules|dist\/|TypeError|undefined/, `${o.op}: no internals: ${error.details}`);
    assert.is(await state(), before, `${o.op}: a refused call changed nothing`);
  }), { numRuns: 150, seed: 424242 });

  assert.ok(refused > 50 && calls === 150, `fuzzing reached the server (${refused} of ${calls} refused)`);
  // Still serving.
  const hold = await c.reserve({ event_id: arena_id, seat_ids: ['102-A-1'], hold_ttl_seconds: 60, user_id: 'after' }, svc);
  assert.equal(await c.release({ hold_id: hold.hold_id }, svc), { released: true });
  assert.is(server.process.exitCode, null, 'server alive');
  raw.close();
  c.close();
  assert.is(await stop(server), 0);
}));

test.run();
