// Wraps a handler into a grpc-js unary handler: rate-limit, authenticate, run under a capped
// deadline, map errors, count, log. Decides nothing itself.
import * as grpc from '@grpc/grpc-js';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { CallCounts, Metrics } from '../ops/metrics.js';
import { assert } from '../util/assert.js';
import { UnauthenticatedError } from '../auth/errors.js';
import { run_in_call_scope } from '../cluster/call_scope.js';
import { MailboxFullError } from '../runtime/errors.js';
import type { VerificationKeys } from '../auth/token.js';
import type { VerifiedTokens } from '../auth/token_cache.js';
import {
  admission_token_metadata, idempotency_key_of, principal_of, trace_id_of, type CallContext,
} from './context.js';
import { DeadlineCappedError, RateLimitedError } from './errors.js';
import { TokenBucket } from './rate_limit.js';
import { limit_of, map_error, type MappedStatus } from './status.js';

/** The edge's abuse limits (README "Limits"); built once per server by edge_limits(). */
export interface EdgeLimits {
  /** Per customer token's user id, after authentication; undefined: off. Service and admin
   *  tokens are exempt: they act for many users at once (the order service), and a per-user
   *  budget on them would throttle every customer behind them. The ip bucket still counts them. */
  user: TokenBucket | undefined;
  /** Per client ip address, before authentication (unauthenticated floods count);
   *  undefined: off. */
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
    ? new TokenBucket({
      rate_per_s,
      burst: Math.max(1, Math.round(burst)),
      keys_max: config.rate_keys_max,
      ...(now_ms ? { now_ms } : {}),
    })
    : undefined);
  return {
    user: bucket(config.rate_user_per_s, config.rate_user_burst),
    ip: bucket(config.rate_ip_per_s, config.rate_ip_burst),
    deadline_ms_max: config.deadline_ms_max,
  };
}

export interface EdgeDeps {
  keys: VerificationKeys;
  /** Verified tokens remembered (bounded, exp respected); absent: every call verifies. */
  tokens?: VerifiedTokens;
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
const change_retry_note = 'the outcome is unknown: the call may or may not have been applied, '
  + 'and may still be applied after this answer; check the state before retrying';

/**
 * The client's ip address from grpc-js's getPeer(), which is `${remoteAddress}:${remotePort}`
 * for TCP ('127.0.0.1:50123', '::1:50123'). IPv4-mapped IPv6 addresses count as their IPv4
 * address. Anything else (e.g. 'unknown') is kept as is, so such callers share one bucket.
 */
export function ip_of_peer(peer: string): string {
  let host = peer;
  const match = /^\[?(.*?)\]?:([0-9]+)$/.exec(peer);
  if (match !== null && isIP(match[1]!) !== 0) host = match[1]!;
  const mapped_ipv4 = host.toLowerCase().startsWith('::ffff:') && isIP(host.slice(7)) === 4;
  return mapped_ipv4 ? host.slice(7) : host;
}

/** Peer strings remembered with their ip: a connection's calls all share one peer string, and
 *  ip_of_peer's regex and isIP per call were 0.5 % of the main thread under ghz (issue 13).
 *  Bounded: when full, the memo starts afresh (a peer is one ip_of_peer away from back). */
export const peer_ips_max = 1024;
const peer_ips = new Map<string, string>();

/** Peers the memo holds now (tests). */
export function peer_memo_size(): number {
  return peer_ips.size;
}

/** ip_of_peer, memoized. */
export function ip_of_peer_memo(peer: string): string {
  let ip = peer_ips.get(peer);
  if (ip === undefined) {
    if (peer_ips.size >= peer_ips_max) peer_ips.clear();
    ip = ip_of_peer(peer);
    peer_ips.set(peer, ip);
  }
  assert(peer_ips.size <= peer_ips_max, 'peer memo within peer_ips_max');
  return ip;
}

function take(
  bucket: TokenBucket | undefined, key: string, scope: 'user' | 'ip', who: string,
): void {
  if (bucket === undefined) return;
  const taken = bucket.take(key);
  if (!taken.ok) {
    throw new RateLimitedError(scope, taken.retry_after_ms,
      `rate limit for ${who} exceeded (${bucket.rate_per_s} requests/s, burst ${bucket.burst}): `
      + `retry in ${taken.retry_after_ms} ms`);
  }
}

/** One wrapped method: what every call to it needs, fixed when the server is built. */
interface Endpoint {
  deps: EdgeDeps;
  service: string;
  method: string;
  options: UnaryOptions;
  labels: { service: string; method: string };
  cap_ms: number;
  deadline_message: string;
  /** The per-call lines ('state changed', 'call'): service and method bound once (pino
   *  serializes bindings at child creation), redaction off. The fields these lines carry are
   *  ids only (trace_id, user_id, role, code), none a redacted key, so redaction could never
   *  change them; its per-line walk was a third of the line's cost (issue 13). */
  call_log: Logger;
  /** Answered calls by code (ticketing_grpc_requests_total, added at scrape). */
  counts: CallCounts;
}

/** Who a call is from, for its logs; user_id and role once the token is verified. */
interface Caller {
  trace_id: string;
  user_id: string | undefined;
  role: string | undefined;
}

export function unary<Req, Res>(
  deps: EdgeDeps,
  service: string,
  method: string,
  handler: Handler<Req, Res>,
  options: UnaryOptions = {},
): grpc.handleUnaryCall<Req, Res> {
  const cap_ms = deps.limits.deadline_ms_max;
  assert(cap_ms > 0, 'deadline_ms_max is positive');
  const retry_note = options.retry_note
    ?? (options.changes_state === true ? change_retry_note : read_retry_note);
  const deadline_message = `${method}: deadline exceeded: no answer within ${cap_ms} ms `
    + `(deadline_ms_max caps every call's deadline); ${retry_note}`;
  const call_log = deps.log.child({ service, method }, { redact: [] });
  const endpoint: Endpoint = {
    deps, service, method, options, labels: { service, method }, cap_ms, deadline_message,
    call_log, counts: deps.metrics.call_counts(service, method),
  };
  return (call, callback) => serve(endpoint, handler, call, callback);
}

/** One call: rate limits, authentication and the handler, under the deadline cap. */
function serve<Req, Res>(
  endpoint: Endpoint,
  handler: Handler<Req, Res>,
  call: grpc.ServerUnaryCall<Req, Res>,
  callback: grpc.sendUnaryData<Res>,
): void {
  const { deps, labels } = endpoint;
  const started_ms = performance.now();
  const trace_id = trace_id_of(call.metadata);
  const caller: Caller = { trace_id, user_id: undefined, role: undefined };
  // Exactly one answer per call: the handler's, or DEADLINE_EXCEEDED if the cap comes first.
  let answered = false;
  let timer: NodeJS.Timeout | undefined;
  const done = (code: grpc.status): void => {
    assert(!answered, 'one answer per call');
    answered = true;
    if (timer !== undefined) clearTimeout(timer);
    deps.metrics.grpc_duration.observe(labels, (performance.now() - started_ms) / 1000);
    endpoint.counts.inc(grpc.status[code]);
  };
  // The handler runs in the call's scope: a forward to another node (src/cluster) carries
  // this call's deadline (the client's or the cap, the earlier) and trace id.
  const scope = { deadline_ms_epoch: scope_deadline_ms(call, endpoint.cap_ms), trace_id };
  const promise = run_in_call_scope(scope, () => begin(deps, handler, call, caller));
  const refuse = (error: unknown): void => {
    const mapped = map_error(error);
    done(mapped.code);
    const metadata = count_refusal(deps.metrics, error);
    log_refusal(endpoint, caller, error, mapped);
    callback(metadata === undefined
      ? { code: mapped.code, details: mapped.details }
      : { code: mapped.code, details: mapped.details, metadata });
  };
  timer = cap_deadline(call, endpoint.cap_ms, () => {
    if (!answered) refuse(new DeadlineCappedError(endpoint.deadline_message));
  });
  promise.then((response) => {
    if (answered) {
      // The client was already told DEADLINE_EXCEEDED; the work completed anyway.
      log_late_success(endpoint, caller);
      return;
    }
    done(grpc.status.OK);
    log_success(endpoint, caller);
    callback(null, response);
  }, (error: unknown) => {
    if (answered) {
      log_late_refusal(endpoint, caller, error);
      return;
    }
    refuse(error);
  });
}

/** Rate-limits and authenticates the call, then starts the handler; every failure rejects. */
function begin<Req, Res>(
  deps: EdgeDeps, handler: Handler<Req, Res>, call: grpc.ServerUnaryCall<Req, Res>, caller: Caller,
): Promise<Res> {
  try {
    // Per ip first, so that floods without (valid) tokens are limited too.
    const ip = ip_of_peer_memo(call.getPeer());
    take(deps.limits.ip, ip, 'ip', `ip ${ip}`);
    const principal = principal_of(call.metadata, deps.keys, deps.tokens);
    caller.user_id = principal.user_id;
    caller.role = principal.role;
    if (principal.role === 'customer') {
      take(deps.limits.user, principal.user_id, 'user', `user ${principal.user_id}`);
    }
    return handler(call.request, {
      principal,
      trace_id: caller.trace_id,
      peer_ip: ip,
      idempotency_key: idempotency_key_of(call.metadata),
      admission_token: admission_token_metadata(call.metadata),
    });
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Arms the deadline cap, unless the client's own deadline comes first: a client deadline
 * earlier than the cap is grpc-js's to enforce (it answers DEADLINE_EXCEEDED itself); without
 * one, or with a later one, the cap applies.
 */
function cap_deadline(
  call: grpc.ServerUnaryCall<unknown, unknown>, cap_ms: number, expire: () => void,
): NodeJS.Timeout | undefined {
  const deadline = call.getDeadline();
  const client_deadline_ms = deadline instanceof Date ? deadline.getTime() : deadline;
  if (client_deadline_ms <= Date.now() + cap_ms) return undefined;
  const timer = setTimeout(expire, cap_ms);
  timer.unref();
  return timer;
}

/** When the call's answer is due, ms since the epoch: the client's deadline or the cap. */
function scope_deadline_ms(call: grpc.ServerUnaryCall<unknown, unknown>, cap_ms: number): number {
  const deadline = call.getDeadline();
  const client_deadline_ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Math.min(client_deadline_ms, Date.now() + cap_ms);
}

/** Counts a refusal; a rate-limited call's answer carries retry-after-ms (returned). */
function count_refusal(metrics: Metrics, error: unknown): grpc.Metadata | undefined {
  if (error instanceof MailboxFullError) metrics.mailbox_rejections.inc();
  const limit = limit_of(error);
  if (limit !== undefined) metrics.limit_refusals.inc({ limit });
  if (error instanceof UnauthenticatedError) metrics.auth_refusals.inc({ reason: error.reason });
  let metadata: grpc.Metadata | undefined;
  if (error instanceof RateLimitedError) {
    metrics.rate_limited.inc({ scope: error.scope });
    metadata = new grpc.Metadata();
    metadata.set('retry-after-ms', String(error.retry_after_ms));
  }
  return metadata;
}

function log_refusal(
  endpoint: Endpoint, caller: Caller, error: unknown, mapped: MappedStatus,
): void {
  const { deps: { log }, service, method, cap_ms } = endpoint;
  const { trace_id, user_id } = caller;
  if (mapped.internal) {
    log.error({ trace_id, service, method, err: error }, 'internal error');
  } else if (error instanceof DeadlineCappedError) {
    log.warn({ trace_id, service, method, user_id, deadline_ms_max: cap_ms },
      'no answer within deadline_ms_max: DEADLINE_EXCEEDED');
  } else {
    const code = grpc.status[mapped.code];
    log.debug({ trace_id, service, method, user_id, code, details: mapped.details },
      'call refused');
  }
}

function log_success(endpoint: Endpoint, caller: Caller): void {
  const log = endpoint.call_log;
  const { trace_id, user_id, role } = caller;
  // Never the request or the token: ids only. Payment tokens will pass through here.
  if (endpoint.options.changes_state === true) {
    log.info({ trace_id, user_id, role, code: 'OK' }, 'state changed');
  } else {
    log.debug({ trace_id, code: 'OK' }, 'call');
  }
}

function log_late_success(endpoint: Endpoint, caller: Caller): void {
  if (endpoint.options.changes_state !== true) return;
  const { trace_id, user_id, role } = caller;
  endpoint.call_log.info({ trace_id, user_id, role, code: 'OK', answered: 'DEADLINE_EXCEEDED' },
    'state changed after the deadline answer');
}

function log_late_refusal(endpoint: Endpoint, caller: Caller, error: unknown): void {
  const { deps: { log }, service, method } = endpoint;
  const { trace_id, user_id } = caller;
  const code = grpc.status[map_error(error).code];
  log.debug({ trace_id, service, method, user_id, code, answered: 'DEADLINE_EXCEEDED' },
    'call refused after the deadline answer');
}
