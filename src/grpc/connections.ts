// The gRPC listener's guard against silent and greedy clients (README "Silent clients and
// connection limits").
//
// grpc-js's own listener gives no hook between accept() and HTTP/2: a TCP connection that sends
// nothing, or half the preface, was held for ever (measured: 5,000 such sockets, 4,766 file
// descriptors still open minutes later), and a stream whose request message never arrives never
// reaches a handler, so the deadline cap (which runs in the handler) never starts (10,000 such
// streams held 75 s and more, memory 116 → 189 MB). So the node owns the listener (node:net, or
// node:tls for TLS) and hands each socket to grpc-js through createConnectionInjector() only
// once the 24-byte HTTP/2 client preface has arrived, within preface_timeout_ms of accept (the
// TLS handshake included). Before that, connections are counted per remote address and per node
// and refused over the caps. After it, grpc-js closes connections without calls for
// idle_timeout_ms (grpc.max_connection_idle_ms, with a GOAWAY) and caps streams per connection
// (grpc.max_concurrent_streams); a server interceptor caps concurrent calls per address and per
// node and ends a call whose request message has not arrived within request_arrival_timeout_ms.
import * as grpc from '@grpc/grpc-js';
import {
  createServer as create_net_server, isIP, type Server as NetServer, type Socket,
} from 'node:net';
import { constants as http2_constants, type Http2Stream } from 'node:http2';
import { createServer as create_tls_server } from 'node:tls';
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.js';
import { assert } from '../util/assert.js';
import type { LoadedTls } from './tls.js';

export interface ConnectionLimitConfig {
  /** Open gRPC connections per node; beyond, new ones are closed at accept. */
  connections_max: number;
  /** Open gRPC connections per remote ip address. */
  connections_per_address_max: number;
  /** From accept to the end of the HTTP/2 client preface (TLS handshake included). */
  preface_timeout_ms: number;
  /** A connection without calls for this long is closed (GOAWAY first). */
  idle_timeout_ms: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS announced on every connection. */
  streams_per_connection_max: number;
  /** Calls in progress per node; beyond, new calls are RESOURCE_EXHAUSTED. */
  streams_max: number;
  /** Calls in progress per remote ip address. */
  streams_per_address_max: number;
  /** From a call's headers to its request message (unary and server-streaming calls). */
  request_arrival_timeout_ms: number;
}

/** Every limit of ConnectionLimitConfig, in flag order: the guard checks each, and the CLI has
 *  one flag per name (--connections-max …). Defaults: serve_defaults in src/node/config.ts. */
export const connection_limit_names = [
  'connections_max', 'connections_per_address_max', 'preface_timeout_ms', 'idle_timeout_ms',
  'streams_per_connection_max', 'streams_max', 'streams_per_address_max',
  'request_arrival_timeout_ms',
] as const satisfies readonly (keyof ConnectionLimitConfig)[];

// Compiles only while connection_limit_names names every limit (a missing one is required here).
const every_limit_named: Record<
  Exclude<keyof ConnectionLimitConfig, (typeof connection_limit_names)[number]>, never
> = {};

/** Reasons of ticketing_grpc_connections_closed_total (exported at 0). */
export const close_reasons = ['preface_timeout', 'bad_preface', 'idle'] as const;
/** Reasons of ticketing_grpc_connections_refused_total (exported at 0). */
export const refuse_reasons = ['connections_max', 'connections_per_address_max'] as const;

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/** A remote address as one key: IPv4-mapped IPv6 counts as its IPv4 address. */
export function address_key(address: string | undefined): string {
  const a = address ?? 'unknown';
  return a.toLowerCase().startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}

interface Connection {
  address: string;
  calls: number;
  /** performance.now() when `calls` last became 0 (or the preface completed). */
  idle_since_ms: number;
  close_reason: (typeof close_reasons)[number] | undefined;
}

/** The details of the INVALID_ARGUMENT answer for a request message to refuse, else undefined. */
export type RefuseMessage = (message: unknown) => string | undefined;

function bump(map: Map<string, number>, key: string, by: number): number {
  const n = (map.get(key) ?? 0) + by;
  assert(n >= 0, 'a count never goes below zero');
  if (n === 0) map.delete(key);
  else map.set(key, n);
  return n;
}

export class ConnectionGuard {
  private readonly connections_by_address = new Map<string, number>();
  private readonly calls_by_address = new Map<string, number>();
  /** Handed-off connections by `${remoteAddress}:${remotePort}` (grpc-js's getConnectionInfo()). */
  private readonly by_peer = new Map<string, Connection>();
  private connections_open = 0;
  private calls_open = 0;
  private listener: NetServer | undefined;
  /** Accepted TCP sockets by peer, until they close. */
  private readonly accepted = new Map<string, Socket>();

  constructor(
    readonly config: ConnectionLimitConfig,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {
    for (const name of connection_limit_names) {
      assert(Number.isInteger(config[name]) && config[name] >= 1, `${name} is an integer ≥ 1`);
    }
    metrics.grpc_connections_open_collect = () => this.connections_open;
    metrics.grpc_calls_open_collect = () => this.calls_open;
  }

  /** grpc-js server options that belong to these limits. `refuse_message` (strict_service's
   *  malformed_details) names a request message to answer INVALID_ARGUMENT before any handler
   *  sees it: checked in this one interceptor, because each interceptor is a layer of wrapped
   *  listeners and methods on every call (a second, pass-through one cost the no-op grpc-js
   *  server 162 → 199 µs of CPU per call under ghz; issue 13). */
  server_options(refuse_message?: RefuseMessage): grpc.ServerOptions {
    return {
      'grpc.max_connection_idle_ms': this.config.idle_timeout_ms,
      'grpc.max_concurrent_streams': this.config.streams_per_connection_max,
      interceptors: [(method, call) => this.intercept(method, call, refuse_message)],
    };
  }

  /**
   * Listens on host:port and hands connections to `server`. TLS (when `tls` is given) is done
   * here, so the preface timer covers the handshake; grpc-js then sees a plain HTTP/2 stream.
   * Resolves with the bound port.
   */
  listen(server: grpc.Server, host: string, port: number, tls: LoadedTls): Promise<number> {
    assert(this.listener === undefined, 'listen() once');
    const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
    const listener = tls.mode === 'insecure'
      ? create_net_server()
      : create_tls_server({
        cert: tls.cert!, key: tls.key!, ALPNProtocols: ['h2'],
        ...(tls.mode === 'mtls'
          ? { ca: tls.client_ca!, requestCert: true, rejectUnauthorized: true }
          : {}),
        // The preface timer below bounds the handshake; this is only the backstop.
        handshakeTimeout: this.config.preface_timeout_ms,
      });
    listener.on('connection', (raw: Socket) => this.accept(raw));
    const hand_off = (socket: Socket): void => injector.injectConnection(socket);
    if (tls.mode === 'insecure') {
      listener.on('connection', (raw: Socket) => {
        if (!raw.destroyed) this.await_preface(raw, raw, hand_off);
      });
    } else {
      listener.on('secureConnection', (socket: Socket) => {
        // The TLS socket reports its underlying TCP socket's addresses: that finds the raw one.
        const raw = this.accepted.get(peer_of(socket));
        if (raw === undefined || raw.destroyed) socket.destroy();
        else this.await_preface(socket, raw, hand_off);
      });
      // Failed handshakes (no client certificate under mutual TLS, wrong protocol): the raw
      // socket is closed by node:tls; nothing to count beyond the close itself.
      listener.on('tlsClientError', () => undefined);
    }
    this.listener = listener;
    return new Promise((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host, port }, () => {
        listener.off('error', reject);
        listener.on('error', (error) => this.log.error({ err: error }, 'gRPC listener error'));
        resolve((listener.address() as { port: number }).port);
      });
    });
  }

  /** Stops accepting and closes connections not yet handed over; the others are grpc-js's to
   *  drain (tryShutdown / forceShutdown). Resolves once every connection has closed. */
  close(): Promise<void> {
    const listener = this.listener;
    if (listener === undefined) return Promise.resolve();
    const closed = new Promise<void>((resolve) => listener.close(() => resolve()));
    for (const raw of this.accepted.values()) if (!handed.has(raw)) raw.destroy();
    return closed;
  }

  /** Counts a new TCP connection; over a cap it is closed at once. */
  private accept(raw: Socket): void {
    const address = address_key(raw.remoteAddress);
    const refuse = this.connections_open >= this.config.connections_max
      ? 'connections_max' as const
      : (this.connections_by_address.get(address) ?? 0) >= this.config.connections_per_address_max
        ? 'connections_per_address_max' as const
        : undefined;
    if (refuse !== undefined) {
      this.metrics.grpc_connections_refused.inc({ reason: refuse });
      this.log.debug({ address, limit: refuse }, 'gRPC connection refused at a connection cap');
      raw.destroy();
      return;
    }
    this.connections_open++;
    bump(this.connections_by_address, address, 1);
    const peer = peer_of(raw);
    this.accepted.set(peer, raw);
    raw.on('error', () => undefined); // a reset by the peer is a close like any other
    raw.once('close', () => {
      this.accepted.delete(peer);
      this.connections_open--;
      assert(this.connections_open >= 0, 'connections_open ≥ 0');
      bump(this.connections_by_address, address, -1);
    });
    // Whatever happens next (handshake, preface), it must be over within preface_timeout_ms.
    const timer = setTimeout(() => {
      if (raw.destroyed || handed.has(raw)) return;
      this.metrics.grpc_connections_closed.inc({ reason: 'preface_timeout' });
      this.log.debug({ address, preface_timeout_ms: this.config.preface_timeout_ms },
        'gRPC connection closed: no HTTP/2 preface within preface_timeout_ms');
      raw.destroy();
    }, this.config.preface_timeout_ms);
    timer.unref();
    raw.once('close', () => clearTimeout(timer));
  }

  /** Reads the 24-byte client preface off `socket`, puts it back and hands the socket over. */
  private await_preface(socket: Socket, raw: Socket, hand_off: (socket: Socket) => void): void {
    let received = Buffer.alloc(0);
    const on_data = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const n = Math.min(received.length, preface.length);
      if (!received.subarray(0, n).equals(preface.subarray(0, n))) {
        socket.off('data', on_data);
        this.metrics.grpc_connections_closed.inc({ reason: 'bad_preface' });
        this.log.debug({ address: address_key(raw.remoteAddress) },
          'gRPC connection closed: not an HTTP/2 client preface');
        raw.destroy();
        return;
      }
      if (received.length < preface.length) return;
      socket.off('data', on_data);
      socket.pause();
      handed.add(raw);
      socket.unshift(received); // http2 reads what is buffered before it takes the socket over
      const connection: Connection = {
        address: address_key(socket.remoteAddress),
        calls: 0,
        idle_since_ms: performance.now(),
        close_reason: undefined,
      };
      const peer = peer_of(socket);
      this.by_peer.set(peer, connection);
      raw.once('close', () => {
        this.by_peer.delete(peer);
        // grpc-js closes a connection idle for idle_timeout_ms without telling anyone; a close
        // after at least that long without calls is counted as that.
        const idle_ms = performance.now() - connection.idle_since_ms;
        if (connection.calls === 0 && idle_ms >= this.config.idle_timeout_ms - idle_slack_ms) {
          this.metrics.grpc_connections_closed.inc({ reason: 'idle' });
        }
      });
      hand_off(socket);
    };
    socket.on('data', on_data);
  }

  /** Every call: caps calls in progress, and bounds the wait for the request message. */
  private intercept(
    method: grpc.ServerMethodDefinition<unknown, unknown>,
    call: grpc.ServerInterceptingCallInterface,
    refuse_message: RefuseMessage | undefined,
  ): grpc.ServerInterceptingCall {
    const info = call.getConnectionInfo();
    const connection = this.by_peer.get(peer_of(info));
    const address = connection?.address ?? address_key(info.remoteAddress);
    const refuse = this.calls_open >= this.config.streams_max
      ? 'streams_max' as const
      : (this.calls_by_address.get(address) ?? 0) >= this.config.streams_per_address_max
        ? 'streams_per_address_max' as const
        : undefined;
    const release = refuse === undefined ? this.hold_call(address, connection) : undefined;
    let timer: NodeJS.Timeout | undefined;
    const arrived = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };
    const end = (): void => {
      arrived();
      release?.();
    };
    // Answered for a refused message: later messages and the half-close are held back (a unary
    // handler would otherwise answer "no message received").
    let refused = false;
    const intercepting: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMessage: (message, next_message) => {
            arrived();
            if (refused) return;
            const details = refuse_message?.(message);
            if (details === undefined) {
              next_message(message);
              return;
            }
            refused = true;
            intercepting.sendStatus({
              code: grpc.status.INVALID_ARGUMENT, details, metadata: new grpc.Metadata(),
            });
          },
          onReceiveHalfClose: (next_half_close) => {
            arrived();
            if (!refused) next_half_close();
          },
          onCancel: end,
        });
        if (refuse !== undefined) {
          this.refuse_call(intercepting, call, method, address, refuse);
          return;
        }
        // Client-streaming and bidi calls may legitimately wait before their first message.
        if (!method.requestStream) {
          timer = setTimeout(() => {
            timer = undefined;
            this.end_without_request(intercepting, call, method, address);
          }, this.config.request_arrival_timeout_ms);
          timer.unref();
        }
      },
      sendStatus: (status, next) => {
        end();
        next(status);
      },
    });
    return intercepting;
  }

  /** Counts a call in progress; the function returned uncounts it (the first time it runs). */
  private hold_call(address: string, connection: Connection | undefined): () => void {
    this.calls_open++;
    bump(this.calls_by_address, address, 1);
    if (connection !== undefined) connection.calls++;
    let open = true;
    return () => {
      if (!open) return;
      open = false;
      this.calls_open--;
      assert(this.calls_open >= 0, 'calls_open ≥ 0');
      bump(this.calls_by_address, address, -1);
      if (connection !== undefined && --connection.calls === 0) {
        connection.idle_since_ms = performance.now();
      }
    };
  }

  /** Answers a call over a call cap RESOURCE_EXHAUSTED. */
  private refuse_call(
    intercepting: grpc.ServerInterceptingCall,
    call: grpc.ServerInterceptingCallInterface,
    method: grpc.ServerMethodDefinition<unknown, unknown>,
    address: string,
    refuse: 'streams_max' | 'streams_per_address_max',
  ): void {
    this.metrics.limit_refusals.inc({ limit: refuse });
    const max = refuse === 'streams_max'
      ? this.config.streams_max
      : this.config.streams_per_address_max;
    const where = refuse === 'streams_max' ? ' on this node' : ` from ${address}`;
    intercepting.sendStatus({
      code: grpc.status.RESOURCE_EXHAUSTED,
      details: `${method.path}: too many calls in progress (${refuse} ${max}${where}); `
        + 'retry when some have finished',
    });
    reset_after_answer(call);
  }

  /** Ends a call whose request message did not arrive within request_arrival_timeout_ms. */
  private end_without_request(
    intercepting: grpc.ServerInterceptingCall,
    call: grpc.ServerInterceptingCallInterface,
    method: grpc.ServerMethodDefinition<unknown, unknown>,
    address: string,
  ): void {
    assert(!method.requestStream, 'only a unary or server-streaming call awaits its request');
    const timeout_ms = this.config.request_arrival_timeout_ms;
    this.metrics.limit_refusals.inc({ limit: 'request_arrival' });
    this.log.debug({ address, method: method.path },
      'call ended: no request message within request_arrival_timeout_ms');
    intercepting.sendStatus({
      code: grpc.status.DEADLINE_EXCEEDED,
      details: `${method.path}: the request message did not arrive within ${timeout_ms} ms `
        + "of the call's headers (request_arrival_timeout_ms); nothing was done",
    });
    reset_after_answer(call);
  }
}

/**
 * After the node answered a call whose client has not finished sending, the HTTP/2 stream stays
 * half-open until the client ends it; a silent client never does, so the stream (and its slot
 * in SETTINGS_MAX_CONCURRENT_STREAMS) would be held for ever. RFC 9113 §8.1 lets a server that
 * has sent a complete response ask the client to stop with RST_STREAM(NO_ERROR); node:http2 does
 * so on close(), after the response frames. grpc-js does not expose the stream: its first
 * intercepting call (BaseServerInterceptingCall, grpc-js 1.14) keeps it as `stream`. If a later
 * grpc-js moves it, this does nothing and test/e2e/silent_clients.e2e.test.ts fails (the streams
 * are never closed).
 */
function reset_after_answer(call: grpc.ServerInterceptingCallInterface): void {
  const stream = (call as unknown as { stream?: Http2Stream }).stream;
  if (stream === undefined || typeof stream.close !== 'function') return;
  if (!stream.closed && !stream.destroyed) stream.close(http2_constants.NGHTTP2_NO_ERROR);
}

function peer_of(
  socket: { remoteAddress?: string | undefined; remotePort?: number | undefined },
): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

/** Timers fire a little early or late against performance.now(); the idle attribution allows
 *  this much. */
const idle_slack_ms = 50;

/** Raw sockets already handed to grpc-js: the preface timer no longer applies to them. */
const handed = new WeakSet<Socket>();
