// Shared by the Kafka end-to-end tests: events made for them, the node's metrics and readiness,
// and what a consumer checks on the topics (decoding, headers, per-key order, event-id dedup).
import * as assert from 'uvu/assert';
import { EventCodec } from '../../src/kafka/encode.js';
import { topic_of } from '../../src/kafka/topics.js';
import type { Consumed } from '../kafka/consume.js';
import type { Clients } from './harness.js';

export const codec = new EventCodec();
export const topic = (type: string): string => topic_of('', type);

/** An event with `rows` rows of 50 seats in section 1 (seat ids 1-R<r>-<n>). */
export async function create_event(c: Clients, admin: string, event_id: string, rows = 10): Promise<void> {
  const reply = await c.create_event({
    event: {
      event_id, name: `Kafka ${event_id}`, currency: 'EUR', starts_at_unix: '1811836800', price_tiers: { A: '10000000' },
      sections: [{ name: '1', rows: Array.from({ length: rows }, (_, r) => ({ name: `R${r + 1}`, seats: 50, tier: 'A' })) }],
      max_seats_per_user: 10,
    },
  }, admin);
  assert.is(reply.created, true);
}

export function seat(n: number): string {
  return `1-R${Math.floor(n / 50) + 1}-${(n % 50) + 1}`;
}

export async function scrape(http_port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${http_port}/metrics`)).text();
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)$/.exec(line);
    if (m !== null) values.set(m[1]!, Number(m[2]));
  }
  return values;
}

export async function metric(http_port: number, name: string): Promise<number> {
  return (await scrape(http_port)).get(name) ?? NaN;
}

export async function readyz(http_port: number): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${http_port}/readyz`);
  return { status: res.status, text: await res.text() };
}

/** Polls (bounded: a hang becomes a failure, never a pass) until probe() satisfies done. */
export async function until<T>(probe: () => Promise<T>, done: (value: T) => boolean, tries = 1200, pause_ms = 100): Promise<T> {
  let value = await probe();
  for (let i = 0; i < tries && !done(value); i++) {
    await new Promise((r) => setTimeout(r, pause_ms));
    value = await probe();
  }
  return value;
}

export interface Decoded {
  type: string;
  key: string;
  event_id: string;
  message: Record<string, unknown>;
  consumed: Consumed;
}

/** Decodes a consumed message with the protos and checks the envelope every event must have. */
export function decode(m: Consumed): Decoded {
  const type = m.topic.split('.').pop()!;
  assert.is(m.topic, topic(type));
  assert.is(m.headers['content-type'], 'application/x-protobuf');
  const event_id = m.headers['event-id'] ?? '';
  assert.match(event_id, /^[0-9a-f]{12}-p[0-9]+-[0-9]+$/, `event-id of ${m.topic}@${m.offset}`);
  const message = codec.decode(type, m.value);
  assert.is(m.headers['trace-id'], message['trace_id'], 'trace-id header = the message trace_id');
  assert.match(String(message['trace_id']), /^[0-9a-f]{32}$/);
  return { type, key: m.key, event_id, message, consumed: m };
}

/**
 * Per key, in each topic, events appear in the order they were written: the outbox seq in the
 * event-id of each first occurrence only grows. A resend after a crash or failed send repeats
 * earlier event-ids (allowed, same content), never reorders new ones.
 */
export function assert_per_key_order(events: Decoded[]): void {
  const by_topic_key = new Map<string, Decoded[]>();
  for (const e of events) {
    const k = `${e.consumed.topic}|${e.key}`;
    by_topic_key.set(k, [...(by_topic_key.get(k) ?? []), e]);
  }
  for (const [k, list] of by_topic_key) {
    assert.is(new Set(list.map((e) => e.consumed.partition)).size, 1, `${k}: one Kafka partition per key`);
    list.sort((a, b) => Number(BigInt(a.consumed.offset) - BigInt(b.consumed.offset)));
    const origin = new Set(list.map((e) => e.event_id.replace(/-[0-9]+$/, '')));
    assert.is(origin.size, 1, `${k}: one outbox partition per key`);
    let last = 0;
    const seen = new Set<string>();
    for (const e of list) {
      const seq = Number(e.event_id.split('-').pop());
      if (seen.has(e.event_id)) continue;
      assert.ok(seq > last, `${k}: ${e.event_id} after seq ${last}`);
      last = seq;
      seen.add(e.event_id);
    }
  }
}

/** Consumer-side dedup: one entry per event-id; duplicates must carry identical bytes. */
export function by_event_id(events: Decoded[]): Map<string, Decoded> {
  const out = new Map<string, Decoded>();
  for (const e of events) {
    const first = out.get(e.event_id);
    if (first === undefined) out.set(e.event_id, e);
    else assert.ok(first.consumed.value.equals(e.consumed.value) && first.key === e.key, `duplicate ${e.event_id} has the same content`);
  }
  return out;
}
