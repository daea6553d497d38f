// Wraps a handler into a grpc-js unary handler: rate-limit, authenticate, run under a capped
// deadline, map errors, count, log. Decides nothing itself.
import * as grpc from '@grpc/grpc-js';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.js';
import { UnauthenticatedError } from '../auth/errors.js';
import { MailboxFullError } from '../runtime/errors.js';
import type { VerificationKeys } from '../auth/token.js';
import { idempotency_key_of, principal_of, trace_id_of, type CallContext } from './context.js';
import { DeadlineCappedError, RateLimitedError } from './errors.js';
import { TokenBucket } from './rate_limit.js';
import { limit_of, map_error } from './status.js';

/** The edge's abuse limits (README "Limits"); built once per server by edge_limits(). */
export interface EdgeLimits {
  /** Per customer token's user id, after authentication; undefined: off. Service and admin
   *  tokens are exempt: they act for many users at once (the order service), and a per-user
   *  budget on them would throttle every customer behind them. The ip bucket still counts them. */
  user: TokenBucket | undefined;
  /** Per client ip address, before authentication (unauthenticated floods count); undefined: off. */
  ip: TokenBucket | undefined;
  /** Every call's deadline is capped at this: no answer by then → DEADLINE_EXCEEDED. */
  deadline_ms_max: number;
}

export interface EdgeLimitConfig {
  /** Requests per second per user; 0: off. */
  rate_user_per_s: number;
  rate_user_burst: number;
  /** Requests per second per ip address; 0: off. */
  rate_ip_per_s: number;
  rate_ip_burst: number;
  /** Most users, and separately most ip addresses, tracked at once (memory bound). */
  rate_keys_max: number;
  deadline_ms_max: number;
}

export function edge_limits(config: EdgeLimitConfig, now_ms?: () => number): EdgeLimits {
  const bucket = (rate_per_s: number, burst: number): TokenBucket | undefined => (rate_per_s > 0
    ? new TokenBucket({ rate_per_s, burst: Math.max(1, Math.round(burst)), keys_max: config.rate_keys_max, ...(now_ms ? { now_ms } : {}) })
    : undefined);
  return {
    user: bucket(config.rate_user_per_s, config.rate_user_burst),
    ip: bucket(config.rate_ip_per_s, config.rate_ip_burst),
    deadline_ms_max: config.deadline_ms_max,
  };
}

export interface EdgeDeps {
  keys: VerificationKeys;
  metrics: Metrics;
  log: Logger;
  limits: EdgeLimits;
}

export type Handler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;

export interface UnaryOptions {
  /** The call changes state: its success is logged at info (who, what, trace id), not debug. */
  changes_state?: boolean;
  /** What a client should know about retrying when the deadline passes before the answer
   *  (the work may still complete): ends the DEADLINE_EXCEEDED message. */
  retry_note?: string;
}

const read_retry_note = 'the call changes nothing, so retrying it is safe';
const change_retry_note = 'the outcome is unknown: the call may or may not have been applied, and may still be applied after this answer; check the state before retrying';

/**
 * The client's ip address from grpc-js's getPeer(), which is `${remoteAddress}:${remotePort}`
 * for TCP ('127.0.0.1:50123', '::1:50123'). IPv4-mapped IPv6 addresses count as their IPv4
 * address. Anything else (e.g. 'unknown') is kept as is, so such callers share one bucket.
 */
export function ip_of_peer(peer: string): string {
  let host = peer;
  const match = /^\[?(.*?)\]?:([0-9]+)$/.exec(peer);
  if (match !== null && isIP(match[1]!) !== 0) host = match[1]!;
  return host.toLowerCase().startsWith('::ffff:') && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
}

function take(bucket: TokenBucket | undefined, key: string, scope: 'user' | 'ip', who: string): void {
  if (bucket === undefined) return;
  const taken = bucket.take(key);
  if (!taken.ok) {
    throw new RateLimitedError(scope, taken.retry_after_ms,
      `rate limit for ${who} exceeded (${bucket.rate_per_s} requests/s, burst ${bucket.burst}): retry in ${taken.retry_after_ms} ms`);
  }
}

export function unary<Req, Res>(
  deps: EdgeDeps, service: string, method: string, handler: Handler<Req, Res>, options: UnaryOptions = {},
): grpc.handleUnaryCall<Req, Res> {
  const labels = { service, method };
  const cap_ms = deps.limits.deadline_ms_max;
  const deadline_message = `${method}: deadline exceeded: no answer within ${cap_ms} ms (deadline_ms_max caps every call's deadline); `
    + (options.retry_note ?? (options.changes_state === true ? change_retry_note : read_retry_note));
  return (call, callback) => {
    const stop = deps.metrics.grpc_duration.startTimer(labels);
    const trace_id = trace_id_of(call.metadata);
    // Exactly one answer per call: the handler's, or DEADLINE_EXCEEDED if the cap comes first.
    let answered = false;
    let timer: NodeJS.Timeout | undefined;
    const done = (code: grpc.status): void => {
      answered = true;
      if (timer !== undefined) clearTimeout(timer);
      stop();
      deps.metrics.grpc_requests.inc({ ...labels, code: grpc.status[code] });
    };
    let promise: Promise<Res>;
    let user_id: string | undefined;
    let role: string | undefined;
    try {
      // Per ip first, so that floods without (valid) tokens are limited too.
      const ip = ip_of_peer(call.getPeer());
      take(deps.limits.ip, ip, 'ip', `ip ${ip}`);
      const principal = principal_of(call.metadata, deps.keys);
      user_id = principal.user_id;
      role = principal.role;
      if (principal.role === 'customer') take(deps.limits.user, principal.user_id, 'user', `user ${principal.user_id}`);
      promise = handler(call.request, { principal, trace_id, peer_ip: ip, idempotency_key: idempotency_key_of(call.metadata) });
    } catch (error) {
      promise = Promise.reject(error);
    }
    const refuse = (error: unknown): void => {
      const mapped = map_error(error);
      done(mapped.code);
      if (error instanceof MailboxFullError) deps.metrics.mailbox_rejections.inc();
      const limit = limit_of(error);
      if (limit !== undefined) deps.metrics.limit_refusals.inc({ limit });
      if (error instanceof UnauthenticatedError) deps.metrics.auth_refusals.inc({ reason: error.reason });
      let metadata: grpc.Metadata | undefined;
      if (error instanceof RateLimitedError) {
        deps.metrics.rate_limited.inc({ scope: error.scope });
        metadata = new grpc.Metadata();
        metadata.set('retry-after-ms', String(error.retry_after_ms));
      }
      if (mapped.internal) deps.log.error({ trace_id, service, method, err: error }, 'internal error');
      else if (error instanceof DeadlineCappedError) deps.log.warn({ trace_id, service, method, user_id, deadline_ms_max: cap_ms }, 'no answer within deadline_ms_max: DEADLINE_EXCEEDED');
      else deps.log.debug({ trace_id, service, method, user_id, code: grpc.status[mapped.code], details: mapped.details }, 'call refused');
      callback(metadata === undefined ? { code: mapped.code, details: mapped.details } : { code: mapped.code, details: mapped.details, metadata });
    };
    // The deadline cap. A client deadline earlier than the cap is grpc-js's to enforce (it
    // answers DEADLINE_EXCEEDED itself); without one, or with a later one, the cap applies.
    const deadline = call.getDeadline();
    const client_deadline_ms = deadline instanceof Date ? deadline.getTime() : deadline;
    if (!(client_deadline_ms <= Date.now() + cap_ms)) {
      timer = setTimeout(() => {
        if (!answered) refuse(new DeadlineCappedError(deadline_message));
      }, cap_ms);
      timer.unref();
    }
    promise.then((response) => {
      if (answered) {
        // The client was already told DEADLINE_EXCEEDED; the work completed anyway.
        if (options.changes_state === true) deps.log.info({ trace_id, service, method, user_id, role, code: 'OK', answered: 'DEADLINE_EXCEEDED' }, 'state changed after the deadline answer');
        return;
      }
      done(grpc.status.OK);
      // Never the request or the token: ids only. Payment tokens will pass through here.
      if (options.changes_state === true) deps.log.info({ trace_id, service, method, user_id, role, code: 'OK' }, 'state changed');
      else deps.log.debug({ trace_id, service, method, code: 'OK' }, 'call');
      callback(null, response);
    }, (error: unknown) => {
      if (answered) {
        deps.log.debug({ trace_id, service, method, user_id, code: grpc.status[map_error(error).code], answered: 'DEADLINE_EXCEEDED' }, 'call refused after the deadline answer');
        return;
      }
      refuse(error);
    });
  };
}
