// 32-bit varints of 6..10 bytes decode to their low 32 bits and leave the reader on the next
// field (protobufjs#1948): the request that was sent is the request that is answered.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import protobuf from 'protobufjs';
import '../../src/grpc/varint_fix.js';
import { proto_root } from '../../src/grpc/proto.js';

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => `${proto_root}${target}`;
root.loadSync('ticketing/order/v1/order_query.proto', { keepCase: true });
const ListOrdersRequest = root.lookupType('ticketing.order.v1.ListOrdersRequest');

/** A varint of `value` padded to `bytes` bytes with continuation bits (still valid protobuf). */
function padded_varint(value: bigint, bytes: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes; i++) {
    const last = i === bytes - 1;
    out.push(Number(value & 127n) | (last ? 0 : 128));
    value >>= 7n;
  }
  return out;
}

function message(page_size: number[], token: string): Uint8Array {
  const t = Buffer.from(token);
  // field 2 (page_size, varint) then field 3 (page_token, length-delimited)
  return Uint8Array.from([0x10, ...page_size, 0x1a, t.length, ...t]);
}

test('6..10-byte encodings of an int32 read its low 32 bits and keep the next field intact', () => {
  for (let bytes = 1; bytes <= 10; bytes++) {
    const decoded = ListOrdersRequest.decode(message(padded_varint(20n, bytes), 'tok')) as unknown as { page_size: number; page_token: string };
    assert.is(decoded.page_size, 20, `${bytes} bytes`);
    assert.is(decoded.page_token, 'tok', `${bytes} bytes: the next field is not swallowed`);
  }
  for (const big of [2n ** 35n, 2n ** 42n, 2n ** 49n, 2n ** 56n]) {
    const decoded = ListOrdersRequest.decode(message(padded_varint(big, 9), 'x')) as unknown as { page_size: number; page_token: string };
    assert.is(decoded.page_size, Number(big & 0xffffffffn) | 0);
    assert.is(decoded.page_token, 'x');
  }
  // A negative int32 is a 10-byte varint: -1 reads back as -1.
  const negative = ListOrdersRequest.decode(message(padded_varint(2n ** 64n - 1n, 10), 'n')) as unknown as { page_size: number; page_token: string };
  assert.equal([negative.page_size, negative.page_token], [-1, 'n']);
});

test('truncated or 11-byte varints are refused, not misread', () => {
  assert.throws(() => ListOrdersRequest.decode(Uint8Array.from([0x10, 0x80, 0x80])), /index out of range/);
  assert.throws(() => ListOrdersRequest.decode(Uint8Array.from([0x10, ...Array(10).fill(0x80), 0x01])), /invalid varint/);
});

test.run();
