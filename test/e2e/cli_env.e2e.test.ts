// Client commands find the node the way `serve` was told where to listen: after
// `TICKETING_GRPC_ADDR=… ticketing serve`, `ticketing events import FILE` in the same environment
// reaches that node (it used to dial the default 127.0.0.1:50051 and fail, or reach another node).
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arena_file, arena_id, await_serving, bin, cleanup, clients, temp_dir, token } from './harness.js';

/** A port nothing listens on right now (bound to port 0, then closed). */
function free_port(): Promise<number> {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
}

test('events import honours TICKETING_GRPC_ADDR, the variable serve listens on', async () => {
  const dir = temp_dir('cli-env');
  const port = await free_port();
  // Exactly what an operator's shell holds: the address set once, for serve and the client.
  const env: NodeJS.ProcessEnv = { ...process.env, TICKETING_GRPC_ADDR: `127.0.0.1:${port}`, TICKETING_HTTP_ADDR: '127.0.0.1:0', TICKETING_DATA_DIR: dir, TICKETING_LOG_LEVEL: 'info' };
  delete env['TICKETING_SERVER'];
  const node = spawn(process.execPath, [bin, 'serve', '--workers', '1', '--partitions', '4'], { stdio: ['ignore', 'pipe', 'pipe'], env });
  try {
    const serving = await await_serving(node, 'server');
    assert.is(serving.grpc_port, port);
    const imported = spawnSync(process.execPath, [bin, 'events', 'import', arena_file], { encoding: 'utf8', env });
    assert.is(imported.status, 0, `events import: ${imported.stderr}`);
    assert.match(imported.stdout, new RegExp(`^${arena_id}: created`));
    const c = clients(port);
    assert.is((await c.get_event({ event_id: arena_id }, token(dir, 'ops', 'admin'))).event_id, arena_id);
    c.close();
    // --server still wins over the variable: a wrong --server fails, naming nothing of the token.
    const elsewhere = spawnSync(process.execPath, [bin, 'events', 'import', arena_file, '--server', `127.0.0.1:${await free_port()}`], { encoding: 'utf8', env });
    assert.is(elsewhere.status, 1, elsewhere.stderr);
    assert.match(elsewhere.stderr, /UNAVAILABLE/);
  } finally {
    node.kill('SIGKILL');
    cleanup(dir);
  }
});

test.run();
