// Sliding windows for fraud signals: counts per minute and hour, distinct users per ip and
// device, the blocklist, and the bounds that keep memory finite.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FraudSignalTracker } from '../../src/purchase/fraud_signals.js';

const T = 1_700_000_000_000;

test('attempts count in the last minute and hour; older ones fall out', () => {
  const t = new FraudSignalTracker(new Set());
  for (let i = 0; i < 4; i++) t.observe('u', '10.0.0.1', 'd', T + i * 1000);
  const s = t.observe('u', '10.0.0.1', 'd', T + 5000);
  assert.equal([s.user_attempts_1m, s.user_attempts_1h, s.ip_attempts_1m, s.device_attempts_1m], [5, 5, 5, 5]);
  const later = t.observe('u', '10.0.0.1', 'd', T + 66_000);
  assert.equal([later.user_attempts_1m, later.user_attempts_1h], [1, 6]);
  const next_hour = t.observe('u', '', '', T + 3_700_000);
  assert.equal([next_hour.user_attempts_1h, next_hour.ip_attempts_1m, next_hour.users_on_ip_1h], [1, 0, 0]);
});

test('distinct users per device and ip; the blocklist', () => {
  const t = new FraudSignalTracker(new Set(['203.0.113.9']));
  for (const u of ['a', 'b', 'c', 'a']) t.observe(u, '10.0.0.2', 'shared', T);
  const s = t.observe('d', '203.0.113.9', 'shared', T);
  assert.is(s.users_on_device_1h, 4);
  assert.is(s.ip_blocked, true);
  assert.is(t.observe('e', '10.0.0.2', '', T).users_on_ip_1h, 4, 'a, b, c and e');
});

test('bounded: counts saturate at attempts_per_key_max, keys and users evicted oldest first', () => {
  const t = new FraudSignalTracker(new Set(), { keys_max: 2, attempts_per_key_max: 8, users_per_key_max: 3 });
  let s;
  for (let i = 0; i < 20; i++) s = t.observe('u', '', 'dev', T + i);
  assert.is(s!.user_attempts_1m, 8);
  for (const u of ['a', 'b', 'c', 'd', 'e']) s = t.observe(u, '', 'dev', T);
  assert.is(s!.users_on_device_1h, 3);
  t.observe('x', '', '', T);
  t.observe('y', '', '', T);
  assert.is(t.observe('u', '', '', T).user_attempts_1m, 1, 'u was evicted when x and y came');
});

test('peek records nothing; observe answers the peek and records the attempt', () => {
  const t = new FraudSignalTracker(new Set(['203.0.113.9']), { keys_max: 100, attempts_per_key_max: 8, users_per_key_max: 3 });
  const steps: [string, string, string, number][] = [
    ['u', '10.0.0.1', 'd', T], ['v', '10.0.0.1', 'd', T + 10], ['u', '203.0.113.9', 'd', T + 30_000],
    ['w', '10.0.0.1', 'd', T + 61_000], ['u', '10.0.0.1', 'e', T + 3_700_000], ['x', '10.0.0.1', 'd', T + 3_700_001],
  ];
  for (let i = 0; i < 12; i++) steps.push(['u', '10.0.0.3', 'd', T + 3_800_000 + i]);
  for (const [user, ip, device, at] of steps) {
    const peeked = t.peek(user, ip, device, at);
    assert.equal(t.peek(user, ip, device, at), peeked, 'peeking changes nothing');
    assert.equal(t.observe(user, ip, device, at), peeked, `${user} ${ip} ${device} @${at - T}`);
    // The attempt is now recorded: the same attempt again counts one more (up to the cap).
    const after = t.peek(user, ip, device, at);
    assert.is(after.user_attempts_1h, Math.min(peeked.user_attempts_1h + 1, 8), 'observe recorded the user attempt');
    assert.is(after.ip_attempts_1m, Math.min(peeked.ip_attempts_1m + 1, 8), 'observe recorded the ip attempt');
  }
});

test.run();
