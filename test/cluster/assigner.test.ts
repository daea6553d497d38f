// The cluster's assigner and journal format without a broker: balanced and sticky, member
// userData round-trips, segments and chunked snapshots reassemble, packed record counts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  assign_balanced_sticky, decode_member_info, encode_member_info, type Claimant,
} from '../../src/cluster/assigner.js';
import {
  packed_array_length, RestoreAssembler, segment_message, snapshot_chunk_bytes, snapshot_messages,
} from '../../src/cluster/journal_format.js';
import { classify, partition_of } from '../../src/cluster/partition_writer.js';
import { JournalWriteError, PartitionFencedError } from '../../src/cluster/errors.js';
import { packr } from '../../src/runtime/codec.js';

const plain = (m: Map<string, number[]>): Record<string, number[]> => Object.fromEntries(m);

test('balanced: floor(P/M) or one more each, every partition once', () => {
  for (let members = 1; members <= 7; members++) {
    for (const count of [1, 5, 6, 8, 13]) {
      const claimants: Claimant[] = Array.from({ length: members }, (_, i) => ({ member_id: `m${i}`, previous: [] }));
      const plan = assign_balanced_sticky(count, claimants);
      const sizes = [...plan.values()].map((p) => p.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${members}×${count}: ${sizes}`);
      assert.equal([...plan.values()].flat().sort((a, b) => a - b), Array.from({ length: count }, (_, i) => i));
    }
  }
});

test('sticky: a join moves only what it must, a leave only the leaver\'s', () => {
  const alone = assign_balanced_sticky(6, [{ member_id: 'a', previous: [] }]);
  assert.equal(plain(alone), { a: [0, 1, 2, 3, 4, 5] });
  const joined = assign_balanced_sticky(6, [{ member_id: 'b', previous: [] }, { member_id: 'a', previous: [0, 1, 2, 3, 4, 5] }]);
  assert.equal(plain(joined), { a: [0, 1, 2], b: [3, 4, 5] }, 'a keeps its share, b gets the rest');
  const third = assign_balanced_sticky(6, [
    { member_id: 'a', previous: [0, 1, 2] }, { member_id: 'b', previous: [3, 4, 5] }, { member_id: 'c', previous: [] },
  ]);
  assert.equal(plain(third), { a: [0, 1], b: [3, 4], c: [2, 5] }, 'each gives one up');
  const left = assign_balanced_sticky(6, [{ member_id: 'a', previous: [0, 1] }, { member_id: 'c', previous: [2, 5] }]);
  assert.equal(plain(left), { a: [0, 1, 3], c: [2, 4, 5] }, "only the leaver's move");
  const odd = assign_balanced_sticky(5, [{ member_id: 'a', previous: [0, 1, 2] }, { member_id: 'b', previous: [3, 4] }]);
  assert.equal(plain(odd), { a: [0, 1, 2], b: [3, 4] }, 'the extra one stays where it was');
});

test('sticky: a partition two members claim goes to one; claims out of range are ignored', () => {
  const plan = assign_balanced_sticky(4, [{ member_id: 'a', previous: [0, 1, 9] }, { member_id: 'b', previous: [1, -1, 0] }]);
  assert.equal(plain(plan), { a: [0, 1], b: [2, 3] });
  assert.equal(plain(assign_balanced_sticky(3, [])), {});
});

test('member info round-trips; foreign userData is not ours', () => {
  const info = { node_id: 'n1', advertise: '127.0.0.1:7000', previous: [1, 2] };
  assert.equal(decode_member_info(encode_member_info(info)), info);
  assert.is(decode_member_info(Buffer.alloc(0)), undefined);
  assert.is(decode_member_info(Buffer.from('not json')), undefined);
  assert.is(decode_member_info(Buffer.from('{"node_id":1}')), undefined);
});

test('restore: segments after the latest snapshot, chunks reassembled', () => {
  const r = (x: unknown): Uint8Array => packr.pack([x]);
  const big = Buffer.alloc(snapshot_chunk_bytes * 2 + 5, 7);
  const chunks = snapshot_messages(3, big);
  assert.is(chunks.length, 3);
  const messages = [
    segment_message(3, [r('a'), r('b')]), ...snapshot_messages(3, Buffer.from('old')),
    segment_message(3, [r('c')]), ...chunks, segment_message(3, []), segment_message(3, [r('d')]),
  ];
  const assembler = new RestoreAssembler(3);
  messages.forEach((m, i) => assembler.add({ offset: String(i), value: m.value, headers: m.headers }));
  const { snapshot, segments } = assembler.result();
  assert.ok(Buffer.from(snapshot ?? []).equals(big));
  assert.equal(segments.map((s) => packr.unpack(s) as unknown), [['d']]);
  const cut = new RestoreAssembler(3);
  cut.add({ offset: '0', value: chunks[0]!.value, headers: chunks[0]!.headers });
  assert.throws(() => cut.result(), /ends inside a snapshot/);
  assert.throws(() => new RestoreAssembler(3).add({ offset: '0', value: chunks[1]!.value, headers: chunks[1]!.headers }), /chunk 1, expected 0/);
});

test('packed_array_length reads the msgpack array header', () => {
  for (const n of [0, 1, 15, 16, 300, 70_000]) {
    assert.is(packed_array_length(packr.pack(Array.from({ length: n }, (_, i) => ({ i })))), n, `${n}`);
  }
});

test('events go where the single node\'s emitter sends them: murmur2 of the key', () => {
  // kafkajs' DefaultPartitioner (Java-compatible murmur2): fixed values for fixed keys.
  const spread = new Set(Array.from({ length: 50 }, (_, i) => partition_of('t', `ord_${i}`, 6)));
  assert.ok(spread.size === 6, 'keys spread over all partitions');
  assert.is(partition_of('t', 'ord_1', 6), partition_of('other', 'ord_1', 6), 'by key only');
});

test('classify: code 47 anywhere in the chain is fenced; anything else a write error', () => {
  const epoch = Object.assign(new Error('The producer attempted to use a producer id which is not currently assigned'), { type: 'INVALID_PRODUCER_EPOCH', code: 47 });
  const wrapped = Object.assign(new Error('retries exhausted'), { originalError: epoch });
  assert.instance(classify(1, epoch), PartitionFencedError);
  assert.instance(classify(1, wrapped), PartitionFencedError);
  assert.instance(classify(1, new Error('Connection closed')), JournalWriteError);
  assert.instance(classify(1, 'odd'), JournalWriteError);
});

test.run();
