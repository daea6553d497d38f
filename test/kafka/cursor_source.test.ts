// CursorOutboxSource over a real store (PartitionStore writes, OutboxStoresReader reads, both on
// this thread) and a recording control: the cursor moves only with an acknowledgement, a
// worker restart resets it, an acknowledgement of a read from before the restart moves nothing,
// and an empty local read asks the worker (which arms its wake-up) with the cursors.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CursorOutboxSource, type OutboxControl } from '../../src/kafka/cursor_source.js';
import type { OutboxAck, OutboxReadRequest } from '../../src/runtime/outbox.js';
import { OutboxStoresReader } from '../../src/runtime/outbox_reader.js';
import { commit_together, PartitionStore } from '../../src/runtime/store.js';
import { store_map_bytes_max } from '../../src/runtime/store_env.js';

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'cursor-source-'));
  const store = new PartitionStore<unknown>(0, dir, 'n');
  store.recover();
  const entries = Array.from({ length: 5 }, (_, i) => ({ type: 'T', key: 'k', payload: { i } }));
  await commit_together([store], [store.prepare({ records: [{}], outbox: entries, now_ms: 1 })]);
  const calls: { op: string; request?: OutboxReadRequest; acks?: OutboxAck[] }[] = [];
  const control: OutboxControl = {
    outbox_read: async (_worker, request) => {
      calls.push({ op: 'read', request });
      return { entries: [], requeued: 0 };
    },
    outbox_ack: async (_worker, acks) => {
      calls.push({ op: 'ack', acks });
      return { removed: 0, parked: 0 };
    },
  };
  const reader = new OutboxStoresReader({ data_dir: dir, store_count: 1, map_bytes: store_map_bytes_max, partitions_by_worker: [[0]] });
  const source = new CursorOutboxSource(reader, control, [[0]]);
  const close = async () => {
    await reader.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { source, calls, close };
}

const read = (limit: number): OutboxReadRequest => ({ cursors: [{ partition: 0, after_seq: 0 }], limit, limit_per_partition: limit, requeue_parked: false });

test('the cursor moves with acknowledgements only; a restart resets it; a stale round moves nothing', async () => {
  const { source, calls, close } = await setup();
  try {
    const first = await source.outbox_read(0, read(2));
    assert.equal(first.entries.map((e) => e.seq), [1, 2]);
    assert.equal((await source.outbox_read(0, read(2))).entries.map((e) => e.seq), [1, 2], 'unacknowledged: read again');
    await source.outbox_ack(0, [{ partition: 0, seqs: [1], park: [2] }]);
    assert.is(source.cursor(0), 2, 'past the sent and the parked entry');
    assert.equal((await source.outbox_read(0, read(2))).entries.map((e) => e.seq), [3, 4]);
    // The worker restarts between this read and its acknowledgement.
    source.worker_ready(0);
    assert.is(source.cursor(0), 0, 'reset: the new worker forgot which entries were delivered');
    await source.outbox_ack(0, [{ partition: 0, seqs: [3, 4], park: [] }]);
    assert.is(source.cursor(0), 0, 'a round read before the restart moves no cursor');
    assert.equal(calls.filter((c) => c.op === 'ack').length, 2, 'every acknowledgement still reaches the worker');
    assert.equal((await source.outbox_read(0, read(5))).entries.map((e) => e.seq), [1, 2, 3, 4, 5]);
    await source.outbox_ack(0, [{ partition: 0, seqs: [1, 2, 3, 4, 5], park: [] }]);
    assert.is(source.cursor(0), 5);
    // Nothing past the cursor: the worker is asked, with the cursor, and arms its wake-up.
    const empty = await source.outbox_read(0, read(5));
    assert.equal(empty.entries, []);
    const last = calls.at(-1)!;
    assert.is(last.op, 'read');
    assert.equal(last.request?.cursors, [{ partition: 0, after_seq: 5 }]);
  } finally {
    await close();
  }
});

test.run();
