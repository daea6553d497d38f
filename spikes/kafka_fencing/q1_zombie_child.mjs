// Producer A in its own process. Protocol on stdin/stdout: prints READY when its txn is open; on "go" tries to write+commit.
import { createInterface } from 'node:readline';
import { kafka, tproducer, describeError } from './common.mjs';
const [TID, TOPIC, MODE] = process.argv.slice(2); // MODE: open | idle
const log = (...a) => console.log(new Date().toISOString().slice(11, 23), '[A]', ...a);
const A = tproducer(kafka('A-child'), TID);
await A.connect();
let t = await A.transaction();
await t.send({ topic: TOPIC, messages: [{ value: 'A-committed-before-stop', partition: 0 }] });
await t.commit();
log('committed A-committed-before-stop');
if (MODE === 'open') {
  t = await A.transaction();
  await t.send({ topic: TOPIC, messages: [{ value: 'A-open-before-stop', partition: 0 }] });
  log('sent A-open-before-stop in an open txn');
}
console.log('READY');
const rl = createInterface({ input: process.stdin });
for await (const line of rl) {
  if (line.trim() !== 'go') continue;
  log('resumed, trying to write');
  try {
    if (MODE !== 'open') t = await A.transaction();
    await t.send({ topic: TOPIC, messages: [{ value: 'A-after-resume', partition: 0 }] });
    log('send after resume: OK (acked by partition leader)');
  } catch (e) { log('send after resume FAILED:', describeError(e)); }
  try { await t.commit(); log('commit after resume: OK (!!)'); } catch (e) { log('commit after resume FAILED:', describeError(e)); }
  await A.disconnect().catch(() => {});
  process.exit(0);
}
