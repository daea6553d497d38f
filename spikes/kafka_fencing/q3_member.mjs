// One group member in its own process; logs JSON lines with wall-clock times.
import { kafka } from './common.mjs';
const [GROUP, TOPIC, NAME, MAXWAIT, PAUSE] = process.argv.slice(2);
const k = kafka(NAME);
const c = k.consumer({ groupId: GROUP, sessionTimeout: 6000, heartbeatInterval: 1000, rebalanceTimeout: Number(process.env.REBALANCE_TIMEOUT ?? 10000), maxWaitTimeInMs: Number(MAXWAIT ?? 5000) });
const out = (o) => console.log(JSON.stringify({ t: Date.now(), name: NAME, pid: process.pid, ...o }));
c.on(c.events.GROUP_JOIN, (e) => out({ ev: 'GROUP_JOIN', assignment: e.payload.memberAssignment[TOPIC] ?? [], generation: c.__gen, duration: e.payload.duration }));
c.on(c.events.REBALANCING, () => out({ ev: 'REBALANCING' }));
c.on(c.events.CRASH, (e) => out({ ev: 'CRASH', error: e.payload.error?.message }));
c.on(c.events.HEARTBEAT, () => process.env.HB && out({ ev: 'HEARTBEAT' }));
await c.connect();
await c.subscribe({ topic: TOPIC, fromBeginning: true });
await c.run({ autoCommit: false, eachMessage: async () => {} });
if (PAUSE === 'pause') { c.on(c.events.GROUP_JOIN, (e) => c.pause([{ topic: TOPIC }])); }
process.on('SIGTERM', async () => { out({ ev: 'SIGTERM' }); await c.disconnect(); out({ ev: 'LEFT' }); process.exit(0); });
