// Q1a: producer A (transactionalId t-p7) mid-transaction; producer B with the same id inits.
import { kafka, tproducer, ensureTopics, describeError, readAll } from './common.mjs';
const run = Date.now();
const TOPIC = `q1-journal-${run}`, TOPIC2 = `q1-events-${run}`;
const TID = `t-p7-${run}`;
const k = kafka('q1');
await ensureTopics(k, [TOPIC, TOPIC2], 3);
const A = tproducer(kafka('A'), TID); await A.connect();
const B = tproducer(kafka('B'), TID); await B.connect();
const log = (...a) => console.log(new Date().toISOString().slice(11, 23), ...a);

// A: one committed txn first
let ta = await A.transaction();
await ta.send({ topic: TOPIC, messages: [{ key: 'k', value: 'A-committed-1', partition: 0 }] });
await ta.commit();
log('A committed txn 1');

// A: open txn with one record to partition 0 (not committed)
ta = await A.transaction();
await ta.send({ topic: TOPIC, messages: [{ value: 'A-open-before-B', partition: 0 }] });
log('A sent A-open-before-B in open txn (acked by leader, uncommitted)');

// B inits (first transaction() does InitProducerId -> epoch bump, aborts A's open txn)
const t0 = Date.now();
const tb = await B.transaction();
log(`B transaction() (InitProducerId) returned after ${Date.now() - t0} ms`);

// A tries: send to the same partition (already in txn), a new partition, a new topic, then commit
for (const [label, fn] of [
  ['A send same partition 0', () => ta.send({ topic: TOPIC, messages: [{ value: 'A-after-B-p0', partition: 0 }] })],
  ['A send new partition 1', () => ta.send({ topic: TOPIC, messages: [{ value: 'A-after-B-p1', partition: 1 }] })],
  ['A send new topic', () => ta.send({ topic: TOPIC2, messages: [{ value: 'A-after-B-ev', partition: 0 }] })],
  ['A commit', () => ta.commit()],
  ['A abort', () => ta.abort()],
  ['A new transaction()', async () => { const t = await A.transaction(); await t.send({ topic: TOPIC, messages: [{ value: 'A-newtxn', partition: 0 }] }); await t.commit(); }],
]) {
  const s = Date.now();
  try { const r = await fn(); log(`${label}: OK (!) ${JSON.stringify(r)}`); }
  catch (e) { log(`${label}: FAILED after ${Date.now() - s} ms: ${describeError(e)}`); }
}
await tb.send({ topic: TOPIC, messages: [{ value: 'B-committed-1', partition: 0 }] });
await tb.commit();
log('B committed');
const committed = await readAll(k, [TOPIC, TOPIC2]);
log('read_committed sees:', JSON.stringify(committed.map((m) => `${m.topic.split('-')[1]}/${m.partition}@${m.offset}=${m.value}`)));
const uncommitted = await readAll(k, [TOPIC, TOPIC2], { isolation: 'read_uncommitted' });
log('read_uncommitted sees:', JSON.stringify(uncommitted.map((m) => `${m.topic.split('-')[1]}/${m.partition}@${m.offset}=${m.value}`)));
await A.disconnect().catch(() => {}); await B.disconnect();
