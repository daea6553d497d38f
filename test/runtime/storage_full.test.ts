// A PartitionHost on a real small filesystem (tmpfs, size=4m) that fills up: a refused commit
// must fail its replies and everything decided on top of it, even a small commit that would
// fit (lmdb-js would run it, leaving a hole in the journal), reload the partition from disk,
// refuse writes at once, answer reads, never call on_fatal, and resume when space returns.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../src/runtime/clock.js';
import { PartitionHost } from '../../src/runtime/host.js';
import type { WireReply, WireRequest } from '../../src/runtime/protocol.js';
import { PartitionStore } from '../../src/runtime/store.js';
import { behaviour, type CounterRecord, type CounterRequest } from './fixtures/counter_behaviour.js';

let next_id = 1;
function batch(...items: [number, CounterRequest][]): WireRequest[] {
  return items.map(([partition, body]) => ({ id: next_id++, partition, body }));
}
const failed = (r: WireReply): string => (r.ok ? 'ok' : r.error.name);

test('full tmpfs: a refused commit and the commits queued behind it fail, state reloads, reads go, writes resume', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'host-storage-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', dir]); // fails loudly if it cannot
  const fatals: unknown[] = [];
  let host: PartitionHost<unknown, CounterRequest, CounterRecord> | undefined;
  try {
    host = new PartitionHost(behaviour as never, {
      partitions: [0], data_dir: dir, node_id: 'h', clock: new ManualClock(1000), snapshot_every_records: 1_000_000,
      storage_probe_interval_ms: 20,
    }, (e) => fatals.push(e));
    await host.recover();
    const ok = await host.run_batch(batch([0, { k: 'add', key: 'a', n: 5 }]));
    assert.equal(ok.map(failed), ['ok']);
    // Leave ~200 KB: a 1 MB commit cannot fit, a tiny one could.
    const s = statfsSync(dir);
    const filler = join(dir, 'filler');
    writeFileSync(filler, Buffer.alloc(s.bavail * s.bsize - 200 * 1024));

    const big = host.run_batch(batch([0, { k: 'emit', key: 'big', count: 1000, payload: { pad: 'x'.repeat(1000) + '{i}' } }]));
    const small = host.run_batch(batch([0, { k: 'add', key: 'a', n: 1 }], [0, { k: 'get', key: 'a' }]));
    assert.equal((await big).map(failed), ['StorageFullError']);
    assert.equal((await small).map(failed), ['StorageFullError', 'StorageFullError'], 'decided on the refused commit: never acknowledged');
    assert.is((host.state_of(0) as { counters: Map<string, number> }).counters.get('a'), 5, 'memory reloaded to what is durable');

    // In the mode: reads answered, writes refused at once.
    const read = await host.run_batch(batch([0, { k: 'get', key: 'a' }]));
    assert.equal(read, [{ id: read[0]!.id, ok: true, value: 5 }]);
    const refused = await host.run_batch(batch([0, { k: 'add', key: 'a', n: 1 }]));
    assert.is(failed(refused[0]!), 'StorageFullError');
    const refusal = await host.run_batch(batch([0, { k: 'add_refused', key: 'a', n: 1 }]));
    assert.is(failed(refusal[0]!), 'StorageFullError', 'a refusal with records is a write: refused like one');
    if (!refused[0]!.ok) assert.match(refused[0]!.error.message, new RegExp(`disk holding the data directory ${dir} has no space left`));
    assert.is(host.gauges()['storage_full_disk'], 1);
    assert.ok(host.storage_messages().length === 1);

    rmSync(filler);
    let resumed: WireReply[] = [];
    for (let i = 0; i < 500 && failed(resumed[0] ?? refused[0]!) !== 'ok'; i++) {
      await new Promise((r) => setTimeout(r, 20));
      resumed = await host.run_batch(batch([0, { k: 'add', key: 'a', n: 1 }]));
    }
    assert.equal(resumed.map(failed), ['ok'], 'writes resumed once space returned');
    assert.is(host.gauges()['storage_full_disk'], 0);
    assert.equal(fatals, [], 'never fatal');
    await host.close();
    host = undefined;

    // On disk: a contiguous journal holding exactly the acknowledged adds.
    const store = new PartitionStore<CounterRecord>(0, dir, 'h');
    const recovered = store.recover();
    await store.close();
    assert.equal(recovered.tail.flat(), [{ r: 'add', key: 'a', n: 5 }, { r: 'add', key: 'a', n: 1 }]);
  } finally {
    await host?.close();
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
