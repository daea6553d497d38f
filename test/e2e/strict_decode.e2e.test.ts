// Damaged request bytes on a real socket (a grpc-js client with identity serializers sends them
// as they are): each is refused INVALID_ARGUMENT and changes nothing, or is a valid encoding and
// is answered as exactly that request. Issue 10: a ReserveTickets whose last seat id "102-B-10"
// lost its last byte (length prefix 8, 7 bytes follow) was answered OK holding 102-B-1.
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { protoPath as health_proto_path } from 'grpc-health-check';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arena_file, arena_id, clients, grpc, repo_root, run_cli, stop, token, with_server, type Clients } from './harness.js';
import { mutate, mutation, oracle_valid, request_samples } from '../grpc/wire_oracle.js';

const S = grpc.status;
const root = new protobuf.Root();
root.resolvePath = (_origin, target) => (target.startsWith('/') ? target : join(repo_root, 'proto', target));
root.loadSync([
  'ticketing/inventory/v1/inventory.proto', 'ticketing/catalog/v1/catalog.proto', 'ticketing/testing/v1/test_clock.proto',
  'ticketing/order/v1/order.proto', 'ticketing/order/v1/order_query.proto', 'ticketing/payment/v1/payment.proto',
  'ticketing/fraud/v1/fraud.proto', health_proto_path,
], { keepCase: true });
root.resolveAll();
const Reserve = root.lookupType('ticketing.inventory.v1.ReserveTicketsRequest');

/** Sends `bytes` as the request body, as they are; resolves with the status and the reply bytes. */
function raw_call(client: grpc.Client, path: string, bytes: Buffer, bearer: string): Promise<{ code: number; details: string; reply?: Buffer }> {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, bytes, metadata, (error, reply) => {
      if (error) resolve({ code: error.code, details: error.details });
      else resolve({ code: S.OK, details: '', reply: reply! });
    });
  });
}

/** ReserveTickets with the fields in the order 1, 4, 3, 2: the seat ids come last. */
function reserve_bytes(event_id: string, seat_ids: string[], user_id: string): Buffer {
  const w = protobuf.Writer.create();
  w.uint32((1 << 3) | 2).string(event_id);
  w.uint32((4 << 3) | 2).string(user_id);
  w.uint32(3 << 3).int64(60);
  for (const seat of seat_ids) w.uint32((2 << 3) | 2).string(seat);
  return Buffer.from(w.finish());
}

async function metric(http_port: number, line_start: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${http_port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(line_start));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

const strict_event = 'evt-strict-2027-06-01';

async function import_events(c: Clients, admin: string): Promise<void> {
  // Section 102 with a row B of 12 seats: both 102-B-1 and 102-B-10 exist.
  const arena = JSON.parse(readFileSync(arena_file, 'utf8'));
  await c.create_event({ event: { ...arena, event_id: strict_event, sections: [{ name: '102', rows: [{ name: 'A', seats: 10, tier: 'B' }, { name: 'B', seats: 12, tier: 'B' }] }] } }, admin);
}

test('issue 10: ReserveTickets with its last seat id cut by one byte is INVALID_ARGUMENT and holds nothing; field 0 too', () => with_server('strict', ['--workers', '1', '--partitions', '4'], async (server, dir) => {
  const c = clients(server.grpc_port);
  const admin = token(dir, 'ops', 'admin');
  const svc = token(dir, 'svc', 'service');
  await import_events(c, admin);
  const raw = new grpc.Client(`127.0.0.1:${server.grpc_port}`, grpc.credentials.createInsecure());
  const path = '/ticketing.inventory.v1.InventoryService/ReserveTickets';
  const free_102 = async () => {
    const a = await c.availability({ event_id: strict_event, section: '102' }, svc);
    return { held: a.held, free: a.sections[0].free_seat_ids as string[] };
  };

  const whole = reserve_bytes(strict_event, ['102-B-10'], 'victim');
  const cut = whole.subarray(0, whole.length - 1);
  assert.is(cut[cut.length - 8], 8, 'the length prefix still says 8');
  const refused = await raw_call(raw, path, cut, svc);
  assert.is(S[refused.code], 'INVALID_ARGUMENT', `status: ${refused.details}`);
  assert.match(refused.details, /^ReserveTickets: malformed request: ticketing\.inventory\.v1\.ReserveTicketsRequest field 2 at byte \d+: length 8 exceeds the 7 bytes left$/);
  const after = await free_102();
  assert.is(after.held, '0', 'nothing held');
  assert.ok(after.free.includes('102-B-1') && after.free.includes('102-B-10'), 'both seats still free');

  // Field number 0, anywhere in the message.
  for (const bytes of [Buffer.concat([Buffer.from([0x00, 0x01]), whole]), Buffer.concat([whole, Buffer.from([0x02, 0x00])])]) {
    const r = await raw_call(raw, path, bytes, svc);
    assert.is(S[r.code], 'INVALID_ARGUMENT', r.details);
    assert.match(r.details, /field number 0 is not allowed/);
  }
  // Invalid UTF-8 in a seat id: refused at the wire, not echoed.
  const bad_utf8 = Buffer.concat([reserve_bytes(strict_event, [], 'victim'), Buffer.from([0x12, 0x03, 0x31, 0xc3, 0x28])]);
  const u = await raw_call(raw, path, bad_utf8, svc);
  assert.is(S[u.code], 'INVALID_ARGUMENT');
  assert.match(u.details, /field 2 at byte \d+: string is not valid UTF-8$/);
  assert.is((await free_102()).held, '0', 'still nothing held');

  // Other services get the check too: grpc.health.v1 (not ours), catalog.
  const h = await raw_call(raw, '/grpc.health.v1.Health/Check', Buffer.from([0x0a, 0x05, 0x61]), svc);
  assert.is(S[h.code], 'INVALID_ARGUMENT', h.details);
  const g = await raw_call(raw, '/ticketing.catalog.v1.CatalogService/GetAvailability', Buffer.from([0x0b]), svc);
  assert.is(S[g.code], 'INVALID_ARGUMENT', g.details);
  assert.match(g.details, /wire type 3 \(group\)/);

  // The same bytes whole are answered as the request they are: 102-B-10 held, not 102-B-1.
  // An unknown field with a valid encoding is skipped (a newer client's field).
  const ok = await raw_call(raw, path, Buffer.concat([whole, Buffer.from([0xb8, 0x06, 0x01])]), svc);
  assert.is(S[ok.code], 'OK', ok.details);
  const held = await free_102();
  assert.is(held.held, '1');
  assert.ok(held.free.includes('102-B-1') && !held.free.includes('102-B-10'), 'exactly 102-B-10 held');

  assert.is(await metric(server.http_port, 'ticketing_requests_malformed_total{service="InventoryService",method="ReserveTickets"}'), 4);
  assert.is(await metric(server.http_port, 'ticketing_requests_malformed_total{service="Health",method="Check"}'), 1);
  assert.is(await metric(server.http_port, 'ticketing_grpc_requests_total{service="InventoryService",method="ReserveTickets",code="INVALID_ARGUMENT"}'), 4);
  raw.close();
  c.close();
  assert.is(await stop(server), 0);
}));

test('fuzz: truncations and bit flips of valid requests of every served method', () => with_server('strict-fuzz', ['--workers', '1', '--partitions', '4', '--test-clock'], async (server, dir) => {
  const c = clients(server.grpc_port);
  assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
  const admin = token(dir, 'ops', 'admin');
  const raw = new grpc.Client(`127.0.0.1:${server.grpc_port}`, grpc.credentials.createInsecure());
  const state = async () => JSON.stringify(await c.availability({ event_id: arena_id }, admin));
  const samples: Record<string, Record<string, unknown>> = { ...request_samples(arena_id), Check: { service: '' }, List: {} };
  const methods: { path: string; type: protobuf.Type; sample: Uint8Array }[] = [];
  const services = ['ticketing.inventory.v1.InventoryService', 'ticketing.catalog.v1.CatalogService', 'ticketing.testing.v1.TestClockService',
    'ticketing.order.v1.OrderService', 'ticketing.order.v1.OrderQueryService', 'ticketing.payment.v1.PaymentService', 'ticketing.fraud.v1.FraudService', 'grpc.health.v1.Health'];
  for (const name of services) {
    for (const method of root.lookupService(name).methodsArray) {
      if (method.requestStream || method.responseStream) continue; // Health/Watch
      method.resolve();
      const type = method.resolvedRequestType!;
      const encoded = type.encode(type.fromObject(samples[method.name]!)).finish();
      // An empty request (Health/List) is mutated as one unknown field: field 100, varint 1.
      methods.push({ path: `/${name}/${method.name}`, type, sample: encoded.length > 0 ? encoded : Uint8Array.of(0xa0, 0x06, 0x01) });
    }
  }
  assert.is(methods.length, 17, 'every unary method served');
  let refused = 0;
  let passed = 0;
  for (const m of methods) {
    await fc.assert(fc.asyncProperty(mutation(m.sample.length), async (mut) => {
      const bytes = mutate(m.sample, mut);
      const valid = oracle_valid(bytes, m.type);
      const before = await state();
      const r = await raw_call(raw, m.path, bytes, admin);
      assert.is.not(r.code, S.INTERNAL, `${m.path} ${bytes.toString('hex')}: never INTERNAL (${r.details})`);
      const malformed = r.code === S.INVALID_ARGUMENT && /: malformed request: /.test(r.details);
      assert.is(malformed, !valid, `${m.path} ${bytes.toString('hex')}: refused as malformed exactly when the oracle says invalid (${S[r.code]} ${r.details})`);
      if (malformed) {
        refused++;
        assert.is(await state(), before, 'a refused request changed nothing');
        return;
      }
      passed++;
      if (m.path.endsWith('/ReserveTickets') && r.code === S.OK) {
        // Held exactly the seats the bytes name (as protobufjs decodes valid bytes), then undone.
        const seats = [...new Set((Reserve.toObject(Reserve.decode(bytes)) as { seat_ids?: string[] }).seat_ids ?? [])];
        assert.is(Number((await c.availability({ event_id: arena_id }, admin)).held), seats.length, 'held the decoded seats');
        const reply = root.lookupType('ticketing.inventory.v1.ReserveTicketsResponse').decode(r.reply!) as unknown as { hold_id: string };
        assert.equal(await c.release({ hold_id: reply.hold_id }, admin), { released: true });
      }
    }), { numRuns: 12, seed: 1010 });
  }
  assert.ok(refused > 40 && passed > 10, `both outcomes reached the server (${refused} refused, ${passed} passed)`);
  assert.is(server.process.exitCode, null, 'server alive');
  raw.close();
  c.close();
  assert.is(await stop(server), 0);
}));

test.run();
