// Silent and greedy clients against a real node, with raw bytes on real sockets: TCP connections
// that send nothing or half the HTTP/2 preface, a connection that is not HTTP/2, idle HTTP/2
// connections, streams whose request never arrives, and more connections and calls than the caps
// allow, per address (127.0.0.x loopback source addresses) and per node. Each case waits on the
// socket's or stream's own events, and checks the metrics count it.
import { connect as net_connect, type Socket } from 'node:net';
import { connect as h2_connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clients, code_of, grpc, with_server, type Server } from './harness.js';

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

async function scrape(server: Server): Promise<string> {
  return (await fetch(`http://127.0.0.1:${server.http_port}/metrics`)).text();
}

/** A sample's value from a scrape; `labels` as written in the exposition ('reason="idle"'). */
function sample(metrics: string, name: string, labels = ''): number {
  const line = metrics.split('\n').find((l) => l.startsWith(labels === '' ? `${name} ` : `${name}{${labels}} `));
  if (line === undefined) throw new Error(`no sample ${name}{${labels}} in the scrape`);
  return Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** Polls until `predicate` holds; the bound on tries is a safety net, not a timing assertion. */
async function until(what: string, predicate: () => boolean | Promise<boolean>, tries = 600): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`still not true after ${tries} polls: ${what}`);
}

interface Tracked { socket: Socket; closed: boolean }

/** A TCP connection from `local` (a 127.0.0.x source address) that sends `bytes` once open. */
function open_socket(port: number, bytes: Buffer | undefined, local = '127.0.0.1'): Promise<Tracked> {
  return new Promise((resolve, reject) => {
    const socket = net_connect({ host: '127.0.0.1', port, localAddress: local });
    const tracked: Tracked = { socket, closed: false };
    socket.on('error', () => undefined); // a reset from the server is a close too
    socket.once('close', () => { tracked.closed = true; });
    socket.once('connect', () => {
      if (bytes !== undefined) socket.write(bytes);
      resolve(tracked);
    });
    socket.once('error', reject);
  });
}

function h2_session(port: number, local = '127.0.0.1'): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = h2_connect(`http://127.0.0.1:${port}`, { createConnection: () => net_connect({ host: '127.0.0.1', port, localAddress: local }) });
    session.on('error', () => undefined);
    session.once('connect', () => resolve(session));
    session.once('error', reject);
  });
}

interface Answer { status: string | undefined; message: string | undefined; done: boolean }

/** Opens a gRPC call with headers only: the request message never follows. */
function headers_only(session: ClientHttp2Session, path = '/ticketing.inventory.v1.InventoryService/ReserveTickets'): { stream: ClientHttp2Stream; answer: Answer } {
  const stream = session.request({
    [h2.HTTP2_HEADER_METHOD]: 'POST', [h2.HTTP2_HEADER_PATH]: path,
    'content-type': 'application/grpc', te: 'trailers',
  }, { endStream: false });
  const answer: Answer = { status: undefined, message: undefined, done: false };
  const take = (headers: Record<string, unknown>): void => {
    if (headers['grpc-status'] !== undefined) {
      answer.status = String(headers['grpc-status']);
      answer.message = decodeURIComponent(String(headers['grpc-message'] ?? ''));
    }
  };
  stream.on('response', take);
  stream.on('trailers', take);
  stream.on('error', () => undefined);
  stream.on('close', () => { answer.done = true; });
  stream.resume();
  return { stream, answer };
}

const test = suite('silent clients e2e');

test('connections that send nothing, half the preface, or no HTTP/2 are closed by the node; idle ones too', async () => {
  await with_server('silent', ['--preface-timeout-ms', '500', '--idle-timeout-ms', '1000'], async (server) => {
    const silent = await Promise.all(Array.from({ length: 100 }, () => open_socket(server.grpc_port, undefined)));
    const half = await Promise.all(Array.from({ length: 100 }, () => open_socket(server.grpc_port, preface.subarray(0, 12))));
    const http1 = await open_socket(server.grpc_port, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await until('every silent and half-preface connection closed by the node', () => [...silent, ...half, http1].every((t) => t.closed));
    let metrics = await scrape(server);
    assert.ok(sample(metrics, 'ticketing_grpc_connections_closed_total', 'reason="preface_timeout"') >= 200, 'preface timeouts counted');
    assert.is(sample(metrics, 'ticketing_grpc_connections_closed_total', 'reason="bad_preface"'), 1);

    // A well-behaved client still gets answers (here: UNAUTHENTICATED, a full gRPC answer).
    const c = clients(server.grpc_port);
    try {
      assert.is((await code_of(c.get_event({ event_id: 'evt-x' }))).code, grpc.status.UNAUTHENTICATED);
    } finally {
      c.close();
    }

    // An HTTP/2 connection that completes the preface and then makes no call: closed when idle.
    const session = await h2_session(server.grpc_port);
    let session_closed = false;
    session.once('close', () => { session_closed = true; });
    await until('the idle HTTP/2 connection closed by the node', () => session_closed);
    await until('idle closes counted and no connection left open', async () => {
      metrics = await scrape(server);
      return sample(metrics, 'ticketing_grpc_connections_closed_total', 'reason="idle"') >= 1
        && sample(metrics, 'ticketing_grpc_connections_open') === 0;
    });
  });
});

test('connections over the per-address and per-node caps are refused at accept; the others stay open', async () => {
  await with_server('conncap', ['--connections-max', '40', '--connections-per-address-max', '25', '--preface-timeout-ms', '600000'], async (server) => {
    const open_count = async (): Promise<number> => sample(await scrape(server), 'ticketing_grpc_connections_open');
    const kept: Tracked[] = [];
    try {
      kept.push(...await Promise.all(Array.from({ length: 25 }, () => open_socket(server.grpc_port, undefined, '127.0.0.1'))));
      await until('25 connections from 127.0.0.1 open', async () => (await open_count()) === 25);
      const over_address = await Promise.all(Array.from({ length: 5 }, () => open_socket(server.grpc_port, undefined, '127.0.0.1')));
      await until('the 5 beyond the per-address cap closed', () => over_address.every((t) => t.closed));
      kept.push(...await Promise.all(Array.from({ length: 15 }, () => open_socket(server.grpc_port, undefined, '127.0.0.2'))));
      await until('40 connections open', async () => (await open_count()) === 40);
      const over_node = await Promise.all(Array.from({ length: 5 }, () => open_socket(server.grpc_port, undefined, '127.0.0.3')));
      await until('the 5 beyond the per-node cap closed', () => over_node.every((t) => t.closed));
      assert.ok(kept.every((t) => !t.closed), 'connections within the caps stay open');
      const metrics = await scrape(server);
      assert.is(sample(metrics, 'ticketing_grpc_connections_refused_total', 'reason="connections_per_address_max"'), 5);
      assert.is(sample(metrics, 'ticketing_grpc_connections_refused_total', 'reason="connections_max"'), 5);
      assert.is(sample(metrics, 'ticketing_grpc_connections_open'), 40);
    } finally {
      for (const t of kept) t.socket.destroy();
    }
    await until('the gauge back to 0 once the clients close', async () => (await open_count()) === 0);
  });
});

test('calls whose request message never arrives are ended by the node with DEADLINE_EXCEEDED, without a token', async () => {
  await with_server('arrival', ['--request-arrival-timeout-ms', '500'], async (server) => {
    const session = await h2_session(server.grpc_port);
    try {
      const calls = Array.from({ length: 50 }, () => headers_only(session));
      await until('every headers-only call answered and closed by the node', () => calls.every((c) => c.answer.done));
      for (const { answer } of calls) {
        assert.is(answer.status, String(grpc.status.DEADLINE_EXCEEDED));
        assert.match(answer.message ?? '', /request_arrival_timeout_ms/);
      }
      const metrics = await scrape(server);
      assert.is(sample(metrics, 'ticketing_limit_refusals_total', 'limit="request_arrival"'), 50);
      assert.is(sample(metrics, 'ticketing_grpc_calls_open'), 0);
    } finally {
      session.destroy();
    }
  });
});

test('calls over the per-address and per-node caps of calls in progress are refused RESOURCE_EXHAUSTED', async () => {
  const flags = ['--streams-per-address-max', '20', '--streams-max', '30', '--streams-per-connection-max', '100', '--request-arrival-timeout-ms', '600000'];
  await with_server('streamcap', flags, async (server) => {
    const calls_open = async (): Promise<number> => sample(await scrape(server), 'ticketing_grpc_calls_open');
    const a = await h2_session(server.grpc_port, '127.0.0.1');
    const b = await h2_session(server.grpc_port, '127.0.0.2');
    try {
      // SETTINGS_MAX_CONCURRENT_STREAMS announced per connection.
      await until('server settings received', () => a.remoteSettings.maxConcurrentStreams !== undefined);
      assert.is(a.remoteSettings.maxConcurrentStreams, 100);
      const held_a = Array.from({ length: 20 }, () => headers_only(a));
      await until('20 calls in progress', async () => (await calls_open()) === 20);
      const over_address = Array.from({ length: 5 }, () => headers_only(a));
      await until('the 5 beyond the per-address cap answered', () => over_address.every((c) => c.answer.done));
      for (const { answer } of over_address) {
        assert.is(answer.status, String(grpc.status.RESOURCE_EXHAUSTED));
        assert.match(answer.message ?? '', /streams_per_address_max 20 from 127\.0\.0\.1/);
      }
      const held_b = Array.from({ length: 10 }, () => headers_only(b));
      await until('30 calls in progress', async () => (await calls_open()) === 30);
      const over_node = Array.from({ length: 5 }, () => headers_only(b));
      await until('the 5 beyond the per-node cap answered', () => over_node.every((c) => c.answer.done));
      for (const { answer } of over_node) {
        assert.is(answer.status, String(grpc.status.RESOURCE_EXHAUSTED));
        assert.match(answer.message ?? '', /streams_max 30 on this node/);
      }
      assert.ok([...held_a, ...held_b].every((c) => !c.answer.done), 'calls within the caps are still waiting');
      const metrics = await scrape(server);
      assert.is(sample(metrics, 'ticketing_limit_refusals_total', 'limit="streams_per_address_max"'), 5);
      assert.is(sample(metrics, 'ticketing_limit_refusals_total', 'limit="streams_max"'), 5);
    } finally {
      a.destroy();
      b.destroy();
    }
    await until('calls in progress back to 0 once the clients go', async () => (await calls_open()) === 0);
  });
});

test.run();
