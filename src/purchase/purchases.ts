// The purchase flow on the main thread: routes each step to the partition that owns the order
// and makes the gateway calls between the actor's decisions (an actor never awaits). Knows
// tickets and payments, not gRPC: src/grpc translates into these calls. Decides nothing the
// actor could decide; what it adds is I/O ordering: intent journaled → gateway → outcome
// journaled.
import { InvalidArgumentError, OrderExpiredError } from '../actors/errors.js';
import { no_signals } from '../actors/fraud.js';
import * as L from '../actors/limits.js';
import {
  newest_first, type CreateDraftRequest, type ListOrdersRequest, type OrderDetails, type OrderView,
} from '../actors/orders.js';
import type { AuthorizeView, RefundView, Settlement } from '../actors/payments.js';
import { assert } from '../util/assert.js';
import type { Router } from '../route/router.js';
import { GatewayUnavailableError } from './errors.js';
import type { FraudSignalTracker } from './fraud_signals.js';
import type { PaymentGateway } from './gateway.js';

/** Who is calling: `acting_user` is the only user it may act for, null for service and admin. */
export interface Caller { user_id: string; acting_user: string | null }

export interface PurchaseLog {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
}

export interface ListOrdersPage { orders: OrderDetails[]; next_page_token: string }

export class Purchases {
  constructor(
    private readonly route: Router,
    private readonly gateway: PaymentGateway,
    private readonly signals: FraudSignalTracker,
    private readonly log: PurchaseLog,
    private readonly now_ms: () => number = Date.now,
  ) {}

  /** Idempotency keys are per caller, method and resource (the order for Authorize, the
   *  payment for Refund): one caller cannot replay another's, and whether a key was seen never
   *  depends on which partition another resource landed in. */
  private scope(method: string, caller: Caller, resource: string, key: string): string {
    if (key === '') return '';
    if (key.length > L.idempotency_key_length_max || !L.id_pattern.test(key)) {
      throw new InvalidArgumentError(`idempotency-key metadata must be 1..${L.idempotency_key_length_max} of letters, digits and . _ : -`);
    }
    return `${method}\u0000${caller.user_id}\u0000${resource}\u0000${key}`;
  }

  create_draft(req: Omit<CreateDraftRequest, 'trace_id'>, trace_id: string): Promise<OrderView> {
    return this.route.call('create_draft', { ...req, trace_id });
  }

  /** CreateDraftFromHold: the hold's owner (or a service) buys what it selected. */
  create_draft_from_hold(
    req: { hold_id: string; promo_code: string; idempotency_key: string }, caller: Caller,
    trace_id: string,
  ): Promise<OrderView> {
    return this.route.call('create_draft_from_hold', {
      ...req, actor_user_id: caller.acting_user, trace_id,
    });
  }

  /** ReturnSeats (service/admin, checked at the edge): the seats go free and the refund is owed
   *  in one decision; then the refund is made at the gateway and settled, as Refund does. If
   *  the gateway is down the seats stay returned and the settlement loop makes the refund. */
  async return_seats(
    req: {
      order_id: string; seat_ids: string[]; refund_amount_micros: number; currency: string;
      idempotency_key: string;
    },
    caller: Caller, trace_id: string,
  ): Promise<OrderDetails> {
    if (req.idempotency_key === '') throw new InvalidArgumentError('idempotency_key is required');
    const key = this.scope('return_seats', caller, req.order_id, req.idempotency_key);
    const r = await this.route.call('return_seats', { ...req, idempotency_key: key, trace_id });
    if (r.k === 'done') return r.order;
    try {
      await this.gateway.refund({
        reference: r.refund_id, gateway_ref: r.gateway_ref, amount_micros: r.amount_micros,
      });
    } catch (error) {
      if (!(error instanceof GatewayUnavailableError)) throw error;
      throw new GatewayUnavailableError(
        `${error.message}: the seats of order ${req.order_id} are returned and refund `
          + `${r.refund_id} is recorded; it is sent when the gateway answers; a retry with the `
          + 'same idempotency_key returns the result',
        { cause: error },
      );
    }
    await this.route.call('settle', {
      action: 'refunded', payment_id: r.payment_id, refund_id: r.refund_id, idempotency_key: key,
    });
    return this.route.call('get_order', { order_id: req.order_id, actor_user_id: null });
  }

  async score(req: { order_id: string; user_id: string; ip: string; device_id: string }, trace_id: string): Promise<{ risk_score: number; decision: string }> {
    // Every attempt counts toward velocity, refused ones too: probing is what velocity catches.
    const signals = this.signals.observe(req.user_id, req.ip, req.device_id, this.now_ms());
    const r = await this.route.call('score', {
      order_id: req.order_id, user_id: req.user_id, signals,
    });
    this.log.info({ trace_id, order_id: req.order_id, risk_score: r.risk_score, decision: r.decision, reasons: r.reasons }, 'fraud decision');
    return { risk_score: r.risk_score, decision: r.decision };
  }

  async authorize(
    req: { order_id: string; amount_micros: number; currency: string; token: string },
    caller: Caller, idempotency_key: string, peer_ip: string, trace_id: string,
  ): Promise<AuthorizeView> {
    const key = this.scope('authorize', caller, req.order_id, idempotency_key);
    // Without a recorded decision Authorize scores with what it knows: a customer's own velocity
    // and connection. A service's connection says nothing about the buyer (services should call
    // ScoreTransaction with the buyer's ip and device first), so it gets the order rules only.
    // Counted toward velocity only when it is scored: an order a service already scored was
    // counted by ScoreTransaction, and one purchase must not count twice.
    const signals = caller.acting_user !== null ? this.signals.peek(caller.acting_user, peer_ip, '', this.now_ms()) : no_signals;
    const begin = await this.route.call('authorize_begin', {
      order_id: req.order_id, amount_micros: req.amount_micros, currency: req.currency,
      actor_user_id: caller.acting_user, idempotency_key: key, signals, trace_id,
    });
    if (begin.scored === true && caller.acting_user !== null) this.signals.observe(caller.acting_user, peer_ip, '', this.now_ms());
    if (begin.k === 'done') return begin.reply;
    let outcome;
    try {
      outcome = await this.gateway.authorize({ reference: begin.payment_id, amount_micros: begin.amount_micros, currency: begin.currency, token: req.token });
    } catch (error) {
      if (!(error instanceof GatewayUnavailableError)) throw error;
      throw new GatewayUnavailableError(
        `${error.message}: payment ${begin.payment_id} is PENDING; retry with the same idempotency-key, or it is voided after ${L.authorization_pending_ms_max / 1000} s`,
        { cause: error },
      );
    }
    const end = await this.route.call('authorize_end', { payment_id: begin.payment_id, outcome });
    assert(end.k === 'done', 'authorize_end settles');
    return end.reply;
  }

  async confirm_order(req: { order_id: string; payment_id: string }, caller: Caller, trace_id: string): Promise<OrderView> {
    const r = await this.route.call('confirm_order', {
      order_id: req.order_id, payment_id: req.payment_id, actor_user_id: caller.acting_user,
      trace_id,
    });
    switch (r.k) {
      case 'done':
        return r.order;
      case 'capture':
        // The seats are sold and the capture journaled; if the gateway is down now, the
        // settlement loop captures later. The order is CONFIRMED either way.
        await this.settle({ action: 'capture', payment_id: r.payment_id, refund_id: '', gateway_ref: r.gateway_ref, amount_micros: r.amount_micros, begin: false }, trace_id);
        return r.order;
      case 'void_then_fail':
        await this.settle({ action: 'void', payment_id: r.payment_id, refund_id: '', gateway_ref: r.gateway_ref, amount_micros: 0, begin: false }, trace_id);
        throw new OrderExpiredError(r.message);
    }
  }

  async capture(payment_id: string, caller: Caller): Promise<{ payment_id: string; status: string }> {
    const r = await this.route.call('capture', { payment_id, actor_user_id: caller.acting_user });
    if (r.k === 'done') return { payment_id: r.payment_id, status: r.status };
    // The capture ConfirmOrder journaled and a crash or outage left owed: finish it now.
    const captured = await this.settle({ action: 'capture', payment_id, refund_id: '', gateway_ref: r.gateway_ref, amount_micros: r.amount_micros, begin: false });
    if (!captured) throw new GatewayUnavailableError(`payment gateway unavailable: the capture of payment ${payment_id} is recorded and will be made when the gateway answers; retry Capture later`);
    return { payment_id, status: 'CAPTURED' };
  }

  async refund(req: { payment_id: string; amount_micros: number; currency: string }, caller: Caller, idempotency_key: string, trace_id: string): Promise<RefundView> {
    const key = this.scope('refund', caller, req.payment_id, idempotency_key);
    const r = await this.route.call('refund_begin', {
      payment_id: req.payment_id, amount_micros: req.amount_micros, currency: req.currency,
      idempotency_key: key, trace_id,
    });
    if (r.k === 'done') return r.reply;
    try {
      await this.gateway.refund({ reference: r.refund_id, gateway_ref: r.gateway_ref, amount_micros: r.amount_micros });
    } catch (error) {
      if (!(error instanceof GatewayUnavailableError)) throw error;
      throw new GatewayUnavailableError(
        `${error.message}: refund ${r.refund_id} is recorded and will be sent when the gateway answers; a retry with the same idempotency-key returns its result`,
        { cause: error },
      );
    }
    const settled = await this.route.call('settle', {
      action: 'refunded', payment_id: req.payment_id, refund_id: r.refund_id, idempotency_key: key,
    });
    assert('refund_id' in settled, 'a settled refund answers with its refund');
    return settled;
  }

  get_order(order_id: string, caller: Caller): Promise<OrderDetails> {
    return this.route.call('get_order', { order_id, actor_user_id: caller.acting_user });
  }

  async list_orders(user_id: string, page_size: number, page_token: string): Promise<ListOrdersPage> {
    const limit = page_size === 0 ? 20 : page_size;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > L.list_orders_page_max) {
      throw new InvalidArgumentError(`page_size must be 0 (20) or 1..${L.list_orders_page_max}`);
    }
    const cursor = decode_page_token(page_token);
    const request: ListOrdersRequest = {
      user_id, before_ms: cursor.ms, before_order_id: cursor.id, limit,
    };
    // A user's orders are spread over the partitions of their events: ask every partition for
    // its newest page and merge (one batched message per worker, not per partition).
    const pages = await Promise.all(Array.from({ length: this.route.partition_count },
      (_, p) => this.route.call_partition(p, 'list_orders', request)));
    const merged = pages.flat().sort(newest_first).slice(0, limit);
    const last = merged.at(-1);
    const next_page_token = merged.length === limit && last !== undefined ? encode_page_token(last.created_at_ms, last.id) : '';
    return { orders: merged, next_page_token };
  }

  /** One gateway call owed by a partition, then its outcome journaled. Gateway outages are
   *  logged and left for the next settlement pass. Returns whether it completed. */
  async settle(item: Settlement, trace_id = ''): Promise<boolean> {
    try {
      let gateway_ref = item.gateway_ref;
      if (item.begin) {
        const begun = await this.route.call('begin_void', { payment_id: item.payment_id });
        if (!begun.voiding) return false;
        gateway_ref = begun.gateway_ref;
      }
      const call = { reference: item.action === 'refund' ? item.refund_id : item.payment_id, gateway_ref, amount_micros: item.amount_micros };
      if (item.action === 'capture') await this.gateway.capture(call);
      else if (item.action === 'void') await this.gateway.void(call);
      else await this.gateway.refund(call);
      const action = item.action === 'capture' ? 'captured' : item.action === 'void' ? 'voided' : 'refunded';
      await this.route.call('settle', {
        action, payment_id: item.payment_id, refund_id: item.refund_id, idempotency_key: '',
      });
      return true;
    } catch (error) {
      if (!(error instanceof GatewayUnavailableError)) throw error;
      this.log.warn({ trace_id, payment_id: item.payment_id, action: item.action, err: error.message }, 'gateway unavailable; the settlement loop retries');
      return false;
    }
  }

  /** One settlement pass over every partition: finishes captures, voids and refunds left open
   *  by crashes or outages, and voids authorizations nobody will confirm. */
  async settle_open(partitions?: number[]): Promise<{ due: number; settled: number }> {
    let due = 0;
    let settled = 0;
    const all = Array.from({ length: this.route.partition_count }, (_, p) => p);
    for (const p of partitions ?? all) {
      const items = await this.route.call_partition(p, 'open_settlements', {
        limit: L.settlements_per_request_max,
      });
      due += items.length;
      for (const item of items) if (await this.settle(item)) settled++;
    }
    return { due, settled };
  }
}

export function encode_page_token(ms: number, id: string): string {
  return Buffer.from(JSON.stringify([ms, id])).toString('base64url');
}

function decode_page_token(token: string): { ms: number; id: string } {
  if (token === '') return { ms: Number.MAX_SAFE_INTEGER, id: '' };
  try {
    const [ms, id] = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as [unknown, unknown];
    if (typeof ms === 'number' && Number.isSafeInteger(ms) && typeof id === 'string' && id.length <= 64) return { ms, id };
  } catch {
    // fall through to the refusal
  }
  throw new InvalidArgumentError('page_token is not one this server issued');
}
