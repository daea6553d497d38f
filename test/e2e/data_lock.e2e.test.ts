// One node per data directory (src/ops/data_lock.ts), with real second processes: a second
// `serve` on a directory a node is using (by the same path or through a symlink) exits non-zero
// naming the directory and the holder's pid, and the first node keeps serving and keeps its
// sale; `kill -9` of the holder never leaves a lock behind; a backup into a live directory is
// refused naming the node; readers (backup of a live node, outbox tail) keep working beside it.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  arena_file, arena_id, await_serving, bin, cleanup, clients, code_of, grpc, kill9, run_cli, start_server, stop, temp_dir, token, type Server,
} from './harness.js';

const started: Server[] = [];
const dirs: string[] = [];
function new_dir(prefix: string): string {
  const dir = temp_dir(prefix);
  dirs.push(dir);
  return dir;
}
async function started_server(dir: string): Promise<Server> {
  const server = await start_server(dir, ['--workers', '1', '--partitions', '4']);
  started.push(server);
  return server;
}
function tidy(): void {
  for (const s of started.splice(0)) if (s.process.exitCode === null && s.process.signalCode === null) s.process.kill('SIGKILL');
  for (const d of dirs.splice(0)) cleanup(d);
}

/** Starts a second `serve` on `dir` and waits for it either to serve (the defect) or to exit. */
async function second_node(dir: string): Promise<{ outcome: 'serving' | 'exited'; code: number | null; output: string }> {
  const child = spawn(process.execPath, [bin, 'serve', '--data', dir, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--workers', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TICKETING_LOG_LEVEL: 'info' },
  });
  const serving = await_serving(child, 'second node');
  const outcome = await serving.then(() => 'serving' as const, () => 'exited' as const);
  if (outcome === 'serving') {
    const server: Server = { data_dir: dir, process: child, ...(await serving) };
    started.push(server);
    return { outcome, code: null, output: server.log.join('\n') };
  }
  const log = await serving.catch((error: Error) => error.message);
  return { outcome, code: await new Promise((done) => (child.exitCode !== null ? done(child.exitCode) : child.once('exit', done))), output: String(log) };
}

test('a second node on a live data directory is refused, naming it and the holder; the first keeps its sale; kill -9 leaves no lock', async () => {
  try {
    const dir = new_dir('lock');
    const a = await started_server(dir);
    const c = clients(a.grpc_port);
    assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${a.grpc_port}`, '--data', dir]).status, 0);
    const svc = token(dir, 'svc', 'service');
    const hold = await c.reserve({ event_id: arena_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 600, user_id: 'alice' }, svc);
    assert.equal(await c.confirm({ hold_id: hold.hold_id, order_id: 'order-a' }, svc), { confirmed: true });

    // Node B on the same directory (on the old code it served, and sold 101-A-1 again).
    const b = await second_node(dir);
    assert.is(b.outcome, 'exited', `the second node started serving on a directory in use:\n${b.output}`);
    assert.ok(b.code !== 0 && b.code !== null, `exit code ${b.code}`);
    assert.ok(b.output.includes(`data directory ${dir} is in use by process ${a.process.pid}`), b.output);
    assert.ok(b.output.includes(`gRPC 127.0.0.1:${a.grpc_port}`), b.output);

    // holder.json tells a person who holds the directory.
    const holder = JSON.parse(readFileSync(join(dir, 'holder.json'), 'utf8')) as { pid: number; grpc_addr: string; command: string };
    assert.is(holder.pid, a.process.pid);
    assert.is(holder.grpc_addr, `127.0.0.1:${a.grpc_port}`);
    assert.is(holder.command, 'serve');

    // The same directory through a symlink is the same lock (device and inode, not the path).
    const link = join(new_dir('lock-link'), 'data');
    symlinkSync(dir, link);
    const via_link = await second_node(link);
    assert.is(via_link.outcome, 'exited', via_link.output);
    assert.ok(via_link.output.includes(`in use by process ${a.process.pid}`), via_link.output);

    // A is untouched: still serving, the seat still sold to A's order.
    const again = await code_of(c.reserve({ event_id: arena_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 600, user_id: 'bob' }, svc));
    assert.is(again.code, grpc.status.FAILED_PRECONDITION, again.details);
    c.close();

    // kill -9: the kernel frees the lock with the process; a new node starts at once and A's
    // confirmation is still there (repeating it is the documented no-op).
    await kill9(a);
    const restarted = await started_server(dir);
    const c2 = clients(restarted.grpc_port);
    assert.equal(await c2.confirm({ hold_id: hold.hold_id, order_id: 'order-a' }, svc), { confirmed: true });
    const taken = await code_of(c2.reserve({ event_id: arena_id, seat_ids: ['101-A-1'], hold_ttl_seconds: 600, user_id: 'bob' }, svc));
    assert.is(taken.code, grpc.status.FAILED_PRECONDITION, taken.details);
    c2.close();
    assert.is(await stop(restarted), 0);
    // A clean stop removes holder.json; the next node starts again.
    assert.is(existsSync(join(dir, 'holder.json')), false);
    const third = await started_server(dir);
    assert.is(await stop(third), 0);
  } finally {
    tidy();
  }
});

test('backup into a live data directory is refused naming its node; backup of a live node and outbox tail still work', async () => {
  try {
    const dir = new_dir('lock-live');
    const a = await started_server(dir);
    const other = new_dir('lock-other');
    const b = await started_server(other);
    assert.is(await stop(b), 0);

    // "Restore" the other directory into A's live one: refused before anything is written.
    const before = run_cli(['outbox', 'tail', '--data', dir]);
    assert.is(before.status, 0, before.stderr);
    const into_live = run_cli(['backup', dir, '--data', other]);
    assert.ok(into_live.status !== 0 && into_live.status !== null, `exit ${into_live.status}`);
    assert.ok(into_live.stderr.includes(`data directory ${dir} is in use by process ${a.process.pid}`), into_live.stderr);

    // Readers beside the live node: a hot backup of it and outbox tail.
    const copy = join(new_dir('lock-copy'), 'copy');
    const backed_up = run_cli(['backup', copy, '--data', dir]);
    assert.is(backed_up.status, 0, backed_up.stderr);
    assert.is(run_cli(['outbox', 'tail', '--data', dir]).status, 0);
    // The backup carries no lock files: the copy is a directory of its own.
    assert.is(existsSync(join(copy, 'lock.key')) || existsSync(join(copy, 'holder.json')), false);

    const c = clients(a.grpc_port);
    assert.ok((await c.get_event({ event_id: 'nope' }, token(dir, 'ops', 'admin')).catch((e: grpc.ServiceError) => e)).code === grpc.status.NOT_FOUND);
    c.close();
    assert.is(await stop(a), 0);
  } finally {
    tidy();
  }
});

test('three nodes started at once on a new directory: exactly one serves, the others name it', async () => {
  try {
    const dir = join(new_dir('lock-race'), 'fresh');
    const outcomes = await Promise.all([0, 1, 2].map(() => second_node(dir)));
    const serving = outcomes.filter((o) => o.outcome === 'serving');
    assert.is(serving.length, 1, outcomes.map((o) => o.output).join('\n----\n'));
    const winner = started.find((s) => s.data_dir === dir)!;
    for (const o of outcomes.filter((x) => x.outcome === 'exited')) {
      assert.ok(o.code !== 0 && o.code !== null, `exit code ${o.code}`);
      assert.ok(o.output.includes(`data directory ${dir} is in use by process ${winner.process.pid}`), o.output);
    }
    assert.is(await stop(winner), 0);
  } finally {
    tidy();
  }
});

test.run();
