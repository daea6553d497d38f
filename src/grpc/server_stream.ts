// Wraps a handler into a grpc-js server-streaming handler with what unary.ts gives a unary call:
// the per-ip and per-user rate limits, authentication (any valid token), the status table, the
// call counter and logs. Strict decoding needs nothing here: it runs in the deserializer of every
// method (strict_service.ts), so a malformed request never reaches this. Decides nothing itself.
//
// Unlike a unary call, a stream has no deadline cap: it lives until its client leaves, a limit
// ends it, or the node stops; a deadline the client sets is grpc-js's to enforce. Its duration is
// not observed in ticketing_grpc_request_duration_seconds (a call latency, which a stream's life
// would swamp); ticketing_grpc_requests_total counts it once, with the status it ended with.
import * as grpc from '@grpc/grpc-js';
import { UnauthenticatedError } from '../auth/errors.js';
import { MailboxFullError } from '../runtime/errors.js';
import { assert } from '../util/assert.js';
import {
  admission_token_metadata, idempotency_key_of, principal_of, trace_id_of, type CallContext,
} from './context.js';
import { RateLimitedError } from './errors.js';
import type { TokenBucket } from './rate_limit.js';
import { limit_of, map_error } from './status.js';
import { ip_of_peer, type EdgeDeps } from './unary.js';

/** A stream as its handler drives it. */
export interface StreamCall {
  /** Writes one message (pre-encoded bytes); false: the client's buffer is full. */
  write(message: Buffer): boolean;
  /** Ends the stream once: OK without an error, else the error's status (status.ts). */
  end(error?: unknown): void;
  /** grpc-js 'drain': the buffer that was full has room again. */
  on_drain(listener: () => void): void;
  /** The client cancelled or its connection closed; the stream is over (counted CANCELLED). */
  on_cancel(listener: () => void): void;
}

export type StreamHandler<Req> = (request: Req, ctx: CallContext, call: StreamCall) => void;

type WritableCall<Req> = grpc.ServerWritableStream<Req, Buffer>;

export function server_stream<Req>(
  deps: EdgeDeps, service: string, method: string, handler: StreamHandler<Req>,
): grpc.handleServerStreamingCall<Req, Buffer> {
  const labels = { service, method };
  return (call) => {
    const trace_id = trace_id_of(call.metadata);
    const who: { user_id: string | undefined } = { user_id: undefined };
    let ended = false;
    const count = (code: grpc.status): void => {
      assert(!ended, 'a stream ends once');
      ended = true;
      deps.metrics.grpc_requests.inc({ ...labels, code: grpc.status[code] });
    };
    const stream: StreamCall = {
      write: (message) => call.write(message),
      end: (error) => {
        if (ended) return;
        if (error === undefined) {
          count(grpc.status.OK);
          deps.log.debug({ trace_id, service, method, user_id: who.user_id, code: 'OK' },
            'stream ended');
          call.end();
          return;
        }
        end_with_error(deps, labels, call, error, { trace_id, user_id: who.user_id }, count);
      },
      on_drain: (listener) => call.on('drain', listener),
      on_cancel: (listener) => call.on('cancelled', () => {
        if (ended) return;
        count(grpc.status.CANCELLED);
        deps.log.debug({ trace_id, service, method, user_id: who.user_id },
          'stream cancelled by the client');
        listener();
      }),
    };
    try {
      const ip = ip_of_peer(call.getPeer());
      take(deps.limits.ip, ip, 'ip', `ip ${ip}`);
      const principal = principal_of(call.metadata, deps.keys, deps.tokens);
      who.user_id = principal.user_id;
      if (principal.role === 'customer') {
        take(deps.limits.user, principal.user_id, 'user', `user ${principal.user_id}`);
      }
      const idempotency_key = idempotency_key_of(call.metadata);
      const admission_token = admission_token_metadata(call.metadata);
      const ctx = { principal, trace_id, peer_ip: ip, idempotency_key, admission_token };
      handler(call.request, ctx, stream);
      deps.log.debug({ trace_id, service, method, user_id: who.user_id }, 'stream opened');
    } catch (error) {
      stream.end(error);
    }
  };
}

function take(
  bucket: TokenBucket | undefined, key: string, scope: 'user' | 'ip', who: string,
): void {
  if (bucket === undefined) return;
  const taken = bucket.take(key);
  if (taken.ok) return;
  throw new RateLimitedError(scope, taken.retry_after_ms,
    `rate limit for ${who} exceeded (${bucket.rate_per_s} requests/s, burst ${bucket.burst}): `
    + `retry in ${taken.retry_after_ms} ms`);
}

/** Counts, logs and sends the error's status (a RateLimitedError's with retry-after-ms). */
function end_with_error(
  deps: EdgeDeps, labels: { service: string; method: string }, call: WritableCall<unknown>,
  error: unknown, who: { trace_id: string; user_id: string | undefined },
  count: (code: grpc.status) => void,
): void {
  const mapped = map_error(error);
  count(mapped.code);
  if (error instanceof MailboxFullError) deps.metrics.mailbox_rejections.inc();
  const limit = limit_of(error);
  if (limit !== undefined) deps.metrics.limit_refusals.inc({ limit });
  if (error instanceof UnauthenticatedError) {
    deps.metrics.auth_refusals.inc({ reason: error.reason });
  }
  const metadata = new grpc.Metadata();
  if (error instanceof RateLimitedError) {
    deps.metrics.rate_limited.inc({ scope: error.scope });
    metadata.set('retry-after-ms', String(error.retry_after_ms));
  }
  const code = grpc.status[mapped.code];
  if (mapped.internal) deps.log.error({ ...who, ...labels, err: error }, 'internal error');
  else deps.log.debug({ ...who, ...labels, code, details: mapped.details }, 'stream ended');
  // grpc-js sends the status of an 'error' emitted on the stream once what is buffered went out.
  const status: Partial<grpc.StatusObject> = {
    code: mapped.code, details: mapped.details, metadata,
  };
  call.emit('error', status);
}
