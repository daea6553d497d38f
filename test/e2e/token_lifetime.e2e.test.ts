// Token lifetime cap and nbf against a real node (--token-lifetime-max 2h): a token living
// longer, or not valid yet, is UNAUTHENTICATED with a message that says why and never echoes
// the token, counted by reason in ticketing_auth_refusals_total; `ticketing token --ttl` above
// the cap is refused (flag or TICKETING_TOKEN_LIFETIME_MAX, default 24 h).
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { load_secret, sign_token } from '../../src/auth/token.js';
import { sign_hs256 } from '../auth/sign.js';
import { bin, clients, code_of, grpc, run_cli, stop, with_server } from './harness.js';

test('tokens beyond the lifetime cap or before nbf are UNAUTHENTICATED and counted; ticketing token refuses such a --ttl', () => with_server('token-life', ['--workers', '1', '--partitions', '2', '--token-lifetime-max', '2h'], async (server, dir) => {
  const c = clients(server.grpc_port);
  const secret = load_secret(dir, process.env, false);
  const t = Math.floor(Date.now() / 1000);
  const get = (bearer: string) => c.get_event({ event_id: 'evt-none' }, bearer);

  // Within the cap: authenticated (NOT_FOUND is the event's answer, past authentication).
  assert.is((await code_of(get(sign_token(secret, { user_id: 'ok', role: 'admin' }, 7200)))).code, grpc.status.NOT_FOUND);
  // A year-long token signed with the node's own secret.
  const long = sign_token(secret, { user_id: 'mallory', role: 'admin' }, 365 * 86400);
  const refused_long = await code_of(get(long));
  assert.is(refused_long.code, grpc.status.UNAUTHENTICATED);
  assert.match(refused_long.details, /above the token lifetime cap of 7200 s/);
  assert.not.ok(refused_long.details.includes(long.split('.')[2]!), 'the message echoes the token');
  // No iat, exp three hours away.
  assert.is((await code_of(get(sign_hs256(secret, { sub: 'm', role: 'admin', exp: t + 3 * 3600 })))).code, grpc.status.UNAUTHENTICATED);
  // nbf ten minutes ahead: not yet; nbf a few seconds ahead is within the clock skew allowance.
  const early = await code_of(get(sign_hs256(secret, { sub: 'e', role: 'admin', iat: t, nbf: t + 600, exp: t + 3600 })));
  assert.is(early.code, grpc.status.UNAUTHENTICATED);
  assert.match(early.details, /not valid yet/);
  assert.is((await code_of(get(sign_hs256(secret, { sub: 'e', role: 'admin', iat: t, nbf: t + 5, exp: t + 3600 })))).code, grpc.status.NOT_FOUND);

  const metrics = await (await fetch(`http://127.0.0.1:${server.http_port}/metrics`)).text();
  assert.match(metrics, /^ticketing_auth_refusals_total\{reason="lifetime"\} 2$/m);
  assert.match(metrics, /^ticketing_auth_refusals_total\{reason="not_yet_valid"\} 1$/m);
  assert.match(metrics, /^ticketing_auth_refusals_total\{reason="signature"\} 0$/m);

  // ticketing token: --ttl above the cap is refused, by flag, by variable and by the default.
  const over_flag = run_cli(['token', '--user', 'u', '--ttl', '3h', '--token-lifetime-max', '2h', '--data', dir]);
  assert.is(over_flag.status, 2, over_flag.stderr);
  assert.match(over_flag.stderr, /--ttl 10800 s is above the token lifetime cap of 7200 s/);
  assert.is(over_flag.stdout, '');
  const env = { ...process.env, TICKETING_TOKEN_LIFETIME_MAX: '2h' };
  const over_env = spawnSync(process.execPath, [bin, 'token', '--user', 'u', '--ttl', '3h', '--data', dir], { encoding: 'utf8', env });
  assert.is(over_env.status, 2, over_env.stderr);
  const over_default = run_cli(['token', '--user', 'u', '--ttl', '2d', '--data', dir]);
  assert.is(over_default.status, 2, over_default.stderr);
  assert.match(over_default.stderr, /above the token lifetime cap of 86400 s/);
  const bad_cap = run_cli(['token', '--user', 'u', '--token-lifetime-max', '10s', '--data', dir]);
  assert.is(bad_cap.status, 2);
  assert.match(bad_cap.stderr, /--token-lifetime-max must be 300 s\.\.366d/);
  // What it mints within the cap, the node accepts.
  const minted = spawnSync(process.execPath, [bin, 'token', '--user', 'ops', '--role', 'admin', '--ttl', '2h', '--data', dir], { encoding: 'utf8', env });
  assert.is(minted.status, 0, minted.stderr);
  assert.is((await code_of(get(minted.stdout.trim()))).code, grpc.status.NOT_FOUND);

  c.close();
  assert.is(await stop(server), 0);
  for (const line of server.log) assert.not.ok(line.includes(long.split('.')[2]!), 'a log line carries the token');
}));

test.run();
