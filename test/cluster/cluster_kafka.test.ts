// ClusterKafka and PartitionWriter on three real brokers (RF 3, min.insync 2): membership is
// ownership (two members split the partitions, agree on the owners map, and one takes all
// when the other leaves), take() fences and restores exactly what was committed (segments
// after the latest snapshot, a multi-MB snapshot in chunks), a fenced writer is dead and
// nothing of its is read after the take, events are read exactly once (read_committed) with
// their cluster event ids, and a topic that does not match is refused.
//
// Started inside the first test (a throwing `before` hook makes uvu exit 0 without running).
import { rmSync } from 'node:fs';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { ClusterConfigError, JournalWriteError, PartitionFencedError } from '../../src/cluster/errors.js';
import { snapshot_chunk_bytes } from '../../src/cluster/journal_format.js';
import type { PartitionWriter } from '../../src/cluster/partition_writer.js';
import type { OutboxEntry } from '../../src/runtime/behaviour.js';
import { guarded_after } from '../guard.js';
import { start_cluster, type Cluster } from '../kafka/broker.js';
import { start_consumer } from '../kafka/consume.js';
import {
  fresh_name, member, read_journal, segments_of, topic_prefix, unpack_all, until, wire, type Member,
} from './helpers.js';

interface Context { cluster?: Cluster; members: Member[] }
const t = suite<Context>('cluster kafka', { members: [] });

function brokers_of(ctx: Context): string {
  if (ctx.cluster === undefined) throw new Error('no cluster: the "starts" test failed (see above)');
  return ctx.cluster.brokers;
}

/** A member of `ctx`, stopped at the end of the file whatever happens. */
function join(ctx: Context, cluster: string, node_id: string, partition_count = 6): Member {
  const m = member(cluster, brokers_of(ctx), node_id, { partition_count });
  ctx.members.push(m);
  return m;
}

guarded_after(t, async (ctx) => {
  for (const m of ctx.members) await m.kafka.stop();
  if (ctx.cluster === undefined) return;
  await ctx.cluster.stop().catch(() => ctx.cluster?.kill());
  rmSync(ctx.cluster.work_dir, { recursive: true, force: true });
});

const all = [0, 1, 2, 3, 4, 5];

function owners_as_object(m: Member): Record<number, string> | undefined {
  const a = m.current();
  if (a === undefined) return undefined;
  return Object.fromEntries([...a.owners].map(([p, o]) => [p, o.node_id]));
}

t('starts three brokers', async (ctx) => {
  ctx.cluster = await start_cluster(3);
  assert.equal(ctx.cluster.replicas, { factor: 3, min_insync: 2 });
});

t('two members split the partitions, agree on the owners map; one leaves, the other owns all', async (ctx) => {
  const name = fresh_name('split');
  const a = join(ctx, name, 'node-a');
  await a.kafka.start();
  assert.equal(a.current()?.mine, all, 'alone: all six');
  const b = join(ctx, name, 'node-b');
  await b.kafka.start();
  const agreed = await until('both assigned in one generation, the same owners map', () => {
    const [oa, ob] = [owners_as_object(a), owners_as_object(b)];
    if (oa === undefined || ob === undefined || JSON.stringify(oa) !== JSON.stringify(ob)) return undefined;
    return Object.keys(oa).length === 6 ? oa : undefined;
  });
  const [ma, mb] = [a.current()?.mine ?? [], b.current()?.mine ?? []];
  assert.is(ma.length, 3, 'balanced');
  assert.is(mb.length, 3, 'balanced');
  assert.equal([...ma, ...mb].sort(), all, 'disjoint, all covered');
  for (const p of ma) assert.is(agreed[p], 'node-a');
  for (const p of mb) assert.is(agreed[p], 'node-b');
  assert.equal(ma, [0, 1, 2], 'sticky: a keeps what it had, up to its share');
  assert.is(a.current()?.owners.get(mb[0] ?? -1)?.advertise, '127.0.0.1:40006', "b's advertise");
  assert.ok(a.revocations.length >= 2, 'a was revoked when b joined (REBALANCING and GROUP_JOIN)');
  const generation = a.current()?.generation ?? 0;
  await b.kafka.stop();
  await until('a owns all again', () => (a.current()?.mine.length === 6 && (a.current()?.generation ?? 0) > generation ? true : undefined));
  assert.equal(owners_as_object(a), Object.fromEntries(all.map((p) => [p, 'node-a'])));
});

/** Commits `n` one-record commits of tag `tag` and returns their records, in order. */
async function commit_n(w: PartitionWriter, n: number, tag: string): Promise<unknown[][]> {
  const out: unknown[][] = [];
  for (let i = 0; i < n; i++) {
    const records = [{ tag, i }];
    await w.commit(wire(w.partition, records));
    out.push(records);
  }
  return out;
}

t('take by another member restores exactly the segments; the old writer is fenced', async (ctx) => {
  const name = fresh_name('fence');
  const p = 5;
  const a = join(ctx, name, 'node-a');
  await a.kafka.start();
  const ga = a.current()?.generation ?? -1;
  const { writer: wa, restore: first } = await a.kafka.take(p, ga);
  assert.equal(first, { partition: p, snapshot: null, segments: [] }, 'a new journal: nothing');
  const committed = await commit_n(wa, 3, 'a');
  await wa.commit(wire(p, null)); // a commit without records still needs its transaction
  const b = join(ctx, name, 'node-b');
  await b.kafka.start();
  const gb = await until('b assigned p', () => (b.current()?.mine.includes(p) ? b.current()?.generation : undefined));
  // a's handlers did not close wa (a zombie's would not either): only the fence stops it.
  const { writer: wb, restore } = await b.kafka.take(p, gb);
  assert.is(restore.snapshot, null);
  assert.equal(unpack_all(restore.segments), committed, "exactly a's segments, in order");
  const error = await wa.commit(wire(p, [{ tag: 'a-zombie' }])).then(() => undefined, (e: unknown) => e);
  assert.instance(error, PartitionFencedError, String(error));
  assert.ok(wa.dead);
  const later = await wa.commit(wire(p, [{ tag: 'a-zombie-2' }])).then(() => undefined, (e: unknown) => e);
  assert.instance(later, PartitionFencedError, 'every later commit too');
  const by_b = await commit_n(wb, 2, 'b');
  const journal = segments_of(await read_journal(brokers_of(ctx), name, p));
  assert.equal(journal, [...committed, ...by_b], "read_committed: nothing of a's after b's take");
  const moved = await a.kafka.take(p, ga).then(() => undefined, (e: unknown) => e);
  assert.is((moved as Error | undefined)?.name, 'PartitionMovedError', 'a stale generation is refused');
});

t('a snapshot and later commits restore as the snapshot and only the later segments', async (ctx) => {
  const name = fresh_name('snap');
  const p = 2;
  const a = join(ctx, name, 'node-a');
  await a.kafka.start();
  const g = a.current()?.generation ?? -1;
  const { writer } = await a.kafka.take(p, g);
  await commit_n(writer, 2, 'before');
  const snapshot = Buffer.from('the state after before-0, before-1 and with-snapshot');
  await writer.commit(wire(p, [{ tag: 'with-snapshot' }], { snapshot }));
  const after = await commit_n(writer, 2, 'after');
  const { writer: again, restore } = await a.kafka.take(p, g); // re-take: own writer fenced
  assert.equal(Buffer.from(restore.snapshot ?? []), snapshot);
  assert.equal(unpack_all(restore.segments), after, 'only the segments after the snapshot');
  assert.ok(writer.dead, 'the older writer is closed by the re-take');
  // A multi-MB snapshot: chunked (one send each), read back whole.
  const big = Buffer.alloc(5 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7919) % 251;
  await again.commit(wire(p, [{ tag: 'big' }], { snapshot: big }));
  const tail = await commit_n(again, 1, 'tail');
  const { restore: big_restore } = await a.kafka.take(p, g);
  assert.ok(Buffer.from(big_restore.snapshot ?? []).equals(big), 'the big snapshot round-trips');
  assert.equal(unpack_all(big_restore.segments), tail);
  const chunks = (await read_journal(brokers_of(ctx), name, p)).filter((m) => m.kind === 'snapshot');
  assert.is(chunks.length, 1 + Math.ceil(big.length / snapshot_chunk_bytes), 'one small, the big in chunks');
});

t('group commit: commits queued while a transaction is in flight go in the next, in order', async (ctx) => {
  const name = fresh_name('group');
  const a = join(ctx, name, 'node-a');
  await a.kafka.start();
  const g = a.current()?.generation ?? -1;
  const { writer } = await a.kafka.take(0, g);
  const writes: { records: number; commits: number }[] = [];
  writer.on_write = (o) => writes.push({ records: o.records, commits: o.commits });
  const burst = Array.from({ length: 60 }, (_, i) => [{ i }, { i, second: true }]);
  await Promise.all(burst.map((records) => writer.commit(wire(0, records))));
  assert.is(writes.reduce((s, w) => s + w.commits, 0), 60, 'every commit in one transaction');
  assert.is(writes.reduce((s, w) => s + w.records, 0), 120, 'records counted from the packed arrays');
  assert.ok(writes.length < 60, `grouped: ${writes.length} transactions for 60 commits`);
  const { restore } = await a.kafka.take(0, g);
  assert.equal(unpack_all(restore.segments), burst, 'in the order committed');
});

function entry(n: number): OutboxEntry {
  return {
    type: 'OrderConfirmed', key: `ord_${n}`,
    payload: { order_id: `ord_${n}`, user_id: 'u', total: { amount_micros: n, currency: 'EUR' }, confirmed_at_unix: n, trace_id: `t${n}` },
  };
}

t('events: read_committed sees each once with its event id, none of a failed commit', async (ctx) => {
  const name = fresh_name('events');
  const p = 1;
  const a = join(ctx, name, 'node-a');
  await a.kafka.start();
  const g = a.current()?.generation ?? -1;
  const { writer } = await a.kafka.take(p, g);
  const expected = new Map<string, string>(); // key → trace id, of acknowledged commits only
  for (let c = 0; c < 4; c++) {
    const outbox = [entry(c * 10), entry(c * 10 + 1), entry(c * 10 + 2)];
    await writer.commit(wire(p, [{ c }], { outbox }));
    for (const e of outbox) expected.set(e.key, String(e.payload['trace_id']));
  }
  const bad = { type: 'NoSuchEvent', key: 'bad', payload: {} };
  const refused = await writer.commit(wire(p, [{ c: 'bad' }], { outbox: [entry(900), bad] })).then(() => undefined, (e: unknown) => e);
  assert.instance(refused, JournalWriteError, 'an event that cannot be encoded fails its commit');
  const after = await writer.commit(wire(p, [{ c: 'after' }], { outbox: [entry(901)] })).then(() => undefined, (e: unknown) => e);
  assert.instance(after, JournalWriteError, 'and the writer is dead');
  // A commit in flight while another member takes p: either it commits first (its events are
  // read once) or it is fenced (none of them is read).
  const { writer: w2 } = await a.kafka.take(p, g);
  const b = join(ctx, name, 'node-b');
  const racing = [entry(500), entry(501)];
  await w2.commit(wire(p, [{ c: 'w2' }], { outbox: [entry(400)] }));
  expected.set('ord_400', 't400');
  await b.kafka.start();
  const gb = await until('b assigned p', () => (b.current()?.mine.includes(p) ? b.current()?.generation : undefined));
  const race = w2.commit(wire(p, [{ c: 'race' }], { outbox: racing })).then(() => true, () => false);
  const { writer: wb } = await b.kafka.take(p, gb);
  if (await race) for (const e of racing) expected.set(e.key, String(e.payload['trace_id']));
  const fenced = await w2.commit(wire(p, [{ c: 'zombie' }], { outbox: [entry(600)] })).then(() => undefined, (e: unknown) => e);
  assert.instance(fenced, PartitionFencedError);
  await wb.commit(wire(p, [{ c: 'b' }], { outbox: [entry(700)] }));
  expected.set('ord_700', 't700');
  const topic = `${topic_prefix}ticketing.events.v1.OrderConfirmed`;
  const consumer = await start_consumer(brokers_of(ctx), [topic]);
  try {
    const mine = (): typeof consumer.messages => consumer.messages.filter((m) => m.headers['event-id']?.startsWith(`${name}-`));
    await consumer.until(() => mine().length >= expected.size);
    const seen = mine();
    const ids = seen.map((m) => m.headers['event-id'] ?? '');
    assert.is(new Set(ids).size, ids.length, 'no event twice');
    for (const id of ids) assert.match(id, new RegExp(`^${name}-p${p}-[0-9]+-[0-9]+$`));
    assert.equal(new Map(seen.map((m) => [m.key, m.headers['trace-id'] ?? ''])), expected, 'exactly the acknowledged ones');
  } finally {
    await consumer.stop();
  }
});

t('a journal topic that does not match is refused at start', async (ctx) => {
  const name = fresh_name('mismatch');
  const a = join(ctx, name, 'node-a');
  await a.kafka.start();
  const brokers = brokers_of(ctx);
  const cases: [string, Parameters<typeof member>[3], RegExp][] = [
    ['partitions', { partition_count: 4 }, /has 6 partitions; this node was started with 4/],
    ['replication', { replication_factor: 2 }, /replication factor 3; this node was started with 2/],
    ['min.insync', { min_insync_replicas: 1 }, /min\.insync\.replicas=2; the cluster needs 1/],
    ['more replicas than brokers', { replication_factor: 4, min_insync_replicas: 2 }, /needs at least 4 brokers; the cluster has 3/],
  ];
  for (const [what, over, message] of cases) {
    const m = member(name, brokers, `node-${what}`, over);
    ctx.members.push(m);
    const error = await m.kafka.start().then(() => undefined, (e: unknown) => e);
    assert.instance(error, ClusterConfigError, what);
    assert.match((error as Error).message, message, what);
  }
  assert.throws(() => member(name, brokers, 'x', { max_wait_ms: 5000 }), /fetch max wait/);
});

t.run();
