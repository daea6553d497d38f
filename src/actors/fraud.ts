// Fraud scoring: deterministic, explainable rules. Every rule that fires adds its weight and a
// reason; the score is the capped sum. The velocity signals are counted where every call passes
// (src/purchase/fraud_signals.ts); this file only weighs them, so the same inputs always give
// the same decision and the reasons say exactly why.
import { assert } from '../util/assert.js';
import type { FraudDecision, FraudVerdict } from './purchase_state.js';

export interface FraudSignals {
  /** Scoring attempts in the sliding windows, this one included. */
  user_attempts_1m: number;
  user_attempts_1h: number;
  ip_attempts_1m: number;
  device_attempts_1m: number;
  /** Distinct users seen on this ip / device over the last hour. */
  users_on_ip_1h: number;
  users_on_device_1h: number;
  ip_blocked: boolean;
}

export const no_signals: FraudSignals = {
  user_attempts_1m: 1, user_attempts_1h: 1, ip_attempts_1m: 0, device_attempts_1m: 0,
  users_on_ip_1h: 0, users_on_device_1h: 0, ip_blocked: false,
};

/** Thresholds and weights, named so the README and the reasons quote the same numbers. */
export const fraud_rules = {
  user_attempts_1m_max: 5,
  user_attempts_1h_max: 20,
  ip_attempts_1m_max: 30,
  device_attempts_1m_max: 10,
  users_on_ip_1h_max: 20,
  users_on_device_1h_max: 3,
  order_value_high_micros: 1_000_000_000,
  order_value_very_high_micros: 5_000_000_000,
  seats_per_order_high: 8,
  review_score_min: 0.5,
  decline_score_min: 0.8,
} as const;

export function score(signals: FraudSignals, order: { total_micros: number; seat_count: number }, at_ms: number): FraudDecision {
  assert(order.seat_count > 0 && order.total_micros >= 0, 'scored orders have seats and a total');
  const r = fraud_rules;
  const reasons: string[] = [];
  let sum = 0;
  const rule = (fires: boolean, weight: number, reason: string): void => {
    if (!fires) return;
    sum += weight;
    reasons.push(reason);
  };
  rule(signals.ip_blocked, 1, 'ip is on the blocklist');
  rule(signals.user_attempts_1m > r.user_attempts_1m_max, 0.3, `user made ${signals.user_attempts_1m} attempts in 1 min (> ${r.user_attempts_1m_max})`);
  rule(signals.user_attempts_1h > r.user_attempts_1h_max, 0.3, `user made ${signals.user_attempts_1h} attempts in 1 h (> ${r.user_attempts_1h_max})`);
  rule(signals.ip_attempts_1m > r.ip_attempts_1m_max, 0.3, `ip made ${signals.ip_attempts_1m} attempts in 1 min (> ${r.ip_attempts_1m_max})`);
  rule(signals.device_attempts_1m > r.device_attempts_1m_max, 0.3, `device made ${signals.device_attempts_1m} attempts in 1 min (> ${r.device_attempts_1m_max})`);
  rule(signals.users_on_ip_1h > r.users_on_ip_1h_max, 0.3, `${signals.users_on_ip_1h} users on one ip in 1 h (> ${r.users_on_ip_1h_max})`);
  rule(signals.users_on_device_1h > r.users_on_device_1h_max, 0.5, `${signals.users_on_device_1h} users on one device in 1 h (> ${r.users_on_device_1h_max})`);
  rule(order.total_micros >= r.order_value_very_high_micros, 0.4, `order value ${order.total_micros} micros (>= ${r.order_value_very_high_micros})`);
  rule(order.total_micros >= r.order_value_high_micros && order.total_micros < r.order_value_very_high_micros, 0.2, `order value ${order.total_micros} micros (>= ${r.order_value_high_micros})`);
  rule(order.seat_count >= r.seats_per_order_high, 0.2, `${order.seat_count} seats in one order (>= ${r.seats_per_order_high})`);
  // Two decimals: scores are sums of tenths, and 0.30000000000000004 explains nothing.
  const risk_score = Math.min(1, Math.round(sum * 100) / 100);
  const decision: FraudVerdict = risk_score >= r.decline_score_min ? 'DECLINE' : risk_score >= r.review_score_min ? 'REVIEW' : 'APPROVE';
  assert(risk_score >= 0 && risk_score <= 1, 'risk score in [0, 1]');
  assert((reasons.length === 0) === (risk_score === 0), 'a non-zero score has its reasons');
  return { risk_score, decision, reasons, at_ms };
}
