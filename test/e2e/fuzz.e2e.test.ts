// Property-based fuzzing of a running server (fast-check): arbitrary values in every request
// field (empty, huge, control characters, invalid UTF-8, int64 extremes, duplicates, thousands of
// seats). Every answer must be a gRPC status with a short message and no internals, the server
// must stay up, and a refused call must leave the state exactly as it was. The second test does
// the same for the purchase services (OrderService, OrderQueryService, PaymentService,
// FraudService): bad money and currencies, bad card tokens, bad idempotency-key metadata, ids one
// character away from real ones, page tokens the server never issued, callers of every role.
import * as loader from '@grpc/proto-loader';
import fc from 'fast-check';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  arena_file, arena_id, cleanup, clients, grpc, repo_root, run_cli, start_server, stop, temp_dir, token, with_server,
  type Clients, type Server,
} from './harness.js';

const S = grpc.status;
const allowed_codes = new Set([S.OK, S.INVALID_ARGUMENT, S.NOT_FOUND, S.FAILED_PRECONDITION, S.RESOURCE_EXHAUSTED, S.PERMISSION_DENIED, S.ALREADY_EXISTS]);
/** What an error message must not echo: control characters, U+FFFD (invalid UTF-8), lone surrogates. */
const unprintable = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\ufffd]|[\ud800-\udfff]/;
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
    assert.not.match(error.details, unprintable, `${o.op}: no raw control or replacement characters echoed: ${JSON.stringify(error.details)}`);
    assert.is(await state(), before, `${o.op}: a refused call changed nothing`);
  }), { numRuns: 150, seed: 424242, includeErrorInReport: true });

  assert.ok(refused > 50 && calls === 150, `fuzzing reached the server (${refused} of ${calls} refused)`);
  // Still serving.
  const hold = await c.reserve({ event_id: arena_id, seat_ids: ['102-A-1'], hold_ttl_seconds: 60, user_id: 'after' }, svc);
  assert.equal(await c.release({ hold_id: hold.hold_id }, svc), { released: true });
  assert.is(server.process.exitCode, null, 'server alive');
  raw.close();
  c.close();
  assert.is(await stop(server), 0);
}));

// ---- The purchase services ----------------------------------------------------------------

// Test-only mirrors of the purchase services, same packages, services and field numbers, with
// `bytes` where the protos have `string` (invalid UTF-8 on the wire), `uint64` for Money's int64
// (2^63..2^64-1 arrive as negative int64) and `int64` for ListOrders' int32 page_size (the server
// reads the low 32 bits). Replies are read as empty messages, CreateDraft's as its id only.
const raw_purchase_protos = [
  `syntax = "proto3"; package ticketing.order.v1;
   service OrderService { rpc CreateDraft(RawCreateDraft) returns (RawOrder); rpc ConfirmOrder(RawConfirmOrder) returns (RawOrder); }
   service OrderQueryService { rpc GetOrder(RawGetOrder) returns (RawReply); rpc ListOrders(RawListOrders) returns (RawReply); }
   message RawCreateDraft { bytes user_id = 1; bytes event_id = 2; repeated bytes seat_ids = 3; bytes promo_code = 4; bytes idempotency_key = 5; }
   message RawConfirmOrder { bytes order_id = 1; bytes payment_id = 2; }
   message RawGetOrder { bytes order_id = 1; }
   message RawListOrders { bytes user_id = 1; int64 page_size = 2; bytes page_token = 3; }
   message RawOrder { string id = 1; }
   message RawReply {}`,
  `syntax = "proto3"; package ticketing.payment.v1;
   service PaymentService { rpc Authorize(RawAuthorize) returns (RawReply); rpc Capture(RawCapture) returns (RawReply); rpc Refund(RawRefund) returns (RawReply); }
   message RawMoney { uint64 amount_micros = 1; bytes currency = 2; }
   message RawAuthorize { bytes order_id = 1; RawMoney amount = 2; bytes payment_token = 3; }
   message RawCapture { bytes payment_id = 1; }
   message RawRefund { bytes payment_id = 1; RawMoney amount = 2; }
   message RawReply {}`,
  `syntax = "proto3"; package ticketing.fraud.v1;
   service FraudService { rpc ScoreTransaction(RawScore) returns (RawReply); }
   message RawScore { bytes order_id = 1; bytes user_id = 2; bytes ip = 3; bytes device_id = 4; }
   message RawReply {}`,
];
const raw_purchase_root = (() => {
  const root = new protobuf.Root();
  for (const source of raw_purchase_protos) protobuf.parse(source, root, { keepCase: true });
  return grpc.loadPackageDefinition(loader.fromJSON(root.toJSON(), { keepCase: true, longs: String, defaults: true })) as any;
})();
// The real protos again, for calls whose metadata the harness's callers cannot express (several
// idempotency-key values, an idempotency-key-bin header).
const typed_purchase_root = grpc.loadPackageDefinition(loader.loadSync(
  ['ticketing/order/v1/order.proto', 'ticketing/order/v1/order_query.proto', 'ticketing/payment/v1/payment.proto', 'ticketing/fraud/v1/fraud.proto'],
  { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [join(repo_root, 'proto')] },
)) as any;

type Service = 'OrderService' | 'OrderQueryService' | 'PaymentService' | 'FraudService';
const package_of: Record<Service, string> = { OrderService: 'order', OrderQueryService: 'order', PaymentService: 'payment', FraudService: 'fraud' };
type ServiceClients = Record<Service, grpc.Client>;

function service_clients(root: any, port: number): ServiceClients {
  const options = { 'grpc.max_send_message_length': 8 * 1024 * 1024 };
  const make = (s: Service) => new root.ticketing[package_of[s]].v1[s](`127.0.0.1:${port}`, grpc.credentials.createInsecure(), options) as grpc.Client;
  return { OrderService: make('OrderService'), OrderQueryService: make('OrderQueryService'), PaymentService: make('PaymentService'), FraudService: make('FraudService') };
}

type Who = 'svc' | 'admin' | 'victim' | 'mallory' | 'none';
/** idempotency-key metadata: absent, one or more values, or only a binary header of that name. */
type Key = null | { values: string[] } | { bin: Uint8Array };
interface PurchaseOp { service: Service; method: string; raw: boolean; request: Record<string, any>; who: Who; key: Key }

function invoke(client: grpc.Client, method: string, request: unknown, bearer: string | undefined, key: Key): Promise<any> {
  const metadata = new grpc.Metadata();
  if (bearer !== undefined) metadata.set('authorization', `Bearer ${bearer}`);
  if (key !== null && 'values' in key) for (const value of key.values) metadata.add('idempotency-key', value);
  if (key !== null && 'bin' in key) metadata.add('idempotency-key-bin', Buffer.from(key.bin));
  return new Promise((resolve, reject) => (client as any)[method](request, metadata, (e: unknown, r: unknown) => (e ? reject(e) : resolve(r))));
}

const purchase_codes = new Set([...allowed_codes, S.UNAUTHENTICATED]);
/** What a message must never show: stack frames, paths, JS error names, stringified non-values. */
const internals = /\n\s+at |\/work\/|\/home\/|node_modules|dist\/|\.[jt]s:[0-9]|TypeError|RangeError|ReferenceError|SyntaxError|undefined|NaN|\[object /;
const secret_card = 'tok_secret_4242424242424242';

/** The message with the request's own (printable) values taken out: an id the caller chose may
 *  spell NaN or undefined, and echoing it back is no leak. */
function scrub(details: string, request: unknown): string {
  const inputs: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') inputs.push(v);
    else if (v instanceof Uint8Array) inputs.push(Buffer.from(v).toString('utf8'));
    else if (Array.isArray(v)) v.forEach(walk);
    else if (typeof v === 'object' && v !== null) Object.values(v).forEach(walk);
  };
  walk(request);
  let out = details;
  for (const x of inputs.filter((x) => x.length >= 3 && !unprintable.test(x)).sort((p, q) => q.length - p.length)) out = out.replaceAll(x, '<input>');
  return out;
}
const price_b = 49_000_000;
const fixture_users = ['victim', 'mallory', 'fuzz-user'];

/** Ids one step away from a real one: another body, partition, kind, length, case, padding. */
function near(id: string, partitions: number): string[] {
  const m = /^([a-z]+)_([0-9]+)_([A-Za-z0-9_-]{22})$/.exec(id);
  assert.ok(m !== null, `an id of the node's shape: ${id}`);
  const [, kind, p, body] = m as unknown as [string, string, string, string];
  const other_kind = kind === 'order' ? 'pay' : 'order';
  return [
    `${kind}_${p}_${(body[0] === 'A' ? 'B' : 'A') + body.slice(1)}`, `${kind}_${Number(p) + partitions}_${body}`, `${kind}_9999_${body}`,
    `${kind}_0${p}_${body}`, `${kind}_-${p}_${body}`, `${kind}_${p}_${body}A`, id.slice(0, -1), id.toUpperCase(), `${other_kind}_${p}_${body}`,
    `hold_${p}_${body}`, `refund_${p}_${body}`, ` ${id}`, `${id}\n`, `${id}\u0000`, `${id}${id}`, `${kind}_${p}_`, `${kind}__${body}`,
  ];
}

const b64 = (json: string) => Buffer.from(json).toString('base64url');

test('fuzzed purchase requests: clear statuses, server stays up, refused calls change nothing', async () => {
  // The server logs at debug level here, so the refusals' log lines are checked too.
  const dir = temp_dir('fuzz-purchase');
  let server: Server | undefined;
  const typed: ServiceClients[] = [];
  try {
    server = await start_server(dir, ['--workers', '1', '--partitions', '4', '--rate-user', '0'], { TICKETING_LOG_LEVEL: 'debug' });
    const c: Clients = clients(server.grpc_port);
    assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
    const bearer: Record<Who, string | undefined> = {
      svc: token(dir, 'svc', 'service'), admin: token(dir, 'ops', 'admin'), victim: token(dir, 'victim', 'customer'), mallory: token(dir, 'mallory', 'customer'), none: undefined,
    };
    const svc = bearer.svc!;
    const typed_clients = service_clients(typed_purchase_root, server.grpc_port);
    const raw_clients = service_clients(raw_purchase_root, server.grpc_port);
    typed.push(typed_clients, raw_clients);

    // The victim's purchases, one per state: a bare draft, a draft with an AUTHORIZED payment,
    // a CONFIRMED order whose payment is CAPTURED (refundable).
    const draft = (seat: string) => c.create_draft({ user_id: 'victim', event_id: arena_id, seat_ids: [seat], promo_code: '', idempotency_key: '' }, bearer.victim);
    const money_b = { amount_micros: String(price_b), currency: 'EUR' };
    const bare = await draft('102-A-1');
    const authed = await draft('102-A-2');
    const authed_pay = await c.authorize({ order_id: authed.id, amount: money_b, payment_token: 'tok_visa' }, bearer.victim, { 'idempotency-key': 'k1' });
    const paid = await draft('102-A-3');
    const paid_pay = await c.authorize({ order_id: paid.id, amount: money_b, payment_token: 'tok_mastercard' }, bearer.victim);
    assert.is((await c.confirm_order({ order_id: paid.id, payment_id: paid_pay.payment_id }, bearer.victim)).status, 'CONFIRMED');
    const fixtures = [bare.id, authed.id, paid.id];
    const real_page_token = (await c.list_orders({ user_id: 'victim', page_size: 1, page_token: '' }, svc)).next_page_token as string;
    assert.ok(real_page_token !== '');

    // ---- arbitraries over every request field ----
    const control = fc.constantFrom('\u0000', 'a\u0000b', '\u0001\u0002\u0003', '\u0007', '\b', '\t', '\n', '\r\n', '\u001b[31mred', '\u007f', '\u0085', '\u2028', '\ufeff', '\ud800', '\udfff\ud800', '%s%n', '${x}');
    const wild = fc.oneof(text, control, fc.string({ unit: 'binary-ascii', maxLength: 30 }));
    const pick = <T>(...xs: T[]) => fc.constantFrom(...xs);
    const order_ids = [...fixtures, ...fixtures.flatMap((id) => near(id, 4))];
    const payment_ids = [authed_pay.payment_id as string, paid_pay.payment_id as string];
    const order_id = fc.oneof({ arbitrary: pick(...fixtures), weight: 8 }, { arbitrary: pick(...order_ids), weight: 2 }, { arbitrary: wild, weight: 1 });
    const payment_id = fc.oneof({ arbitrary: pick(...payment_ids), weight: 8 }, { arbitrary: pick(...payment_ids.flatMap((id) => near(id, 4)), ...fixtures), weight: 2 }, { arbitrary: wild, weight: 1 });
    const user_id = fc.oneof({ arbitrary: pick(...fixture_users), weight: 8 }, pick('VICTIM', 'victim ', 'victim\u0000', 'svc', 'v'.repeat(128), 'v'.repeat(129)), wild);
    const event_id = fc.oneof({ arbitrary: fc.constant(arena_id), weight: 8 }, pick(arena_id.toUpperCase(), `${arena_id}\u0000`, 'evt-missing', 'e'.repeat(65)), wild);
    const free_seats = Array.from({ length: 24 }, (_, i) => `101-B-${i + 1}`);
    const draft_seats = fc.oneof(
      { arbitrary: fc.uniqueArray(pick(...free_seats), { minLength: 1, maxLength: 3 }), weight: 8 },
      seats,
      fc.constant(free_seats.slice(0, 11)),
      fc.constant(Array.from({ length: 5000 }, (_, i) => `101-B-${i}`)),
      fc.constant(Array.from({ length: 3000 }, () => 'z'.repeat(40))),
    );
    const promo_code = fc.oneof({ arbitrary: pick('', 'EARLY10'), weight: 8 }, pick('early10', 'NOPE', 'EARLY10\u0000', 'E'.repeat(32), 'E'.repeat(33), 'EARLY 10'), wild);
    const draft_key = fc.oneof({ arbitrary: pick('', 'fuzz-draft-1', 'fuzz-draft-2'), weight: 8 }, pick('k'.repeat(64), 'k'.repeat(65), 'a b', 'ключ', '../x'), wild);
    const amount_micros = fc.oneof(
      { arbitrary: pick(String(price_b), '1', '30', String(price_b - 1), String(price_b + 1), String(2 * price_b)), weight: 8 },
      pick(...int64_edges, '9007199254740991', '9007199254740992', '18446744073709551615', '99999999999999999999', '-0', '000000049000000'),
      int64,
    );
    const currency = fc.oneof(
      { arbitrary: fc.constant('EUR'), weight: 8 },
      pick('USD', 'eur', 'EU', 'EURO', '', 'XXX', '€', 'E\u0000R', 'EUR ', ' EUR', 'ÉUR', 'E\nR', '\ud800UR', 'EUR\u0000', 'c'.repeat(300_000)),
      wild,
    );
    const money = fc.option(fc.record({ amount_micros, currency }), { nil: null, freq: 10 });
    // tok_gatewayTimeout is left out on purpose: its UNAVAILABLE leaves a PENDING payment by
    // design (docs/contracts.md "Behaviour", purchase.e2e covers it), which is no refusal of
    // bad input.
    const payment_token = fc.oneof(
      { arbitrary: pick('tok_visa', 'tok_mastercard', 'tok_chargeDeclined', 'tok_insufficientFunds'), weight: 8 },
      pick('', 'tok visa', 'tok_visa\n', 'TOK_VISA', 'tok-visa', `tok_${'v'.repeat(60)}`, `tok_${'v'.repeat(61)}`, secret_card, `${secret_card}!`, `${secret_card}\u0000`),
      wild,
    );
    const page_size = fc.oneof({ arbitrary: pick(0, 1, 2, 100), weight: 8 }, pick(101, -1, -100, 2147483647, -2147483648), fc.integer());
    const page_token = fc.oneof(
      { arbitrary: pick('', real_page_token), weight: 8 },
      pick(`${real_page_token}A`, real_page_token.slice(0, -2), 'garbage', '%%%', 'A'.repeat(257), b64('null'), b64('5'), b64('[]'), b64('[1]'),
        b64('{"0":1}'), b64('[1e308,"x"]'), b64('[9007199254740993,"x"]'), b64('[-1,""]'), b64(`[0,"${'o'.repeat(65)}"]`), b64('[1,"\\u0000"]'),
        b64('['.repeat(90) + ']'.repeat(90)), b64('"\\ud800"'), b64('[1,"x",3]')),
      wild,
    );
    const ip = fc.oneof(
      { arbitrary: pick('', '198.51.100.7', '203.0.113.9', '::1', '2001:db8::1', '::ffff:198.51.100.7'), weight: 8 },
      pick('256.0.0.1', '1.2.3', '01.2.3.4', '1.2.3.4 ', '1.2.3.4\u0000', 'fe80::1%eth0', `fe80::1%${'e'.repeat(40)}`, 'localhost', '1'.repeat(46), '::::'),
      wild,
    );
    const device_id = fc.oneof({ arbitrary: pick('', 'dev-1', 'd'.repeat(128)), weight: 8 }, pick('d'.repeat(129), 'dev 1'), wild);
    const header_text = fc.string({ unit: 'grapheme-ascii', maxLength: 70 }).filter((x) => /^[ -~]*$/.test(x));
    const key: fc.Arbitrary<Key> = fc.oneof(
      { arbitrary: fc.constant(null), weight: 3 },
      { arbitrary: fc.record({ values: fc.array(fc.oneof(
        pick('', ' ', 'k1', 'fuzz-key', 'refund-1', 'a'.repeat(64), 'a'.repeat(65), 'x'.repeat(4000), 'x'.repeat(20_000), 'key with spaces', '../../etc/passwd', '%00', '"quoted"', '\\', '{}', 'k1,k2'),
        header_text,
      ), { minLength: 1, maxLength: 3 }) }), weight: 3 },
      fc.record({ bin: bytes }),
    );
    const who = fc.oneof({ arbitrary: fc.constant<Who>('svc'), weight: 4 }, pick<Who>('admin', 'victim', 'mallory', 'none'));
    // Bytes: arbitrary, malformed UTF-8, or a real value with invalid bytes spliced in.
    const raw_of = (a: fc.Arbitrary<string>) => fc.oneof(
      a.map((x) => new Uint8Array(Buffer.from(x))),
      bytes,
      fc.tuple(a, bytes).map(([x, b]) => new Uint8Array(Buffer.concat([Buffer.from(x), b]))),
      fc.tuple(bytes, a).map(([b, x]) => new Uint8Array(Buffer.concat([b, Buffer.from(x)]))),
    );
    const raw_money = fc.option(fc.record({
      amount_micros: fc.oneof(pick('0', '1', String(price_b), '9007199254740993', '9223372036854775808', '18446744073709551615'), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String)),
      currency: raw_of(pick('EUR', 'USD')),
    }), { nil: null, freq: 8 });

    // An int64 on the wire of the int32 page_size: 1..5-byte varints (the server keeps the low 32
    // bits) and 10-byte ones (negative int64). 6..9-byte varints, also valid protobuf, are left
    // to the test below that pins them: today they are answered INTERNAL (protobufjs decoder).
    const raw_page_size = fc.oneof(
      pick(...int64_edges.filter((x) => BigInt(x) < 0n || BigInt(x) < 2n ** 35n), '4294967296', '4294967297', String(2n ** 35n - 1n)),
      fc.bigInt({ min: -(2n ** 63n), max: 2n ** 35n - 1n }).map(String),
    );
    const call = (service: Service, method: string, request: fc.Arbitrary<Record<string, unknown>>, raw = false): fc.Arbitrary<PurchaseOp> =>
      fc.record({ request, who, key }).map((x) => ({ service, method, raw, ...x }));
    const op: fc.Arbitrary<PurchaseOp> = fc.oneof(
      { arbitrary: call('OrderService', 'CreateDraft', fc.record({ user_id, event_id, seat_ids: draft_seats, promo_code, idempotency_key: draft_key })), weight: 3 },
      { arbitrary: call('OrderService', 'ConfirmOrder', fc.record({ order_id, payment_id })), weight: 3 },
      { arbitrary: call('OrderQueryService', 'GetOrder', fc.record({ order_id })), weight: 3 },
      { arbitrary: call('OrderQueryService', 'ListOrders', fc.record({ user_id, page_size, page_token })), weight: 3 },
      { arbitrary: call('PaymentService', 'Authorize', fc.record({ order_id, amount: money, payment_token })), weight: 3 },
      { arbitrary: call('PaymentService', 'Capture', fc.record({ payment_id })), weight: 3 },
      { arbitrary: call('PaymentService', 'Refund', fc.record({ payment_id, amount: money })), weight: 3 },
      { arbitrary: call('FraudService', 'ScoreTransaction', fc.record({ order_id, user_id, ip, device_id })), weight: 3 },
      { arbitrary: call('OrderService', 'CreateDraft', fc.record({ user_id: raw_of(user_id), event_id: raw_of(event_id), seat_ids: fc.array(raw_of(pick(...free_seats)), { maxLength: 4 }), promo_code: raw_of(promo_code), idempotency_key: raw_of(draft_key) }), true), weight: 1 },
      { arbitrary: call('OrderService', 'ConfirmOrder', fc.record({ order_id: raw_of(order_id), payment_id: raw_of(payment_id) }), true), weight: 1 },
      { arbitrary: call('OrderQueryService', 'GetOrder', fc.record({ order_id: raw_of(order_id) }), true), weight: 1 },
      { arbitrary: call('OrderQueryService', 'ListOrders', fc.record({ user_id: raw_of(user_id), page_size: raw_page_size, page_token: raw_of(page_token) }), true), weight: 1 },
      { arbitrary: call('PaymentService', 'Authorize', fc.record({ order_id: raw_of(order_id), amount: raw_money, payment_token: raw_of(payment_token) }), true), weight: 1 },
      { arbitrary: call('PaymentService', 'Capture', fc.record({ payment_id: raw_of(payment_id) }), true), weight: 1 },
      { arbitrary: call('PaymentService', 'Refund', fc.record({ payment_id: raw_of(payment_id), amount: raw_money }), true), weight: 1 },
      { arbitrary: call('FraudService', 'ScoreTransaction', fc.record({ order_id: raw_of(order_id), user_id: raw_of(user_id), ip: raw_of(ip), device_id: raw_of(device_id) }), true), weight: 1 },
    );

    // ---- the state a refused call must leave as it was ----
    interface State { availability: any; orders: any[]; lists: any[] }
    const snapshot = async (): Promise<State> => ({
      availability: await c.availability({ event_id: arena_id }, svc),
      orders: await Promise.all(fixtures.map((id) => c.get_order({ order_id: id }, svc))),
      lists: await Promise.all(fixture_users.map(async (u) => (await c.list_orders({ user_id: u, page_size: 100, page_token: '' }, svc)).orders)),
    });
    /** A draft a fuzzed call created is cancelled (its hold released), so seats and per-user
     *  limits stay where they were. */
    const sweep = async (users: string[]) => {
      for (const u of new Set(users)) {
        const { orders } = await c.list_orders({ user_id: u, page_size: 100, page_token: '' }, svc);
        for (const d of orders as any[]) {
          if (d.order.status === 'DRAFT' && !fixtures.includes(d.order.id)) assert.equal(await c.release({ hold_id: d.hold_id }, svc), { released: true });
        }
      }
    };
    const fixture_of = (s: State, id: string) => s.orders.find((d: any) => d.order.id === id || d.payment_id === id);
    const label = (o: PurchaseOp) => `${o.raw ? 'raw ' : ''}${o.service}.${o.method} as ${o.who}`;

    const stats = { calls: 0, refused: 0, ok: 0, by_code: {} as Record<string, number>, by_call: {} as Record<string, number> };
    await fc.assert(fc.asyncProperty(op, async (o) => {
      const before = await snapshot();
      const client = (o.raw ? raw_clients : typed_clients)[o.service];
      let reply: any;
      let error: grpc.ServiceError | undefined;
      try {
        reply = await invoke(client, o.method, o.request, bearer[o.who], o.key);
      } catch (e) {
        error = e as grpc.ServiceError;
      }
      stats.calls++;
      const after = await snapshot();
      const what = label(o);
      const tally = `${o.raw ? 'raw ' : ''}${o.method}:${error === undefined ? 'OK' : S[error.code] ?? error.code}`;
      stats.by_call[tally] = (stats.by_call[tally] ?? 0) + 1;
      if (error === undefined) {
        stats.ok++;
        stats.by_code['OK'] = (stats.by_code['OK'] ?? 0) + 1;
        const req = o.request;
        const keyed = o.key !== null && 'values' in o.key && o.key.values[0] !== '';
        if (o.method === 'GetOrder' || o.method === 'ListOrders' || o.method === 'Capture') {
          // Reads, and Capture of a captured payment (an AUTHORIZED one is refused): no-ops.
          assert.equal(after, before, `${what}: a read or repeat changed nothing`);
          if (!o.raw && o.method === 'Capture') assert.is(reply.status, 'CAPTURED', `${what}: ${reply.status}`);
        } else if (!o.raw && o.method === 'Authorize') {
          assert.ok(['AUTHORIZED', 'DECLINED'].includes(reply.status), `${what}: ${reply.status}`);
          const d = fixture_of(before, req['order_id']);
          if (d !== undefined) assert.equal({ ...req['amount'] }, { amount_micros: d.order.total.amount_micros, currency: d.order.total.currency }, `${what}: only the order's total is authorized`);
        } else if (!o.raw && o.method === 'Refund') {
          assert.ok(['PARTIALLY_REFUNDED', 'REFUNDED'].includes(reply.status), `${what}: ${reply.status}`);
          const b = fixture_of(before, req['payment_id']);
          const a = fixture_of(after, req['payment_id']);
          assert.ok(b !== undefined && a !== undefined, `${what}: only a captured fixture payment can be refunded`);
          const delta = BigInt(a.refunded.amount_micros) - BigInt(b.refunded.amount_micros);
          assert.ok(delta === BigInt(req['amount'].amount_micros) || (keyed && delta === 0n), `${what}: refunded exactly the amount asked (${delta} for ${req['amount'].amount_micros}), or nothing on a keyed retry`);
          assert.is(req['amount'].currency, 'EUR', `${what}: only the payment's currency is refunded`);
          assert.ok(BigInt(a.refunded.amount_micros) <= BigInt(a.captured.amount_micros), `${what}: never more refunded than captured`);
        } else if (!o.raw && o.method === 'ConfirmOrder') {
          // A repeat returns the order as it is now: refunded since, perhaps.
          assert.ok(['CONFIRMED', 'PARTIALLY_REFUNDED', 'REFUNDED'].includes(reply.status), `${what}: ${reply.status}`);
          const d = fixture_of(after, req['order_id']);
          if (d !== undefined) assert.ok(['CAPTURED', 'PARTIALLY_REFUNDED', 'REFUNDED'].includes(d.payment_status), `${what}: a confirmed order's payment is captured`);
        } else if (!o.raw && o.method === 'ScoreTransaction') {
          assert.ok(reply.risk_score >= 0 && reply.risk_score <= 1 && ['APPROVE', 'REVIEW', 'DECLINE'].includes(reply.decision), `${what}: ${JSON.stringify(reply)}`);
        } else if (!o.raw && o.method === 'CreateDraft') {
          // A retry with an earlier idempotency_key returns that order as it is now (cancelled by
          // the sweep, perhaps); a new draft is a DRAFT.
          assert.ok(reply.status === 'DRAFT' || req['idempotency_key'] !== '', `${what}: ${reply.status}`);
          assert.match(reply.id, /^order_[0-9]+_/, `${what}: ${reply.id}`);
        }
        await sweep([...fixture_users, ...(typeof req['user_id'] === 'string' ? [req['user_id']] : req['user_id'] instanceof Uint8Array ? [Buffer.from(req['user_id']).toString('utf8')] : [])]
          .filter((u) => /^[A-Za-z0-9._:-]{1,128}$/.test(u)));
        return;
      }
      stats.refused++;
      const code_name = S[error.code] ?? String(error.code);
      stats.by_code[code_name] = (stats.by_code[code_name] ?? 0) + 1;
      const details = error.details;
      assert.ok(typeof error.code === 'number' && purchase_codes.has(error.code), `${what}: unexpected status ${code_name}: ${details}`);
      assert.ok(typeof details === 'string' && details.length > 0 && details.length < 2000, `${what}: short, non-empty message (${details?.length})`);
      assert.not.match(scrub(details, o.request), internals, `${what}: no internals: ${details}`);
      assert.not.match(details, unprintable, `${what}: no raw control or replacement characters echoed: ${JSON.stringify(details)}`);
      assert.not.ok(details.includes('tok_secret'), `${what}: the payment token is not echoed`);
      assert.equal(after, before, `${what}: refused (${code_name}: ${details}), and nothing changed`);
    }), { numRuns: 400, seed: 515151, includeErrorInReport: true });

    assert.ok(stats.calls === 400 && stats.refused > 200 && stats.ok > 10, `fuzzing reached the server: ${JSON.stringify(stats)}`);
    for (const code of ['INVALID_ARGUMENT', 'NOT_FOUND', 'PERMISSION_DENIED', 'FAILED_PRECONDITION']) assert.ok((stats.by_code[code] ?? 0) > 0, `some calls got ${code}: ${JSON.stringify(stats.by_code)}`);

    // Still serving, and a whole purchase still works end to end.
    const after_draft = await c.create_draft({ user_id: 'after', event_id: arena_id, seat_ids: ['102-A-9'], promo_code: '', idempotency_key: '' }, svc);
    const after_pay = await c.authorize({ order_id: after_draft.id, amount: after_draft.total, payment_token: 'tok_visa' }, svc, { 'idempotency-key': 'after-1' });
    assert.is(after_pay.status, 'AUTHORIZED');
    assert.is((await c.confirm_order({ order_id: after_draft.id, payment_id: after_pay.payment_id }, svc)).status, 'CONFIRMED');
    assert.is(server.process.exitCode, null, 'server alive');
    // Nothing reached the internal-error path, and no card token reached the log.
    const log = server.log.join('\n');
    assert.not.match(log, /internal error/, 'no INTERNAL behind any answer');
    assert.not.ok(log.includes('tok_secret'), 'the card token is never logged, not even in a refusal');
    c.close();
    for (const set of typed) for (const client of Object.values(set)) client.close();
    assert.is(await stop(server), 0);
  } finally {
    for (const set of typed) for (const client of Object.values(set)) client.close();
    if (server !== undefined && server.process.exitCode === null && server.process.signalCode === null) server.process.kill('SIGKILL');
    cleanup(dir);
  }
});

// protobuf's wire format lets an int32 field carry any varint up to 10 bytes (a peer with int64
// there, or a non-minimal encoder); the decoder must keep the low 32 bits. protobufjs 7.6.6's
// Reader#uint32 assumes that a varint longer than 5 bytes is exactly 10 bytes long, so a 6..9-byte
// one moves the read position into the next field: grpc-js answers INTERNAL "Error deserializing
// request", or the misread swallows the next field and a different request is served (2^42:
// page_token dropped, answered OK). Pinned here: it fails until the decoder is fixed (upstream
// protobufjs PR #2198) or the server maps decode failures to INVALID_ARGUMENT itself.
test('an int32 field sent as a 6..9-byte varint is answered with a status, not INTERNAL', () => with_server('fuzz-varint', ['--workers', '1', '--partitions', '4'], async (server, dir) => {
  const svc = token(dir, 'svc', 'service');
  const raw = service_clients(raw_purchase_root, server.grpc_port);
  const typed = clients(server.grpc_port);
  try {
    const answers: string[] = [];
    for (const bits of [35, 42, 49, 56]) {
      // page_size 2^bits (6, 7, 8, 9 varint bytes): low 32 bits 0, so the default page size.
      const request = { user_id: Buffer.from('victim'), page_size: String(2n ** BigInt(bits)), page_token: Buffer.from('x') };
      const answer = await invoke(raw.OrderQueryService, 'ListOrders', request, svc, null).then(() => 'OK', (e: grpc.ServiceError) => `${S[e.code]}: ${e.details}`);
      answers.push(`page_size 2^${bits} + page_token "x" -> ${answer}`);
    }
    // page_token "x" is not a token this server issued: INVALID_ARGUMENT is the right answer.
    assert.equal(answers, [35, 42, 49, 56].map((bits) => `page_size 2^${bits} + page_token "x" -> INVALID_ARGUMENT: page_token is not one this server issued`), answers.join('\n'));
    assert.is((await typed.list_orders({ user_id: 'victim', page_size: 1, page_token: '' }, svc)).next_page_token, '', 'still serving');
  } finally {
    for (const client of Object.values(raw)) client.close();
    typed.close();
  }
  assert.is(await stop(server), 0);
}));

test.run();
