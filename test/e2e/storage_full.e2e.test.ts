// A node whose storage runs out: on a real 24 MB tmpfs filled under a stream of holds, and with a
// small --store-map-bytes. Writes must be refused UNAVAILABLE naming the disk and the data
// directory, reads answered, /readyz not ready with the reason, ticketing_storage_full set, no
// worker restarts (the old code crash-looped: 46 restarts in 30 s), writes resuming by themselves
// once space returns, and nothing acknowledged lost across a restart.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cleanup, clients, code_of, grpc, start_server, stop, temp_dir, token, type Clients, type Server } from './harness.js';

const event_id = 'evt-storage';
const sections = 120;
// 120 sections × 10 rows × 100 seats: enough holds of 10 seats to fill the disk or the map.
const event = {
  event_id, name: 'Storage test', starts_at_unix: '1811836800', currency: 'EUR', price_tiers: { A: '1000000' },
  sections: Array.from({ length: sections }, (_, s) => ({
    name: String(s + 1), rows: Array.from({ length: 10 }, (_, r) => ({ name: String.fromCharCode(65 + r), seats: 100, tier: 'A' })),
  })),
  max_seats_per_user: 10,
};
const seats_of = (n: number): string[] => {
  // Hold n takes 10 seats of one row: section, row and seat range from n.
  const section = 1 + (n % sections);
  const row = String.fromCharCode(65 + (Math.floor(n / sections) % 10));
  const block = Math.floor(n / (sections * 10));
  return Array.from({ length: 10 }, (_, i) => `${section}-${row}-${block * 10 + i + 1}`);
};
const holds_max = sections * 10 * 10;

interface Held { hold_id: string; seats: string[] }

/** Holds in waves of 32 until one is refused; returns the acknowledged ones and the refusal. */
async function hold_until_refused(c: Clients, svc: string, next: { n: number }): Promise<{ held: Held[]; refusal: { code: number; details: string } }> {
  const held: Held[] = [];
  while (next.n < holds_max) {
    const wave = Array.from({ length: Math.min(32, holds_max - next.n) }, () => next.n++);
    const results = await Promise.all(wave.map(async (n) => {
      const seats = seats_of(n);
      try {
        const hold = await c.reserve({ event_id, seat_ids: seats, hold_ttl_seconds: 3600, user_id: `u${n}` }, svc);
        held.push({ hold_id: hold.hold_id, seats });
        return undefined;
      } catch (error) {
        const e = error as grpc.ServiceError;
        return { code: e.code, details: e.details };
      }
    }));
    const refusal = results.find((r) => r !== undefined);
    if (refusal !== undefined) return { held, refusal };
  }
  throw new Error(`${holds_max} holds were all acknowledged: storage never ran out`);
}

async function http_get(server: Server, path: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${server.http_port}${path}`);
  return { status: res.status, body: await res.text() };
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.split(' ')[0] === name);
  assert.ok(line !== undefined, `metric ${name} exported`);
  return Number(line!.split(' ').pop());
}

/** Polls until `probe` returns a value (not undefined); bounded tries only as a safety net. */
async function until<T>(what: string, probe: () => Promise<T | undefined>, tries = 600): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`gave up waiting: ${what}`);
}

/** Every acknowledged hold's seats are held (not free) on this node. */
async function assert_held(c: Clients, svc: string, held: Held[]): Promise<void> {
  const free = new Set<string>();
  for (let s = 1; s <= sections; s++) {
    const a = await c.availability({ event_id, section: String(s) }, svc);
    for (const section of a.sections) for (const id of section.free_seat_ids) free.add(id);
  }
  for (const h of held) for (const seat of h.seats) assert.not.ok(free.has(seat), `acknowledged hold ${h.hold_id} still holds ${seat}`);
}

/** The refused-storage checks shared by both cases. */
async function assert_refusing(server: Server, c: Clients, svc: string, dir: string, words: RegExp, reason: 'disk' | 'map', held: Held[], next: { n: number }): Promise<void> {
  // Writes: refused at once with UNAVAILABLE, naming the data directory and the cause.
  for (let i = 0; i < 40; i++) {
    const n = next.n++;
    const refused = await code_of(c.reserve({ event_id, seat_ids: seats_of(n), hold_ttl_seconds: 3600, user_id: `u${n}` }, svc));
    assert.is(refused.code, grpc.status.UNAVAILABLE, `write refused UNAVAILABLE: ${refused.details}`);
    assert.ok(refused.details.includes(dir), `names the data directory: ${refused.details}`);
    assert.match(refused.details, words);
  }
  const release = await code_of(c.release({ hold_id: held[0]!.hold_id }, svc));
  assert.is(release.code, grpc.status.UNAVAILABLE, 'a release is a write too');
  // Reads: answered from memory, showing every acknowledged hold.
  assert.is((await c.get_event({ event_id }, svc)).event_id, event_id);
  await assert_held(c, svc, held);
  // /readyz and the metric say why, once the worker's report arrives.
  const ready = await until('/readyz not ready', async () => {
    const r = await http_get(server, '/readyz');
    return r.status === 503 ? r : undefined;
  });
  assert.match(ready.body, /^not ready: writes refused/);
  assert.ok(ready.body.includes(dir), `/readyz names the data directory: ${ready.body}`);
  // Counters come up with the worker's next stats report (every second): /readyz may have
  // turned on the report the first refusal triggered, before the other 39 were counted.
  const metrics = await until('40 refusals counted', async () => {
    const body = (await http_get(server, '/metrics')).body;
    return metric(body, 'ticketing_storage_refusals_total') >= 40 ? body : undefined;
  });
  assert.is(metric(metrics, `ticketing_storage_full{reason="${reason}"}`), 1);
  assert.ok(metric(metrics, 'ticketing_storage_refusals_total') >= 40);
  // No crash loop: the worker never restarted.
  assert.is(metric(metrics, 'ticketing_worker_restarts_total'), 0, 'no worker restart');
  assert.not.ok(server.log.some((l) => l.includes('worker stopped')), 'no worker stopped');
}

test('full disk (tmpfs size=24m): writes refused naming the disk, reads served, not ready, no restarts, resumes when space returns', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ticketing-disk-full-'));
  // A real small filesystem. If it cannot be mounted the test fails here, loudly.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs', dir]);
  let server: Server | undefined;
  let c: Clients | undefined;
  try {
    const data = join(dir, 'data');
    server = await start_server(data, ['--workers', '1', '--partitions', '4', '--storage-probe-interval-ms', '100']);
    c = clients(server.grpc_port);
    const svc = token(data, 'svc', 'service');
    await c.create_event({ event }, token(data, 'ops', 'admin'));
    // Leave about 1.5 MiB free: the stream of holds fills the rest.
    const s = statfsSync(dir);
    const filler = join(dir, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, s.bavail * s.bsize - 1.5 * 1024 * 1024)));
    const next = { n: 0 };
    const { held, refusal } = await hold_until_refused(c, svc, next);
    assert.ok(held.length > 0, 'some holds were acknowledged before the disk filled');
    assert.is(refusal.code, grpc.status.UNAVAILABLE, `refused UNAVAILABLE: ${refusal.details}`);
    assert.match(refusal.details, /disk|space/);
    assert.ok(refusal.details.includes(data), `names the data directory: ${refusal.details}`);

    await assert_refusing(server, c, svc, data, /disk .*no space left/, 'disk', held, next);

    // Space returns: writes resume by themselves.
    rmSync(filler);
    const resumed = await until('a write succeeds again', async () => {
      const n = next.n++;
      try {
        const hold = await c!.reserve({ event_id, seat_ids: seats_of(n), hold_ttl_seconds: 3600, user_id: `u${n}` }, svc);
        return { hold_id: hold.hold_id as string, seats: seats_of(n) };
      } catch (error) {
        assert.is((error as grpc.ServiceError).code, grpc.status.UNAVAILABLE, 'refused UNAVAILABLE until space returns');
        return undefined;
      }
    });
    held.push(resumed);
    await until('/readyz ready again', async () => ((await http_get(server!, '/readyz')).status === 200 ? true : undefined));
    const after = (await http_get(server, '/metrics')).body;
    assert.is(metric(after, 'ticketing_worker_restarts_total'), 0, 'still no worker restart');

    // Nothing acknowledged is lost: restart the node on the same directory.
    c.close();
    assert.is(await stop(server), 0, 'clean stop');
    server = await start_server(data, ['--workers', '1']);
    c = clients(server.grpc_port);
    await assert_held(c, svc, held);
  } finally {
    c?.close();
    if (server !== undefined && server.process.exitCode === null && server.process.signalCode === null) {
      server.process.kill('SIGKILL');
      await server.exited;
    }
    execFileSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--store-map-bytes reached: writes refused naming the data directory, reads served, no restarts; a larger map on restart resumes', async () => {
  const dir = temp_dir('map-full');
  let server: Server | undefined;
  let c: Clients | undefined;
  try {
    server = await start_server(dir, ['--workers', '1', '--partitions', '4', '--store-map-bytes', String(4 * 1024 * 1024)]);
    c = clients(server.grpc_port);
    const svc = token(dir, 'svc', 'service');
    await c.create_event({ event }, token(dir, 'ops', 'admin'));
    const next = { n: 0 };
    const { held, refusal } = await hold_until_refused(c, svc, next);
    assert.ok(held.length > 0, 'some holds were acknowledged before the map filled');
    assert.is(refusal.code, grpc.status.UNAVAILABLE, `refused UNAVAILABLE: ${refusal.details}`);
    assert.ok(refusal.details.includes(dir), `names the data directory: ${refusal.details}`);
    assert.match(refusal.details, /--store-map-bytes/);

    await assert_refusing(server, c, svc, dir, /--store-map-bytes/, 'map', held, next);

    // The operator sizes the map up: after a restart writes go, nothing acknowledged lost.
    c.close();
    assert.is(await stop(server), 0, 'clean stop');
    server = await start_server(dir, ['--workers', '1', '--store-map-bytes', String(64 * 1024 * 1024)]);
    c = clients(server.grpc_port);
    await assert_held(c, svc, held);
    const n = next.n++;
    await c.reserve({ event_id, seat_ids: seats_of(n), hold_ttl_seconds: 3600, user_id: `u${n}` }, svc);
    assert.is((await http_get(server, '/readyz')).status, 200);
  } finally {
    c?.close();
    if (server !== undefined && server.process.exitCode === null && server.process.signalCode === null) {
      server.process.kill('SIGKILL');
      await server.exited;
    }
    cleanup(dir);
  }
});

test.run();
