// Is sessionTimeout below the broker's group.min.session.timeout.ms (default 6000) accepted?
import { kafka, ensureTopics, describeError } from './common.mjs';
const topic = `q3min-${Date.now()}`;
await ensureTopics(kafka('q3min'), [topic], 1);
for (const sessionTimeout of [3000, 6000]) {
  const c = kafka('q3min').consumer({ groupId: `${topic}-g${sessionTimeout}`, sessionTimeout, heartbeatInterval: 500, retry: { retries: 0 } });
  await c.connect(); await c.subscribe({ topic });
  const r = await new Promise((resolve) => { c.on(c.events.GROUP_JOIN, () => resolve('joined')); c.on(c.events.CRASH, (e) => resolve(`crash: ${describeError(e.payload.error)}`)); c.run({ eachMessage: async () => {} }).catch((e) => resolve(`run failed: ${describeError(e)}`)); });
  console.log(`sessionTimeout ${sessionTimeout}: ${r}`);
  await c.disconnect();
}
