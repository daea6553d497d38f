// Wraps a handler into a grpc-js unary handler: authenticate, run, map errors, count, log.
// Decides nothing itself.
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.js';
import { principal_of, trace_id_of, type CallContext } from './context.js';
import { map_error } from './status.js';

export interface EdgeDeps {
  secret: Buffer;
  metrics: Metrics;
  log: Logger;
}

export type Handler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;

export interface UnaryOptions {
  /** The call changes state: its success is logged at info (who, what, trace id), not debug. */
  changes_state?: boolean;
}

export function unary<Req, Res>(
  deps: EdgeDeps, service: string, method: string, handler: Handler<Req, Res>, options: UnaryOptions = {},
): grpc.handleUnaryCall<Req, Res> {
  const labels = { service, method };
  return (call, callback) => {
    const stop = deps.metrics.grpc_duration.startTimer(labels);
    const trace_id = trace_id_of(call.metadata);
    const done = (code: grpc.status): void => {
      stop();
      deps.metrics.grpc_requests.inc({ ...labels, code: grpc.status[code] });
    };
    let promise: Promise<Res>;
    let user_id: string | undefined;
    let role: string | undefined;
    try {
      const principal = principal_of(call.metadata, deps.secret);
      user_id = principal.user_id;
      role = principal.role;
      promise = handler(call.request, { principal, trace_id });
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then((response) => {
      done(grpc.status.OK);
      // Never the request or the token: ids only. Payment tokens will pass through here.
      if (options.changes_state === true) deps.log.info({ trace_id, service, method, user_id, role, code: 'OK' }, 'state changed');
      else deps.log.debug({ trace_id, service, method, code: 'OK' }, 'call');
      callback(null, response);
    }, (error: unknown) => {
      const mapped = map_error(error);
      done(mapped.code);
      if (error instanceof Error && error.name === 'MailboxFullError') deps.metrics.mailbox_rejections.inc();
      if (mapped.internal) deps.log.error({ trace_id, service, method, err: error }, 'internal error');
      else deps.log.debug({ trace_id, service, method, user_id, code: grpc.status[mapped.code], details: mapped.details }, 'call refused');
      callback({ code: mapped.code, details: mapped.details });
    });
  };
}
