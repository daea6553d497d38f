// Test harness of the waiting room: one partition driven through the behaviour's own decide,
// apply and fire_timers (the handler table as the worker runs it), with a manual clock, a
// journal of every record (msgpackr-encoded, as the store keeps them), and the two recoveries
// of a kill -9: from a snapshot plus the journal after it, and from the journal alone.
import * as assert from 'uvu/assert';
import type {
  DecideContext, Effects, OutboxEntry, Protocol, RequestFor,
} from '../../src/runtime/behaviour.js';
import { behaviour, handlers } from '../../src/actors/behaviour.js';
import type { PartitionRecord } from '../../src/actors/inventory.js';
import { check_invariants } from '../../src/actors/invariants.js';
import type { PartitionState } from '../../src/actors/partition_state.js';
import type { TicketingProtocol, TicketingKind } from '../../src/actors/protocol.js';
import { restore, snapshot } from '../../src/actors/snapshot.js';
import { seeded_random_bytes } from '../../src/runtime/random.js';
import { sample_spec, store_packr, T0, type RandomBytes } from './helpers.js';

export const EVENT = 'evt-1';
export const MINUTE_MS = 60_000;

/** The request of `kind` as it crosses to a worker (as src/runtime/client.ts builds it). */
function tagged<P extends Protocol<P>, K extends keyof P & string>(
  kind: K, request: P[K]['request'],
): RequestFor<P, K> {
  return { k: kind, ...request };
}

export class QueueHarness {
  now: number;
  readonly random: RandomBytes;
  state: PartitionState;
  /** Every record applied since the start, encoded as the journal stores them. */
  journal: Buffer[] = [];
  /** The snapshot a restart begins from, and how many journal entries it covers. */
  private snap: { bytes: Buffer; covers: number } | null = null;
  outbox: OutboxEntry[] = [];

  constructor(readonly partition = 0, now_ms = T0, seed = 7) {
    this.now = now_ms;
    this.random = seeded_random_bytes(seed);
    this.state = behaviour.create(partition);
  }

  ctx(): DecideContext {
    return { partition: this.partition, now_ms: this.now, random_bytes: this.random };
  }

  private commit(effects: Effects<PartitionRecord>): void {
    for (const record of effects.records) {
      this.journal.push(Buffer.from(store_packr.pack(record)));
      behaviour.apply(this.state, record);
    }
    this.outbox.push(...effects.outbox);
  }

  /** Decides `request` of `kind` through the handler table (typed by kind: no reply cast) and
   *  applies its records; returns the reply (or throws the refusal). */
  call<K extends TicketingKind>(
    kind: K, request: TicketingProtocol[K]['request'],
  ): TicketingProtocol[K]['reply'] {
    const decision = handlers[kind](this.state, tagged<TicketingProtocol, K>(kind, request), this.ctx());
    this.commit(decision);
    if (decision.refusal !== undefined) throw decision.refusal;
    return decision.reply;
  }

  /** Moves the clock to `to_ms`, running each timer at its own deadline on the way. */
  advance_to(to_ms: number): void {
    assert.ok(to_ms >= this.now, 'the clock moves forward');
    for (;;) {
      const deadline = behaviour.next_deadline_ms(this.state);
      if (deadline === null || deadline > to_ms) break;
      this.now = Math.max(this.now, deadline);
      this.commit(behaviour.fire_timers(this.state, this.ctx()));
    }
    this.now = to_ms;
  }

  advance(ms: number): void {
    this.advance_to(this.now + ms);
  }

  take_snapshot(): void {
    this.snap = { bytes: Buffer.from(store_packr.pack(snapshot(this.state))), covers: this.journal.length };
  }

  /** kill -9 and recovery: the last snapshot (if any) and the journal after it. */
  restart(from: 'snapshot' | 'journal'): void {
    let state: PartitionState;
    let start = 0;
    if (from === 'snapshot' && this.snap !== null) {
      state = restore(this.partition, store_packr.unpack(this.snap.bytes));
      start = this.snap.covers;
    } else {
      state = behaviour.create(this.partition);
    }
    for (const bytes of this.journal.slice(start)) {
      behaviour.apply(state, store_packr.unpack(bytes) as PartitionRecord);
    }
    check_invariants(state);
    this.state = state;
  }

  check(): void {
    check_invariants(this.state);
  }
}

/** The partition as a restart would write it. */
export function fingerprint(state: PartitionState): Buffer {
  return Buffer.from(store_packr.pack(snapshot(state)));
}

/** A harness with the sample event and a queue opening at T0 + 1 min, selling at T0 + 10 min. */
export function with_queue(
  settings: Partial<{ admit_per_minute: number; admission_ttl_seconds: number; service_bypass: boolean }> = {},
  seed = 7,
): QueueHarness {
  const h = new QueueHarness(0, T0, seed);
  h.call('create_event', { event_id: EVENT, spec: sample_spec() });
  h.call('configure_queue', {
    event_id: EVENT, opens_at_ms: T0 + MINUTE_MS, sale_starts_at_ms: T0 + 10 * MINUTE_MS,
    admit_per_minute: settings.admit_per_minute ?? 60,
    admission_ttl_seconds: settings.admission_ttl_seconds ?? 120,
    service_bypass: settings.service_bypass ?? false, trace_id: 't',
  });
  return h;
}

/** The rejection `fn` throws (its name), asserting it changed nothing. */
export function refused(h: QueueHarness, fn: () => unknown): { name: string; message: string } {
  const before = fingerprint(h.state);
  const journal = h.journal.length;
  try {
    fn();
  } catch (error) {
    if (!(error instanceof Error) || error.name === 'AssertionError') throw error;
    assert.is((error as { rejection?: unknown }).rejection, true, `${error.name} is a rejection`);
    assert.ok(before.equals(fingerprint(h.state)), `refusal ${error.name} changed nothing`);
    assert.is(h.journal.length, journal, `refusal ${error.name} journaled nothing`);
    return { name: error.name, message: error.message };
  }
  throw new Error('expected a refusal, got a reply');
}
