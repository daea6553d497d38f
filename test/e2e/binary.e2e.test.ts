// The single executable (npm run build:binary): built from this checkout, copied alone into an
// empty folder and run there with no node on PATH and no NODE_PATH, so it can use neither the
// system Node nor this repository's node_modules. It serves, mints tokens, keeps a hold across
// a restart, and exits 0 on SIGTERM.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { arena_file, arena_id, await_serving, cleanup, clients, code_of, grpc, guarded_setup, repo_root, temp_dir, type Guarded } from './harness.js';
import { guarded_after } from '../guard.js';
import { dispose_broker, start_broker, type Broker } from '../kafka/broker.js';
import { start_consumer, type Consumer } from '../kafka/consume.js';

const t = suite<Guarded & { dir: string; env: NodeJS.ProcessEnv; started: ChildProcess[] }>('single executable e2e');

interface Running {
  child: ChildProcess;
  grpc_port: number;
  log: string[];
  exited: Promise<number | null>;
}

/** Starts `./ticketing serve` in the folder; resolves on its "serving" line. */
function serve(dir: string, env: NodeJS.ProcessEnv, started: ChildProcess[], extra: string[] = []): Promise<Running> {
  const child = spawn('./ticketing', ['serve', '--data', './data', '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--workers', '2', ...extra], {
    cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.push(child);
  return await_serving(child, './ticketing serve').then(({ log, exited, grpc_port }) => ({ child, log, exited, grpc_port }));
}

function run(dir: string, env: NodeJS.ProcessEnv, args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('./ticketing', args, { cwd: dir, env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

guarded_setup(t, (ctx) => {
  const build = spawnSync(process.execPath, [join(repo_root, 'scripts/build_binary.mjs')], { cwd: repo_root, encoding: 'utf8' });
  assert.is(build.status, 0, `build:binary failed:\n${build.stdout}${build.stderr}`);
  ctx.started = [];
  ctx.dir = temp_dir('binary');
  copyFileSync(join(repo_root, 'build/ticketing'), join(ctx.dir, 'ticketing'));
  // No directory holding a `node` on PATH, no NODE_PATH or NODE_OPTIONS, and a home and cache
  // inside the folder: nothing outside the executable to lean on, nothing left behind.
  const path = (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '' && !existsSync(join(d, 'node')));
  ctx.env = {
    PATH: path.join(delimiter),
    HOME: join(ctx.dir, 'home'),
    XDG_CACHE_HOME: join(ctx.dir, 'cache'),
    TICKETING_LOG_LEVEL: 'info',
  };
});

guarded_after(t, (ctx) => {
  for (const child of ctx.started ?? []) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (ctx.dir !== undefined) cleanup(ctx.dir);
});

t('starts from a clean folder, serves a reservation, and shuts down', async (ctx) => {
  assert.equal(readdirSync(ctx.dir), ['ticketing']);
  assert.is(spawnSync('node', ['--version'], { env: ctx.env }).error?.message.includes('ENOENT'), true, 'no node on PATH');

  const server = await serve(ctx.dir, ctx.env, ctx.started);
  assert.not.ok(server.log.join('\n').includes('ExperimentalWarning'), 'no SEA warning');
  const minted = run(ctx.dir, ctx.env, ['token', '--user', 'ops', '--role', 'admin', '--data', './data']);
  assert.is(minted.status, 0, minted.stderr);
  const admin = minted.stdout.trim();
  const alice = run(ctx.dir, ctx.env, ['token', '--user', 'alice', '--role', 'customer', '--data', './data']).stdout.trim();

  const c = clients(server.grpc_port);
  try {
    const event = JSON.parse(readFileSync(arena_file, 'utf8'));
    const created = await c.create_event({ event }, admin);
    assert.equal(created, { event_id: arena_id, created: true, seat_count: '58' });
    const now_s = Math.floor(Date.now() / 1000);
    const hold = await c.reserve({ event_id: arena_id, seat_ids: ['101-A-1', '101-A-2'], user_id: 'alice', hold_ttl_seconds: 300 }, alice);
    assert.match(hold.hold_id, /^hold_[0-9]+_[A-Za-z0-9_-]{22}$/);
    assert.ok(Number(hold.expires_at_unix) >= now_s + 300, 'expires after the ttl');
    const taken = await code_of(c.reserve({ event_id: arena_id, seat_ids: ['101-A-2'], user_id: 'alice', hold_ttl_seconds: 300 }, alice));
    assert.is(taken.code, grpc.status.FAILED_PRECONDITION);
  } finally {
    c.close();
  }
  server.child.kill('SIGTERM');
  assert.is(await server.exited, 0, `SIGTERM exits 0:\n${server.log.join('\n')}`);

  // Again, from the unpacked files now in the cache: the hold was journaled in LMDB.
  const again = await serve(ctx.dir, ctx.env, ctx.started);
  const c2 = clients(again.grpc_port);
  try {
    const a = await c2.availability({ event_id: arena_id, section: '101' }, alice);
    assert.is(Number(a.held), 2, 'the hold is back after the restart');
  } finally {
    c2.close();
  }
  again.child.kill('SIGTERM');
  assert.is(await again.exited, 0, `SIGTERM exits 0:\n${again.log.join('\n')}`);
});

// The emitter's thread has an entry script of its own (dist/src/kafka/emitter_thread.js in the
// unpacked tree): it must load there, read the stores and reach the broker.
t('with --kafka: the emitter thread runs from the executable and delivers the events', async (ctx) => {
  let broker: Broker | undefined;
  let consumer: Consumer | undefined;
  try {
    broker = await start_broker();
    const server = await serve(ctx.dir, ctx.env, ctx.started, ['--kafka', broker.brokers, '--kafka-topic-prefix', 'bin.']);
    const alice = run(ctx.dir, ctx.env, ['token', '--user', 'alice', '--role', 'customer', '--data', './data']).stdout.trim();
    const c = clients(server.grpc_port);
    let hold_id = '';
    try {
      hold_id = (await c.reserve({ event_id: arena_id, seat_ids: ['101-A-3'], user_id: 'alice', hold_ttl_seconds: 300 }, alice)).hold_id;
    } finally {
      c.close();
    }
    consumer = await start_consumer(broker.brokers, ['bin.ticketing.events.v1.HoldCreated']);
    await consumer.until((m) => m.some((x) => x.value.toString('latin1').includes(hold_id)));
    assert.ok(consumer.messages.some((x) => x.value.toString('latin1').includes(hold_id)), `HoldCreated of ${hold_id} on its topic:\n${server.log.join('\n')}`);
    assert.not.ok(server.log.join('\n').includes('emitter thread exited'), 'the emitter thread kept running');
    server.child.kill('SIGTERM');
    assert.is(await server.exited, 0, `SIGTERM exits 0:\n${server.log.join('\n')}`);
  } finally {
    await consumer?.stop().catch(() => undefined);
    await dispose_broker(broker);
  }
});

t.run();
