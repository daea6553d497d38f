// Model-based test of the waiting room (issue 16): random joins before and after the sale start
// (repeats, joining again after a lapse), clock advances with and without the timer, rate
// changes (pauses too), position reads, holds with the buyer's own token, another's, a replayed
// one, a garbage one, none, and a service's (bypass on or off), restarts from a snapshot and from
// the journal alone. After every command: the positions are a permutation (early joiners first,
// in the draw; later ones by seq), admission follows positions and never outruns the rate, no
// token is used twice, and no hold is made on the queued event without a valid token (unless a
// service may bypass): the model predicts each hold's outcome and the actor must agree.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as fc from 'fast-check';
import { behaviour } from '../../src/actors/behaviour.js';
import { sample_spec, T0 } from './helpers.js';
import { EVENT, MINUTE_MS, QueueHarness } from './queue_helpers.js';

const OPEN = T0 + MINUTE_MS;
const START = T0 + 5 * MINUTE_MS;
const USERS = Array.from({ length: 10 }, (_, i) => `u${i}`);

interface MEntry {
  user: string; seq: number; ticket: string; early: boolean; used: boolean;
  /** The token GetPosition served and its expiry ('' / 0 until seen). */ token: string; expires: number;
}
interface Model {
  now: number; rate: number; ttl_s: number; bypass: boolean; entries: MEntry[];
  current: Map<string, MEntry>;
  /** Rate × ms since the sale start: the admissions the rate allows (× 60,000). */ credit: number;
  admitted: number; token_holds: number; won: Map<string, number>;
}
interface Real { h: QueueHarness }
type Cmd = fc.Command<Model, Real>;

function won(m: Model, kind: string): void {
  m.won.set(kind, (m.won.get(kind) ?? 0) + 1);
}

function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (error) {
    if (!(error instanceof Error) || error.name === 'AssertionError') throw error;
    assert.is((error as { rejection?: unknown }).rejection, true, `${error.name} is a rejection`);
    return error.name;
  }
}

function pass_time(m: Model, r: Real, ms: number, timers: boolean): void {
  const from = Math.max(m.now, START);
  m.now += ms;
  m.credit += m.rate * Math.max(0, m.now - from);
  if (timers) r.h.advance_to(m.now);
  else r.h.now = m.now;
}

class Join implements Cmd {
  constructor(readonly user: string) {}
  check(): boolean { return true; }
  run(m: Model, r: Real): void {
    const got = outcome(() => r.h.call('join_queue', { event_id: EVENT, user_id: this.user, device_id: 'd', trace_id: 't' }));
    if (m.now < OPEN) {
      assert.is(got, 'QueueNotOpenError');
      return;
    }
    assert.is(got, 'ok');
    const reply = r.h.call('join_queue', { event_id: EVENT, user_id: this.user, device_id: 'd', trace_id: 't' });
    const earlier = m.current.get(this.user);
    if (earlier !== undefined) {
      look(m, r, earlier);
      const lapsed = earlier.expires > 0 && m.now >= earlier.expires && !earlier.used;
      if (!lapsed) {
        assert.is(reply.ticket_id, earlier.ticket, 'a repeat returns the same entry');
        return;
      }
      // The first call made the new entry; the second returned it.
      won(m, 'rejoin');
    }
    assert.is(reply.created, false, 'the second call is a repeat');
    const seq = m.entries.length + 1;
    assert.is(reply.receipt.seq, seq, 'a new entry at the back');
    const entry: MEntry = { user: this.user, seq, ticket: reply.ticket_id, early: m.now < START, used: false, token: '', expires: 0 };
    m.entries.push(entry);
    m.current.set(this.user, entry);
    won(m, entry.early ? 'join_early' : 'join_late');
  }
  toString(): string { return `join(${this.user})`; }
}

/** Reads entry e's position (as a service) and learns its token and expiry. */
function look(m: Model, r: Real, e: MEntry): void {
  const p = r.h.call('queue_position', { ticket_id: e.ticket, actor_user_id: e.user });
  assert.is(p.used, e.used, `entry ${e.seq} used as the model says`);
  if (p.admitted) {
    if (e.expires !== 0) assert.is(p.admission_expires_at_ms, e.expires, 'an admission\'s expiry never moves');
    e.expires = p.admission_expires_at_ms;
    const live = !e.used && m.now < e.expires;
    assert.is(p.admission_token !== '', live, 'a token exactly while admitted, unused, unexpired');
    if (live) e.token = p.admission_token;
  } else {
    assert.is(p.admission_token, '', 'no token before admission');
  }
}

class Look implements Cmd {
  constructor(readonly ref: number) {}
  check(m: Readonly<Model>): boolean { return m.entries.length > 0; }
  run(m: Model, r: Real): void {
    look(m, r, m.entries[this.ref % m.entries.length]!);
  }
  toString(): string { return `look(${this.ref})`; }
}

type How = 'own' | 'other' | 'replay' | 'garbage' | 'none' | 'service';

class Hold implements Cmd {
  constructor(readonly ref: number, readonly how: How, readonly kind: 'ga' | 'best') {}
  check(): boolean { return true; }
  run(m: Model, r: Real): void {
    const e = m.entries.length === 0 ? undefined : m.entries[this.ref % m.entries.length]!;
    const user = e?.user ?? 'u0';
    const { token, expect } = this.plan(m, e);
    const base = { event_id: EVENT, user_id: user, quantity: 1, hold_ttl_seconds: 0, trace_id: 't',
      admission_token: token, by_service: this.how === 'service' };
    const got = outcome(() => (this.kind === 'ga'
      ? r.h.call('reserve_ga', { ...base, area: 'FLOOR' })
      : r.h.call('reserve_best', { ...base, tiers: [], sections: [], accessible_quantity: 0 })));
    // The seats may run out (best available): then the token stays unused, as for any refusal.
    if (expect === 'ok' && got === 'SeatsUnavailableError') {
      won(m, 'sold_out_token_kept');
      return;
    }
    assert.is(got, expect, `hold ${this.how} (${this.kind})`);
    if (got !== 'ok') {
      won(m, `refused_${got}`);
      return;
    }
    won(m, `hold_${this.how}`);
    if (this.how === 'own') {
      const used = m.entries.find((x) => x.token === token)!;
      used.used = true;
      m.token_holds++;
    }
  }
  private plan(m: Model, e: MEntry | undefined): { token: string; expect: string } {
    const with_token = m.entries.filter((x) => x.token !== '');
    switch (this.how) {
      case 'none': return { token: '', expect: 'QueueAdmissionRequiredError' };
      case 'service': return { token: '', expect: m.bypass ? 'ok' : 'QueueAdmissionRequiredError' };
      case 'garbage': return { token: `at1.${e?.ticket ?? 'x'}.1.AAAA`, expect: 'AdmissionTokenInvalidError' };
      case 'other': {
        const other = with_token.find((x) => x.user !== e?.user);
        if (other === undefined) return { token: '', expect: 'QueueAdmissionRequiredError' };
        return { token: other.token, expect: 'AdmissionTokenInvalidError' };
      }
      case 'own':
      case 'replay': {
        const mine = with_token.filter((x) => x.user === e?.user && (this.how === 'own' || x.used));
        const t = mine.at(-1);
        if (t === undefined) return { token: '', expect: 'QueueAdmissionRequiredError' };
        if (m.now >= t.expires) return { token: t.token, expect: 'AdmissionTokenExpiredError' };
        return { token: t.token, expect: t.used ? 'AdmissionTokenUsedError' : 'ok' };
      }
    }
  }
  toString(): string { return `hold(${this.ref}, ${this.how}, ${this.kind})`; }
}

class Advance implements Cmd {
  constructor(readonly ms: number, readonly timers: boolean) {}
  check(): boolean { return true; }
  run(m: Model, r: Real): void {
    pass_time(m, r, this.ms, this.timers);
  }
  toString(): string { return `advance(${this.ms}${this.timers ? '' : ', no timers'})`; }
}

class SetRate implements Cmd {
  constructor(readonly rate: number) {}
  check(): boolean { return true; }
  run(m: Model, r: Real): void {
    r.h.call('set_admission_rate', { event_id: EVENT, admit_per_minute: this.rate, trace_id: 't' });
    m.rate = this.rate;
    won(m, this.rate === 0 ? 'pause' : 'rate');
  }
  toString(): string { return `rate(${this.rate})`; }
}

class Restart implements Cmd {
  constructor(readonly from: 'snapshot' | 'journal', readonly snapshot_first: boolean) {}
  check(): boolean { return true; }
  run(_m: Model, r: Real): void {
    if (this.snapshot_first) r.h.take_snapshot();
    r.h.restart(this.from);
    won(_m, `restart_${this.from}`);
  }
  toString(): string { return `restart(${this.from}${this.snapshot_first ? ', snapshot now' : ''})`; }
}

/** The invariants, after every command. */
function verify(m: Model, r: Real): void {
  r.h.check();
  const queue = r.h.state.queues.by_event.get(EVENT)!;
  assert.is(queue.count, m.entries.length, 'every join the model made');
  const a = queue.admitted;
  assert.ok(a >= m.admitted, 'admission never goes back');
  assert.ok(a <= Math.floor(m.credit / MINUTE_MS), `admission within the rate: ${a} > ${m.credit / MINUTE_MS}`);
  m.admitted = a;
  const positions = m.entries.map((e) => r.h.call('queue_position', { ticket_id: e.ticket, actor_user_id: null }));
  if (queue.drawn) {
    assert.ok(m.now >= START, 'no draw before the sale start');
    const early = m.entries.filter((e) => e.early).length;
    const seen = new Set<number>();
    m.entries.forEach((e, i) => {
      const p = positions[i]!.position;
      assert.ok(e.early ? p >= 1 && p <= early : p === e.seq, `entry ${e.seq} at position ${p}`);
      seen.add(p);
      assert.is(positions[i]!.admitted, p <= a, 'admission follows positions');
    });
    assert.is(seen.size, m.entries.length, 'positions are a permutation');
  } else {
    assert.ok(positions.every((p) => p.position === 0 && !p.admitted), 'nobody is placed before the draw');
  }
  m.entries.forEach((e, i) => assert.is(positions[i]!.used, e.used, `entry ${e.seq} used`));
  const used = m.entries.filter((e) => e.used).length;
  assert.is(used, m.token_holds, 'one hold per used token');
  assert.is(behaviour.gauges(r.h.state).queue_tokens_used_total, used);
}

function checked(cmd: Cmd): Cmd {
  return {
    check: (m) => cmd.check(m),
    run: (m, r) => {
      cmd.run(m, r);
      verify(m, r);
    },
    toString: () => cmd.toString(),
  };
}

const ref = fc.nat(30);
const commands: fc.Arbitrary<Cmd>[] = [
  fc.constantFrom(...USERS).map((u) => checked(new Join(u))),
  fc.constantFrom(...USERS).map((u) => checked(new Join(u))),
  ref.map((i) => checked(new Look(i))),
  ref.map((i) => checked(new Look(i))),
  fc.tuple(ref, fc.constantFrom<How>('own', 'own', 'own', 'other', 'replay', 'replay', 'garbage', 'none', 'service'),
    fc.constantFrom('ga' as const, 'best' as const))
    .map(([i, how, kind]) => checked(new Hold(i, how, kind))),
  fc.tuple(ref, fc.constantFrom<How>('own', 'replay'), fc.constantFrom('ga' as const, 'best' as const))
    .map(([i, how, kind]) => checked(new Hold(i, how, kind))),
  fc.tuple(fc.constantFrom(0, 400, 1000, 3000, 20_000, 90_000), fc.boolean())
    .map(([ms, t]) => checked(new Advance(ms, t))),
  fc.constantFrom(60_000, 200_000).map((ms) => checked(new Advance(ms, true))),
  fc.constantFrom(0, 6, 60, 600).map((rate) => checked(new SetRate(rate))),
  fc.tuple(fc.constantFrom('snapshot' as const, 'journal' as const), fc.boolean())
    .map(([from, snap]) => checked(new Restart(from, snap))),
];

function setup(rate: number, ttl_s: number, bypass: boolean): () => { model: Model; real: Real } {
  return () => {
    const h = new QueueHarness(0, T0, 11);
    h.call('create_event', {
      event_id: EVENT, spec: sample_spec({ areas: [{ name: 'FLOOR', capacity: 400, tier: 'A' }] }),
    });
    h.call('configure_queue', {
      event_id: EVENT, opens_at_ms: OPEN, sale_starts_at_ms: START, admit_per_minute: rate,
      admission_ttl_seconds: ttl_s, service_bypass: bypass, trace_id: 't',
    });
    const model: Model = {
      now: T0, rate, ttl_s, bypass, entries: [], current: new Map(), credit: 0, admitted: 0,
      token_holds: 0, won: new Map(),
    };
    return { model, real: { h } };
  };
}

const settings = fc.tuple(fc.constantFrom(6, 60, 600), fc.constantFrom(20, 120), fc.boolean());

function run_all(runs: number, seed: number | undefined, each?: (m: Model) => void): void {
  fc.assert(fc.property(settings, fc.commands(commands, { maxCommands: 70, size: 'max' }), ([rate, ttl, bypass], cmds) => {
    const s = setup(rate, ttl, bypass)();
    fc.modelRun(() => s, cmds);
    each?.(s.model);
  }), { numRuns: runs, ...(seed === undefined ? {} : { seed }) });
}

test('the waiting room agrees with a model: permutation, admission by position and rate, one hold per token', () => {
  run_all(120, undefined);
});

test('the model run reaches every outcome (not vacuous)', () => {
  const total = new Map<string, number>();
  run_all(60, 16, (m) => {
    for (const [k, n] of m.won) total.set(k, (total.get(k) ?? 0) + n);
  });
  const kinds = [
    'join_early', 'join_late', 'rejoin', 'hold_own', 'hold_service', 'refused_AdmissionTokenUsedError',
    'refused_AdmissionTokenExpiredError', 'refused_AdmissionTokenInvalidError',
    'refused_QueueAdmissionRequiredError', 'pause', 'rate', 'restart_snapshot', 'restart_journal',
  ];
  const missing = kinds.filter((k) => (total.get(k) ?? 0) === 0);
  assert.equal(missing, [], `never reached: ${JSON.stringify(Object.fromEntries(total))}`);
});

test.run();
