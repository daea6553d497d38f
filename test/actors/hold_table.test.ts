// The hold table (structure of arrays, hash index over issued ids) and the typed expiry heap,
// against plain Maps and sorted arrays as the oracle.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import { ExpiryHeap } from '../../src/actors/expiry_heap.js';
import { HoldTable } from '../../src/actors/hold_table.js';
import { make_id } from '../../src/actors/ids.js';
import type { Hold } from '../../src/actors/partition_state.js';

function hold(hold_id: string, n: number, over: Partial<Hold> = {}): Hold {
  return {
    hold_id, hold_no: n, event_id: `evt-${n % 3}`, user_id: `u${n % 5}`,
    seats: n % 4 === 0 ? [n, n + 1, n + 2] : [n], created_ms: 1_700_000_000_000 + n,
    expires_at_ms: 1_700_000_600_000 + (n % 7), status: 'active', order_id: '', ended_ms: 0,
    trace_id: `t${n}`, extensions: 0, ...over,
  };
}

const issued = (partition: number, n: number): string =>
  make_id('hold', partition, Uint8Array.from({ length: 16 }, (_, i) => (n * 31 + i * 7) & 255));

const plain = (h: Hold): Hold => JSON.parse(JSON.stringify(h)) as Hold;

test('hold table: holds read back whole, issued and odd ids alike, through growth and deletes', () => {
  fc.assert(fc.property(fc.array(fc.tuple(fc.boolean(), fc.boolean()), { maxLength: 300 }), (ops) => {
    const table = new HoldTable(3);
    const oracle = new Map<string, Hold>();
    ops.forEach(([add, odd], n) => {
      const live = [...oracle.keys()];
      if (!add && live.length > 0) {
        const id = live[n % live.length]!;
        table.delete(id);
        oracle.delete(id);
        assert.is(table.get(id), undefined);
        return;
      }
      // Odd ids: an older format, another partition's prefix, a non-ASCII char.
      const id = odd ? [`h-${n}`, issued(4, n), `hold_3_${'é'.repeat(22)}${n}`.slice(0, 29)][n % 3]! : issued(3, n);
      if (oracle.has(id)) return;
      const h = hold(id, n, n % 5 === 0 ? { status: 'confirmed', order_id: `ord-${n}`, ended_ms: 9 } : {});
      table.insert(h);
      oracle.set(id, h);
    });
    assert.is(table.size, oracle.size);
    for (const [id, h] of oracle) assert.equal(plain(table.get(id)!), h);
    assert.equal(new Set(table.keys()), new Set(oracle.keys()));
    // Columns round-trip (snapshot version 3).
    const copy = new HoldTable(3);
    copy.restore(table.columns());
    for (const [id, h] of oracle) assert.equal(plain(copy.get(id)!), h);
    assert.is(copy.size, oracle.size);
  }));
});

test('hold table: a view refuses to read a slot reused by another hold', () => {
  const table = new HoldTable(0);
  const a = issued(0, 1);
  table.insert(hold(a, 1));
  const view = table.get(a)!;
  view.status = 'released';
  assert.is(table.get(a)!.status, 'released', 'writes go through');
  table.delete(a);
  table.insert(hold(issued(0, 2), 2));
  assert.throws(() => view.status);
});

test('expiry heap: pops by expiry, ties by hold id as the strings sort', () => {
  fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 200 }), (keys) => {
    const table = new HoldTable(0);
    const heap = new ExpiryHeap(table);
    const entries = keys.map((key, n) => {
      const id = n % 9 === 0 ? `odd-${n}` : issued(0, n);
      heap.push(key, table.insert(hold(id, n)));
      return { key, id };
    });
    entries.sort((x, y) => x.key - y.key || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
    const popped: { key: number; id: string }[] = [];
    for (let top = heap.peek(); top !== null; top = heap.peek()) {
      heap.pop();
      popped.push({ key: top.key, id: table.id_of(top.slot) });
    }
    assert.equal(popped, entries);
  }));
});

test('expiry heap: an entry of a reused slot is told apart by its generation', () => {
  const table = new HoldTable(0);
  const heap = new ExpiryHeap(table);
  const a = issued(0, 1);
  heap.push(100, table.insert(hold(a, 1)));
  table.delete(a);
  const b = table.insert(hold(issued(0, 2), 2));
  heap.push(100, b);
  const first = heap.peek()!;
  heap.pop();
  const second = heap.peek()!;
  assert.equal([first.slot, second.slot], [b, b]);
  assert.equal([table.is(first.slot, first.gen), table.is(second.slot, second.gen)].sort(), [false, true]);
});

test.run();
