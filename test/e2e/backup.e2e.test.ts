// `ticketing backup DEST` (LMDB hot copy of every store, node.json, auth.secret) and
// `ticketing serve --data DEST`: a backup taken under a stream of reservations restores to a node
// that has every hold (and sale) acknowledged before the backup started; a node with several
// stores backs up whole; a non-empty DEST or a directory without node.json is refused clearly.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { partition_of } from '../../src/runtime/partition.js';
import { bin, cleanup, clients, grpc, run_cli, start_server, stop, temp_dir, token, type Server } from './harness.js';

// A failed assertion must not leave a server running (uvu would never exit), nor temp dirs.
const started: Server[] = [];
const dirs: string[] = [];
async function started_server(dir: string, extra: string[]): Promise<Server> {
  const server = await start_server(dir, extra);
  started.push(server);
  return server;
}
function new_dir(prefix: string): string {
  const dir = temp_dir(prefix);
  dirs.push(dir);
  return dir;
}
function tidy(): void {
  for (const s of started.splice(0)) if (s.process.exitCode === null && s.process.signalCode === null) s.process.kill('SIGKILL');
  for (const d of dirs.splice(0)) cleanup(d);
}

function run_backup(dest: string, data_dir: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [bin, 'backup', dest, '--data', data_dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
}

const seat_count = 2000;
const event = {
  event_id: 'evt-backup', name: 'Backup test', starts_at_unix: '1811836800', currency: 'EUR', price_tiers: { A: '1000000' },
  sections: [{ name: '1', rows: [{ name: 'A', seats: 1000, tier: 'A' }, { name: 'B', seats: 1000, tier: 'A' }] }],
  max_seats_per_user: 4,
};
const seat_of = (i: number): string => `1-${i < 1000 ? 'A' : 'B'}-${(i % 1000) + 1}`;

type HoldState = 'held' | 'releasing' | 'released' | 'confirming' | 'confirmed';

test('backup taken under load restores to a node that serves the same holds (and sales)', async () => {
  try {
    await backup_under_load();
  } finally {
    tidy();
  }
});

async function backup_under_load(): Promise<void> {
  const dir = new_dir('backup-src');
  const parent = new_dir('backup-dest');
  const dest = join(parent, 'copy');
  let server = await started_server(dir, ['--workers', '1', '--partitions', '8']);
  let c = clients(server.grpc_port);
  const svc = token(dir, 'svc', 'service');
  assert.equal((await c.create_event({ event }, token(dir, 'ops', 'admin'))).created, true);

  // A stream of reservations, 16 in flight; every 10th hold is then released, another every
  // 10th confirmed (a sale). It runs until the backup has finished and at least 300 calls went out.
  const holds = new Map<string, { seat: string; state: HoldState }>();
  const errors: string[] = [];
  let reserved = 0;
  let next = 0;
  let backup_started = false;
  let backup_done = false;
  let before: Map<string, { seat: string; state: HoldState }> | undefined;
  let backup_run: Promise<{ code: number | null; stdout: string; stderr: string }> | undefined;
  const report = (what: string) => (e: grpc.ServiceError) => void errors.push(`${what}: ${grpc.status[e.code]} ${e.details}`);

  const lane = async (): Promise<void> => {
    for (;;) {
      if (next >= seat_count || (backup_done && next >= 300)) return;
      const i = next++;
      const seat = seat_of(i);
      const hold = await c.reserve({ event_id: event.event_id, seat_ids: [seat], hold_ttl_seconds: 3600, user_id: `u${i}` }, svc)
        .catch(report(`reserve ${seat}`)) as { hold_id: string } | undefined;
      if (hold === undefined) continue;
      const entry = { seat, state: 'held' as HoldState };
      holds.set(hold.hold_id, entry);
      reserved++;
      if (reserved === 50 && !backup_started) {
        // Everything acknowledged so far must be in the backup: record it, then start it.
        backup_started = true;
        before = new Map([...holds].map(([id, h]) => [id, { ...h }]));
        backup_run = run_backup(dest, dir).finally(() => (backup_done = true));
      }
      if (i % 10 === 3) {
        entry.state = 'releasing';
        const r = await c.release({ hold_id: hold.hold_id }, svc).catch(report(`release ${seat}`));
        if (r !== undefined) entry.state = 'released';
      } else if (i % 10 === 7) {
        entry.state = 'confirming';
        const r = await c.confirm({ hold_id: hold.hold_id, order_id: `order-${i}` }, svc).catch(report(`confirm ${seat}`));
        if (r !== undefined) entry.state = 'confirmed';
      }
    }
  };
  await Promise.all(Array.from({ length: 16 }, lane));
  assert.equal(errors, [], 'every call of the stream succeeded');
  assert.ok(backup_run !== undefined && before !== undefined, 'the backup started during the stream');
  const result = await backup_run!;
  assert.is(result.code, 0, `backup failed:\n${result.stdout}\n${result.stderr}`);
  assert.ok(reserved > before!.size, 'holds were still being acknowledged after the backup started');
  assert.match(result.stdout, /stores\/s000: \d+ bytes/);
  assert.match(result.stdout, /auth\.secret: \d+ bytes/);
  c.close();
  assert.is(await stop(server), 0);

  // DEST is complete, nothing half-written next to it, the secret still 0600.
  assert.equal(readdirSync(parent), ['copy']);
  assert.equal(readdirSync(dest).sort(), ['auth.secret', 'node.json', 'stores']);
  assert.is(statSync(join(dest, 'auth.secret')).mode & 0o777, 0o600);
  assert.is(readFileSync(join(dest, 'auth.secret'), 'utf8'), readFileSync(join(dir, 'auth.secret'), 'utf8'));
  assert.is(readFileSync(join(dest, 'node.json'), 'utf8'), readFileSync(join(dir, 'node.json'), 'utf8'));

  // Restore: serve the backup.
  server = await started_server(dest, ['--workers', '1']);
  c = clients(server.grpc_port);
  const svc2 = token(dest, 'svc', 'service');
  const a = await c.availability({ event_id: event.event_id }, svc2);
  const free = new Set<string>(a.sections[0].free_seat_ids);
  assert.is(Number(a.free) + Number(a.held) + Number(a.sold), seat_count, 'free + held + sold = seats');
  assert.is(free.size, Number(a.free));
  const count = (state: HoldState) => [...before!.values()].filter((h) => h.state === state).length;
  assert.ok(Number(a.held) >= count('held'), 'every hold held before the backup is held');
  assert.ok(Number(a.sold) >= count('confirmed'), 'every seat sold before the backup is sold');
  // Nothing in the restore that the original never acknowledged.
  const acknowledged_seats = new Set([...holds.values()].map((h) => h.seat));
  for (let i = 0; i < seat_count; i++) {
    if (!free.has(seat_of(i))) assert.ok(acknowledged_seats.has(seat_of(i)), `${seat_of(i)} taken in the restore was acknowledged`);
  }
  for (const [hold_id, { seat, state }] of before!) {
    if (state === 'held' || state === 'confirmed') assert.not.ok(free.has(seat), `${seat} (${state} before the backup) is taken`);
    if (state === 'released') assert.ok(free.has(seat), `${seat} (released before the backup) is free`);
    const answer = await c.release({ hold_id }, svc2).then(
      (r: { released: boolean }) => (r.released ? 'released' : 'already released'),
      (e: grpc.ServiceError) => grpc.status[e.code],
    );
    const expected = {
      held: ['released'], releasing: ['released', 'already released'], released: ['already released'],
      confirming: ['released', 'FAILED_PRECONDITION'], confirmed: ['FAILED_PRECONDITION'],
    }[state];
    assert.ok(expected.includes(answer), `hold on ${seat}, ${state} before the backup: ReleaseHold answered ${answer}`);
  }

  // The restored node takes new reservations, with a token minted from DEST's copied secret.
  const seat = [...free][0]!;
  const customer = token(dest, 'newcomer', 'customer');
  const fresh = await c.reserve({ event_id: event.event_id, seat_ids: [seat], hold_ttl_seconds: 300, user_id: 'newcomer' }, customer);
  assert.match(fresh.hold_id, /^hold_/);
  assert.equal(await c.release({ hold_id: fresh.hold_id }, customer), { released: true });
  c.close();
  assert.is(await stop(server), 0);
}

test('a node with several stores backs up whole into an empty directory; a non-empty DEST is refused', async () => {
  try {
    await several_stores();
  } finally {
    tidy();
  }
});

async function several_stores(): Promise<void> {
  const dir = new_dir('backup-stores');
  const parent = new_dir('backup-dest');
  // --workers 3 at creation: three stores; one event in each.
  let server = await started_server(dir, ['--workers', '3', '--partitions', '8']);
  let c = clients(server.grpc_port);
  const admin = token(dir, 'ops', 'admin');
  const svc = token(dir, 'svc', 'service');
  const ids: string[] = [];
  for (let i = 0; ids.length < 3; i++) {
    const id = `evt-store-${i}`;
    if (ids.every((other) => partition_of(other, 8) % 3 !== partition_of(id, 8) % 3)) ids.push(id);
  }
  const held: { event_id: string; hold_id: string }[] = [];
  for (const event_id of ids) {
    await c.create_event({ event: { ...event, event_id, sections: [{ name: '1', rows: [{ name: 'A', seats: 10, tier: 'A' }] }] } }, admin);
    const hold = await c.reserve({ event_id, seat_ids: ['1-A-1'], hold_ttl_seconds: 3600, user_id: 'u1' }, svc);
    held.push({ event_id, hold_id: hold.hold_id });
  }
  c.close();
  assert.is(await stop(server), 0);

  // Refused: a non-empty DEST (left untouched) and a DEST that is a file.
  const full = join(parent, 'full');
  mkdirSync(full);
  writeFileSync(join(full, 'keep.txt'), 'mine');
  const refused = run_cli(['backup', full, '--data', dir]);
  assert.ok(refused.status !== 0 && refused.status !== null, `exit ${refused.status}`);
  assert.match(refused.stderr, /backup destination .*full is not empty/);
  assert.equal(readdirSync(full), ['keep.txt']);
  assert.is(readFileSync(join(full, 'keep.txt'), 'utf8'), 'mine');
  writeFileSync(join(parent, 'a-file'), 'x');
  const onto_file = run_cli(['backup', join(parent, 'a-file'), '--data', dir]);
  assert.ok(onto_file.status !== 0 && onto_file.status !== null);
  assert.match(onto_file.stderr, /exists and is not a directory/);

  // Accepted: an empty existing directory, from a stopped node; every store is in it.
  const empty = join(parent, 'empty');
  mkdirSync(empty);
  const done = run_cli(['backup', empty, '--data', dir]);
  assert.is(done.status, 0, done.stderr);
  for (const s of ['s000', 's001', 's002']) assert.match(done.stdout, new RegExp(`stores/${s}: \\d+ bytes`));
  assert.match(done.stdout, /3 stores/);
  assert.equal(readdirSync(parent).sort(), ['a-file', 'empty', 'full']);

  // Restored with a different worker count: every store's hold is there.
  server = await started_server(empty, ['--workers', '1']);
  c = clients(server.grpc_port);
  const svc2 = token(empty, 'svc', 'service');
  for (const { event_id, hold_id } of held) {
    const a = await c.availability({ event_id }, svc2);
    assert.is(Number(a.held), 1, `${event_id}: its hold is held`);
    assert.equal(await c.release({ hold_id }, svc2), { released: true });
  }
  c.close();
  assert.is(await stop(server), 0);
}

test('backup of a directory without node.json fails clearly and writes nothing', () => {
  try {
    const data = new_dir('backup-nodata');
    const parent = new_dir('backup-dest');
    const dest = join(parent, 'copy');
    const r = run_cli(['backup', dest, '--data', data]);
    assert.ok(r.status !== 0 && r.status !== null, `exit ${r.status}`);
    assert.match(r.stderr, /is not a ticketing data directory: .*node\.json does not exist/);
    assert.not.ok(existsSync(dest));
    assert.equal(readdirSync(parent), []);
    assert.equal(readdirSync(data), []);
  } finally {
    tidy();
  }
});

test.run();
