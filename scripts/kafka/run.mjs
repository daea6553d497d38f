#!/usr/bin/env node
// npm run kafka [-- --port 9092] [-- --log-dir DIR]: a real Kafka broker for local development.
// Downloads the jars on first use (java + mvn needed, see provision.mjs), starts one KRaft broker
// on 127.0.0.1, and stops it cleanly on Ctrl-C / SIGTERM. Data lives in a temp dir (removed on
// exit) unless --log-dir is given (kept; an existing, already formatted dir is reused as it is).
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { start_broker } from './broker.mjs';

const { values } = parseArgs({
  options: { port: { type: 'string', default: '9092' }, 'log-dir': { type: 'string' } },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error(`invalid --port ${values.port}`);
  process.exit(2);
}

let broker;
try {
  broker = await start_broker({ port, ...(values['log-dir'] ? { log_dir: values['log-dir'] } : {}) });
} catch (error) {
  console.error(`kafka could not start: ${error.message}`);
  process.exit(1);
}
console.log(`kafka ready on ${broker.brokers}`);
console.log(`  data: ${broker.log_dir}\n  log:  ${broker.log_file}`);

let stopping = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    // Ctrl-C reaches the JVM too (same process group) and starts its own clean shutdown;
    // stop() then just waits for it (SIGKILL only after its bound).
    if (stopping) return;
    stopping = true;
    console.log('stopping kafka…');
    await broker.stop();
    rmSync(broker.work_dir, { recursive: true, force: true }); // config, broker.log, default data
    process.exit(0);
  });
}
// The JVM child is unref'd; this keeps Node (and so the broker) alive until a signal.
setInterval(() => {}, 1 << 30);
