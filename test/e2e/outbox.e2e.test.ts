// The outbox without a broker: `ticketing outbox tail` shows what would be sent, decoded, while
// the node runs and after it stopped, and follows new entries; the cap drops oldest first by
// count and by age, counted and logged, and no client call notices.
import { spawn } from 'node:child_process';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import {
  bin, cleanup, clients, guarded_setup, run_cli, start_server, stop, temp_dir, token, type Clients, type Guarded, type Server,
} from './harness.js';
import { create_event, metric, seat, until } from './kafka_harness.js';
import { guarded_after } from '../guard.js';

interface Ctx extends Guarded { dir: string; server: Server; c: Clients; svc: string; admin: string; holds: string[] }
const t = suite<Ctx>('outbox e2e');

guarded_setup(t, async (ctx) => {
  ctx.dir = temp_dir('outbox');
  ctx.server = await start_server(ctx.dir, ['--workers', '2', '--partitions', '8']);
  ctx.c = clients(ctx.server.grpc_port);
  ctx.svc = token(ctx.dir, 'orders', 'service');
  ctx.admin = token(ctx.dir, 'ops', 'admin');
  ctx.holds = [];
  for (const id of ['evt-t-1', 'evt-t-2']) await create_event(ctx.c, ctx.admin, id);
  for (let i = 0; i < 12; i++) {
    ctx.holds.push((await ctx.c.reserve({ event_id: i % 2 === 0 ? 'evt-t-1' : 'evt-t-2', seat_ids: [seat(i)], hold_ttl_seconds: 600, user_id: `t${i}` }, ctx.svc)).hold_id);
  }
  for (const hold_id of ctx.holds.slice(0, 2)) await ctx.c.release({ hold_id }, ctx.svc);
});

guarded_after(t, async (ctx) => {
  ctx.c?.close();
  if (ctx.server !== undefined && ctx.server.process.exitCode === null) await stop(ctx.server);
  if (ctx.dir !== undefined) cleanup(ctx.dir);
});

interface Line { event_id: string; topic: string; key: string; created: string; created_ms: number; partition: number; seq: number; type: string; message: Record<string, unknown> }

function tail(args: string[]): Line[] {
  const r = run_cli(['outbox', 'tail', ...args]);
  assert.is(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Line);
}

function check_all(ctx: Ctx, lines: Line[]): void {
  assert.is(lines.length, 14);
  const created = lines.filter((l) => l.type === 'HoldCreated');
  assert.equal(created.map((l) => l.message['hold_id']).sort(), [...ctx.holds].sort());
  const released = lines.filter((l) => l.type === 'HoldReleased');
  assert.equal(released.map((l) => l.message['hold_id']).sort(), ctx.holds.slice(0, 2).sort());
  for (const l of lines) {
    assert.is(l.topic, `ticketing.events.v1.${l.type}`);
    assert.is(l.key, l.message['event_id'], 'key = event_id');
    assert.match(l.event_id, new RegExp(`-p${l.partition}-${l.seq}$`));
    assert.is(new Date(l.created).getTime(), l.created_ms);
  }
  const first = created.find((l) => l.message['hold_id'] === ctx.holds[0])!;
  assert.equal(first.message['seat_ids'], [seat(0)]);
  assert.is(typeof first.message['expires_at_unix'], 'string', 'int64 as in proto3 JSON');
  const times = lines.map((l) => l.created_ms);
  assert.equal(times, [...times].sort((a, b) => a - b), 'oldest first');
}

t('tail while the node runs: the newest entries, decoded, oldest first', (ctx) => {
  const all = tail(['--data', ctx.dir, '--limit', '100']);
  check_all(ctx, all);
  const last = tail(['--data', ctx.dir, '--limit', '3']);
  assert.equal(last.map((l) => l.event_id), all.slice(-3).map((l) => l.event_id));
  assert.is(tail(['--data', ctx.dir]).length, 14, 'default --limit 20');
  const prefixed = tail(['--data', ctx.dir, '--limit', '1', '--kafka-topic-prefix', 'stage.']);
  assert.match(prefixed[0]!.topic, /^stage\.ticketing\.events\.v1\./);
  assert.equal(tail(['--data', ctx.dir, '--parked']), [], 'nothing parked');
});

t('tail --follow prints entries as they are committed, and exits 0 on SIGINT', async (ctx) => {
  const child = spawn(process.execPath, [bin, 'outbox', 'tail', '--data', ctx.dir, '--limit', '1', '--follow'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Line[] = [];
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      lines.push(JSON.parse(buffer.slice(0, nl)) as Line);
      buffer = buffer.slice(nl + 1);
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await until(async () => lines.length, (n) => n >= 1);
    assert.is(lines.length, 1);
    const hold = await ctx.c.reserve({ event_id: 'evt-t-1', seat_ids: [seat(40)], hold_ttl_seconds: 600, user_id: 'follower' }, ctx.svc);
    ctx.holds.push(hold.hold_id);
    await until(async () => lines.length, (n) => n >= 2);
    assert.is(lines.length, 2);
    assert.is(lines[1]!.type, 'HoldCreated');
    assert.is(lines[1]!.message['hold_id'], hold.hold_id);
  } finally {
    child.kill('SIGINT');
  }
  assert.is(await exited, 0);
});

t('tail after the node stopped shows the same; bad input is refused', async (ctx) => {
  assert.is(await stop(ctx.server), 0);
  const all = tail(['--data', ctx.dir, '--limit', '100']);
  assert.is(all.length, 15);
  const missing = run_cli(['outbox', 'tail', '--data', `${ctx.dir}/nope`]);
  assert.is(missing.status, 2);
  assert.match(missing.stderr, 'not a ticketing data directory');
  assert.is(run_cli(['outbox', 'tail', '--data', ctx.dir, '--limit', '0']).status, 2);
  assert.match(run_cli(['outbox', 'tail', '--data', ctx.dir, '--kafka-topic-prefix', 'a b']).stderr, 'kafka-topic-prefix');
});

t('serve refuses bad Kafka and outbox settings at start, naming the flag', (ctx) => {
  for (const [flags, says] of [
    [['--kafka', 'localhost'], '--kafka takes HOST:PORT'],
    [['--kafka', '127.0.0.1:9092,:1'], '--kafka takes HOST:PORT'],
    [['--kafka-topic-prefix', 'a/b'], '--kafka-topic-prefix'],
    [['--outbox-max-entries', '0'], '--outbox-max-entries'],
    [['--outbox-max-age', 'soon'], 'bad duration'],
    [['--outbox-degraded-after', '0'], '--outbox-degraded-after'],
  ] as const) {
    const r = run_cli(['serve', '--data', `${ctx.dir}/never`, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', ...flags]);
    assert.is(r.status, 2, flags.join(' '));
    assert.match(r.stderr, says);
  }
});

t('no broker: the cap drops oldest first by count and by age, counted and logged; calls never fail', async () => {
  const dir = temp_dir('outbox-cap');
  // One entry across the node's 8 partitions (node-wide, oldest first). Age bound 60 s of the (test) clock.
  const server = await start_server(dir, ['--workers', '1', '--partitions', '8', '--outbox-max-entries', '1', '--outbox-max-age', '60s', '--test-clock']);
  const c = clients(server.grpc_port);
  try {
    const svc = token(dir, 'orders', 'service');
    const admin = token(dir, 'ops', 'admin');
    await create_event(c, admin, 'evt-cap');
    for (let i = 0; i < 6; i++) await c.reserve({ event_id: 'evt-cap', seat_ids: [seat(i)], hold_ttl_seconds: 600, user_id: `c${i}` }, svc);
    const by_count = 'ticketing_outbox_dropped_total{reason="count"}';
    assert.is(await until(() => metric(server.http_port, by_count), (n) => n === 5), 5);
    assert.is(await until(() => metric(server.http_port, 'ticketing_outbox_pending'), (n) => n === 1), 1);
    const left = run_cli(['outbox', 'tail', '--data', dir]).stdout.trim().split('\n').map((l) => JSON.parse(l) as Line);
    assert.is(left.length, 1);
    assert.is(left[0]!.message['user_id'], 'c5', 'the newest stays');
    await c.advance({ millis: 61_000 }, admin);
    const by_age = 'ticketing_outbox_dropped_total{reason="age"}';
    assert.is(await until(() => metric(server.http_port, by_age), (n) => n === 1), 1);
    assert.is(await until(() => metric(server.http_port, 'ticketing_outbox_pending'), (n) => n === 0), 0);
    assert.ok(server.log.some((l) => l.includes('outbox entries dropped at the cap')), 'a warn line says so');
    assert.is(await metric(server.http_port, 'ticketing_outbox_lag_seconds'), 0);
  } finally {
    c.close();
    assert.is(await stop(server), 0);
    cleanup(dir);
  }
});

t.run();
