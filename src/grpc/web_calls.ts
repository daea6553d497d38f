// The Connect / gRPC-Web edge's calls: every method of every service the gRPC edge serves, run by
// the very grpc-js handler object the gRPC server runs (unary.ts / server_stream.ts: rate limits,
// authentication, deadline cap, status table, metrics, logs), so the two edges cannot drift.
//
// Only the transport is adapted, and generically (no line per service or method): the method
// list comes from each service's definition, the message types from the protos' descriptors
// (web_descriptors.ts). A request Connect decoded (binary or JSON) is encoded again and given to
// the gRPC edge's own request deserializer, strict check first (strict_service.ts), so the handler
// gets the same object, decoded the same way (proto-loader: keepCase, longs and enums as strings,
// defaults), as over gRPC. The handler runs on grpc-js's own call objects (ServerUnaryCallImpl,
// ServerWritableStreamImpl) over a WebCall below, as grpc-js's server.js handleUnary and
// handleServerStreaming drive them; what the handler sends is encoded by the method's own
// serializer and decoded for Connect. A status other than OK becomes a ConnectError of the same
// code (Connect's codes are gRPC's numbers), its details and metadata (retry-after-ms) kept.
import * as grpc from '@grpc/grpc-js';
import {
  ServerWritableStreamImpl, serverErrorToStatus,
} from '@grpc/grpc-js/build/src/server-call.js';
import type {
  InterceptingServerListener, ServerInterceptingCallInterface,
} from '@grpc/grpc-js/build/src/server-interceptors.js';
import { PerRequestMetricRecorder } from '@grpc/grpc-js/build/src/orca.js';
import type { PartialStatusObject } from '@grpc/grpc-js/build/src/call-interface.js';
import {
  fromBinary, toBinary, type DescMessage, type DescMethod, type DescMethodServerStreaming,
  type DescMethodUnary,
  type FileRegistry,
  type Message,
} from '@bufbuild/protobuf';
import {
  Code, ConnectError, createContextKey, type ConnectRouter, type HandlerContext,
} from '@connectrpc/connect';
import { assert } from '../util/assert.js';
import { MalformedRequest, strict_service, type OnMalformed } from './strict_service.js';
import { raw_request_key, type Deserialize } from './web_binary.js';

/** One service as the gRPC edge serves it: its definition and its handlers. */
export interface ServedService {
  /** Full name, e.g. 'ticketing.catalog.v1.CatalogService'. */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** The caller's address as grpc-js's getPeer() gives it ('127.0.0.1:50123', '[::1]:50123'),
 *  set per request by the HTTP server (web_server.ts): the ip rate limit keys on it. */
export const peer_key = createContextKey<string>('unknown');

/** Most messages a stream's handler may have written that Connect has not yet sent: grpc-js's
 *  Writable default (16 objects), so `write` returns false, and 'drain' follows, as over gRPC. */
const stream_buffered_messages_max = 16;

/** What web_routes registered: each method's request deserializer by its request path
 *  ('/pkg.Service/Method', web_binary.ts decodes binary bodies with it), and what it left out. */
export interface WebRoutes {
  deserializers: Map<string, Deserialize>;
  skipped: string[];
}

/** Registers every unary and server-streaming method of `services` on `router`. */
export function web_routes(
  router: ConnectRouter, registry: FileRegistry, services: readonly ServedService[],
  on_malformed: OnMalformed,
): WebRoutes {
  const skipped: string[] = [];
  const deserializers = new Map<string, Deserialize>();
  for (const served of services) {
    const desc = registry.getService(served.name);
    assert(desc !== undefined, `${served.name}: served over gRPC but not in the descriptors`);
    const strict = strict_service(served.definition, on_malformed);
    for (const [key, method] of Object.entries(strict)) {
      const rpc = desc.methods.find((m) => m.name === key);
      assert(rpc !== undefined, `${method.path}: not in ${served.name}'s descriptor`);
      const handler = served.implementation[key];
      assert(handler !== undefined, `${method.path}: no handler`);
      assert(method.requestStream === (rpc.methodKind === 'client_streaming'
        || rpc.methodKind === 'bidi_streaming'), `${method.path}: one kind in both`);
      // The handler is narrowed by the method's kind, as grpc-js's server.js narrows handler.func.
      if (is_server_streaming(rpc)) {
        const stream = handler as grpc.handleServerStreamingCall<unknown, unknown>;
        router.rpc(rpc, stream_impl(rpc, method, stream));
        deserializers.set(method.path, method.requestDeserialize);
      } else if (is_unary(rpc)) {
        const unary = handler as grpc.handleUnaryCall<unknown, unknown>;
        router.rpc(rpc, unary_impl(rpc, method, unary));
        deserializers.set(method.path, method.requestDeserialize);
      } else {
        // Client and bidi streams need HTTP/2 end to end; none is served today.
        skipped.push(method.path);
      }
    }
  }
  return { deserializers, skipped };
}

type Method = grpc.MethodDefinition<unknown, unknown>;

function is_unary(rpc: DescMethod): rpc is DescMethodUnary {
  return rpc.methodKind === 'unary';
}

function is_server_streaming(rpc: DescMethod): rpc is DescMethodServerStreaming {
  return rpc.methodKind === 'server_streaming';
}

/** The gRPC edge's decoded request: what its deserializer made of the client's bytes (binary,
 *  web_binary.ts), or of Connect's decoded request encoded again (JSON); strict check included. */
function decode(rpc: DescMethod, method: Method, request: Message, ctx: HandlerContext): unknown {
  const raw = ctx.values.get(raw_request_key);
  if (raw !== undefined) {
    if ('refused' in raw) throw new ConnectError(raw.refused, Code.InvalidArgument);
    return raw.decoded;
  }
  const decoded = method.requestDeserialize(Buffer.from(toBinary(rpc.input, request)));
  if (decoded instanceof MalformedRequest) {
    throw new ConnectError(decoded.details, Code.InvalidArgument);
  }
  return decoded;
}

/** What the handler sent (an object, or bytes its serializer passes) → Connect's message. */
function encode(output: DescMessage, method: Method, value: unknown): Message {
  return fromBinary(output, method.responseSerialize(value));
}

function connect_error(status: PartialStatusObject): ConnectError {
  const code = status.code ?? grpc.status.UNKNOWN;
  assert(code > 0 && code <= 16, 'a refusal has a gRPC error code');
  const headers = new Headers();
  for (const [key, value] of Object.entries(status.metadata?.getMap() ?? {})) {
    if (typeof value === 'string') headers.set(key, value);
  }
  const connect_code = connect_codes.get(code);
  assert(connect_code !== undefined, 'every gRPC error code is a Connect code');
  return new ConnectError(status.details ?? '', connect_code, headers);
}

/** Connect's Code by number: the numbers are gRPC's status codes (CANCELLED 1 .. UNAUTHENTICATED
 *  16), the names differ only in spelling. */
const connect_codes: ReadonlyMap<number, Code> = new Map(Object.values(Code)
  .filter((value): value is Code => typeof value === 'number')
  .map((value) => [value, value]));

function unary_impl(
  rpc: DescMethod, method: Method,
  handler: grpc.handleUnaryCall<unknown, unknown>,
) {
  return (request: Message, ctx: HandlerContext): Promise<Message> => {
    const decoded = decode(rpc, method, request, ctx);
    return new Promise<Message>((resolve, reject) => {
      let reply: Message | undefined;
      const web_call = new WebCall(ctx, {
        message: (value, sent) => {
          reply = encode(rpc.output, method, value);
          sent();
        },
        status: (status) => {
          if (status.code === grpc.status.OK && reply !== undefined) resolve(reply);
          else reject(connect_error(status));
        },
      });
      const call = new ServerWritableStreamImpl(method.path, web_call, metadata_of(ctx), decoded);
      on_abort(ctx, call);
      // As grpc-js's handleUnary answers the handler's callback.
      handler(call, (error, value, trailer) => {
        if (error) {
          web_call.sendStatus(serverErrorToStatus(error, trailer));
          return;
        }
        web_call.sendMessage(value, () => web_call.sendStatus({
          code: grpc.status.OK, details: 'OK', metadata: trailer ?? null,
        }));
      });
    });
  };
}

function stream_impl(
  rpc: DescMethod, method: Method,
  handler: grpc.handleServerStreamingCall<unknown, unknown>,
) {
  return async function* serve_stream(
    request: Message, ctx: HandlerContext,
  ): AsyncGenerator<Message> {
    const decoded = decode(rpc, method, request, ctx);
    const queue = new StreamQueue();
    const web_call = new WebCall(ctx, {
      message: (value, sent) => queue.push(encode(rpc.output, method, value), sent),
      status: (status) => queue.finish(status.code === grpc.status.OK
        ? undefined : connect_error(status)),
    });
    const call = new ServerWritableStreamImpl(method.path, web_call, metadata_of(ctx), decoded);
    const cancel = on_abort(ctx, call);
    handler(call);
    try {
      yield* queue.drain();
    } finally {
      // The client left (Connect returned the generator) before the stream ended.
      if (!queue.finished) cancel();
    }
  };
}

/** On the client's going away: the call is cancelled as grpc-js's onCancel does it. */
function on_abort(
  ctx: HandlerContext, call: ServerWritableStreamImpl<unknown, unknown>,
): () => void {
  let cancelled = false;
  const cancel = (): void => {
    if (cancelled) return;
    cancelled = true;
    call.cancelled = true;
    call.emit('cancelled', 'cancelled');
  };
  ctx.signal.addEventListener('abort', cancel, { once: true });
  return cancel;
}

/** The request headers as gRPC metadata (authorization, traceparent, idempotency-key, ...);
 *  headers grpc-js would not accept as ASCII metadata are left out, as HTTP/2 framing would. */
function metadata_of(ctx: HandlerContext): grpc.Metadata {
  const metadata = new grpc.Metadata();
  ctx.requestHeader.forEach((value, key) => {
    if (key.endsWith('-bin') || !/^[ -~]*$/.test(value)) return;
    try {
      metadata.add(key, value);
    } catch {
      // A name grpc-js refuses (it checks [0-9a-z_.-]): not metadata.
    }
  });
  return metadata;
}

interface Sink {
  /** A message the handler sent; `sent` once Connect took it (grpc-js's write callback). */
  message(value: unknown, sent: () => void): void;
  /** The call's end (once). */
  status(status: PartialStatusObject): void;
}

/** The transport under grpc-js's call objects: hands what they send to Connect. */
class WebCall implements ServerInterceptingCallInterface {
  private ended = false;
  private readonly deadline: grpc.Deadline;

  constructor(private readonly ctx: HandlerContext, private readonly sink: Sink) {
    const timeout_ms = ctx.timeoutMs();
    this.deadline = timeout_ms === undefined ? Infinity : new Date(Date.now() + timeout_ms);
  }

  start(_listener: InterceptingServerListener): void {
    // The request was decoded before the call object was made: nothing to listen to.
  }
  sendMetadata(_metadata: grpc.Metadata): void {
    // Connect sends its headers with the first message or the status.
  }
  sendMessage(message: unknown, callback: () => void): void {
    if (this.ended) return;
    this.sink.message(message, callback);
  }
  sendStatus(status: PartialStatusObject): void {
    if (this.ended) return;
    this.ended = true;
    this.sink.status(status);
  }
  startRead(): void {
    // One request message, already read.
  }
  getPeer(): string {
    return this.ctx.values.get(peer_key);
  }
  getDeadline(): grpc.Deadline {
    return this.deadline;
  }
  getHost(): string {
    return this.ctx.requestHeader.get('host') ?? '';
  }
  getAuthContext(): { transportSecurityType?: string } {
    return {};
  }
  getConnectionInfo(): Record<string, never> {
    return {};
  }
  getMetricsRecorder(): PerRequestMetricRecorder {
    return new PerRequestMetricRecorder();
  }
}

/** The messages of one stream between its handler and Connect, bounded by grpc-js's Writable
 *  (it holds a write back once stream_buffered_messages_max are unsent). */
class StreamQueue {
  finished = false;
  private readonly items: { message: Message; sent: () => void }[] = [];
  private error: ConnectError | undefined;
  private wake: (() => void) | undefined;

  push(message: Message, sent: () => void): void {
    assert(!this.finished, 'no message after the status');
    assert(this.items.length <= stream_buffered_messages_max, 'the Writable bounds the queue');
    this.items.push({ message, sent });
    this.notify();
  }
  finish(error: ConnectError | undefined): void {
    this.finished = true;
    this.error = error;
    this.notify();
  }
  async *drain(): AsyncGenerator<Message> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item.message;
        item.sent();
        continue;
      }
      if (this.finished) break;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    if (this.error !== undefined) throw this.error;
  }
  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
