// --message-max-bytes: a request over the configured size is refused by grpc-js with
// RESOURCE_EXHAUSTED before any of our code runs; one under it goes through. Bad values stop the
// node at start.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clients, code_of, grpc, run_cli, stop, token, with_server } from './harness.js';

test('--message-max-bytes 8192: a 10 KB request is RESOURCE_EXHAUSTED, a 2 KB one is answered', async () => {
  await with_server('limits', ['--message-max-bytes', '8192', '--workers', '1', '--partitions', '2'], async (server, dir) => {
    const c = clients(server.grpc_port);
    try {
      const alice = token(dir, 'alice', 'customer');
      const big = await code_of(c.reserve({ event_id: 'e', seat_ids: ['x'.repeat(10_000)], hold_ttl_seconds: 0, user_id: 'alice' }, alice));
      assert.is(big.code, grpc.status.RESOURCE_EXHAUSTED);
      const small = await code_of(c.reserve({ event_id: 'evt-none', seat_ids: ['1-A-1'], hold_ttl_seconds: 0, user_id: 'a'.repeat(2000) }, alice));
      assert.is(small.code, grpc.status.INVALID_ARGUMENT, 'under the cap the request reaches validation (user_id too long)');
    } finally {
      c.close();
    }
    assert.is(await stop(server), 0);
  });
});

test('--message-max-bytes out of range stops the node at start with a clear message', () => {
  const r = run_cli(['serve', '--message-max-bytes', '100', '--data', '/nonexistent-dir-never-created']);
  assert.is(r.status, 2);
  assert.match(r.stderr, 'message-max-bytes');
});

test.run();
