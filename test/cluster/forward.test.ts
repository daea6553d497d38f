// Forwarding between the nodes of a cluster (src/cluster): two peer servers in-process on
// loopback with fake `serve` functions (no workers, no Kafka). A forwarded body arrives intact
// and its reply comes back; the owner's typed refusal comes back as its own class; a wrong key
// or a stale clock is refused before serve runs; the caller's deadline and trace id reach the
// owner, and a slow owner ends in DEADLINE_EXCEEDED; a down peer is PeerUnavailableError; the
// sink routes local / remote / moving; the in-flight and size limits refuse.
import * as grpc from '@grpc/grpc-js';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { revive_domain_error, SeatsUnavailableError } from '../../src/actors/errors.js';
import {
  current_call_scope, enable_call_scopes, run_in_call_scope, type CallScope,
} from '../../src/cluster/call_scope.js';
import {
  ForwardDeadlineExceededError, ForwardMessageTooLargeError, ForwardsInFlightExceededError,
  NotOwnerError, PartitionMovingError, PeerAuthError, PeerUnavailableError,
} from '../../src/cluster/forward_errors.js';
import {
  peer_auth_header, peer_key_of, sign_peer_call, verify_peer_call,
} from '../../src/cluster/peer_auth.js';
import { PeerClients } from '../../src/cluster/peer_clients.js';
import {
  start_peer_server, type PeerLimits, type PeerRefusal, type PeerServe, type PeerServer,
} from '../../src/cluster/peer_server.js';
import { encode, forward_path } from '../../src/cluster/peer_wire.js';
import { ReplayGuard } from '../../src/cluster/replay_guard.js';
import { ClusterSink, serve_local_only, type PeerCaller } from '../../src/cluster/sink.js';
import { map_error } from '../../src/grpc/status.js';
import { edge_limits, unary, type EdgeDeps } from '../../src/grpc/unary.js';
import { sign_token } from '../../src/auth/token.js';
import { create_logger } from '../../src/ops/log.js';
import { Metrics } from '../../src/ops/metrics.js';
import { guarded_after_each } from '../guard.js';

const secret = Buffer.from('a shared cluster secret of at least 32 characters', 'utf8');
const key = peer_key_of(secret);
const S = grpc.status;

/** What one in-process owner saw. */
interface Owner {
  server: PeerServer;
  addr: string;
  served: { partition: number; body: unknown; scope: CallScope | undefined }[];
  refused: PeerRefusal[];
}

const opened: { close(): unknown }[] = [];
const suite = test;
guarded_after_each(suite, async () => {
  for (const o of opened.splice(0)) await o.close();
});

async function owner(serve: PeerServe, limits: Partial<PeerLimits> = {}, node_id = 'owner'):
Promise<Owner> {
  const served: Owner['served'] = [];
  const refused: PeerRefusal[] = [];
  const server = await start_peer_server({
    addr: '127.0.0.1:0', key, node_id, limits,
    serve: (partition, body) => {
      served.push({ partition, body, scope: current_call_scope() });
      return serve(partition, body);
    },
    on_refused: (reason) => refused.push(reason),
  });
  opened.push(server);
  return { server, addr: `127.0.0.1:${server.port}`, served, refused };
}

function clients(options: ConstructorParameters<typeof PeerClients>[2] = {}, k = key):
PeerClients {
  const c = new PeerClients(k, 'caller', {
    revive: (w) => revive_domain_error(w.name, w.message), ...options,
  });
  opened.push(c);
  return c;
}

const soon = (): number => Date.now() + 30_000;
const outcome = (p: Promise<unknown>): Promise<unknown> => p.then((v) => v, (e: unknown) => e);

/** Resolves when `check` holds, polling a bounded number of times. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.unreachable(`never: ${what}`);
}

/** A promise serve can wait on, and its release. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => { open = resolve; });
  return { wait, open };
}

suite('a forwarded body arrives intact and the reply round-trips', async () => {
  const o = await owner(async (partition, body) => ({ partition, echoed: body }));
  const body = {
    k: 'ReserveTickets', event_id: 'evt-ü-1', seat_ids: ['1-A-1', '1-A-2'], hold_ttl_seconds: 600,
    user_id: 'u1', nested: { n: -3.5, flag: true, none: null, big: 2 ** 53 - 1 },
    when: new Date(1_700_000_000_000), tags: new Map([['a', 1]]),
  };
  const reply = await clients().call(o.addr, 5, body, soon(), 'trace-1');
  assert.equal(reply, { partition: 5, echoed: body });
  assert.is(o.served.length, 1);
  assert.equal(o.served[0]!.body, body, 'the owner got the exact body');
  assert.is(o.served[0]!.partition, 5);
});

suite('the owner\'s typed refusal comes back as the same class, with its message', async () => {
  const o = await owner(() => Promise.reject(new SeatsUnavailableError('seat 1-A-1 is held')));
  const error = await outcome(clients().call(o.addr, 0, { k: 'ReserveTickets' }, soon(), 't'));
  assert.instance(error, SeatsUnavailableError);
  assert.is((error as Error).message, 'seat 1-A-1 is held');
  assert.is(map_error(error).code, S.FAILED_PRECONDITION);
  // A bug on the owner stays a bug here: a plain Error, INTERNAL at the edge.
  const buggy = await owner(() => Promise.reject(new TypeError('x is undefined')));
  const bug = await outcome(clients().call(buggy.addr, 0, {}, soon(), 't'));
  assert.is((bug as Error).constructor, Error);
  assert.is((bug as Error).name, 'TypeError');
  assert.is(map_error(bug).code, S.INTERNAL);
});

suite('one hop: the owner serves local partitions only, NotOwnerError otherwise', async () => {
  const pool = { request: async (p: number, body: unknown) => ({ p, body }) };
  const ownership = { local: (p: number) => p === 1, remote: () => 'elsewhere:1' };
  const o = await owner(serve_local_only(pool, ownership, 'owner'));
  const c = clients();
  assert.equal(await c.call(o.addr, 1, { k: 'x' }, soon(), 't'), { p: 1, body: { k: 'x' } });
  const moved = await outcome(c.call(o.addr, 2, { k: 'x' }, soon(), 't'));
  assert.instance(moved, NotOwnerError, 'revived as itself on the first node');
  assert.match((moved as Error).message, 'does not serve partition 2');
  assert.is(map_error(moved).code, S.UNAVAILABLE);
});

suite('a wrong key: UNAUTHENTICATED, serve never called', async () => {
  const o = await owner(async () => 'served');
  const other = peer_key_of(Buffer.from('another secret, also 32 characters or more', 'utf8'));
  const error = await outcome(clients({}, other).call(o.addr, 0, {}, soon(), 't'));
  assert.instance(error, PeerAuthError);
  assert.match((error as Error).message, 'TICKETING_AUTH_SECRET');
  assert.is(map_error(error).code, S.UNAVAILABLE, 'the client\'s own token was fine');
  // The status on the wire, seen by a raw client without any proof.
  const raw = new grpc.Client(o.addr, grpc.credentials.createInsecure());
  opened.push(raw);
  const status = await new Promise<grpc.ServiceError | null>((resolve) => {
    raw.makeUnaryRequest(forward_path, (b: Buffer) => b, (b: Buffer) => b,
      encode({ partition: 0, body: {}, deadline_ms_epoch: soon(), trace_id: 't', nonce: 'n' }),
      new grpc.Metadata(), (e) => resolve(e));
  });
  assert.is(status?.code, S.UNAUTHENTICATED);
  assert.is(o.served.length, 0, 'serve never called');
  assert.equal(o.refused, ['unauthenticated', 'unauthenticated']);
});

suite('a stale timestamp is refused, serve never called', async () => {
  const o = await owner(async () => 'served');
  const behind = clients({ now_ms: () => Date.now() - 60_000 });
  const error = await outcome(behind.call(o.addr, 0, {}, soon(), 't'));
  assert.instance(error, PeerAuthError);
  assert.match((error as Error).message, 'clock_skew_ms_max');
  assert.is(o.served.length, 0);
});

suite('a replayed call (same bytes, same proof) is refused, served once', async () => {
  const o = await owner(async () => 'served');
  const raw = new grpc.Client(o.addr, grpc.credentials.createInsecure());
  opened.push(raw);
  const bytes = encode({
    partition: 0, body: { k: 'reserve' }, deadline_ms_epoch: soon(), trace_id: 't', nonce: 'n1',
  });
  const metadata = new grpc.Metadata();
  metadata.set(peer_auth_header, sign_peer_call(key, 'caller', Date.now(), bytes));
  const send = (): Promise<grpc.ServiceError | null> => new Promise((resolve) => {
    raw.makeUnaryRequest(forward_path, (b: Buffer) => b, (b: Buffer) => b, bytes, metadata,
      (e) => resolve(e));
  });
  assert.is(await send(), null, 'the first one is served');
  const again = await send();
  assert.is(again?.code, S.UNAUTHENTICATED);
  assert.match(again?.details ?? '', 'replayed');
  assert.is(o.served.length, 1);
  assert.equal(o.refused, ['replay']);
});

suite('the replay guard: remembers a proof for its window, bounded', () => {
  const guard = new ReplayGuard(1_000, 2);
  assert.is(guard.admit('a', 10_000, 10_000), 'fresh');
  assert.is(guard.admit('a', 10_000, 10_500), 'replay');
  assert.is(guard.admit('b', 10_100, 10_500), 'fresh');
  assert.is(guard.admit('c', 10_200, 10_600), 'full', 'entries_max within the window');
  assert.is(guard.admit('c', 10_200, 11_050), 'fresh', 'a forgotten once its window passed');
  assert.is(guard.size, 2);
  assert.is(guard.admit('d', 11_090, 11_090), 'full');
  assert.is(guard.admit('d', 11_090, 11_200), 'fresh', 'b forgotten in its turn');
  assert.is(guard.size, 2);
});

suite('peer proofs: bound to the bytes, the key, the clock', () => {
  const message = Buffer.from('the call');
  const now = 1_700_000_000_000;
  const proof = sign_peer_call(key, 'node.a', now, message);
  assert.not.match(proof, key.toString('hex'), 'the key is never sent');
  const verified = verify_peer_call(key, proof, message, now + 9_000, 10_000);
  assert.equal(verified, { ok: true, node_id: 'node.a', ts_ms: now, mac: proof.split('.')[3] });
  const reason = (r: ReturnType<typeof verify_peer_call>): string => (r.ok ? 'ok' : r.reason);
  assert.is(reason(verify_peer_call(key, proof, Buffer.from('the calm'), now, 10_000)),
    'bad_proof', 'another body');
  assert.is(reason(verify_peer_call(peer_key_of(randomBytes(32)), proof, message, now, 10_000)),
    'bad_proof', 'another key');
  assert.is(reason(verify_peer_call(key, proof, message, now - 10_001, 10_000)), 'clock_skew');
  assert.is(reason(verify_peer_call(key, proof, message, now + 10_001, 10_000)), 'clock_skew');
  assert.is(reason(verify_peer_call(key, undefined, message, now, 10_000)), 'missing');
  assert.is(reason(verify_peer_call(key, `${proof}0`, message, now, 10_000)), 'malformed');
  const forged = proof.replace(/\.([0-9]+)\./, `.${now + 1}.`);
  assert.is(reason(verify_peer_call(key, forged, message, now, 10_000)), 'bad_proof',
    'the timestamp is signed');
});

suite('the caller\'s deadline and trace id reach the owner; a slow owner: DEADLINE_EXCEEDED',
  async () => {
    const slow = gate();
    let hold = false;
    const o = await owner(async () => {
      if (hold) await slow.wait;
      return 'late';
    });
    const c = clients();
    // Connected first, so what expires is the call's deadline, not the connection's set-up.
    await c.call(o.addr, 3, {}, soon(), 'warm');
    hold = true;
    const deadline_ms_epoch = Date.now() + 1_500;
    const error = await outcome(c.call(o.addr, 3, {}, deadline_ms_epoch, 'trace-xyz'));
    slow.open();
    assert.instance(error, ForwardDeadlineExceededError);
    assert.is(map_error(error).code, S.DEADLINE_EXCEEDED);
    assert.is(o.served.length, 2);
    assert.equal(o.served[1]!.scope, { deadline_ms_epoch, trace_id: 'trace-xyz' });
  });

suite('a deadline already passed is not forwarded; one passed on arrival is not served',
  async () => {
    const o = await owner(async () => 'served');
    const c = clients();
    const past = await outcome(c.call(o.addr, 0, {}, Date.now() - 1, 't'));
    assert.instance(past, ForwardDeadlineExceededError);
    // The owner's clock 5 s ahead: the call arrives after its (signed) deadline.
    const ahead = await start_peer_server({
      addr: '127.0.0.1:0', key, node_id: 'ahead', serve: async () => 'served',
      now_ms: () => Date.now() + 5_000,
    });
    opened.push(ahead);
    const late = await outcome(c.call(`127.0.0.1:${ahead.port}`, 0, {}, Date.now() + 2_000, 't'));
    assert.instance(late, ForwardDeadlineExceededError, 'refused by the owner, revived');
    assert.match((late as Error).message, 'not applied');
    assert.is(o.served.length, 0);
  });

suite('a peer down: PeerUnavailableError (UNAVAILABLE, retry)', async () => {
  const o = await owner(async () => 'served');
  await o.server.close();
  const c = clients();
  const error = await outcome(c.call(o.addr, 0, {}, soon(), 't'));
  assert.instance(error, PeerUnavailableError);
  assert.match((error as Error).message, 'retry');
  assert.is(map_error(error).code, S.UNAVAILABLE);
  c.close();
  assert.instance(await outcome(c.call(o.addr, 0, {}, soon(), 't')), PeerUnavailableError,
    'closed clients refuse');
});

suite('the owner\'s in-flight limit per peer refuses, counted; capacity comes back', async () => {
  const slow = gate();
  const o = await owner(async () => {
    await slow.wait;
    return 'served';
  }, { forwards_in_flight_per_peer_max: 2 });
  const c = clients();
  const first = [c.call(o.addr, 0, {}, soon(), 't'), c.call(o.addr, 1, {}, soon(), 't')];
  await until(() => o.served.length === 2, 'two forwards in flight on the owner');
  const third = await outcome(c.call(o.addr, 2, {}, soon(), 't'));
  assert.instance(third, ForwardsInFlightExceededError);
  assert.is(map_error(third).code, S.RESOURCE_EXHAUSTED);
  assert.equal(o.refused, ['in_flight']);
  assert.is(o.served.length, 2, 'the refused one was not served');
  slow.open();
  assert.equal(await Promise.all(first), ['served', 'served']);
  assert.is(await c.call(o.addr, 3, {}, soon(), 't'), 'served', 'capacity back');
});

suite('the caller\'s in-flight limit per peer refuses at once', async () => {
  const slow = gate();
  const o = await owner(async () => {
    await slow.wait;
    return 'served';
  });
  const c = clients({ limits: { forwards_in_flight_per_peer_max: 1 } });
  const first = c.call(o.addr, 0, {}, soon(), 't');
  const second = await outcome(c.call(o.addr, 0, {}, soon(), 't'));
  assert.instance(second, ForwardsInFlightExceededError);
  slow.open();
  assert.is(await first, 'served');
  await until(() => o.served.length === 1, 'the first served');
  assert.is(o.served.length, 1, 'the second never left');
});

suite('message_bytes_max: a request or a reply too large is refused', async () => {
  const o = await owner(async () => 'x'.repeat(4096), { message_bytes_max: 2048 });
  const c = clients({ limits: { message_bytes_max: 2048 } });
  const big = await outcome(c.call(o.addr, 0, { pad: 'y'.repeat(4096) }, soon(), 't'));
  assert.instance(big, ForwardMessageTooLargeError, 'refused before sending');
  assert.is(o.served.length, 0);
  const reply = await outcome(c.call(o.addr, 0, {}, soon(), 't'));
  assert.instance(reply, ForwardMessageTooLargeError, 'the owner\'s reply too large');
  assert.match((reply as Error).message, 'the call was applied');
  assert.equal(o.refused, ['reply_too_large']);
});

/** A fake of PeerClients: records each call, answers with `answer`. */
function fake_peers(answer: () => Promise<unknown>): PeerCaller & { calls: unknown[][] } {
  const calls: unknown[][] = [];
  return {
    calls,
    call: (...args) => {
      calls.push(args);
      return answer();
    },
  };
}

suite('the sink: local → pool, remote → forward (with the scope), moving → refused', async () => {
  const pool_calls: unknown[][] = [];
  const pool = {
    request: async (p: number, body: unknown) => {
      pool_calls.push([p, body]);
      return 'local';
    },
  };
  const owners = new Map<number, string>([[2, '10.0.0.2:7000']]);
  const ownership = { local: (p: number) => p === 1, remote: (p: number) => owners.get(p) };
  const peers = fake_peers(async () => 'remote');
  const codes: string[] = [];
  const sink = new ClusterSink(pool, ownership, peers, {
    on_forwarded: (code) => codes.push(code),
    code_of: (error) => S[map_error(error).code],
  });
  assert.is(await sink.request(1, { k: 'a' }), 'local');
  assert.equal(pool_calls, [[1, { k: 'a' }]]);
  assert.equal(codes, [], 'a local call is no forward');
  const scope = { deadline_ms_epoch: Date.now() + 1234, trace_id: 'tr-9' };
  assert.is(await run_in_call_scope(scope, () => sink.request(2, { k: 'b' })), 'remote');
  assert.equal(peers.calls, [['10.0.0.2:7000', 2, { k: 'b' }, scope.deadline_ms_epoch, 'tr-9']]);
  assert.equal(codes, ['OK']);
  const moving = await outcome(sink.request(3, { k: 'c' }));
  assert.instance(moving, PartitionMovingError);
  assert.is(map_error(moving).code, S.UNAVAILABLE);
  assert.is(pool_calls.length + peers.calls.length, 2, 'a moving partition goes nowhere');
  // Outside any call scope (a timer, a background loop): a bounded deadline, a fresh trace id.
  await sink.request(2, { k: 'd' });
  const [, , , deadline, trace] = peers.calls[1]!;
  assert.ok(typeof deadline === 'number' && deadline > Date.now(), 'a deadline ahead');
  assert.ok(typeof trace === 'string' && trace.length === 32, 'a fresh trace id');
});

suite('the sink counts each forward by the code of its outcome', async () => {
  const refusals = [new SeatsUnavailableError('held'), new PeerUnavailableError('down')];
  const peers = fake_peers(() => Promise.reject(refusals.shift()));
  const codes: string[] = [];
  const sink = new ClusterSink({ request: async () => 'local' },
    { local: () => false, remote: () => 'peer:1' }, peers,
    { on_forwarded: (code) => codes.push(code), code_of: (e) => S[map_error(e).code] });
  assert.instance(await outcome(sink.request(0, {})), SeatsUnavailableError, 'passed on as is');
  assert.instance(await outcome(sink.request(0, {})), PeerUnavailableError);
  assert.equal(codes, ['FAILED_PRECONDITION', 'UNAVAILABLE']);
});

suite('through two real peers: a node forwards to the other, never a second hop', async () => {
  // Node A owns 0, node B owns 1; each one's sink forwards to the other; both believe the other
  // owns 2 (a stale view): the forward lands and is refused there, not bounced back.
  const views = { a: new Map([[1, ''], [2, '']]), b: new Map([[0, ''], [2, '']]) };
  const pool_of = (name: string) => ({ request: async (p: number) => `${name} served ${p}` });
  const own_a = { local: (p: number) => p === 0, remote: (p: number) => views.a.get(p) };
  const own_b = { local: (p: number) => p === 1, remote: (p: number) => views.b.get(p) };
  const a = await owner(serve_local_only(pool_of('a'), own_a, 'a'), {}, 'a');
  const b = await owner(serve_local_only(pool_of('b'), own_b, 'b'), {}, 'b');
  for (const p of [1, 2]) views.a.set(p, b.addr);
  for (const p of [0, 2]) views.b.set(p, a.addr);
  const hooks = { on_forwarded: () => undefined, code_of: (e: unknown) => S[map_error(e).code] };
  const sink_a = new ClusterSink(pool_of('a'), own_a, clients(), hooks);
  const sink_b = new ClusterSink(pool_of('b'), own_b, clients(), hooks);
  assert.is(await sink_a.request(0, {}), 'a served 0');
  assert.is(await sink_a.request(1, {}), 'b served 1');
  assert.is(await sink_b.request(0, {}), 'a served 0');
  assert.instance(await outcome(sink_a.request(2, {})), NotOwnerError);
  assert.equal(b.served.map((s) => s.partition), [1, 2], 'b got one forward of 2, no more');
  assert.equal(a.served.map((s) => s.partition), [0], 'a was never asked for 2');
});

suite('the edge runs each handler in its call\'s scope: the client\'s deadline, its trace id',
  async () => {
    enable_call_scopes(); // as ClusterSink or the peer server would, in cluster mode
    const deps: EdgeDeps = {
      keys: { secret, public_keys: new Map() }, metrics: new Metrics(),
      log: create_logger('silent'),
      limits: edge_limits({
        rate_user_per_s: 0, rate_user_burst: 0, rate_ip_per_s: 0, rate_ip_burst: 0,
        rate_keys_max: 16, deadline_ms_max: 60_000,
      }),
    };
    const seen: (CallScope | undefined)[] = [];
    const handler = async (): Promise<Buffer> => {
      await new Promise((r) => setImmediate(r));
      seen.push(current_call_scope());
      return Buffer.alloc(0);
    };
    const path = '/test.Scope/Get';
    const identity = (b: Buffer): Buffer => b;
    const service: grpc.ServiceDefinition = { Get: {
      path, requestStream: false, responseStream: false, requestSerialize: identity,
      requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity,
    } };
    const server = new grpc.Server();
    server.addService(service, { Get: unary(deps, 'test.Scope', 'Get', handler) });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0',
      grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    opened.push({ close: () => server.forceShutdown() });
    const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    opened.push(client);
    const call = (metadata: grpc.Metadata, deadline?: number): Promise<unknown> =>
      new Promise((resolve, reject) => client.makeUnaryRequest(path, identity, identity,
        Buffer.alloc(0), metadata, deadline === undefined ? {} : { deadline },
        (e, r) => (e ? reject(e) : resolve(r))));
    const metadata = new grpc.Metadata();
    const token = sign_token(secret, { user_id: 'svc', role: 'service' }, 600);
    metadata.set('authorization', `Bearer ${token}`);
    const trace = '0af7651916cd43dd8448eb211c80319c';
    metadata.set('traceparent', `00-${trace}-b7ad6b7169203331-01`);
    const before_ms = Date.now();
    await call(metadata, Date.now() + 20_000);
    await call(metadata);
    const after_ms = Date.now();
    assert.is(seen.length, 2);
    assert.is(seen[0]?.trace_id, trace, 'the client\'s trace id');
    assert.is(seen[1]?.trace_id, trace);
    const [with_deadline, capped] = [seen[0]!.deadline_ms_epoch, seen[1]!.deadline_ms_epoch];
    // The client's deadline (well under the 60 s cap), then the cap for a call with none.
    assert.ok(with_deadline <= after_ms + 20_000 && with_deadline > before_ms + 10_000,
      'the client\'s');
    assert.ok(capped > after_ms + 20_000 && capped <= after_ms + 60_000, 'deadline_ms_max');
    assert.is(current_call_scope(), undefined, 'no scope outside a call');
  });

suite('call scopes are off until a cluster component turns them on (a single node never does)',
  () => {
    // A process of its own: this one has turned them on already (module state).
    const module_url = new URL('../../src/cluster/call_scope.js', import.meta.url).href;
    const script = `
      const m = await import(${JSON.stringify(module_url)});
      const scope = { deadline_ms_epoch: 1, trace_id: 't' };
      const off = m.run_in_call_scope(scope, () => m.current_call_scope());
      m.enable_call_scopes();
      const on = m.run_in_call_scope(scope, () => m.current_call_scope());
      console.log(JSON.stringify([off ?? null, on ?? null, m.run_in_call_scope(scope, () => 7)]));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script]);
    assert.equal(JSON.parse(out.toString('utf8')),
      [null, { deadline_ms_epoch: 1, trace_id: 't' }, 7]);
  });

suite.run();
