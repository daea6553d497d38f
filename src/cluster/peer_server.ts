// The peer listener: a grpc-js server of its own on the advertise address, with the one Forward
// method. It authenticates the caller (peer_auth.ts) before decoding a byte, then serves the
// call LOCALLY ONLY through `serve` (the glue's function refuses with NotOwnerError when the
// partition is not here: one hop, never two), under the caller's deadline and trace id.
// Every outcome of `serve` is a reply: {ok, value} or {ok: false, error: WireError}, so the
// first node revives the owner's exact refusal. Transport-level refusals are gRPC statuses.
import * as grpc from '@grpc/grpc-js';
import { error_to_wire, type WireError } from '../runtime/errors.js';
import { assert } from '../util/assert.js';
import { enable_call_scopes, run_in_call_scope } from './call_scope.js';
import {
  ForwardDeadlineExceededError, ForwardMessageTooLargeError, ForwardsInFlightExceededError,
} from './forward_errors.js';
import { clock_skew_ms_max_default, peer_auth_header, verify_peer_call } from './peer_auth.js';
import { ReplayGuard } from './replay_guard.js';
import {
  decode_request, encode, peer_service, type ForwardReply, type ForwardRequest,
} from './peer_wire.js';

export interface PeerLimits {
  /** Largest forwarded request or reply. The public edge takes requests up to 256 KiB and
   *  answers up to 4 MiB; a forwarded body or reply is the actor's form of those, of
   *  comparable size in msgpack, so 8 MiB leaves room without being unbounded. */
  message_bytes_max: number;
  /** Most forwards from one peer being served at once here (the rest are refused, not queued:
   *  the owner's mailboxes already queue, and a queue here would hide back-pressure). */
  forwards_in_flight_per_peer_max: number;
  /** See peer_auth.ts. */
  clock_skew_ms_max: number;
  /** Most proofs remembered against replay (each for clock_skew_ms_max): 2^18 covers 13,000
   *  forwards/s with the 10 s default, far above what a node forwards (notes: forward.md);
   *  beyond it calls are refused, not left open to replay. ~100 bytes each. */
  replay_entries_max: number;
  /** How long close() lets calls in flight finish before cutting them off. */
  shutdown_grace_ms: number;
}

export const peer_limits_default: PeerLimits = {
  message_bytes_max: 8 * 1024 * 1024,
  forwards_in_flight_per_peer_max: 4096,
  clock_skew_ms_max: clock_skew_ms_max_default,
  replay_entries_max: 1 << 18,
  shutdown_grace_ms: 2_000,
};

/** Why the server refused a call without serving it (for a counter: the glue's metrics). */
export type PeerRefusal =
  | 'unauthenticated' | 'replay' | 'replay_guard_full' | 'malformed' | 'deadline' | 'in_flight'
  | 'reply_too_large';

export type PeerServe = (partition: number, body: unknown) => Promise<unknown>;

export interface PeerServerOptions {
  /** HOST:PORT to bind (the node's advertise address); port 0 picks one (tests). */
  addr: string;
  key: Buffer;
  node_id: string;
  /** Serves a call for a partition of THIS node; refuses (NotOwnerError) any other. */
  serve: PeerServe;
  limits?: Partial<PeerLimits>;
  on_refused?: (reason: PeerRefusal, peer_node_id: string | undefined) => void;
  /** The clock proofs are checked against (tests move it). */
  now_ms?: () => number;
}

export interface PeerServer {
  port: number;
  close(): Promise<void>;
}

type Call = grpc.ServerUnaryCall<Buffer, Buffer>;
type Reply = grpc.sendUnaryData<Buffer>;

/** The state of one server: limits, in-flight counts per sending node. */
interface Serving {
  options: PeerServerOptions;
  limits: PeerLimits;
  now_ms: () => number;
  in_flight: Map<string, number>;
  replays: ReplayGuard;
}

export async function start_peer_server(options: PeerServerOptions): Promise<PeerServer> {
  const limits: PeerLimits = { ...peer_limits_default, ...options.limits };
  assert(limits.message_bytes_max > 0, 'message_bytes_max is positive');
  assert(limits.forwards_in_flight_per_peer_max > 0, 'forwards_in_flight_per_peer_max > 0');
  assert(options.key.length === 32, 'the peer key is an HMAC-SHA256 output');
  // The owner's `serve` runs in the caller's scope (deadline, trace id).
  enable_call_scopes();
  const serving: Serving = {
    options, limits, now_ms: options.now_ms ?? Date.now, in_flight: new Map(),
    replays: new ReplayGuard(limits.clock_skew_ms_max, limits.replay_entries_max),
  };
  const server = new grpc.Server({
    'grpc.max_receive_message_length': limits.message_bytes_max,
    'grpc.max_send_message_length': limits.message_bytes_max,
  });
  server.addService(peer_service, {
    Forward: (call: Call, callback: Reply) => handle(serving, call, callback),
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(options.addr, grpc.ServerCredentials.createInsecure(), (error, bound) => {
      if (error === null) resolve(bound);
      else reject(new Error(`peer listener cannot bind ${options.addr}: ${error.message}`));
    });
  });
  return { port, close: () => shutdown(server, limits.shutdown_grace_ms) };
}

function shutdown(server: grpc.Server, grace_ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => server.forceShutdown(), grace_ms);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** One forwarded call: authenticate, decode, check deadline and in-flight bound, serve. */
function handle(serving: Serving, call: Call, callback: Reply): void {
  const { options, limits } = serving;
  const bytes = call.request;
  const auth = verify_peer_call(options.key, call.metadata.get(peer_auth_header)[0], bytes,
    serving.now_ms(), limits.clock_skew_ms_max);
  if (!auth.ok) {
    options.on_refused?.('unauthenticated', undefined);
    callback({ code: grpc.status.UNAUTHENTICATED, details: `peer refused: ${auth.detail}` });
    return;
  }
  if (!admitted(serving, auth, callback)) return;
  const request = decode_request(bytes);
  if (request === undefined) {
    options.on_refused?.('malformed', auth.node_id);
    callback({ code: grpc.status.INVALID_ARGUMENT, details: 'malformed forward request' });
    return;
  }
  const refusal = refuse_before_serving(serving, auth.node_id, request);
  if (refusal !== undefined) {
    callback(null, encode({ ok: false, error: refusal }));
    return;
  }
  const count = serving.in_flight.get(auth.node_id) ?? 0;
  serving.in_flight.set(auth.node_id, count + 1);
  const scope = { deadline_ms_epoch: request.deadline_ms_epoch, trace_id: request.trace_id };
  const served = run_in_call_scope(scope, () => serve_safely(options.serve, request));
  void served.then((reply) => {
    release(serving, auth.node_id);
    // A reply after the caller gave up goes nowhere; grpc-js drops it for a cancelled call.
    if (!call.cancelled) callback(null, bounded_reply(serving, auth.node_id, reply));
  });
}

/** Refuses a replayed proof (UNAUTHENTICATED, as a forged one) or a full guard; true: go on. */
function admitted(
  serving: Serving, auth: { node_id: string; ts_ms: number; mac: string }, callback: Reply,
): boolean {
  const admission = serving.replays.admit(auth.mac, auth.ts_ms, serving.now_ms());
  if (admission === 'fresh') return true;
  if (admission === 'replay') {
    serving.options.on_refused?.('replay', auth.node_id);
    callback({ code: grpc.status.UNAUTHENTICATED, details: 'peer refused: a replayed call' });
  } else {
    serving.options.on_refused?.('replay_guard_full', auth.node_id);
    callback(null, encode({ ok: false, error: error_to_wire(new ForwardsInFlightExceededError(
      `more than replay_entries_max ${serving.limits.replay_entries_max} forwards within `
      + `${serving.limits.clock_skew_ms_max} ms on node ${serving.options.node_id}; not applied, `
      + 'retry later')) }));
  }
  return false;
}

/** The refusal of a call that must not be served at all, or undefined. */
function refuse_before_serving(
  serving: Serving, node_id: string, request: ForwardRequest,
): WireError | undefined {
  const { options, limits } = serving;
  if (request.deadline_ms_epoch <= serving.now_ms()) {
    options.on_refused?.('deadline', node_id);
    return error_to_wire(new ForwardDeadlineExceededError(
      'the caller\'s deadline passed before the owner could start the call; not applied'));
  }
  const count = serving.in_flight.get(node_id) ?? 0;
  if (count >= limits.forwards_in_flight_per_peer_max) {
    options.on_refused?.('in_flight', node_id);
    return error_to_wire(new ForwardsInFlightExceededError(
      `${count} forwards from node ${node_id} already in flight on node ${options.node_id} `
      + `(forwards_in_flight_per_peer_max ${limits.forwards_in_flight_per_peer_max}); `
      + 'not applied, retry later'));
  }
  return undefined;
}

/** serve's outcome as a reply; never rejects (a throw of serve is its refusal too). */
async function serve_safely(serve: PeerServe, request: ForwardRequest): Promise<ForwardReply> {
  try {
    return { ok: true, value: await serve(request.partition, request.body) };
  } catch (error) {
    const wire = error instanceof Error
      ? error_to_wire(error) : { name: 'Error', message: String(error) };
    return { ok: false, error: wire };
  }
}

function release(serving: Serving, node_id: string): void {
  const count = serving.in_flight.get(node_id) ?? 0;
  assert(count > 0, 'a released forward was counted');
  if (count === 1) serving.in_flight.delete(node_id);
  else serving.in_flight.set(node_id, count - 1);
}

/** The reply's bytes; a reply over message_bytes_max is replaced by its refusal (the call WAS
 *  applied: the message says so, since the caller cannot tell otherwise). */
function bounded_reply(serving: Serving, node_id: string, reply: ForwardReply): Buffer {
  const bytes = encode(reply);
  if (bytes.length <= serving.limits.message_bytes_max) return bytes;
  serving.options.on_refused?.('reply_too_large', node_id);
  return encode({ ok: false, error: error_to_wire(new ForwardMessageTooLargeError(
    `the owner's reply is ${bytes.length} bytes (message_bytes_max `
    + `${serving.limits.message_bytes_max}); the call was applied, its answer is lost`)) });
}
