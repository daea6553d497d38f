// Q6 (risk probe): transactional load (journal p0 + 2 event topics, one send per partition) on 3 brokers, RF 3,
// min.insync.replicas 2; kill -9 the leader of journal p0 mid-run. Every commit() that resolved is an ACK; afterwards
// check with read_committed: acked records all present, no duplicates, nothing from failed txns. Errors are tallied.
import { kafka, tproducer, ensureTopics, readAll, sleep, describeError } from './common.mjs';
const PIDS = Object.fromEntries(process.argv[2].split(' ').map((x) => x.split('=').map(Number))); // "1=pid 2=pid 3=pid"
const SEND = process.env.SEND ?? 'seq';
const run = Date.now();
const J = `q6-journal-${run}`, E1 = `q6-holds-${run}`, E2 = `q6-orders-${run}`, TID = `q6-${run}-p0`;
const k = kafka('q6');
await ensureTopics(k, [J, E1, E2], 3, 3, [{ name: 'min.insync.replicas', value: '2' }]);
const admin = k.admin(); await admin.connect();
const leader = (await admin.fetchTopicMetadata({ topics: [J] })).topics[0].partitions.find((p) => p.partitionId === 0).leader;
const log = (...a) => console.log(new Date().toISOString().slice(11, 23), ...a);
log(`send mode ${SEND}; journal p0 leader = broker ${leader} (pid ${PIDS[leader]})`);
let P = tproducer(kafka('q6p'), TID); await P.connect();
const acked = []; const failedIds = []; const errors = new Map(); let n = 0, killedAt = 0, firstAckAfterKill = 0, lastErrorAt = 0;
const stopAt = Date.now() + 25000;
setTimeout(() => { process.kill(PIDS[leader], 'SIGKILL'); killedAt = Date.now(); log(`>>> kill -9 broker ${leader}`); }, 6000);
const hash = (s) => { let h = 0; for (const ch of s) h = (h * 31 + ch.charCodeAt(0)) >>> 0; return h; };
while (Date.now() < stopAt) {
  const ids = Array.from({ length: 5 }, () => `r${n++}`);
  const t0 = Date.now();
  let t;
  try {
    t = await P.transaction();
    const journal = { topic: J, messages: ids.map((v) => ({ partition: 0, value: v })) };
    const events = ids.map((v, i) => ({ topic: i % 2 ? E2 : E1, messages: [{ key: v, value: v, partition: hash(v) % 3 }] }));
    if (SEND === 'batch') await t.sendBatch({ topicMessages: [journal, ...events], acks: -1 });
    else for (const x of [journal, ...events]) await t.send({ ...x, acks: -1 });
    await t.commit();
    acked.push(...ids.map((id) => ({ id, t: Date.now(), ms: Date.now() - t0 })));
    if (killedAt && !firstAckAfterKill) { firstAckAfterKill = Date.now(); log(`first ACK after kill: ${firstAckAfterKill - killedAt} ms after the kill`); }
  } catch (e) {
    lastErrorAt = Date.now();
    const key = describeError(e).slice(0, 160); errors.set(key, (errors.get(key) ?? 0) + 1);
    failedIds.push(...ids);
    try { if (t?.isActive()) await t.abort(); else throw new Error('not active'); } catch {
      await P.disconnect().catch(() => {}); P = tproducer(kafka('q6p'), TID); await P.connect().catch(() => {}); // same tid: re-init
    }
  }
}
log(`txns acked ${acked.length / 5}, failed ${failedIds.length / 5}; errors:`); for (const [e, c] of errors) log(`  ${c} x ${e}`);
const lat = acked.map((a) => a.ms).sort((a, b) => a - b);
log(`ack latency ms p50=${lat[lat.length >> 1]} p99=${lat[Math.floor(lat.length * 0.99)]} max=${lat.at(-1)}; last error ${lastErrorAt ? lastErrorAt - killedAt : '-'} ms after kill`);
await P.disconnect().catch(() => {});
const seen = await readAll(k, [J, E1, E2]);
for (const topic of [J, E1, E2]) {
  const vals = seen.filter((m) => m.topic === topic).map((m) => m.value); const u = new Set(vals);
  const want = new Set(acked.map((a) => a.id).filter((id) => topic === J || (Number(id.slice(1)) % 5 % 2 ? E2 : E1) === topic));
  const lost = [...want].filter((v) => !u.has(v)).length; const failedVisible = failedIds.filter((v) => u.has(v)).length;
  log(`${topic.split('-')[1]}: read_committed ${vals.length} records, unique ${u.size}, duplicates ${vals.length - u.size}, acked-but-missing ${lost}, from-failed-txn-visible ${failedVisible}`);
}
await admin.disconnect(); process.exit(0);
