// The strict wire check, over hand-made byte strings, then against an independent judge
// (wire_oracle.ts) over seeded mutations of valid requests of every method the node serves.
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import protobuf from 'protobufjs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load_definitions, proto_files, proto_root } from '../../src/grpc/proto.js';
import { check_message, describe_fault, plan_of, utf8_invalid_at } from '../../src/grpc/strict_decode.js';
import { MalformedRequest, strict_service } from '../../src/grpc/strict_service.js';
import { mutate, mutation, oracle_valid, request_samples } from './wire_oracle.js';

const root = protobuf.parse(`syntax = "proto3"; package t;
  enum Color { RED = 0; BLUE = 1; }
  message Inner { string s = 1; int32 n = 2; }
  message M {
    string name = 1;
    repeated int32 nums = 2;
    repeated fixed32 f32s = 3;
    repeated double ds = 4;
    Inner inner = 5;
    repeated Inner inners = 6;
    map<string, int64> tiers = 7;
    bytes raw = 8;
    Color color = 9;
    sfixed64 big = 10;
    repeated string tags = 11;
  }`, { keepCase: true }).root;
root.resolveAll();
const M = root.lookupType('t.M');
const plan = plan_of(M);

const bytes = (...b: number[]) => Uint8Array.from(b);
const ok = (b: Uint8Array) => {
  const fault = check_message(b, plan);
  assert.is(fault, undefined, fault && describe_fault(fault));
  assert.ok(oracle_valid(b, M), 'the oracle agrees: valid');
};
const bad = (b: Uint8Array, reason: RegExp, field?: number, offset?: number) => {
  const fault = check_message(b, plan);
  assert.ok(fault !== undefined, `refused: ${Buffer.from(b).toString('hex')}`);
  assert.match(fault!.reason, reason);
  if (field !== undefined) assert.is(fault!.field, field, 'field number');
  if (offset !== undefined) assert.is(fault!.offset, offset, 'offset');
  assert.not.ok(oracle_valid(b, M), 'the oracle agrees: invalid');
};

test('valid encodings pass: empty, every field kind, unknown fields of every wire type', () => {
  ok(bytes());
  ok(M.encode(M.fromObject({
    name: 'café ☕ 𝄞', nums: [1, -1, 300], f32s: [7, 8], ds: [1.5], inner: { s: 'x', n: -5 }, inners: [{ s: 'a' }, {}],
    tiers: { A: '89000000', B: '-1' }, raw: Buffer.from([0xff, 0x00]), color: 'BLUE', big: '-9', tags: ['p', 'q'],
  })).finish());
  ok(bytes(0x08 | (50 << 3) & 0x7f | 0x80, 0x03, 0x05)); // field 50 (2-byte tag), varint 5: unknown
  ok(bytes(0xa2, 0x06, 0x02, 0xff, 0xfe)); // field 100, length-delimited, not UTF-8: unknown, not interpreted
  ok(bytes(0xa9, 0x06, 1, 2, 3, 4, 5, 6, 7, 8)); // field 101 fixed64
  ok(bytes(0xb5, 0x06, 1, 2, 3, 4)); // field 102 fixed32
  ok(bytes(0xf8, 0xff, 0xff, 0xff, 0x0f, 0x01)); // field 2^29-1, the largest
  ok(bytes(0x90, 0x01, 0x00)); // field 2 tag written in 2 bytes (non-minimal): still valid
  ok(bytes(0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)); // 10-byte varint (-1 as an enum)
});

test('packed and unpacked repeated scalars both pass; packed contents must be whole elements', () => {
  ok(bytes(0x12, 0x03, 0x01, 0xac, 0x02)); // nums packed: 1, 300
  ok(bytes(0x10, 0x01, 0x10, 0xac, 0x02)); // nums unpacked
  ok(bytes(0x12, 0x00)); // an empty packed run
  ok(bytes(0x1a, 0x08, 1, 0, 0, 0, 2, 0, 0, 0)); // f32s packed
  ok(bytes(0x1d, 1, 0, 0, 0, 0x1d, 2, 0, 0, 0)); // f32s unpacked
  ok(bytes(0x22, 0x08, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f)); // ds packed
  bad(bytes(0x12, 0x02, 0x01, 0xac), /packed elements truncated/, 2); // last varint cut
  bad(bytes(0x1a, 0x05, 1, 0, 0, 0, 2), /packed/, 3);
  bad(bytes(0x22, 0x04, 0, 0, 0, 0), /packed/, 4);
});

test('truncated lengths and values are refused with field and offset', () => {
  // The shape: a string whose length prefix says 8 and 7 bytes follow.
  const cut = Uint8Array.from(Buffer.concat([Buffer.from([0x5a, 0x08]), Buffer.from('102-B-1')]));
  bad(cut, /length 8 exceeds the 7 bytes left/, 11, 1);
  bad(bytes(0x0a), /length: varint truncated/, 1, 1);
  bad(bytes(0x51, 1, 2, 3), /8-byte value truncated/, 10, 1);
  bad(bytes(0xb5, 0x06, 1, 2, 3), /4-byte value truncated/, 102, 2);
  bad(bytes(0x48, 0x80), /varint truncated/, 9);
  bad(bytes(0x88), /tag: varint truncated/, 0, 0);
  bad(bytes(0x0a, 0x80, 0x80, 0x80, 0x80, 0x10), /length above 2\^32/, 1);
});

test('field number 0, the reserved range, groups and wire types 6 and 7 are refused', () => {
  bad(bytes(0x00, 0x01), /field number 0/, 0, 0);
  bad(bytes(0x02, 0x00), /field number 0/);
  bad(bytes(0x10, 0x01, 0x00), /field number 0/, 0, 2); // after a valid field
  bad(bytes(0xc0, 0xa3, 0x09, 0x01), /19000 to 19999 are reserved/, 19000);
  bad(bytes(0xf8, 0xe1, 0x09, 0x01), /reserved/, 19999);
  ok(bytes(0x80, 0xe2, 0x09, 0x01)); // 20000: fine
  bad(bytes(0x0b, 0x0c), /wire type 3 \(group\)/, 1);
  bad(bytes(0xa3, 0x06, 0xa4, 0x06), /wire type 3/, 100); // unknown field: still refused
  bad(bytes(0x0c), /wire type 4/, 1);
  bad(bytes(0x0e, 0x00), /invalid wire type 6/, 1);
  bad(bytes(0xa7, 0x06, 0x00), /invalid wire type 7/, 100);
  bad(bytes(0x80, 0x80, 0x80, 0x80, 0x10, 0x00), /tag exceeds 32 bits/, 0, 0);
});

test('overlong varints: more than 10 bytes, or above 64 bits', () => {
  bad(bytes(0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), /longer than 10 bytes/, 9, 1);
  bad(bytes(0x48, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02), /exceeds 64 bits/, 9, 1);
  bad(bytes(0x12, 0x0b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01), /packed/, 2); // inside a packed run
});

test('a known field with the wrong wire type is refused', () => {
  bad(bytes(0x08, 0x01), /wire type 0 does not match name/, 1); // string sent as a varint
  bad(bytes(0x2a - 2, 0x01), /wire type 0 does not match inner/, 5); // message as a varint
  bad(bytes(0x4a, 0x01, 0x01), /wire type 2 does not match color/, 9); // enum (not repeated): no packed form
  bad(bytes(0x55, 1, 2, 3, 4), /wire type 5 does not match big/, 10); // sfixed64 as fixed32
  bad(bytes(0x11, 1, 2, 3, 4, 5, 6, 7, 8), /wire type 1 does not match nums/, 2); // int32 as fixed64
  bad(bytes(0x58, 0x01), /does not match tags/, 11); // repeated string: never packed
});

test('nested messages are checked: truncated inside, bad field inside, map entries', () => {
  bad(bytes(0x2a, 0x03, 0x0a, 0x05, 0x61), /length 5 exceeds the 1 bytes left/, 1, 3); // inner.s cut
  bad(bytes(0x2a, 0x02, 0x00, 0x00), /field number 0/);
  bad(bytes(0x32, 0x02, 0x10, 0x80), /varint truncated/, 2, 3); // inners[0].n cut at the inner end
  const fault = check_message(bytes(0x2a, 0x02, 0x00, 0x00), plan)!;
  assert.is(fault.message, 't.Inner', 'the fault names the nested type');
  bad(bytes(0x3a, 0x03, 0x0a, 0x01, 0xff), /not valid UTF-8/, 1, 4); // map key
  bad(bytes(0x3a, 0x02, 0x12, 0x00), /wire type 2 does not match value/, 2); // int64 value as bytes
  ok(bytes(0x3a, 0x00)); // an empty entry: key "" and value 0
});

test('strings must be valid UTF-8 (proto3); bytes need not be', () => {
  ok(bytes(0x0a, 0x03, 0xef, 0xbf, 0xbd)); // U+FFFD itself is valid
  ok(bytes(0x0a, 0x04, 0xf4, 0x8f, 0xbf, 0xbf)); // U+10FFFF
  bad(bytes(0x0a, 0x02, 0xc3, 0x28), /not valid UTF-8/, 1, 2);
  bad(bytes(0x0a, 0x02, 0xc0, 0xaf), /UTF-8/); // overlong
  bad(bytes(0x0a, 0x03, 0xed, 0xa0, 0x80), /UTF-8/); // a surrogate
  bad(bytes(0x0a, 0x04, 0xf4, 0x90, 0x80, 0x80), /UTF-8/); // above U+10FFFF
  bad(bytes(0x0a, 0x02, 0xe2, 0x82), /UTF-8/); // truncated sequence
  bad(bytes(0x5a, 0x01, 0x80), /UTF-8/, 11); // repeated string element
  ok(bytes(0x42, 0x02, 0xc3, 0x28)); // bytes field
  // Against Node's own validator, over random and near-UTF-8 byte strings.
  fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 12 }), fc.string({ unit: 'binary' }).map((s) => {
    const b = Buffer.from(s, 'utf8');
    if (b.length > 0) b[s.length % b.length] = b[s.length % b.length]! ^ 0x40;
    return Uint8Array.from(b);
  })), (b) => (utf8_invalid_at(b, 0, b.length) === -1) === isUtf8(b)), { numRuns: 5000, seed: 7 });
});

test('nesting deeper than message_depth_max is refused, not overflowed', () => {
  const r = protobuf.parse('syntax = "proto3"; message Node { Node child = 1; }').root;
  r.resolveAll();
  const node = r.lookupType('Node');
  let b = Buffer.alloc(0);
  for (let i = 0; i < 101; i++) b = Buffer.concat([Buffer.from([0x0a, ...(b.length < 128 ? [b.length] : [0x80 | (b.length & 0x7f), b.length >> 7])]), b]);
  assert.match(check_message(b, plan_of(node))!.reason, /nested deeper than 100/);
});

// ---- Every served method: the deserializers the server uses ----------------------------------

const { definition } = load_definitions();
const parsed = new protobuf.Root();
parsed.resolvePath = (_origin, target) => `${proto_root}${target}`;
parsed.loadSync(proto_files, { keepCase: true });
parsed.resolveAll();

const samples = request_samples('evt-x');

interface Served { name: string; type: protobuf.Type; deserialize: (b: Buffer) => unknown; sample: Uint8Array }
const refusals: string[] = [];
const served: Served[] = [];
for (const [service_name, service] of Object.entries(definition)) {
  if (!('format' in service) && Object.values(service).every((m) => typeof m === 'object' && m !== null && 'path' in m)) {
    const strict = strict_service(service as unknown as grpc.ServiceDefinition, (s, m) => refusals.push(`${s}/${m}`));
    for (const [method, m] of Object.entries(strict)) {
      const rpc = parsed.lookupService(service_name).methods[method]!;
      rpc.resolve();
      const type = rpc.resolvedRequestType!;
      const sample = samples[method];
      assert.ok(sample !== undefined, `a sample request for ${method}`);
      served.push({ name: `${service_name}/${method}`, type, deserialize: m.requestDeserialize as (b: Buffer) => unknown, sample: type.encode(type.fromObject(sample)).finish() });
    }
  }
}

test('every served method gets the check; the sample requests decode as before', () => {
  assert.is(served.length, Object.keys(samples).length, 'every method has a sample');
  for (const s of served) {
    const decoded = s.deserialize(Buffer.from(s.sample));
    assert.not.instance(decoded, MalformedRequest, s.name);
    assert.ok(oracle_valid(s.sample, s.type), s.name);
  }
  const reserve = served.find((s) => s.name.endsWith('/ReserveTickets'))!;
  const cut = Buffer.from(reserve.sample.subarray(0, reserve.sample.length - 1));
  const refused = reserve.deserialize(Buffer.concat([cut]));
  assert.instance(refused, MalformedRequest);
  assert.match((refused as MalformedRequest).details, /^ReserveTickets: malformed request: ticketing\.inventory\.v1\.ReserveTicketsRequest field 4 at byte \d+: length 2 exceeds the 1 bytes left$/);
  assert.equal(refusals.slice(-1), ['InventoryService/ReserveTickets']);
});

test('mutated requests of every method: the check agrees with the oracle; what passes decodes the same after re-encoding', () => {
  let refused = 0;
  let passed = 0;
  for (const s of served) {
    fc.assert(fc.property(mutation(s.sample.length), (m) => {
      const b = mutate(s.sample, m);
      const verdict = s.deserialize(b);
      const valid = oracle_valid(b, s.type);
      assert.is(!(verdict instanceof MalformedRequest), valid, `${s.name} ${b.toString('hex')}: check and oracle agree`);
      if (!valid) {
        refused++;
        return;
      }
      passed++;
      // A valid encoding: protobufjs's decode is what the bytes say, so re-encoding it and
      // decoding again gives the same request (a clamped string would survive this too, which
      // is why the oracle, not this, is the judge of validity).
      const again = s.type.toObject(s.type.decode(s.type.encode(s.type.decode(b)).finish()), { longs: String, enums: String, defaults: true });
      assert.equal(s.type.toObject(s.type.decode(b), { longs: String, enums: String, defaults: true }), again);
    }), { numRuns: 400, seed: 20261201 });
  }
  assert.ok(refused > served.length * 100 && passed > served.length * 10, `both outcomes reached (${refused} refused, ${passed} passed)`);
});

test.run();
