// The composition root's lifecycle: a node that fails to start (its gRPC or HTTP port taken)
// stops everything it had started and releases the data directory, so a caller in the same
// process is left with no worker threads and can start a node on that directory at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:net';
import { serve_defaults, type ServeConfig } from '../../src/node/config.js';
import { serve } from '../../src/node/serve.js';
import { create_logger } from '../../src/ops/log.js';
import { cleanup, temp_dir } from '../e2e/harness.js';
import { guarded_after } from '../guard.js';

const dirs: string[] = [];

function config(dir: string, over: Partial<ServeConfig>): ServeConfig {
  return {
    ...serve_defaults, data_dir: dir, grpc_addr: '127.0.0.1:0', http_addr: '127.0.0.1:0',
    kafka_brokers: undefined, workers: 1, partitions: 2, ...over,
  };
}

/** A TCP port held by another listener for the test's length. */
async function taken_port(): Promise<{ port: number; server: Server }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, server };
}

/** Worker threads alive in this process (each holds one active 'MessagePort' handle or more). */
function worker_handles(): number {
  const resources = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo();
  return resources.filter((r) => r === 'Worker').length;
}

for (const which of ['grpc', 'http'] as const) {
  test(`${which} port taken: serve() rejects, stops what it started and frees the directory`, async () => {
    const dir = temp_dir(`serve-${which}`);
    dirs.push(dir);
    const held = await taken_port();
    const before = worker_handles();
    const addr = `127.0.0.1:${held.port}`;
    const refused = config(dir, which === 'grpc' ? { grpc_addr: addr } : { http_addr: addr });
    let error: unknown;
    try {
      await serve(refused, create_logger('silent'));
    } catch (caught) {
      error = caught;
    }
    held.server.close();
    assert.instance(error, Error, 'serve() must reject when its port is taken');
    assert.match(String((error as Error).message), /EADDRINUSE|address already in use/i);
    assert.is(worker_handles(), before, 'no worker thread is left running');
    // The lock is free: a node on the same directory starts now (a held lock refuses it).
    const node = await serve(config(dir, {}), create_logger('silent'));
    assert.ok(node.grpc_port > 0 && node.http_port > 0);
    await node.stop();
    assert.is(worker_handles(), before);
  });
}

guarded_after(test, () => {
  for (const dir of dirs) cleanup(dir);
});

test.run();
