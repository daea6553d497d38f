// Sliding-window counts for fraud scoring, kept on the main thread where every scoring call
// passes (a user's purchases span partitions, so no one partition sees them all). In memory
// only: a restart forgets at most an hour of velocity, and the rules that read these counts
// are in src/actors/fraud.ts. Every structure is bounded: keys (oldest evicted first),
// timestamps per key, users per ip or device.
import { assert } from '../util/assert.js';
import type { FraudSignals } from '../actors/fraud.js';

export interface FraudSignalLimits {
  /** Users, ips and devices tracked at once (each kind separately). */
  keys_max: number;
  /** Timestamps kept per key: counts saturate here, far above every rule's threshold. */
  attempts_per_key_max: number;
  /** Distinct users remembered per ip or device. */
  users_per_key_max: number;
}

export const fraud_signal_limits_default: FraudSignalLimits = { keys_max: 200_000, attempts_per_key_max: 128, users_per_key_max: 64 };

const minute_ms = 60_000;
const hour_ms = 60 * minute_ms;

class Windows {
  private readonly times = new Map<string, number[]>();
  constructor(private readonly limits: FraudSignalLimits) {}

  /** Attempts in the last minute and hour, counting one more at now_ms; records nothing. */
  count(key: string, now_ms: number): { m1: number; h1: number } {
    const list = this.times.get(key) ?? [];
    let m1 = 1;
    let h1 = 1;
    for (const t of list) {
      if (t > now_ms - hour_ms) h1++;
      if (t > now_ms - minute_ms) m1++;
    }
    return { m1: Math.min(m1, this.limits.attempts_per_key_max), h1: Math.min(h1, this.limits.attempts_per_key_max) };
  }

  /** Records an attempt at now_ms (count() before it is what the attempt is scored with). */
  record(key: string, now_ms: number): void {
    let list = this.times.get(key);
    if (list === undefined) {
      if (this.times.size >= this.limits.keys_max) this.times.delete(this.times.keys().next().value!);
      list = [];
    } else this.times.delete(key); // re-inserted below: Map order is least recently used first
    this.times.set(key, list);
    while (list.length > 0 && list[0]! <= now_ms - hour_ms) list.shift();
    if (list.length >= this.limits.attempts_per_key_max) list.shift();
    list.push(now_ms);
    assert(list.length <= this.limits.attempts_per_key_max, 'window bounded');
  }
}

class DistinctUsers {
  private readonly users = new Map<string, Map<string, number>>();
  constructor(private readonly limits: FraudSignalLimits) {}

  /** Distinct users on key in the last hour, user_id included; records nothing. */
  count(key: string, user_id: string, now_ms: number): number {
    const seen = this.users.get(key);
    if (seen === undefined) return 1;
    let n = 1; // this user
    for (const [user, at_ms] of seen) if (user !== user_id && at_ms > now_ms - hour_ms) n++;
    return Math.min(n, this.limits.users_per_key_max);
  }

  /** Records user_id on key at now_ms. */
  record(key: string, user_id: string, now_ms: number): void {
    let seen = this.users.get(key);
    if (seen === undefined) {
      if (this.users.size >= this.limits.keys_max) this.users.delete(this.users.keys().next().value!);
      seen = new Map();
    } else this.users.delete(key);
    this.users.set(key, seen);
    for (const [user, at_ms] of seen) if (at_ms <= now_ms - hour_ms) seen.delete(user);
    seen.delete(user_id);
    if (seen.size >= this.limits.users_per_key_max) seen.delete(seen.keys().next().value!);
    seen.set(user_id, now_ms);
    assert(seen.size <= this.limits.users_per_key_max, 'users per key bounded');
  }
}

export class FraudSignalTracker {
  private readonly user: Windows;
  private readonly ip: Windows;
  private readonly device: Windows;
  private readonly users_on_ip: DistinctUsers;
  private readonly users_on_device: DistinctUsers;

  constructor(private readonly ip_blocklist: ReadonlySet<string>, limits = fraud_signal_limits_default) {
    this.user = new Windows(limits);
    this.ip = new Windows(limits);
    this.device = new Windows(limits);
    this.users_on_ip = new DistinctUsers(limits);
    this.users_on_device = new DistinctUsers(limits);
  }

  /** The signals this attempt would be scored with, recording nothing: Authorize asks before it
   *  knows whether the order already has a decision, and counts only if it scores (observe). */
  peek(user_id: string, ip: string, device_id: string, now_ms: number): FraudSignals {
    assert(user_id.length > 0, 'an attempt has a user');
    const u = this.user.count(user_id, now_ms);
    const i = ip === '' ? { m1: 0, h1: 0 } : this.ip.count(ip, now_ms);
    const d = device_id === '' ? { m1: 0, h1: 0 } : this.device.count(device_id, now_ms);
    return {
      user_attempts_1m: u.m1,
      user_attempts_1h: u.h1,
      ip_attempts_1m: i.m1,
      device_attempts_1m: d.m1,
      users_on_ip_1h: ip === '' ? 0 : this.users_on_ip.count(ip, user_id, now_ms),
      users_on_device_1h: device_id === '' ? 0 : this.users_on_device.count(device_id, user_id, now_ms),
      ip_blocked: ip !== '' && this.ip_blocklist.has(ip),
    };
  }

  /** Counts this attempt and returns the signals it is scored with. ip and device may be ''. */
  observe(user_id: string, ip: string, device_id: string, now_ms: number): FraudSignals {
    const signals = this.peek(user_id, ip, device_id, now_ms);
    this.user.record(user_id, now_ms);
    if (ip !== '') {
      this.ip.record(ip, now_ms);
      this.users_on_ip.record(ip, user_id, now_ms);
    }
    if (device_id !== '') {
      this.device.record(device_id, now_ms);
      this.users_on_device.record(device_id, user_id, now_ms);
    }
    return signals;
  }
}
