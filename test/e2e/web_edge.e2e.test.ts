// The web edge (--web) against a real `ticketing serve` process: every case of an auth matrix and
// of bad input gets the same code over Connect (JSON and binary) and gRPC-Web as over gRPC, with
// the same details; bytes that are no valid request are refused INVALID_ARGUMENT with gRPC's
// message and counted, over each; a hold taken over Connect is seen over gRPC; WatchAvailability
// streams over Connect; curl calls a unary RPC with JSON; CORS is closed but for the listed origin; dev tokens only on loopback and on demand.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load_secret, sign_token, type Role } from '../../src/auth/token.js';
import { guarded_after } from '../guard.js';
import {
  arena_file, arena_id, bin, cleanup, clients, code_of, grpc, run_cli, start_server, stop, temp_dir,
  type Clients, type Server,
} from './harness.js';
import {
  transport, web_call, web_code_of, web_port_of, web_stream, type Protocol,
} from './web_client.js';

const S = grpc.status;
const protocols: Protocol[] = ['connect-json', 'connect-binary', 'grpc-web'];
const allowed_origin = 'http://box-office.example';

const dir = temp_dir('web-edge');
let server: Server;
let c: Clients;
let web_port = 0;
let mint: (user_id: string, role: Role, ttl_s?: number, now_ms?: number) => string;

const ready = (async () => {
  server = await start_server(dir, [
    '--workers', '1', '--partitions', '2', '--web', '127.0.0.1:0',
    '--web-cors-origins', allowed_origin,
  ]);
  web_port = web_port_of(server.log);
  c = clients(server.grpc_port);
  const imported = run_cli(['events', 'import', arena_file, '--server',
    `127.0.0.1:${server.grpc_port}`, '--data', dir]);
  assert.is(imported.status, 0, imported.stderr);
  const secret = load_secret(dir, process.env, false);
  mint = (user_id, role, ttl_s = 3600, now_ms = Date.now()) => sign_token(secret, { user_id, role }, ttl_s, now_ms);
})();

guarded_after(test, async () => {
  c?.close();
  if (server !== undefined) await stop(server);
  cleanup(dir);
});

interface Row {
  path: string;
  /** The request in gRPC's form (proto field names) and in JSON's (what Connect sends). */
  grpc: (bearer: string | undefined) => Promise<unknown>;
  json: Record<string, unknown>;
}

/** One cell: the gRPC code, then each web protocol's, all equal to `expected`, same details. */
async function same_codes(row: Row, bearer: string | undefined, expected: number, label: string) {
  const over_grpc = await code_of(row.grpc(bearer));
  assert.is(over_grpc.code, expected, `${label} over gRPC: ${S[over_grpc.code]} ${over_grpc.details}`);
  for (const protocol of protocols) {
    const t = transport(web_port, protocol);
    const over_web = await web_code_of(web_call(t, row.path, row.json as never, bearer));
    assert.is(over_web.code, expected, `${label} over ${protocol}: ${over_web.code} ${over_web.details}`);
    assert.is(over_web.details, over_grpc.details, `${label} over ${protocol}: the same details`);
  }
}

test('auth matrix: the same code over Connect and gRPC-Web as over gRPC', async () => {
  await ready;
  const alice = mint('alice', 'customer');
  const hold = await c.reserve({ event_id: arena_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 600, user_id: 'alice' }, alice);
  const rows: (Row & { wrong_role?: Role; other?: [Role, number] })[] = [
    { path: 'ticketing.catalog.v1.CatalogService/GetAvailability',
      grpc: (b) => c.availability({ event_id: arena_id }, b), json: { eventId: arena_id } },
    { path: 'ticketing.catalog.v1.CatalogService/CreateEvent', wrong_role: 'customer',
      grpc: (b) => c.create_event({ event: { event_id: 'evt-x', name: 'X', currency: 'EUR', price_tiers: { A: '1' }, sections: [{ name: '1', rows: [{ name: 'A', seats: 2, tier: 'A' }] }] } }, b),
      json: { event: { eventId: 'evt-x', name: 'X', currency: 'EUR', priceTiers: { A: '1' }, sections: [{ name: '1', rows: [{ name: 'A', seats: 2, tier: 'A' }] }] } } },
    { path: 'ticketing.inventory.v1.InventoryService/ReserveTickets', other: ['customer', S.PERMISSION_DENIED],
      grpc: (b) => c.reserve({ event_id: arena_id, seat_ids: ['101-A-2'], hold_ttl_seconds: 60, user_id: 'alice' }, b),
      json: { eventId: arena_id, seatIds: ['101-A-2'], holdTtlSeconds: 60, userId: 'alice' } },
    { path: 'ticketing.inventory.v1.InventoryService/ReleaseHold', other: ['customer', S.NOT_FOUND],
      grpc: (b) => c.release({ hold_id: hold.hold_id }, b), json: { holdId: hold.hold_id } },
    { path: 'ticketing.inventory.v1.InventoryService/ConfirmAllocation', wrong_role: 'customer',
      grpc: (b) => c.confirm({ order_id: 'order-m', hold_id: hold.hold_id }, b),
      json: { orderId: 'order-m', holdId: hold.hold_id } },
  ];
  const expired = mint('alice', 'admin', 60, Date.now() - 2 * 3600_000);
  const forged = sign_token(randomBytes(32), { user_id: 'alice', role: 'admin' }, 3600);
  let cells = 0;
  for (const row of rows) {
    await same_codes(row, undefined, S.UNAUTHENTICATED, `${row.path} × no token`);
    await same_codes(row, expired, S.UNAUTHENTICATED, `${row.path} × expired`);
    await same_codes(row, forged, S.UNAUTHENTICATED, `${row.path} × bad signature`);
    await same_codes(row, 'not-a-jwt', S.UNAUTHENTICATED, `${row.path} × garbage token`);
    cells += 4;
    if (row.wrong_role !== undefined) {
      await same_codes(row, mint('alice', row.wrong_role), S.PERMISSION_DENIED, `${row.path} × wrong role`);
      cells++;
    }
    if (row.other !== undefined) {
      await same_codes(row, mint('mallory', row.other[0]), row.other[1], `${row.path} × other user`);
      cells++;
    }
  }
  assert.is(cells, 5 * 4 + 2 + 2, 'every cell ran');
  // Nothing refused changed anything: alice's one hold is all that is held.
  assert.is((await c.availability({ event_id: arena_id }, alice)).held, '1');
});

test('bad input: the same code and details over every protocol', async () => {
  await ready;
  const alice = mint('alice', 'customer');
  const unknown_order = `order_0_${'A'.repeat(22)}`;
  const bad: [Row, number][] = [
    [{ path: 'ticketing.catalog.v1.CatalogService/GetAvailability',
      grpc: (b) => c.availability({ event_id: 'evt arena' }, b), json: { eventId: 'evt arena' } }, S.INVALID_ARGUMENT],
    [{ path: 'ticketing.catalog.v1.CatalogService/GetAvailability',
      grpc: (b) => c.availability({ event_id: 'evt-none' }, b), json: { eventId: 'evt-none' } }, S.NOT_FOUND],
    [{ path: 'ticketing.catalog.v1.CatalogService/GetEvent',
      grpc: (b) => c.get_event({ event_id: '' }, b), json: {} }, S.INVALID_ARGUMENT],
    [{ path: 'ticketing.inventory.v1.InventoryService/ReserveTickets',
      grpc: (b) => c.reserve({ event_id: arena_id, seat_ids: [], hold_ttl_seconds: 60, user_id: 'alice' }, b),
      json: { eventId: arena_id, seatIds: [], holdTtlSeconds: 60, userId: 'alice' } }, S.INVALID_ARGUMENT],
    [{ path: 'ticketing.inventory.v1.InventoryService/ReserveTickets',
      grpc: (b) => c.reserve({ event_id: arena_id, seat_ids: ['999-Z-1'], hold_ttl_seconds: 60, user_id: 'alice' }, b),
      json: { eventId: arena_id, seatIds: ['999-Z-1'], holdTtlSeconds: 60, userId: 'alice' } }, S.INVALID_ARGUMENT],
    [{ path: 'ticketing.order.v1.OrderQueryService/GetOrder',
      grpc: (b) => c.get_order({ order_id: 'order_nope' }, b), json: { orderId: 'order_nope' } }, S.INVALID_ARGUMENT],
    [{ path: 'ticketing.order.v1.OrderQueryService/GetOrder',
      grpc: (b) => c.get_order({ order_id: unknown_order }, b), json: { orderId: unknown_order } }, S.NOT_FOUND],
  ];
  for (const [row, expected] of bad) {
    await same_codes(row, alice, expected, `${row.path} ${JSON.stringify(row.json)}`);
  }
});

/** `bytes` as they are over gRPC (grpc-js with identity serializers). */
function raw_grpc(path: string, bytes: Buffer, bearer: string): Promise<{ code: number; details: string }> {
  const client = new grpc.Client(`127.0.0.1:${server.grpc_port}`, grpc.credentials.createInsecure());
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${bearer}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, (b: Buffer) => b, (b: Buffer) => b, bytes, metadata, (error) => {
      client.close();
      resolve(error ? { code: error.code, details: error.details } : { code: S.OK, details: '' });
    });
  });
}

/** `bytes` as the body of a Connect unary binary call (optionally gzip'd). */
async function raw_connect(path: string, bytes: Buffer, bearer: string, gzip = false) {
  const answer = await fetch(`http://127.0.0.1:${web_port}${path}`, {
    method: 'POST', body: new Uint8Array(gzip ? gzipSync(bytes) : bytes),
    headers: { 'content-type': 'application/proto', authorization: `Bearer ${bearer}`,
      ...(gzip ? { 'content-encoding': 'gzip' } : {}) },
  });
  assert.match(answer.headers.get('content-type') ?? '', /json/, 'a Connect error');
  return ((await answer.json()) as { code: string; message: string });
}

/** `bytes` in one gRPC-Web envelope; the status from the trailers (a header or the body's
 *  trailer frame, flag 0x80). */
async function raw_grpc_web(path: string, bytes: Buffer, bearer: string) {
  const envelope = Buffer.alloc(5);
  envelope.writeUInt32BE(bytes.byteLength, 1);
  const answer = await fetch(`http://127.0.0.1:${web_port}${path}`, {
    method: 'POST', body: new Uint8Array(Buffer.concat([envelope, bytes])),
    headers: { 'content-type': 'application/grpc-web+proto', authorization: `Bearer ${bearer}` },
  });
  const body = Buffer.from(await answer.arrayBuffer());
  const trailers = new Headers(answer.headers);
  for (let at = 0; at + 5 <= body.byteLength;) {
    const length = body.readUInt32BE(at + 1);
    if ((body[at]! & 0x80) !== 0) {
      for (const line of body.subarray(at + 5, at + 5 + length).toString('utf8').split('\r\n')) {
        const colon = line.indexOf(':');
        if (colon > 0) trailers.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
    }
    at += 5 + length;
  }
  return { code: Number(trailers.get('grpc-status')),
    details: decodeURIComponent(trailers.get('grpc-message') ?? '') };
}

async function malformed_count(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${server.http_port}/metrics`)).text();
  const prefix = 'ticketing_requests_malformed_total{service="CatalogService",method="GetAvailability"}';
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

test('bytes that are no valid request: INVALID_ARGUMENT over every protocol, as over gRPC', async () => {
  await ready;
  const alice = mint('alice', 'customer');
  const path = '/ticketing.catalog.v1.CatalogService/GetAvailability';
  // Field number 0; event_id (field 1, length-delimited) saying 20 bytes where 3 follow; an
  // event_id that is not UTF-8; a group start (wire type 3). protobuf-es (Connect's decoder)
  // refuses the first two itself, so the web edge must decode the client's bytes with the
  // gRPC edge's deserializer before Connect does (web_binary.ts).
  const cases = [Buffer.from([0x02, 1, 0x41]), Buffer.from([0x0a, 20, 0x65, 0x76, 0x74]),
    Buffer.from([0x0a, 2, 0xc3, 0x28]), Buffer.from([0x0b])];
  for (const bytes of cases) {
    const label = bytes.toString('hex');
    const before = await malformed_count();
    const over_grpc = await raw_grpc(path, bytes, alice);
    assert.is(over_grpc.code, S.INVALID_ARGUMENT, `${label} over gRPC: ${over_grpc.details}`);
    assert.match(over_grpc.details, /^GetAvailability: malformed request: /);
    const connect = await raw_connect(path, bytes, alice);
    assert.is(connect.code, 'invalid_argument', `${label} over Connect: ${connect.message}`);
    assert.is(connect.message, over_grpc.details, `${label}: Connect's message is gRPC's`);
    const zipped = await raw_connect(path, bytes, alice, true);
    assert.is(zipped.code, 'invalid_argument', `${label} gzip'd over Connect: ${zipped.message}`);
    assert.is(zipped.message, over_grpc.details, `${label} gzip'd: Connect's message is gRPC's`);
    const web = await raw_grpc_web(path, bytes, alice);
    assert.is(web.code, S.INVALID_ARGUMENT, `${label} over gRPC-Web: ${web.code} ${web.details}`);
    assert.is(web.details, over_grpc.details, `${label}: gRPC-Web's message is gRPC's`);
    assert.is(await malformed_count(), before + 4, `${label}: each refusal counted once`);
  }
  // The same request made valid is served over both (the handler got the decoded request).
  const valid = Buffer.concat([Buffer.from([0x0a, arena_id.length]), Buffer.from(arena_id)]);
  assert.is((await raw_grpc(path, valid, alice)).code, S.OK);
  assert.is((await raw_grpc_web(path, valid, alice)).code, S.OK);
});

test('a hold taken over Connect is the node\'s: gRPC sees it, and releases it', async () => {
  await ready;
  const bob = mint('bob', 'customer');
  const t = transport(web_port, 'connect-json');
  const reply = await web_call(t, 'ticketing.inventory.v1.InventoryService/ReserveTickets', {
    eventId: arena_id, seatIds: ['102-A-1', '102-A-2'], holdTtlSeconds: 120, userId: 'bob',
  }, bob);
  assert.type(reply['holdId'], 'string');
  assert.match(String(reply['expiresAtUnix']), /^[0-9]+$/, 'int64 as a JSON string');
  const seen = await c.availability({ event_id: arena_id, section: '102' }, bob);
  assert.not.ok((seen.sections[0].free_seat_ids as string[]).includes('102-A-1'), 'held over gRPC too');
  const released = await c.release({ hold_id: reply['holdId'] }, bob);
  assert.is(released.released, true);
});

test('WatchAvailability streams over Connect: the picture, then a change', async () => {
  await ready;
  const carol = mint('carol', 'customer');
  const t = transport(web_port, 'connect-json');
  const messages: { full?: boolean; changedSeats?: number[]; held?: string }[] = [];
  const leave = new AbortController();
  const done = web_stream(t, 'ticketing.catalog.v1.CatalogService/WatchAvailability',
    { eventId: arena_id }, carol, (m) => messages.push(m as never), leave.signal)
    .catch((error: unknown) => error);
  for (let i = 0; i < 100 && messages.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(messages.length >= 1, 'the first message arrived');
  assert.is(messages[0]!.full, true, 'the whole picture first');
  const hold = await c.reserve({ event_id: arena_id, seat_ids: ['101-B-7'], hold_ttl_seconds: 60, user_id: 'carol' }, carol);
  for (let i = 0; i < 100 && !messages.some((m) => (m.changedSeats ?? []).length > 0); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(messages.some((m) => (m.changedSeats ?? []).length > 0), 'the hold came as a change');
  leave.abort();
  await done;
  await c.release({ hold_id: hold.hold_id }, carol);
  const refused = await web_code_of(web_stream(t, 'ticketing.catalog.v1.CatalogService/WatchAvailability',
    { eventId: arena_id }, undefined, () => undefined, new AbortController().signal));
  assert.is(refused.code, S.UNAUTHENTICATED, 'a stream without a token is refused as over gRPC');
});

test('curl calls a unary RPC with JSON (the Connect protocol)', async () => {
  await ready;
  const token = mint('dave', 'customer');
  const r = spawnSync('curl', ['-sS', '-X', 'POST',
    `http://127.0.0.1:${web_port}/ticketing.catalog.v1.CatalogService/GetAvailability`,
    '-H', 'content-type: application/json', '-H', `authorization: Bearer ${token}`,
    '-d', JSON.stringify({ eventId: arena_id, section: '102' })], { encoding: 'utf8' });
  assert.is(r.status, 0, `curl ran (is it installed?): ${r.stderr ?? ''}${r.error?.message ?? ''}`);
  const body = JSON.parse(r.stdout) as { eventId: string; sections: { name: string }[] };
  assert.is(body.eventId, arena_id);
  assert.is(body.sections[0]!.name, '102');
});

test('CORS: closed but for --web-cors-origins', async () => {
  await ready;
  const url = `http://127.0.0.1:${web_port}/ticketing.catalog.v1.CatalogService/GetAvailability`;
  const preflight = (origin: string) => fetch(url, { method: 'OPTIONS', headers: {
    origin, 'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization,content-type',
  } });
  const refused = await preflight('http://evil.example');
  assert.is(refused.status, 403);
  assert.is(refused.headers.get('access-control-allow-origin'), null);
  const allowed = await preflight(allowed_origin);
  assert.is(allowed.status, 204);
  assert.is(allowed.headers.get('access-control-allow-origin'), allowed_origin);
  assert.match(allowed.headers.get('access-control-allow-headers') ?? '', /authorization/);
  const cross = await fetch(url, { method: 'POST', body: '{}', headers: {
    origin: 'http://evil.example', 'content-type': 'application/json',
  } });
  assert.is(cross.headers.get('access-control-allow-origin'), null, 'no CORS header for others');
});

test('dev tokens: off by default, refused off loopback, minted on demand with the flag', async () => {
  await ready;
  const off = await fetch(`http://127.0.0.1:${web_port}/dev/token?user=erin`);
  assert.is(off.status, 404, 'without --web-dev-tokens there is no such endpoint');
  const refused = spawnSync(process.execPath, [bin, 'serve', '--data', temp_dir('web-dev'),
    '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--web', '0.0.0.0:0', '--web-dev-tokens'],
  { encoding: 'utf8', timeout: 60_000 });
  assert.is.not(refused.status, 0, 'a node with dev tokens on 0.0.0.0 does not start');
  assert.match(refused.stderr + refused.stdout, /not a loopback address/);
  const dev_dir = temp_dir('web-dev-on');
  const dev = await start_server(dev_dir, ['--workers', '1', '--partitions', '1',
    '--web', '127.0.0.1:0', '--web-dev-tokens']);
  try {
    const port = web_port_of(dev.log);
    const minted = await fetch(`http://127.0.0.1:${port}/dev/token?user=erin`);
    assert.is(minted.status, 200);
    const { token } = (await minted.json()) as { token: string };
    const t = transport(port, 'connect-json');
    const none = await web_code_of(web_call(t, 'ticketing.catalog.v1.CatalogService/GetEvent',
      { eventId: 'evt-none' }, token));
    assert.is(none.code, S.NOT_FOUND, 'the minted token authenticates (the event is unknown)');
    const bad = await fetch(`http://127.0.0.1:${port}/dev/token?user=${encodeURIComponent('a b')}`);
    assert.is(bad.status, 400);
  } finally {
    await stop(dev);
    cleanup(dev_dir);
  }
});

test('rate limits: the same budget and RESOURCE_EXHAUSTED with retry-after-ms over Connect', async () => {
  await ready;
  const limited_dir = temp_dir('web-rate');
  const limited = await start_server(limited_dir, ['--workers', '1', '--partitions', '1',
    '--web', '127.0.0.1:0', '--rate-user', '1']);
  try {
    const token = sign_token(load_secret(limited_dir, process.env, false), { user_id: 'fay', role: 'customer' }, 3600);
    const url = `http://127.0.0.1:${web_port_of(limited.log)}/ticketing.catalog.v1.CatalogService/GetEvent`;
    const answers: { status: number; code: string; retry: string | null }[] = [];
    // A burst of 2 (--rate-user 1): the first calls spend it (NOT_FOUND: no such event), then
    // the bucket refuses, naming when to retry, as over gRPC.
    for (let i = 0; i < 4; i++) {
      const answer = await fetch(url, { method: 'POST', body: JSON.stringify({ eventId: 'evt-none' }),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` } });
      const body = (await answer.json()) as { code: string };
      answers.push({ status: answer.status, code: body.code, retry: answer.headers.get('retry-after-ms') });
    }
    assert.is(answers[0]!.code, 'not_found');
    const refused = answers.find((a) => a.code === 'resource_exhausted');
    assert.ok(refused !== undefined, JSON.stringify(answers));
    assert.match(refused.retry ?? '', /^[0-9]+$/, 'retry-after-ms as a header');
    assert.is(refused.status, 429);
  } finally {
    await stop(limited);
    cleanup(limited_dir);
  }
});

test.run();
