// The hold gate of the waiting room: while an event's queue is active, every hold-making decision
// (decide_reserve, decide_create_draft, decide_reserve_best, decide_reserve_ga) calls
// queue_gate before any seat changes and puts the record it returns into the same decision, so
// the token's use and the hold commit together (a replay of the token, or a second device, finds
// it used). A refused hold throws, so it journals nothing and the token stays unused.
import { assert } from '../util/assert.js';
import {
  AdmissionTokenExpiredError, AdmissionTokenInvalidError, AdmissionTokenUsedError,
  QueueAdmissionRequiredError,
} from './errors.js';
import * as L from './limits.js';
import { parse_ticket_id, parse_token, ticket_id_of, token_mac_ok } from './queue_crypto.js';
import type { QueueRecord } from './queue_records.js';
import {
  is_active, position_of_seq, token_expiry_ms, type QueueState, type QueuesState,
} from './queue_state.js';

/** What the gate reads of a hold request (the four hold requests carry these fields). */
export interface GatedRequest {
  event_id: string;
  user_id: string;
  /** The `admission-token` metadata; '' or absent: none. */
  admission_token?: string;
  /** The caller is a service (not a buyer). */
  by_service?: boolean;
}

function join_hint(event_id: string): string {
  return `event ${event_id} sells through its waiting room: join it `
    + '(ticketing.queue.v1.QueueService/Join) and send the admission-token metadata '
    + 'GetPosition gives';
}

function invalid(event_id: string, why: string): AdmissionTokenInvalidError {
  return new AdmissionTokenInvalidError(`admission token ${why}; join the queue of event `
    + `${event_id} (ticketing.queue.v1.QueueService/Join) and send the token GetPosition gives`);
}

/** The records admitting this hold: none when the event has no active queue (or a service may
 *  bypass it), else the token's queue_token_used. Throws the refusal otherwise. */
export function queue_gate(
  queues: QueuesState, req: GatedRequest, now_ms: number,
): QueueRecord[] {
  const queue = queues.by_event.get(req.event_id);
  if (!is_active(queue)) return [];
  if (req.by_service === true && queue.settings.service_bypass) return [];
  const token = req.admission_token ?? '';
  if (token === '') throw new QueueAdmissionRequiredError(join_hint(req.event_id));
  const seq = verified_seq(queue, token, req.user_id, now_ms);
  assert(seq >= 1 && seq <= queue.count && queue.entries.used[seq] === 0,
    'the gate admits an unused entry');
  return [{ t: 'queue_token_used', event_id: req.event_id, seq }];
}

/** The seq of the entry `token` admits for `user_id` now; the refusal otherwise, in the
 *  contract's order: shape and MACs, event, user, expiry, use. */
function verified_seq(queue: QueueState, token: string, user_id: string, now_ms: number): number {
  const event_id = queue.event_id;
  if (token.length > L.admission_token_length_max) throw invalid(event_id, 'is too long');
  const parts = parse_token(token);
  const ticket = parts === null ? null : parse_ticket_id(parts.ticket_id);
  if (parts === null || ticket === null) throw invalid(event_id, 'is not an admission token');
  // Another event's ticket names another queue (or, on another partition, fails its MAC).
  if (ticket.queue_no !== queue.queue_no || ticket.seq < 1 || ticket.seq > queue.count
    || ticket_id_of(queue_partition(parts.ticket_id), queue.keys.ticket_key, queue.queue_no,
      ticket.seq) !== parts.ticket_id) {
    throw invalid(event_id, 'is not for this event');
  }
  // The MAC binds user and event: someone else's token fails here.
  if (!token_mac_ok(queue.keys.token_key, parts, user_id, event_id)) {
    throw invalid(event_id, `was not issued to user ${user_id} for this event`);
  }
  const position = position_of_seq(queue, ticket.seq);
  if (position === 0 || position > queue.admitted
    || token_expiry_ms(queue, position) !== parts.expires_at_ms) {
    throw invalid(event_id, 'does not match its admission');
  }
  if (now_ms >= parts.expires_at_ms) {
    throw new AdmissionTokenExpiredError(`admission token expired at ${parts.expires_at_ms} ms `
      + `(admission_ttl_seconds ${queue.settings.admission_ttl_seconds}); join the queue of `
      + `event ${event_id} again (ticketing.queue.v1.QueueService/Join)`);
  }
  if (queue.entries.used[ticket.seq] !== 0) {
    throw new AdmissionTokenUsedError('admission token was used already (one hold per '
      + `admission); join the queue of event ${event_id} again `
      + '(ticketing.queue.v1.QueueService/Join)');
  }
  return ticket.seq;
}

/** The partition a ticket id names (its shape was checked by parse_ticket_id). */
function queue_partition(ticket_id: string): number {
  return Number(ticket_id.split('_')[1]);
}
