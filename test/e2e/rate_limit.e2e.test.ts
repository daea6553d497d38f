// Rate limits end to end: a spawned server with small limits, real sockets. A burst over the
// per-user limit is refused RESOURCE_EXHAUSTED with the time to retry while another user's calls
// keep succeeding; the per-ip limit applies before authentication; refusals are counted.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  arena_file, arena_id, cleanup, clients, grpc, run_cli, start_server, stop, temp_dir, token, type Server,
} from './harness.js';

const S = grpc.status;

type Outcome = { ok: true } | { ok: false; code: number; details: string; retry_after?: unknown };

function settle(promise: Promise<unknown>): Promise<Outcome> {
  return promise.then(() => ({ ok: true }) as const, (e: grpc.ServiceError) => ({
    ok: false, code: e.code, details: e.details, retry_after: e.metadata?.get('retry-after-ms')[0],
  }));
}

const retry_ms = (details: string): number => Number(/retry in ([0-9]+) ms/.exec(details)?.[1] ?? NaN);

async function scrape(server: Server): Promise<string> {
  return (await fetch(`http://127.0.0.1:${server.http_port}/metrics`)).text();
}

const counter = (text: string, scope: string): number =>
  Number(new RegExp(`^ticketing_rate_limited_total\\{scope="${scope}"\\} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('per user: a burst over the limit is refused with the time to retry; another user keeps being served', async () => {
  const dir = temp_dir('rate-user');
  let server: Server | undefined;
  try {
    server = await start_server(dir, ['--workers', '1', '--partitions', '4', '--rate-user', '5']); // burst 10
    const c = clients(server.grpc_port);
    assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
    const alice = token(dir, 'alice', 'customer');
    const bob = token(dir, 'bob', 'customer');

    // Alice fires 40 at once while Bob makes his 10 (his own burst).
    const a_started = performance.now();
    const a_calls = Array.from({ length: 40 }, () => settle(c.availability({ event_id: arena_id }, alice)));
    const b_calls = Array.from({ length: 10 }, () => settle(c.availability({ event_id: arena_id }, bob)));
    const a = await Promise.all(a_calls);
    const a_elapsed_s = (performance.now() - a_started) / 1000;
    const b = await Promise.all(b_calls);

    const a_ok = a.filter((o) => o.ok).length;
    // The burst (10), plus at most what refilled (5/s) while the 40 were in flight: a bound from
    // the measured time, not a fixed window (a busy machine may take seconds to send them).
    const a_max = 10 + Math.floor(5 * a_elapsed_s) + 1;
    assert.ok(a_ok >= 10 && a_ok <= a_max, `the burst passes, plus what refilled in ${a_elapsed_s.toFixed(2)} s: ${a_ok} of 40 (at most ${a_max})`);
    for (const o of a) {
      if (o.ok) continue;
      assert.is(o.code, S.RESOURCE_EXHAUSTED, `refused RESOURCE_EXHAUSTED: ${o.details}`);
      assert.match(o.details, /^rate limit for user alice exceeded .*: retry in [0-9]+ ms$/);
      assert.ok(retry_ms(o.details) >= 1 && retry_ms(o.details) <= 200, `one token at 5/s is at most 200 ms away: ${o.details}`);
      assert.is(o.retry_after, String(retry_ms(o.details)), 'also as retry-after-ms trailing metadata');
      assert.not.match(o.details, alice, 'the token is never echoed');
    }
    assert.ok(b.every((o) => o.ok), `every one of Bob's calls succeeded: ${JSON.stringify(b.filter((o) => !o.ok))}`);

    // Waiting the advertised time is enough.
    // Drain whatever refilled meanwhile (a condition, not an assumption that no time passed).
    let refused = await settle(c.availability({ event_id: arena_id }, alice));
    for (let i = 0; i < 1000 && refused.ok; i++) refused = await settle(c.availability({ event_id: arena_id }, alice));
    assert.is(refused.ok, false, 'empty once drained');
    await sleep(retry_ms((refused as { details: string }).details));
    assert.equal(await settle(c.availability({ event_id: arena_id }, alice)), { ok: true }, 'served again after the advertised wait');

    // Service tokens act for many users: no per-user budget (the per-ip one still counts them).
    const svc = token(dir, 'orders', 'service');
    const s = await Promise.all(Array.from({ length: 40 }, () => settle(c.availability({ event_id: arena_id }, svc))));
    assert.ok(s.every((o) => o.ok), 'a service token is not limited per user');

    const metrics = await scrape(server);
    assert.ok(counter(metrics, 'user') >= 40 - a_ok, `refusals counted: ${counter(metrics, 'user')}`);
    assert.is(counter(metrics, 'ip'), 0);
    assert.match(metrics, /ticketing_grpc_requests_total\{service="CatalogService",method="GetAvailability",code="RESOURCE_EXHAUSTED"\} [1-9]/);
    assert.not.match(metrics, /ticketing_rate_limited_total\{[^}]*alice/, 'no per-user labels');
    c.close();
  } finally {
    if (server !== undefined) assert.is(await stop(server), 0);
    cleanup(dir);
  }
});

test('per ip: applies before authentication, to every role; counted with scope="ip"', async () => {
  const dir = temp_dir('rate-ip');
  let server: Server | undefined;
  try {
    server = await start_server(dir, ['--workers', '1', '--partitions', '4', '--rate-ip', '5']); // burst 10
    const c = clients(server.grpc_port);

    // Without a token: the first ~10 reach authentication (UNAUTHENTICATED), the rest are stopped before it.
    const anon_started = performance.now();
    const anon = await Promise.all(Array.from({ length: 40 }, () => settle(c.get_event({ event_id: 'evt-none' }))));
    const anon_max = 10 + Math.floor(5 * (performance.now() - anon_started) / 1000) + 1;
    const codes = anon.map((o) => (o.ok ? 'OK' : S[o.code]));
    const unauthenticated = codes.filter((x) => x === 'UNAUTHENTICATED').length;
    assert.ok(unauthenticated >= 10 && unauthenticated <= anon_max, `the burst (plus what refilled, at most ${anon_max}) reached authentication: ${codes.join(',')}`);
    assert.is(codes.filter((x) => x === 'RESOURCE_EXHAUSTED').length, 40 - unauthenticated);
    const refusal = anon.find((o) => !o.ok && o.code === S.RESOURCE_EXHAUSTED) as { details: string };
    assert.match(refusal.details, /^rate limit for ip 127\.0\.0\.1 exceeded .*: retry in [0-9]+ ms$/);

    // A service token is limited per ip like anyone else.
    const svc = token(dir, 'orders', 'service');
    await sleep(2_000); // refill the whole burst (10 at 5/s)
    const s_started = performance.now();
    const s = await Promise.all(Array.from({ length: 40 }, () => settle(c.get_event({ event_id: 'evt-none' }, svc))));
    const s_max = 10 + Math.floor(5 * (performance.now() - s_started) / 1000) + 1;
    const passed = s.filter((o) => !o.ok && o.code === S.NOT_FOUND).length;
    assert.ok(passed >= 10 && passed <= s_max, `the burst passed (plus what refilled, at most ${s_max}): ${passed}`);
    assert.is(s.filter((o) => !o.ok && o.code === S.RESOURCE_EXHAUSTED).length, 40 - passed);

    const metrics = await scrape(server);
    assert.ok(counter(metrics, 'ip') >= 80 - unauthenticated - passed, `refusals counted: ${counter(metrics, 'ip')}`);
    assert.is(counter(metrics, 'user'), 0);
    c.close();
  } finally {
    if (server !== undefined) assert.is(await stop(server), 0);
    cleanup(dir);
  }
});

test('limit flags are validated before anything starts', () => {
  const dir = temp_dir('rate-flags');
  try {
    for (const bad of [['--rate-user', 'x'], ['--rate-ip', '-1'], ['--deadline-max-ms', '0']]) {
      const r = run_cli(['serve', '--data', dir, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', ...bad]);
      assert.is(r.status, 2, `${bad.join(' ')} refused`);
      assert.match(r.stderr, `${bad[0]} must be an integer`);
    }
  } finally {
    cleanup(dir);
  }
});

test.run();
