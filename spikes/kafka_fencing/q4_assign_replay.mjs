// Q4: ownership = the group's assignment of the journal topic; on GROUP_JOIN the owner
//  1) fences: InitProducerId for transactional id "<cluster>-p<P>" (aborts a zombie's open txn),
//  2) reads the end offset (high watermark; no open txn on p remains after the init),
//  3) seeks the same group consumer to the snapshot offset, replays read_committed up to that end, pauses p,
//  4) serves (here: commits one more journal record through the fenced producer).
import { kafka, tproducer, ensureTopics, sleep, describeError } from './common.mjs';
const run = Date.now();
const N = 4, TOPIC = `q4-journal-${run}`, GROUP = `q4-cluster-${run}`, TID = (p) => `q4-${run}-p${p}`;
const SNAPSHOT_OFFSET = 2; // pretend the snapshot covers offsets < 2
const log = (...a) => console.log(new Date().toISOString().slice(11, 23), ...a);
const k = kafka('q4');
await ensureTopics(k, [TOPIC], N);
// history: 3 committed txns of 2 records per partition, an aborted txn on p1, an OPEN (zombie) txn on p2
const committed = new Map();
for (let p = 0; p < N; p++) {
  const w = tproducer(kafka(`w${p}`), TID(p)); await w.connect();
  committed.set(p, []);
  for (let i = 0; i < 3; i++) { const t = await w.transaction(); const msgs = [{ value: `p${p}-c${i}a`, partition: p }, { value: `p${p}-c${i}b`, partition: p }]; await t.send({ topic: TOPIC, messages: msgs }); await t.commit(); committed.get(p).push(...msgs.map((m) => m.value)); }
  if (p === 1) { const t = await w.transaction(); await t.send({ topic: TOPIC, messages: [{ value: 'p1-aborted', partition: 1 }] }); await t.abort(); }
  if (p === 2) { const t = await w.transaction(); await t.send({ topic: TOPIC, messages: [{ value: 'p2-zombie-open', partition: 2 }] }); log('p2: zombie txn left open'); continue; }
  await w.disconnect();
}
const admin = k.admin(); await admin.connect();
const c = k.consumer({ groupId: GROUP, sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 500, readUncommitted: false });
const producers = new Map(), replay = new Map();
c.on(c.events.GROUP_JOIN, async (e) => {
  const mine = e.payload.memberAssignment[TOPIC] ?? [];
  log('GROUP_JOIN assignment', JSON.stringify(mine));
  c.pause([{ topic: TOPIC }]); // nothing is consumed unless we are replaying
  for (const p of mine) {
    const t0 = Date.now();
    const prod = tproducer(kafka(`owner-p${p}`), TID(p)); await prod.connect();
    const tx = await prod.transaction(); await tx.abort(); // InitProducerId: fences any older owner; abort of an empty txn is local
    const t1 = Date.now();
    const end = Number((await admin.fetchTopicOffsets(TOPIC)).find((o) => o.partition === p).high);
    producers.set(p, prod);
    const r = { p, t0, fence_ms: t1 - t0, end, values: [], done: null };
    replay.set(p, r);
    if (end <= SNAPSHOT_OFFSET) { r.done = Date.now(); continue; }
    c.seek({ topic: TOPIC, partition: p, offset: String(SNAPSHOT_OFFSET) });
    c.resume([{ topic: TOPIC, partitions: [p] }]);
  }
});
c.on(c.events.END_BATCH_PROCESS, (e) => {
  const r = replay.get(e.payload.partition);
  if (r && !r.done && Number(e.payload.lastOffset) + 1 >= r.end) { r.done = Date.now(); c.pause([{ topic: TOPIC, partitions: [r.p] }]); }
});
await c.connect();
await c.subscribe({ topic: TOPIC, fromBeginning: true });
await c.run({ autoCommit: false, eachBatchAutoResolve: true, eachBatch: async ({ batch }) => { const r = replay.get(batch.partition); if (r && !r.done) for (const m of batch.messages) r.values.push(`${m.offset}=${m.value}`); } });
while (replay.size < N || [...replay.values()].some((r) => !r.done)) await sleep(50);
for (const r of replay.values()) {
  const want = committed.get(r.p).slice(SNAPSHOT_OFFSET); // offsets 0,1 are txn 0 (2 records); marker at 2 → offsets shift, compare values only
  const got = r.values.map((v) => v.split('=')[1]);
  log(`p${r.p}: fence ${r.fence_ms} ms, end offset ${r.end}, replay done ${r.done - r.t0} ms after assignment; replayed ${JSON.stringify(r.values)}`);
  log(`p${r.p}: committed values after offset ${SNAPSHOT_OFFSET}: ${JSON.stringify(committed.get(r.p).filter((v, i) => i >= 2))} -> match=${JSON.stringify(got) === JSON.stringify(committed.get(r.p).slice(2))}`);
}
// serve: one more write per partition with the owner's producer
for (const [p, prod] of producers) { const t = await prod.transaction(); await t.send({ topic: TOPIC, messages: [{ value: `p${p}-new-owner`, partition: p }] }); await t.commit(); }
log('new owner committed one record per partition');
await c.disconnect(); for (const prod of producers.values()) await prod.disconnect(); await admin.disconnect();
process.exit(0);
