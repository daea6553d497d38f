// The /metrics scrape of a real node under load passes `promtool check metrics` (Prometheus's own
// linter: counters end in _total and only counters do, help and type on every family, base
// units). promtool is found as $PROMTOOL, on PATH, or at $(go env GOPATH)/bin/promtool (where
// `go install github.com/prometheus/prometheus/cmd/promtool@v0.316.0` puts it, as .ci/run does);
// missing, the test installs that pinned version itself with `go install` (minutes the first
// time, then Go's build cache), so `npm test` on a fresh machine with Go needs no manual step, as
// the Kafka broker's jars come from Maven; without Go it fails saying how to install promtool.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arena_file, arena_id, clients, code_of, run_cli, stop, token, with_server } from './harness.js';

const promtool_module = 'github.com/prometheus/prometheus/cmd/promtool@v0.316.0';

/** Where promtool may be: $PROMTOOL, PATH, then where `go install` puts it (GOBIN, GOPATH/bin). */
function candidates(): string[] {
  const list: string[] = [];
  if (process.env['PROMTOOL'] !== undefined) list.push(process.env['PROMTOOL']);
  for (const dir of (process.env['PATH'] ?? '').split(':')) if (dir !== '') list.push(join(dir, 'promtool'));
  try {
    const [gobin, gopath] = execFileSync('go', ['env', 'GOBIN', 'GOPATH'], { encoding: 'utf8' }).split('\n').map((l) => l.trim());
    if (gobin) list.push(join(gobin, 'promtool'));
    if (gopath) list.push(join(gopath, 'bin', 'promtool'));
  } catch {
    // no go on PATH: only the other candidates
  }
  return list;
}

function promtool(): string {
  const found = candidates().find((c) => existsSync(c));
  if (found !== undefined) return found;
  try {
    execFileSync('go', ['install', promtool_module], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  } catch (error) {
    throw new Error(`promtool is required by this test: not found ($PROMTOOL, PATH, go's bin) and \`go install ${promtool_module}\` failed: ${String(error)}`);
  }
  const installed = candidates().find((c) => existsSync(c));
  if (installed === undefined) throw new Error(`go install ${promtool_module} ran but promtool is in none of ${candidates().join(', ')}`);
  return installed;
}

test('the scrape of a node under load passes promtool check metrics', async () => {
  const tool = promtool();
  await with_server('promtool', ['--workers', '1', '--partitions', '4', '--preface-timeout-ms', '300'], async (server, dir) => {
    assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
    const c = clients(server.grpc_port);
    try {
      // Load that touches most families: holds and releases, refusals, unauthenticated calls,
      // a silent connection closed at the preface timeout.
      const service = token(dir, 'svc', 'service');
      await Promise.all(Array.from({ length: 40 }, async (_, i) => {
        const hold = await c.reserve({ event_id: arena_id, seat_ids: [`101-${i < 20 ? 'A' : 'B'}-${(i % 20) + 1}`], hold_ttl_seconds: 0, user_id: `u${i}` }, service);
        if (i % 2 === 0) await c.release({ hold_id: hold.hold_id }, service);
      }));
      await Promise.all(Array.from({ length: 20 }, () => code_of(c.get_event({ event_id: arena_id }))));
      await code_of(c.reserve({ event_id: arena_id, seat_ids: ['no-such-seat'], hold_ttl_seconds: 0, user_id: 'u' }, service));
      await new Promise<void>((resolve) => {
        const socket = connect({ host: '127.0.0.1', port: server.grpc_port });
        socket.on('error', () => undefined);
        socket.once('close', () => resolve());
      });
    } finally {
      c.close();
    }
    const scrape = await (await fetch(`http://127.0.0.1:${server.http_port}/metrics`)).text();
    assert.match(scrape, /ticketing_grpc_requests_total\{/);
    const r = spawnSync(tool, ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
    assert.is(r.error, undefined, `promtool ran: ${String(r.error)}`);
    assert.is(r.status, 0, `promtool check metrics exit ${r.status}:\n${r.stdout}${r.stderr}`);
    assert.is(await stop(server), 0);
  });
});

test.run();
