// WatchAvailability's limits are an operator's to set: `ticketing serve --watch-streams-max N`
// (and TICKETING_WATCH_STREAMS_MAX) reach the node, and a value out of range stops it at start
// (exit 2) naming the flag. Through the real binary, with a client generated from the protos.
import * as loader from '@grpc/proto-loader';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { arena_file, arena_id, grpc, repo_root, run_cli, token, with_server } from './harness.js';

type Stream = grpc.ClientReadableStream<{ full: boolean }>;

const definition = loader.loadSync(['ticketing/catalog/v1/catalog.proto'], {
  keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [join(repo_root, 'proto')],
});
const Catalog = (grpc.loadPackageDefinition(definition) as any).ticketing.catalog.v1
  .CatalogService as grpc.ServiceClientConstructor;

function watch(client: grpc.Client, bearer: string): Stream {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${bearer}`);
  return (client as any).WatchAvailability({ event_id: arena_id }, metadata) as Stream;
}

/** The first message of the stream, or its end status if it ends first. */
function first(stream: Stream): Promise<{ full?: boolean; code?: number; details?: string }> {
  return new Promise((resolve) => {
    stream.once('data', (u: { full: boolean }) => resolve({ full: u.full }));
    stream.once('error', (e: grpc.ServiceError) => resolve({ code: e.code, details: e.details }));
  });
}

test('--watch-streams-max 2: a third stream is refused RESOURCE_EXHAUSTED naming the limit', async () => {
  await with_server('watch-flags', ['--watch-streams-max', '2', '--watch-interval-ms', '50'], async (server, dir) => {
    const imported = run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]);
    assert.is(imported.status, 0, imported.stderr);
    const client = new Catalog(`127.0.0.1:${server.grpc_port}`, grpc.credentials.createInsecure());
    const bearer = token(dir, 'fan', 'customer');
    const open = [watch(client, bearer), watch(client, bearer)];
    for (const s of open) assert.equal(await first(s), { full: true });
    const third = await first(watch(client, bearer));
    assert.is(third.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(third.details ?? '', /watch_streams_max 2/);
    for (const s of open) s.cancel();
    client.close();
  });
});

test('a watch limit out of range stops the node at start, naming the flag', () => {
  const r = run_cli(['serve', '--data', join(repo_root, 'never-created'), '--watch-interval-ms', '5']);
  assert.is(r.status, 2, r.stderr);
  assert.match(r.stderr, /watch-interval-ms/);
});

test.run();
