// WatchAvailability end to end: a real node (in-process, so the test can set the watch limits)
// and a client generated from the protos. The first message is the whole picture with
// GetAvailability's counts; a ReserveTickets shows up as a change; a client that does not read
// is ended RESOURCE_EXHAUSTED; past watch_streams_max a stream is refused, and a thousand real
// streams opened and closed leave the gauge at 0; shutdown ends open streams UNAVAILABLE.
import * as loader from '@grpc/proto-loader';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as h2_connect } from 'node:http2';
import { join } from 'node:path';
import { serve_defaults } from '../../src/node/config.js';
import { serve, type RunningNode } from '../../src/node/serve.js';
import { create_logger } from '../../src/ops/log.js';
import { cleanup, clients, code_of, grpc, repo_root, temp_dir, token, type Clients } from '../e2e/harness.js';
import { guarded_after } from '../guard.js';

const S = grpc.status;
const streams_max = 1000;

interface Update {
  event_id: string; full: boolean; version: string; seat_states: Buffer; changed_seats: number[];
  changed_states: Buffer; free: string; held: string; sold: string;
  sections: { name: string; free: string; held: string; sold: string }[];
}
type Stream = grpc.ClientReadableStream<Update>;

const definition = loader.loadSync(['ticketing/catalog/v1/catalog.proto'], {
  keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [join(repo_root, 'proto')],
});
const Catalog = (grpc.loadPackageDefinition(definition) as any).ticketing.catalog.v1
  .CatalogService as grpc.ServiceClientConstructor;

const dir = temp_dir('watch');
let node: RunningNode;
let c: Clients;
let catalog: grpc.Client;
let svc: string;
const ready = (async () => {
  node = await serve({
    ...serve_defaults, data_dir: dir, grpc_addr: '127.0.0.1:0', http_addr: '127.0.0.1:0',
    kafka_brokers: undefined, workers: 1, partitions: 2, watch_streams_max: streams_max,
    watch_stream_backlog_max: 1, streams_per_connection_max: streams_max + 100,
  }, create_logger('silent'));
  c = clients(node.grpc_port);
  catalog = new Catalog(`127.0.0.1:${node.grpc_port}`, grpc.credentials.createInsecure());
  svc = token(dir, 'orders', 'service');
  const admin = token(dir, 'ops', 'admin');
  await c.create_event({ event: {
    event_id: 'evt-small', name: 'Small', currency: 'EUR', price_tiers: { A: '1' },
    sections: [
      { name: '1', rows: [{ name: 'A', seats: 10, tier: 'A' }, { name: 'B', seats: 5, tier: 'A' }] },
      { name: '2', rows: [{ name: 'A', seats: 8, tier: 'A' }] },
    ],
  } }, admin);
  // 200,000 seats in 500 sections: every change message carries 500 section counts (~6 KB), so a
  // client that does not read fills its 64 KB HTTP/2 window within a dozen messages.
  const sections = Array.from({ length: 500 }, (_, i) => ({ name: `S${i}`, rows: [{ name: 'A', seats: 400, tier: 'A' }] }));
  await c.create_event({ event: {
    event_id: 'evt-big', name: 'Big', currency: 'EUR', price_tiers: { A: '1' }, sections,
  } }, admin);
})();

guarded_after(test, async () => {
  c?.close();
  catalog?.close();
  await node?.stop();
  cleanup(dir);
});

/** `bearer` '': no authorization metadata. */
function watch(event_id: string, bearer = svc, client = catalog): Stream {
  const metadata = new grpc.Metadata();
  if (bearer !== '') metadata.set('authorization', `Bearer ${bearer}`);
  return (client as any).WatchAvailability({ event_id }, metadata) as Stream;
}

/** Reads the stream into `into`; resolves with its end status. */
function collect(stream: Stream, into: Update[]): Promise<{ code: number; details: string }> {
  return new Promise((resolve) => {
    stream.on('data', (u: Update) => into.push(u));
    stream.on('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
    stream.on('end', () => resolve({ code: S.OK, details: '' }));
  });
}

async function until(what: string, predicate: () => boolean | Promise<boolean>, tries = 1000): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for: ${what}`);
}

async function sample(name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${node.http_port}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(labels === '' ? `${name} ` : `${name}{${labels}} `));
  if (line === undefined) throw new Error(`no sample ${name}{${labels}}`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('first a whole picture with GetAvailability\'s counts, then a ReserveTickets as a change', async () => {
  await ready;
  const customer = token(dir, 'fan-1', 'customer');
  const updates: Update[] = [];
  const stream = watch('evt-small', customer);
  const ended = collect(stream, updates);
  await until('the whole picture', () => updates.length >= 1);
  const first = updates[0]!;
  assert.is(first.full, true);
  assert.is(first.event_id, 'evt-small');
  assert.equal([...first.seat_states], new Array(23).fill(0));
  const a = await c.availability({ event_id: 'evt-small' }, svc);
  assert.equal([first.free, first.held, first.sold], [a.free, a.held, a.sold]);
  assert.equal(first.sections, a.sections.map((s: Update['sections'][number]) => (
    { name: s.name, free: s.free, held: s.held, sold: s.sold })));
  await c.reserve({ event_id: 'evt-small', seat_ids: ['1-B-2', '2-A-1'], hold_ttl_seconds: 600, user_id: 'u1' }, svc);
  await until('the change', () => updates.some((u) => !u.full && u.held === '2'));
  const change = updates.find((u) => !u.full && u.held === '2')!;
  // Seat order: section 1 row A (0..9), row B (10..14), section 2 row A (15..22).
  assert.equal([...change.changed_seats].sort((x, y) => x - y), [11, 15]);
  assert.equal([...change.changed_states], [1, 1]);
  assert.ok(Number(change.version) > Number(first.version));
  assert.equal(change.sections.map((s) => s.held), ['1', '1']);
  assert.is(change.seat_states.length, 0, 'a change message carries no picture');
  stream.cancel();
  assert.is((await ended).code, S.CANCELLED);
  await until('the gauge back to 0', async () => (await sample('ticketing_watch_streams')) === 0);
});

test('refusals: no token, an unknown event, a malformed id', async () => {
  await ready;
  const none = await collect(watch('evt-small', ''), []);
  assert.is(none.code, S.UNAUTHENTICATED);
  const missing = await collect(watch('evt-nope'), []);
  assert.is(missing.code, S.NOT_FOUND);
  assert.match(missing.details, /evt-nope does not exist/);
  const bad = await collect(watch('bad id!'), []);
  assert.is(bad.code, S.INVALID_ARGUMENT);
  assert.is(await sample('ticketing_grpc_requests_total', 'service="CatalogService",method="WatchAvailability",code="NOT_FOUND"'), 1);
});

test('a client that does not read is ended RESOURCE_EXHAUSTED, saying it read too slowly', async () => {
  await ready;
  const before = await sample('ticketing_watch_streams_ended_total', 'reason="slow"');
  // A raw HTTP/2 client that never reads: it sends no WINDOW_UPDATE, so the node can send it
  // 64 KB and no more. (A grpc-js client keeps reading from the wire into its own buffer.)
  const session = h2_connect(`http://127.0.0.1:${node.grpc_port}`);
  const request = session.request({
    ':method': 'POST', ':path': '/ticketing.catalog.v1.CatalogService/WatchAvailability',
    'content-type': 'application/grpc', te: 'trailers', authorization: `Bearer ${svc}`,
  });
  const body = Buffer.concat([Buffer.from([10, 7]), Buffer.from('evt-big')]); // event_id
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  request.end(Buffer.concat([prefix, body]));
  request.pause();
  const trailers = new Promise<Record<string, unknown>>((resolve) => request.on('trailers', resolve));
  let n = 0;
  await until('the server ends the slow stream', async () => {
    // About one change per poll interval, each a message the client does not take.
    await c.reserve({ event_id: 'evt-big', seat_ids: [`S${n % 500}-A-${1 + Math.floor(n / 500)}`], hold_ttl_seconds: 600, user_id: `u${n % 1000}` }, svc);
    n++;
    return (await sample('ticketing_watch_streams_ended_total', 'reason="slow"')) > before;
  });
  // Now it reads: what was buffered, then the status.
  let received = 0;
  request.on('data', (chunk: Buffer) => { received += chunk.length; });
  request.resume();
  const t = await trailers;
  assert.is(t['grpc-status'], String(S.RESOURCE_EXHAUSTED));
  const message = decodeURIComponent(String(t['grpc-message']));
  assert.match(message, /read the WatchAvailability stream too slowly/);
  assert.match(message, /watch_stream_backlog_max 1/);
  assert.ok(received > 200_000, 'it had the picture (200,000 seats) and some changes first');
  assert.ok(await sample('ticketing_limit_refusals_total', 'limit="watch_stream_backlog_max"') >= 1);
  assert.is(await sample('ticketing_watch_streams'), 0);
  session.close();
});

test('a thousand streams open and close; past watch_streams_max one more is refused', async () => {
  await ready;
  const streams: Stream[] = [];
  const firsts = new Array<number>(streams_max).fill(0);
  const ends: Promise<{ code: number }>[] = [];
  for (let i = 0; i < streams_max; i++) {
    const s = watch('evt-small');
    s.on('data', () => { firsts[i]! += 1; });
    ends.push(new Promise((resolve) => s.on('error', (e: grpc.ServiceError) => resolve({ code: e.code }))));
    streams.push(s);
  }
  await until('every stream has its picture', () => firsts.every((n) => n >= 1));
  assert.is(await sample('ticketing_watch_streams'), streams_max);
  const refused = await collect(watch('evt-small'), []);
  assert.is(refused.code, S.RESOURCE_EXHAUSTED);
  assert.match(refused.details, /watch_streams_max 1000/);
  assert.ok(await sample('ticketing_watch_streams_ended_total', 'reason="limit"') >= 1);
  // One poller for all of them: a change reaches every stream.
  await c.reserve({ event_id: 'evt-small', seat_ids: ['1-A-1'], hold_ttl_seconds: 600, user_id: 'u2' }, svc);
  await until('the change reaches every stream', () => firsts.every((n) => n >= 2));
  for (const s of streams) s.cancel();
  for (const e of await Promise.all(ends)) assert.is(e.code, S.CANCELLED);
  await until('the gauge back to 0', async () => (await sample('ticketing_watch_streams')) === 0);
  assert.ok(await sample('ticketing_watch_streams_ended_total', 'reason="client"') >= streams_max);
});

test('shutdown ends an open stream UNAVAILABLE', async () => {
  await ready;
  const updates: Update[] = [];
  const status = collect(watch('evt-small'), updates);
  await until('the picture', () => updates.length >= 1);
  await node.stop();
  const s = await status;
  assert.is(s.code, S.UNAVAILABLE);
  assert.match(s.details, /shutting down/);
});

test.run();
