// ticketing.queue.v1.QueueService: the waiting room (docs/contracts.md "Waiting room").
// Translate (unix seconds on the wire, ms in the partition), check transport limits, authorize,
// route. The event's partition decides everything about its queue (src/actors/queue*.ts): the
// draw, the admissions, the receipts and the tokens are made and signed there, never here.
import type * as grpc from '@grpc/grpc-js';
import * as L from '../actors/limits.js';
import type {
  JoinQueueReply, QueueFairness, QueuePosition, QueueReceipt,
} from '../actors/queue.js';
import { acting_user, require_role, require_self } from '../auth/policy.js';
import type { Router } from '../route/router.js';
import { assert } from '../util/assert.js';
import { id, int64, str } from './convert.js';
import { service_of } from './proto.js';
import { QueueWatch } from './queue_watch.js';
import { server_stream } from './server_stream.js';
import { unary, type EdgeDeps } from './unary.js';

export const queue_service_name = 'ticketing.queue.v1.QueueService';

/** The latest unix second whose ms still is a safe integer: times past it are refused here,
 *  before the partition multiplies them by 1000. */
export const queue_unix_seconds_max = Math.floor(Number.MAX_SAFE_INTEGER / 1000);

/** Longest ticket id accepted (ids are `ticket_<partition>_<22 chars>`, 34 at most). */
const ticket_id_length_max = 64;

interface ConfigureIn {
  event_id: unknown; opens_at_unix: unknown; sale_starts_at_unix: unknown;
  admit_per_minute: unknown; admission_ttl_seconds: unknown; service_bypass: unknown;
}

interface RateIn { event_id: unknown; admit_per_minute: unknown }
interface JoinIn { event_id: unknown; user_id: unknown; device_id: unknown }

const join_retry_note = 'the outcome is unknown: the entry may or may not have been made. '
  + 'Retrying is safe: one entry per user per event, a repeat returns the same entry and receipt';

const s_of = (ms: number): string => String(Math.floor(ms / 1000));

export function receipt_out(r: QueueReceipt) {
  return {
    body: r.body, signature: Buffer.from(r.signature), event_id: r.event_id,
    ticket_id: r.ticket_id, seq: String(r.seq), joined_at_unix_ms: String(r.joined_at_ms),
    user_hash: r.user_hash, chain: r.chain,
  };
}

export function join_out(r: JoinQueueReply) {
  return { ticket_id: r.ticket_id, receipt: receipt_out(r.receipt), created: r.created };
}

export type PositionWire = ReturnType<typeof position_out>;

export function position_out(p: QueuePosition) {
  return {
    ticket_id: p.ticket_id, event_id: p.event_id, position: String(p.position),
    admitted: p.admitted, admission_token: p.admission_token,
    admission_expires_at_unix: p.admission_expires_at_ms > 0
      ? s_of(p.admission_expires_at_ms) : '0',
    estimated_wait_seconds: String(p.estimated_wait_seconds), drawn: p.drawn, used: p.used,
    admitted_count: String(p.admitted_count),
  };
}

export function fairness_out(f: QueueFairness) {
  return {
    event_id: f.event_id, seed_commitment: f.seed_commitment, seed: f.seed, drawn: f.drawn,
    early_count: String(f.early_count), early_chain_head: f.early_chain_head,
    receipt_public_key: f.receipt_public_key, opens_at_unix: s_of(f.opens_at_ms),
    sale_starts_at_unix: s_of(f.sale_starts_at_ms), admit_per_minute: f.admit_per_minute,
    joined: String(f.joined), admitted: String(f.admitted), scheme: f.scheme,
    pace_pct: f.pace_pct,
  };
}

const rate_of = (value: unknown, min: number): number =>
  int64(value ?? 0, 'admit_per_minute', min, L.queue_admit_per_minute_max);

/** ConfigureQueue's request in the partition's units (ms), range-checked for transport. */
function configure_in(req: ConfigureIn) {
  const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
  const opens_at_s = int64(req.opens_at_unix ?? '0', 'opens_at_unix', 0, queue_unix_seconds_max);
  const starts_at_s = int64(
    req.sale_starts_at_unix ?? '0', 'sale_starts_at_unix', 0, queue_unix_seconds_max,
  );
  const admit_per_minute = rate_of(req.admit_per_minute, 1);
  const admission_ttl_seconds = int64(
    req.admission_ttl_seconds ?? 0, 'admission_ttl_seconds', 1, L.queue_admission_ttl_seconds_max,
  );
  return {
    event_id, opens_at_ms: opens_at_s * 1000, sale_starts_at_ms: starts_at_s * 1000,
    admit_per_minute, admission_ttl_seconds, service_bypass: req.service_bypass === true,
  };
}

const admin_retry = (what: string): string => `the outcome is unknown: ${what} may or may not `
  + 'have been applied, and may still be. Retrying the identical request is safe';

export function queue_service(
  deps: EdgeDeps, router: Router, watch: QueueWatch, encode: (p: PositionWire) => Buffer,
) {
  const s = 'QueueService';
  return {
    ConfigureQueue: unary(deps, s, 'ConfigureQueue', async (req: ConfigureIn, ctx) => {
      require_role(ctx.principal, ['admin'], 'ConfigureQueue');
      return router.call('configure_queue', { ...configure_in(req), trace_id: ctx.trace_id });
    }, {
      changes_state: true,
      retry_note: `${admin_retry('the queue')}: a repeat with the same settings answers created=false`,
    }),
    SetAdmissionRate: unary(deps, s, 'SetAdmissionRate', async (req: RateIn, ctx) => {
      require_role(ctx.principal, ['admin'], 'SetAdmissionRate');
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      const admit_per_minute = rate_of(req.admit_per_minute, 0);
      const r = await router.call('set_admission_rate', {
        event_id, admit_per_minute, trace_id: ctx.trace_id,
      });
      return { admit_per_minute: r.admit_per_minute, admitted: String(r.admitted) };
    }, { changes_state: true, retry_note: admin_retry('the rate') }),
    CloseQueue: unary(deps, s, 'CloseQueue', async (req: { event_id: unknown }, ctx) => {
      require_role(ctx.principal, ['admin'], 'CloseQueue');
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      return router.call('close_queue', { event_id, trace_id: ctx.trace_id });
    }, { changes_state: true, retry_note: admin_retry('the close') }),
    Join: unary(deps, s, 'Join', async (req: JoinIn, ctx) => {
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      const user_id = id(req.user_id, 'user_id', L.user_id_length_max);
      require_self(ctx.principal, user_id);
      // Only hashed (into the receipt's user_hash), never echoed or stored as given.
      const device_id = str(req.device_id ?? '', 'device_id', L.queue_device_id_length_max);
      const r = await router.call('join_queue', {
        event_id, user_id, device_id, trace_id: ctx.trace_id,
      });
      return join_out(r);
    }, { changes_state: true, retry_note: join_retry_note }),
    GetPosition: unary(deps, s, 'GetPosition', async (req: { ticket_id: unknown }, ctx) => {
      const ticket_id = id(req.ticket_id, 'ticket_id', ticket_id_length_max);
      const r = await router.call('queue_position', {
        ticket_id, actor_user_id: acting_user(ctx.principal),
      });
      return position_out(r);
    }),
    WatchPosition: watch_position_rpc(deps, watch, encode),
    GetFairness: unary(deps, s, 'GetFairness', async (req: { event_id: unknown }) => {
      const event_id = id(req.event_id, 'event_id', L.event_id_length_max);
      return fairness_out(await router.call('queue_fairness', { event_id }));
    }),
  };
}

/** Encodes Positions for WatchPosition (server_stream writes bytes): call once, before the
 *  QueueService is added to the server; the method's serializer then passes bytes through. */
export function position_encoder(grpc_object: grpc.GrpcObject): (p: PositionWire) => Buffer {
  const method = service_of(grpc_object, queue_service_name)['WatchPosition'];
  assert(method !== undefined && method.responseStream, 'WatchPosition is a server stream');
  const encode = method.responseSerialize.bind(method);
  method.responseSerialize = (value: unknown) => {
    assert(Buffer.isBuffer(value), 'WatchPosition writes encoded positions only');
    return value;
  };
  return (p) => encode(p);
}

function watch_position_rpc(
  deps: EdgeDeps, watch: QueueWatch, encode: (p: PositionWire) => Buffer,
): grpc.handleServerStreamingCall<{ ticket_id: unknown }, Buffer> {
  type Req = { ticket_id: unknown };
  return server_stream(deps, 'QueueService', 'WatchPosition', (req: Req, ctx, call) => {
    const ticket_id = id(req.ticket_id, 'ticket_id', ticket_id_length_max);
    const request = { ticket_id, actor_user_id: acting_user(ctx.principal) };
    const handle = watch.subscribe(request, {
      write: (position) => call.write(encode(position_out(position))),
      end: (error) => call.end(error),
    });
    call.on_drain(() => handle.drained());
    call.on_cancel(() => handle.closed());
  });
}
