// Where does a small transaction's time go? begin / send / commit, plus broker request events.
import { kafka, tproducer, ensureTopics } from './common.mjs';
const run = Date.now();
const J = `q2b-journal-${run}`;
const k = kafka('q2b');
await ensureTopics(k, [J], 1, Number(process.env.RF ?? 1));
const P = tproducer(kafka('q2b', {}), `q2b-tid-${run}`, { retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: Number(process.env.IRT ?? 100) } });
const reqs = [];
P.on(P.events.REQUEST, (e) => reqs.push(`${e.payload.apiName}:${e.payload.duration}ms`));
await P.connect();
for (let i = 0; i < 8; i++) {
  reqs.length = 0;
  const a = Date.now(); const t = await P.transaction();
  const b = Date.now(); await t.send({ topic: J, messages: [{ value: `x${i}`, partition: 0 }] });
  const c = Date.now(); await t.commit();
  const d = Date.now();
  console.log(`txn ${i}: begin ${b - a} ms, send ${c - b} ms, commit ${d - c} ms; requests: ${reqs.join(' ')}`);
}
await P.disconnect();
