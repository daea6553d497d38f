// Measures (not a test): the cost of a forwarded call against a local one, on loopback. One real
// WorkerPool (the runtime's counter fixture, one worker) and two ClusterSinks over it: one that
// owns every partition (local: sink → pool), one that owns none and forwards to a peer server
// on 127.0.0.1 whose serve is the same pool (forwarded: sink → PeerClients → peer server →
// pool). Reads ('get'), so the journal is not what is measured. Sequential calls (latency) and
// 64 in flight (throughput), the modes interleaved over rounds. For scale, a bare grpc-js unary
// echo on the same loopback (no pool, no auth, no msgpack): the floor of any peer hop.
// Usage: npm run build && node dist/test/cluster/forward_cost.js [calls_per_round] [rounds]
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peer_key_of } from '../../src/cluster/peer_auth.js';
import { PeerClients } from '../../src/cluster/peer_clients.js';
import { start_peer_server } from '../../src/cluster/peer_server.js';
import { ClusterSink, serve_local_only } from '../../src/cluster/sink.js';
import { WorkerPool } from '../../src/runtime/pool.js';
import { revive } from '../runtime/fixtures/counter_behaviour.js';

const calls = Number(process.argv[2] ?? 5_000);
const rounds = Number(process.argv[3] ?? 3);
const in_flight = 64;
const partitions = 4;

type Sink = { request(p: number, body: unknown): Promise<unknown> };

async function sequential(sink: Sink): Promise<number> {
  const started = performance.now();
  for (let i = 0; i < calls; i++) await sink.request(i % partitions, { k: 'get', key: 'a' });
  return (performance.now() - started) / calls;
}

async function concurrent(sink: Sink): Promise<number> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < calls) {
      const i = next++;
      await sink.request(i % partitions, { k: 'get', key: 'a' });
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: in_flight }, lane));
  return calls / ((performance.now() - started) / 1000);
}

/** A bare grpc-js echo server and a sink that calls it: the cost of one loopback unary call. */
async function bare_grpc(): Promise<{ sink: Sink; close(): void }> {
  const identity = (b: Buffer): Buffer => b;
  const path = '/bench.Echo/Echo';
  const service: grpc.ServiceDefinition = { Echo: {
    path, requestStream: false, responseStream: false, requestSerialize: identity,
    requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
  } };
  const server = new grpc.Server();
  server.addService(service, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) =>
      callback(null, call.request),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0',
    grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const bytes = Buffer.from('{"k":"get","key":"a"}');
  const sink: Sink = {
    request: () => new Promise((resolve, reject) => client.makeUnaryRequest(path, identity,
      identity, bytes, new grpc.Metadata(), { deadline: Date.now() + 30_000 },
      (e, r) => (e ? reject(e) : resolve(r)))),
  };
  return { sink, close: () => { client.close(); server.forceShutdown(); } };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'forward-cost-'));
  const pool = new WorkerPool({
    worker_count: 1, partition_count: partitions, data_dir: dir, node_id: 'bench',
    behaviour_url: new URL('../runtime/fixtures/counter_behaviour.js', import.meta.url).href,
    mailbox_depth_max: 10_000, mailbox_batch_size_max: 64, snapshot_every_records: 1_000_000,
    revive,
  });
  await pool.start();
  const key = peer_key_of(Buffer.from('a shared cluster secret of at least 32 characters'));
  const all = { local: () => true, remote: () => undefined };
  const server = await start_peer_server({
    addr: '127.0.0.1:0', key, node_id: 'owner', serve: serve_local_only(pool, all, 'owner'),
  });
  const peers = new PeerClients(key, 'caller', { revive });
  const hooks = { on_forwarded: () => undefined, code_of: () => 'UNKNOWN' };
  const local = new ClusterSink(pool, all, peers, hooks);
  const addr = `127.0.0.1:${server.port}`;
  const forwarded = new ClusterSink(pool, { local: () => false, remote: () => addr }, peers, hooks);
  const bare = await bare_grpc();
  await sequential(local);
  await sequential(forwarded); // warm: JIT, the channels' connections
  await sequential(bare.sink);
  const us = (ms: number): string => (ms * 1000).toFixed(0);
  for (let round = 1; round <= rounds; round++) {
    const [l_ms, f_ms, b_ms] = [await sequential(local), await sequential(forwarded),
      await sequential(bare.sink)];
    const [l_rate, f_rate, b_rate] = [await concurrent(local), await concurrent(forwarded),
      await concurrent(bare.sink)];
    console.log(`round ${round}: sequential us/call: local ${us(l_ms)}, forwarded ${us(f_ms)} `
      + `(x${(f_ms / l_ms).toFixed(1)}), bare grpc-js ${us(b_ms)}; ${in_flight} in flight `
      + `calls/s: local ${l_rate.toFixed(0)}, forwarded ${f_rate.toFixed(0)} `
      + `(x${(l_rate / f_rate).toFixed(1)} fewer), bare grpc-js ${b_rate.toFixed(0)}`);
  }
  bare.close();
  peers.close();
  await server.close();
  await pool.close();
  rmSync(dir, { recursive: true, force: true });
}

await main();
