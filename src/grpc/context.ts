// Per-call context: who is calling (from the bearer token) and the trace id.
import type * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { FieldTooLongError } from '../actors/errors.js';
import { admission_token_length_max } from '../actors/limits.js';
import { UnauthenticatedError } from '../auth/errors.js';
import { acting_user } from '../auth/policy.js';
import { verify_token, type Principal, type VerificationKeys } from '../auth/token.js';
import type { VerifiedTokens } from '../auth/token_cache.js';
import type { Caller } from '../purchase/purchases.js';

/** The purchase flow's view of the caller: the user it may act for (customers), or null for
 *  service and admin tokens, as the auth policy says. */
export function caller_of(principal: Principal): Caller {
  return { user_id: principal.user_id, acting_user: acting_user(principal) };
}

export interface CallContext {
  principal: Principal;
  trace_id: string;
  /** The client's ip address (as the rate limiter sees it). */
  peer_ip: string;
  /** `idempotency-key` metadata, '' when absent (checked where it is used). */
  idempotency_key: string;
  /** `admission-token` metadata (the waiting room's), '' when absent (checked where used:
   *  admission_token_of). */
  admission_token: string;
}

/** The `admission-token` metadata value, '' when absent. */
export function admission_token_metadata(metadata: grpc.Metadata): string {
  const value = metadata.get('admission-token')[0];
  return typeof value === 'string' ? value : '';
}

/** What a hold-making RPC passes to the partition for the waiting room: the token as given
 *  (the partition verifies it) and whether the caller is a service (a bypass, if the queue's
 *  admin allowed it). Only the length is checked here, before it crosses to a worker. */
export function admission_of(ctx: CallContext): { admission_token: string; by_service: boolean } {
  if (ctx.admission_token.length > admission_token_length_max) {
    throw new FieldTooLongError('admission-token metadata is longer than '
      + `${admission_token_length_max} characters: send the admission_token GetPosition gave`);
  }
  return { admission_token: ctx.admission_token, by_service: ctx.principal.role === 'service' };
}

/** The `idempotency-key` metadata value, '' when absent. */
export function idempotency_key_of(metadata: grpc.Metadata): string {
  const value = metadata.get('idempotency-key')[0];
  return typeof value === 'string' ? value : '';
}

const traceparent_pattern = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** W3C traceparent's trace id when the client sends one, a fresh one otherwise. */
export function trace_id_of(metadata: grpc.Metadata): string {
  const value = metadata.get('traceparent')[0];
  if (typeof value === 'string') {
    const match = traceparent_pattern.exec(value.trim());
    if (match !== null && !/^0+$/.test(match[1]!)) return match[1]!;
  }
  return fresh_trace_id();
}

/** Trace ids drawn per fill of the pool: randomBytes(16) per call was 2.7 % of the main thread
 *  under ghz ReserveTickets (issue 13), mostly the fill's fixed cost; one fill per 256 calls. */
const trace_ids_per_fill = 256;
const trace_id_bytes = 16;
let trace_pool = Buffer.alloc(0);
let trace_offset = 0;

/** 128 random bits as 32 hex digits, from the pool (crypto-strength, as randomBytes). */
function fresh_trace_id(): string {
  if (trace_offset + trace_id_bytes > trace_pool.length) {
    trace_pool = randomBytes(trace_id_bytes * trace_ids_per_fill);
    trace_offset = 0;
  }
  const id = trace_pool.toString('hex', trace_offset, trace_offset + trace_id_bytes);
  trace_offset += trace_id_bytes;
  return id;
}

/** The caller's principal; with `tokens`, a token verified before is not verified again. */
export function principal_of(
  metadata: grpc.Metadata, keys: VerificationKeys, tokens?: VerifiedTokens,
): Principal {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string' || value.length === 0) {
    throw new UnauthenticatedError('missing authorization metadata: send "authorization: Bearer <token>" (ticketing token --user ...)', 'missing');
  }
  const match = /^Bearer (.+)$/i.exec(value);
  if (match === null) throw new UnauthenticatedError('authorization metadata must be "Bearer <token>"', 'malformed');
  const token = match[1]!.trim();
  return tokens === undefined ? verify_token(keys, token) : tokens.principal_of(token);
}
