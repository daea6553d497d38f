// Q2: transactions spanning a journal topic + 2 event topics; read_committed readback exactly once; latency p50/p99.
import { kafka, tproducer, ensureTopics, readAll, describeError } from './common.mjs';
const run = Date.now();
const J = `q2-journal-${run}`, E1 = `q2-holds-${run}`, E2 = `q2-orders-${run}`;
const N = Number(process.argv[2] ?? 150);
const SEND = process.env.SEND ?? 'batch';
const hash = (k) => { let h = 0; for (const ch of String(k)) h = (h * 31 + ch.charCodeAt(0)) >>> 0; return h; };
console.log(`send mode: ${SEND}`);
const RF = Number(process.env.RF ?? 1);
const k = kafka('q2');
await ensureTopics(k, [J, E1, E2], 3, RF, RF > 1 ? [{ name: 'min.insync.replicas', value: '2' }] : []);
const P = tproducer(kafka('q2p'), `q2-tid-${run}`);
await P.connect();
const expected = new Map([[J, new Set()], [E1, new Set()], [E2, new Set()]]);
const pct = (a, q) => a[Math.min(a.length - 1, Math.floor(q * a.length))];
let id = 0;
const results = {};
for (const size of [1, 10, 50]) {
  const lat = [];
  for (let i = 0; i < N; i++) {
    const s = process.hrtime.bigint();
    const t = await P.transaction();
    const jm = [], e1 = [], e2 = [];
    for (let r = 0; r < size; r++) {
      const v = `r${id++}`;
      jm.push({ key: 'p0', value: v, partition: 0 });
      if (r % 2 === 0) e1.push({ key: v, value: v }); else e2.push({ key: v, value: v });
    }
    const abort = i % 10 === 9; // every 10th txn is aborted: its records must never be seen
    const topicMessages = [{ topic: J, messages: jm }, { topic: E1, messages: e1 }];
    if (e2.length) topicMessages.push({ topic: E2, messages: e2 });
    if (SEND === 'batch') await t.sendBatch({ topicMessages, acks: -1 });
    else {
      // Work-around for the kafkajs multi-broker retry duplicate: one send per partition (explicit partition), so a
      // retry never re-sends records another broker already accepted. 'seq' = journal first, then each partition in turn.
      const perPartition = [];
      for (const { topic, messages } of topicMessages) {
        const groups = new Map();
        for (const m of messages) { const q = m.partition ?? hash(m.key) % 3; if (!groups.has(q)) groups.set(q, []); groups.get(q).push({ ...m, partition: q }); }
        for (const [, ms] of groups) perPartition.push({ topic, messages: ms });
      }
      if (SEND === 'seq') for (const x of perPartition) await t.send({ ...x, acks: -1 });
      else { await t.send({ ...perPartition[0], acks: -1 }); await Promise.all(perPartition.slice(1).map((x) => t.send({ ...x, acks: -1 }))); }
    }
    if (abort) { await t.abort(); continue; }
    await t.commit();
    lat.push(Number(process.hrtime.bigint() - s) / 1e6);
    for (const m of jm) expected.get(J).add(m.value);
    for (const m of e1) expected.get(E1).add(m.value);
    for (const m of e2) expected.get(E2).add(m.value);
  }
  lat.sort((a, b) => a - b);
  results[size] = { txns: lat.length, p50: pct(lat, 0.5).toFixed(1), p99: pct(lat, 0.99).toFixed(1), max: lat.at(-1).toFixed(1) };
  console.log(`records/txn=${size}: committed txns=${lat.length} latency ms p50=${results[size].p50} p99=${results[size].p99} max=${results[size].max}`);
}
// Retry scenario: a txn aborted after send, then the SAME records sent in a new txn -> seen once.
{
  const t = await P.transaction();
  await t.send({ topic: E1, messages: [{ key: 'retry', value: 'retry-1' }] });
  await t.abort();
  const t2 = await P.transaction();
  await t2.send({ topic: E1, messages: [{ key: 'retry', value: 'retry-1' }] });
  await t2.commit();
  expected.get(E1).add('retry-1');
}
await P.disconnect();
const seen = await readAll(k, [J, E1, E2]);
for (const [topic, want] of expected) {
  const got = seen.filter((m) => m.topic === topic).map((m) => m.value);
  const uniq = new Set(got);
  const missing = [...want].filter((v) => !uniq.has(v)).length;
  const extra = [...uniq].filter((v) => !want.has(v)).length;
  const msgs = seen.filter((m) => m.topic === topic);
  const byOffset = new Set(msgs.map((m) => `${m.partition}@${m.offset}`));
  const firstOffset = new Map(); let logDup = 0; for (const m of msgs) { const o = `${m.partition}@${m.offset}`; if (!firstOffset.has(m.value)) firstOffset.set(m.value, o); else if (firstOffset.get(m.value) !== o) logDup++; }
  console.log(`${topic.split('-')[1]}: deliveries=${msgs.length} distinct offsets=${byOffset.size} same value at a different offset (duplicate in the log)=${logDup}`);
  console.log(`${topic.split('-')[1]}: expected=${want.size} read_committed got=${got.length} unique=${uniq.size} missing=${missing} unexpected(aborted)=${extra} duplicates=${got.length - uniq.size}`);
}
console.log('load:', (await import('node:os')).loadavg().map((x) => x.toFixed(2)).join(' '));
