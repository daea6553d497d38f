#!/usr/bin/env node
// npm run kafka [-- --port 9092] [-- --log-dir DIR] [-- --brokers N]: a real Kafka for local
// development. Downloads the jars on first use (java + mvn needed, see provision.mjs), starts one
// KRaft broker on 127.0.0.1 (or N of them as one cluster on ports PORT..PORT+N-1, controllers on
// PORT+100..; three or more: replication factor 3, min.insync.replicas 2), prints the bootstrap
// list, and stops cleanly on Ctrl-C / SIGTERM. Data lives in a temp dir (removed on exit) unless
// --log-dir is given (one broker only; kept, and an already formatted dir is reused as it is).
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { start_broker, start_cluster } from './broker.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '9092' }, 'log-dir': { type: 'string' },
    brokers: { type: 'string', default: '1' },
  },
});
const port = Number(values.port);
const count = Number(values.brokers);
if (!Number.isInteger(port) || port <= 0 || port + 100 + count > 65535) {
  console.error(`invalid --port ${values.port}`);
  process.exit(2);
}
if (!Number.isInteger(count) || count < 1 || count > 9) {
  console.error(`invalid --brokers ${values.brokers} (1..9)`);
  process.exit(2);
}
if (count > 1 && values['log-dir']) {
  console.error('--log-dir is for one broker; a cluster keeps its data in a temp dir');
  process.exit(2);
}

let broker;
try {
  broker = count === 1
    ? await start_broker({ port, ...(values['log-dir'] ? { log_dir: values['log-dir'] } : {}) })
    : await start_cluster(count, { base_port: port });
} catch (error) {
  console.error(`kafka could not start: ${error.message}`);
  process.exit(1);
}
console.log(`kafka ready on ${broker.brokers}`);
if (count === 1) console.log(`  data: ${broker.log_dir}\n  log:  ${broker.log_file}`);
else console.log(`  ${count} brokers, replication factor ${broker.replicas.factor}, min.insync.replicas ${broker.replicas.min_insync}\n  data and logs: ${broker.work_dir}/node*/`);

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
