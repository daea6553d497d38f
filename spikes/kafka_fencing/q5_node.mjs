// A miniature cluster node: ownership from the group's assignment of the journal topic, a transactional producer
// per owned partition (transactional.id = <cluster>-p<P>, taken over by each new owner), replay after the fence,
// then a loop that "decides" changes: each journal record carries basedOn = number of committed records this node
// believes precede it. Prints JSON lines: ACK (only after commit() resolved), FENCED, SERVING, JOIN, REBALANCING.
import { kafka, tproducer, describeError, sleep } from './common.mjs';
const [CLUSTER, TOPIC, NAME] = process.argv.slice(2);
const EVENTS = `${TOPIC}-events`;
const out = (o) => console.log(JSON.stringify({ t: Date.now(), node: NAME, ...o }));
const k = kafka(NAME);
const admin = k.admin();
const c = k.consumer({ groupId: CLUSTER, sessionTimeout: 6000, heartbeatInterval: 1000, rebalanceTimeout: 10000, maxWaitTimeInMs: 250, readUncommitted: false });
let epoch = 0; // bumped on every REBALANCING / GROUP_JOIN: loops of an older epoch stop before their next change
const parts = new Map(); // p -> { epoch, producer, count, replay: {end, count, resolve} }
function stopAll(why) {
  epoch++;
  for (const [p, s] of parts) { s.stopped = true; s.producer.disconnect().catch(() => {}); }
  if (parts.size) out({ ev: 'STOP_ALL', why, partitions: [...parts.keys()] });
  parts.clear();
}
c.on(c.events.REBALANCING, () => { out({ ev: 'REBALANCING' }); stopAll('rebalancing'); });
c.on(c.events.GROUP_JOIN, (e) => {
  stopAll('group_join'); // no REBALANCING is emitted when the member was expelled (UNKNOWN_MEMBER_ID): stop here too
  c.pause([{ topic: TOPIC }]);
  const mine = e.payload.memberAssignment[TOPIC] ?? [];
  out({ ev: 'JOIN', assignment: mine });
  const my = epoch;
  for (const p of mine) take(p, my).catch((err) => out({ ev: 'TAKE_FAILED', p, error: describeError(err) }));
});
async function take(p, my) {
  const t0 = Date.now();
  const producer = tproducer(kafka(`${NAME}-p${p}`), `${CLUSTER}-p${p}`);
  await producer.connect();
  const tx = await producer.transaction(); await tx.abort(); // InitProducerId = the fence
  if (my !== epoch) { await producer.disconnect(); return; }
  const end = Number((await admin.fetchTopicOffsets(TOPIC)).find((o) => o.partition === p).high);
  const s = { producer, count: 0, stopped: false };
  parts.set(p, s);
  if (end > 0) {
    await new Promise((resolve) => { s.replay = { end, resolve }; c.seek({ topic: TOPIC, partition: p, offset: '0' }); c.resume([{ topic: TOPIC, partitions: [p] }]); });
  }
  if (my !== epoch || s.stopped) return;
  out({ ev: 'SERVING', p, count: s.count, take_ms: Date.now() - t0 });
  serve(p, s, my);
}
async function serve(p, s, my) {
  let seq = 0;
  while (!s.stopped && my === epoch) {
    const id = `${NAME}-p${p}-${seq++}`;
    try {
      const tx = await s.producer.transaction();
      await tx.send({ topic: TOPIC, messages: [{ partition: p, value: JSON.stringify({ id, node: NAME, basedOn: s.count }) }] });
      await tx.send({ topic: EVENTS, messages: [{ key: id, value: id }] });
      await tx.commit();
      s.count++;
      out({ ev: 'ACK', p, id, basedOn: s.count - 1 });
    } catch (err) {
      out({ ev: 'FENCED', p, id, error: describeError(err) });
      s.stopped = true; s.producer.disconnect().catch(() => {});
      if (parts.get(p) === s) parts.delete(p);
      return; // do NOT re-init: only a new GROUP_JOIN that assigns p again may take it (else two owners ping-pong)
    }
    await sleep(20);
  }
}
c.on(c.events.END_BATCH_PROCESS, (e) => {
  const s = parts.get(e.payload.partition);
  if (s?.replay && Number(e.payload.lastOffset) + 1 >= s.replay.end) { c.pause([{ topic: TOPIC, partitions: [e.payload.partition] }]); const r = s.replay; s.replay = null; r.resolve(); }
});
await admin.connect();
await c.connect();
await c.subscribe({ topic: TOPIC, fromBeginning: true });
await c.run({ autoCommit: false, eachBatch: async ({ batch }) => { const s = parts.get(batch.partition); if (s?.replay) s.count += batch.messages.length; } });
out({ ev: 'STARTED' });
process.on('SIGTERM', async () => { stopAll('sigterm'); await c.disconnect().catch(() => {}); process.exit(0); });
