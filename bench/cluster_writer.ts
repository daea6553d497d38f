// Measures lane KAFKA's journal writer on three real brokers (RF 3, min.insync 2):
//   take() time (fence + end offset + restore): one by one fresh, all six at once after it;
//   commit latency (commit() call → resolve) p50/p99 and records per transaction under a
//   burst: `commits` commits of `records` records and one event each, spread over
//   `partitions` partitions, issued `concurrency` at a time per partition (a worker's queue).
// Run: npm run build && node dist/bench/cluster_writer.js [commits] [concurrency]
// BROKERS=h:p,h:p,h:p uses running brokers instead of starting three.
import { performance } from 'node:perf_hooks';
import { rmSync } from 'node:fs';
import { start_cluster, type Cluster } from '../test/kafka/broker.js';
import { fresh_name, member, wire } from '../test/cluster/helpers.js';
import type { PartitionWriter } from '../src/cluster/partition_writer.js';

const commits_total = Number(process.argv[2] ?? 3000);
const concurrency = Number(process.argv[3] ?? 64);
const partitions = 6;
const records_per_commit = 3;

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

function pct(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
}

function summary(values: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const r = (x: number): number => Math.round(x * 10) / 10;
  return { n: s.length, p50: r(pct(s, 0.5)), p99: r(pct(s, 0.99)), max: r(s[s.length - 1] ?? NaN) };
}

async function burst(writers: PartitionWriter[], latencies: number[]): Promise<void> {
  const per = Math.ceil(commits_total / writers.length);
  await Promise.all(writers.map(async (w) => {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < per) {
        const i = next++;
        const records = Array.from({ length: records_per_commit }, (_, r) => ({
          i, r, seat: `s-${i}-${r}`,
        }));
        const outbox = [{
          type: 'OrderConfirmed', key: `ord_${w.partition}_${i}`,
          payload: {
            order_id: `ord_${i}`, user_id: 'u', total: { amount_micros: i, currency: 'EUR' },
            confirmed_at_unix: i, trace_id: '',
          },
        }];
        const t0 = performance.now();
        await w.commit(wire(w.partition, records, { outbox }));
        latencies.push(performance.now() - t0);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, lane));
  }));
}

async function main(): Promise<void> {
  let cluster: Cluster | undefined;
  const brokers = process.env['BROKERS'] ?? (cluster = await start_cluster(3)).brokers;
  const a = member(fresh_name('bench'), brokers, 'bench-a');
  try {
    await a.kafka.start();
    const g = a.current()?.generation ?? -1;
    const take_ms: number[] = [];
    const writers: PartitionWriter[] = [];
    for (let p = 0; p < partitions; p++) {
      const t0 = performance.now();
      writers.push((await a.kafka.take(p, g)).writer);
      take_ms.push(performance.now() - t0);
    }
    const per_tx: number[] = [];
    const tx_ms: number[] = [];
    for (const w of writers) {
      w.on_write = (o) => {
        per_tx.push(o.records);
        tx_ms.push(o.duration_s * 1000);
      };
    }
    const latencies: number[] = [];
    const t0 = performance.now();
    await burst(writers, latencies);
    const seconds = (performance.now() - t0) / 1000;
    // All partitions at once, as a node takes its assignment after a rebalance: the restores
    // share the one group consumer (seek/resume/pause per partition).
    const retake_ms: number[] = [];
    const t1 = performance.now();
    const retaken = await Promise.all(range(partitions).map(async (p) => {
      const took = await a.kafka.take(p, g);
      retake_ms.push(performance.now() - t1);
      return took.restore.segments.length;
    }));
    const restored_segments = retaken.reduce((x, y) => x + y, 0);
    console.log(JSON.stringify({
      commits: latencies.length, records_per_commit, partitions,
      concurrency_per_partition: concurrency,
      seconds: Math.round(seconds * 10) / 10, commits_per_s: Math.round(latencies.length / seconds),
      commit_latency_ms: summary(latencies), transaction_ms: summary(tx_ms),
      records_per_transaction: summary(per_tx), transactions: per_tx.length,
      take_fresh_ms: summary(take_ms),
      take_all_at_once_after_burst_ms: summary(retake_ms), restored_segments,
    }, null, 1));
  } finally {
    await a.kafka.stop();
    if (cluster !== undefined) {
      await cluster.stop().catch(() => cluster?.kill());
      rmSync(cluster.work_dir, { recursive: true, force: true });
    }
  }
}

await main();
