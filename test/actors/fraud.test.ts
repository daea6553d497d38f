// Fraud rules: each rule fires on its threshold with its reason; the decision bands; the score
// stays in [0, 1]; the same inputs always give the same decision.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fraud_rules, no_signals, score, type FraudSignals } from '../../src/actors/fraud.js';

const small = { total_micros: 50_000_000, seat_count: 2 };
const at = 1_700_000_000_000;
const with_ = (s: Partial<FraudSignals>): FraudSignals => ({ ...no_signals, ...s });

test('a quiet buyer with a small order is approved with no reasons', () => {
  assert.equal(score(no_signals, small, at), { risk_score: 0, decision: 'APPROVE', reasons: [], at_ms: at });
});

test('each velocity rule fires just above its threshold, not at it', () => {
  const r = fraud_rules;
  for (const [field, max] of [['user_attempts_1m', r.user_attempts_1m_max], ['user_attempts_1h', r.user_attempts_1h_max], ['ip_attempts_1m', r.ip_attempts_1m_max], ['device_attempts_1m', r.device_attempts_1m_max], ['users_on_ip_1h', r.users_on_ip_1h_max], ['users_on_device_1h', r.users_on_device_1h_max]] as const) {
    assert.is(score(with_({ [field]: max }), small, at).risk_score, 0, `${field} at ${max} does not fire`);
    const fired = score(with_({ [field]: max + 1 }), small, at);
    assert.ok(fired.risk_score > 0 && fired.reasons.length === 1, `${field} above ${max} fires`);
  }
});

test('blocklisted ip declines outright; many users on one device plus velocity reaches DECLINE; REVIEW in between', () => {
  const blocked = score(with_({ ip_blocked: true }), small, at);
  assert.equal([blocked.risk_score, blocked.decision, blocked.reasons], [1, 'DECLINE', ['ip is on the blocklist']]);
  const farm = score(with_({ users_on_device_1h: 9, user_attempts_1m: 9 }), small, at);
  assert.is(farm.decision, 'DECLINE');
  assert.is(farm.risk_score, 0.8);
  const review = score(with_({ users_on_device_1h: 9 }), small, at);
  assert.equal([review.decision, review.risk_score], ['REVIEW', 0.5]);
});

test('order value and seat count rules, and the score is capped at 1', () => {
  assert.is(score(no_signals, { total_micros: fraud_rules.order_value_high_micros, seat_count: 1 }, at).risk_score, 0.2);
  assert.is(score(no_signals, { total_micros: fraud_rules.order_value_very_high_micros, seat_count: 1 }, at).risk_score, 0.4);
  assert.is(score(no_signals, { total_micros: 1, seat_count: fraud_rules.seats_per_order_high }, at).risk_score, 0.2);
  const everything = score(with_({ ip_blocked: true, user_attempts_1m: 99, users_on_device_1h: 99 }), { total_micros: 9e9, seat_count: 10 }, at);
  assert.is(everything.risk_score, 1);
  assert.ok(everything.reasons.length >= 4);
  assert.equal(score(with_({ user_attempts_1m: 7 }), small, at), score(with_({ user_attempts_1m: 7 }), small, at), 'deterministic');
});

test.run();
