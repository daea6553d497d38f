#!/usr/bin/env node
// Spike: N KRaft brokers in combined mode (broker+controller per JVM) on loopback, the approach of
// scripts/kafka/broker.mjs generalised: a static voter set 1@..,2@..,3@.., one cluster id formatted
// into every node's log dir, RF 3 / min.insync 2 for internal topics. Prints the bootstrap list; SIGTERM stops all.
//   node cluster3.mjs [--brokers 3] [--base-port 29092] [--heap 384m]
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';
import { cluster_id } from '../../scripts/kafka/broker.mjs';
import { provision } from '../../scripts/kafka/provision.mjs';
const exec_file = promisify(execFile);
const { values } = parseArgs({ options: { brokers: { type: 'string', default: '3' }, 'base-port': { type: 'string', default: '29092' }, heap: { type: 'string', default: '384m' } } });
const n = Number(values.brokers), base = Number(values['base-port']);
const rf = Math.min(3, n), isr = Math.min(2, n);
const { classpath } = await provision();
const work = mkdtempSync(join(tmpdir(), 'spike-kraft-'));
const id = cluster_id();
const nodes = Array.from({ length: n }, (_, i) => ({ id: i + 1, port: base + i, cport: base + 100 + i, dir: join(work, `node${i + 1}`) }));
const voters = nodes.map((x) => `${x.id}@127.0.0.1:${x.cport}`).join(',');
const log4j = join(work, 'log4j.properties');
writeFileSync(log4j, ['log4j.rootLogger=INFO, stdout', 'log4j.appender.stdout=org.apache.log4j.ConsoleAppender', 'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout', 'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n', 'log4j.logger.kafka.request.logger=WARN', 'log4j.logger.state.change.logger=WARN', 'log4j.logger.org.apache.kafka.clients=WARN', ''].join('\n'));
const jvm = ['-cp', classpath, `-Dlog4j.configuration=file:${log4j}`, '-Djava.awt.headless=true'];
const children = [];
for (const x of nodes) {
  mkdirSync(x.dir, { recursive: true });
  x.config = join(x.dir, 'server.properties');
  writeFileSync(x.config, [
    'process.roles=broker,controller', `node.id=${x.id}`, `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://127.0.0.1:${x.port},CONTROLLER://127.0.0.1:${x.cport}`, `advertised.listeners=PLAINTEXT://127.0.0.1:${x.port}`,
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT', 'controller.listener.names=CONTROLLER', 'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${join(x.dir, 'data')}`,
    `offsets.topic.replication.factor=${rf}`, `transaction.state.log.replication.factor=${rf}`, `transaction.state.log.min.isr=${isr}`,
    `min.insync.replicas=${isr}`, `default.replication.factor=${rf}`,
    'offsets.topic.num.partitions=3', 'transaction.state.log.num.partitions=3', 'num.partitions=3',
    'group.initial.rebalance.delay.ms=0', 'broker.heartbeat.interval.ms=1000', 'broker.session.timeout.ms=5000',
    'num.network.threads=2', 'num.io.threads=2', 'background.threads=2', 'num.replica.fetchers=1',
    'unclean.leader.election.enable=false', '',
  ].join('\n'));
  await exec_file('java', [...jvm, 'kafka.tools.StorageTool', 'format', '--ignore-formatted', `--cluster-id=${id}`, '-c', x.config]);
}
function spawnNode(x) {
  const fd = openSync(join(x.dir, 'broker.log'), 'a');
  const child = spawn('java', [`-Xmx${values.heap}`, '-Xms64m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', ...jvm, 'kafka.Kafka', x.config], { stdio: ['ignore', fd, fd] });
  closeSync(fd); x.child = child; children.push(child);
}
const t0 = Date.now();
for (const x of nodes) spawnNode(x);
process.on('exit', () => { for (const c of children) c.kill('SIGKILL'); });
const bootstrap = nodes.map((x) => `127.0.0.1:${x.port}`).join(',');
for (;;) {
  const admin = new Kafka({ clientId: 'probe', brokers: bootstrap.split(','), logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
  try { await admin.connect(); const c = await admin.describeCluster(); await admin.disconnect(); if (c.brokers.length === n) break; } catch { await admin.disconnect().catch(() => {}); }
  await sleep(500);
}
console.log(`kafka cluster of ${n} KRaft brokers ready in ${Date.now() - t0} ms: ${bootstrap}`);
console.log(`  pids: ${nodes.map((x) => `${x.id}=${x.child.pid}`).join(' ')}  work: ${work}`);
console.log(`  rf=${rf} min.insync.replicas=${isr}`);
process.on('SIGUSR2', () => {}); // reserved
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, async () => { for (const x of nodes) x.child.kill('SIGTERM'); await sleep(8000); process.exit(0); });
setInterval(() => {}, 1 << 30);
