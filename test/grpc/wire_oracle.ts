// A second, independent judge of "is this a valid encoding of that message", for the tests of
// src/grpc/strict_decode.ts. It is built differently on purpose: protobufjs's own Reader does the
// framing (bytes() refuses to run past the end, and so does advance() below, as Reader#skip), the types come from protobufjs's
// parser (maps as MapFields, not the descriptor route the server takes), and strings are judged
// by re-encoding: decoding then encoding again must give the same bytes (invalid UTF-8 decodes
// to U+FFFD and re-encodes differently).
import fc from 'fast-check';
import protobuf from 'protobufjs';

interface Spec { type: string; repeated: boolean; resolved: protobuf.Type | protobuf.Enum | null; map?: { key: string } }

function spec_of(field: protobuf.Field): Spec {
  field.resolve();
  const spec: Spec = { type: field.type, repeated: field.repeated, resolved: field.resolvedType };
  if (field.map) spec.map = { key: (field as unknown as protobuf.MapField).keyType };
  return spec;
}

/** Moves past n bytes, refusing to run past the end (what protobufjs's Reader#skip(n) does). */
function advance(r: protobuf.Reader, n: number): void {
  if (r.pos + n > r.len) throw new RangeError(`index out of range: ${r.pos} + ${n} > ${r.len}`);
  r.pos += n;
}

/** Reads a varint; false when it is longer than 10 bytes or above 64 bits, throws past the end.
 *  By hand: protobufjs's Reader#uint64 reads the 4th byte of a varint that starts 4 bytes before
 *  the end without looking at its continuation bit (a truncated varint passes). */
function varint_ok(r: protobuf.Reader): boolean {
  for (let i = 0; i < 10; i++) {
    if (r.pos >= r.len) throw new RangeError('varint past the end');
    const byte = r.buf[r.pos++]!;
    if (byte < 0x80) return !(i === 9 && byte > 1);
  }
  return false;
}

function elements_ok(bytes: Uint8Array, wire: number): boolean {
  const r = new protobuf.Reader(bytes);
  while (r.pos < r.len) {
    if (wire === 0) {
      if (!varint_ok(r)) return false;
    } else advance(r, wire === 1 ? 8 : 4);
  }
  return true;
}

function value_ok(bytes: Uint8Array, spec: Spec, depth: number): boolean {
  if (spec.map !== undefined) {
    const key: Spec = { type: spec.map.key, repeated: false, resolved: null };
    const value: Spec = { type: spec.type, repeated: false, resolved: spec.resolved };
    return fields_ok(bytes, (n) => (n === 1 ? key : n === 2 ? value : undefined), depth + 1);
  }
  if (spec.resolved instanceof protobuf.Type) {
    const type = spec.resolved;
    return fields_ok(bytes, (n) => (type.fieldsById[n] ? spec_of(type.fieldsById[n]!) : undefined), depth + 1);
  }
  if (spec.type === 'string') return Buffer.from(Buffer.from(bytes).toString('utf8'), 'utf8').equals(bytes);
  if (spec.type === 'bytes') return true;
  return elements_ok(bytes, protobuf.types.packed[spec.type as keyof typeof protobuf.types.packed] ?? 0); // packed
}

function wire_of(spec: Spec): number {
  if (spec.map !== undefined || spec.resolved instanceof protobuf.Type) return 2;
  if (spec.resolved !== null) return 0; // enum
  return protobuf.types.basic[spec.type as keyof typeof protobuf.types.basic]!;
}

function fields_ok(bytes: Uint8Array, lookup: (n: number) => Spec | undefined, depth: number): boolean {
  if (depth > 100) return false;
  const r = new protobuf.Reader(bytes);
  try {
    while (r.pos < r.len) {
      const start = r.pos;
      if (!varint_ok(r)) return false;
      r.pos = start;
      const tag = r.uint64() as unknown as { low: number; high: number };
      if (tag.high !== 0) return false;
      const number = (tag.low >>> 0) >>> 3;
      const wire = tag.low & 7;
      if (number === 0 || (number >= 19000 && number <= 19999)) return false;
      const spec = lookup(number);
      if (spec !== undefined) {
        const declared = wire_of(spec);
        const packable = spec.repeated && spec.map === undefined && declared !== 2;
        if (wire !== declared && !(packable && wire === 2)) return false;
      }
      if (wire === 0) {
        if (!varint_ok(r)) return false;
      } else if (wire === 1) advance(r, 8);
      else if (wire === 5) advance(r, 4);
      else if (wire === 2) {
        // The length through protobufjs's 64-bit reader: uint32 would keep only its low bits.
        const at = r.pos;
        if (!varint_ok(r)) return false;
        r.pos = at;
        const length = r.uint64() as unknown as { low: number; high: number };
        if (length.high !== 0 || (length.low >>> 0) > r.len - r.pos) return false;
        const value = r.buf.subarray(r.pos, r.pos + (length.low >>> 0));
        advance(r, value.length);
        if (spec !== undefined && !value_ok(value, spec, depth)) return false;
      } else return false; // 3, 4: groups; 6, 7: no such wire type
    }
  } catch {
    return false; // past the end, or a varint longer than 10 bytes
  }
  return true;
}

/** True when `bytes` is a valid encoding of `type` (proto3: strings must be valid UTF-8). */
export function oracle_valid(bytes: Uint8Array, type: protobuf.Type): boolean {
  return fields_ok(bytes, (n) => (type.fieldsById[n] ? spec_of(type.fieldsById[n]!) : undefined), 0);
}

/** Truncations, bit flips and byte overwrites of a valid encoding (seeded). */
export const mutation = (length: number) => fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: Math.max(0, length - 1) }) }),
  fc.record({ kind: fc.constant('flip' as const), bits: fc.array(fc.nat({ max: length * 8 - 1 }), { minLength: 1, maxLength: 3 }) }),
  fc.record({ kind: fc.constant('byte' as const), at: fc.nat({ max: length - 1 }), value: fc.integer({ min: 0, max: 255 }) }),
);
export function mutate(sample: Uint8Array, m: { kind: 'truncate'; at: number } | { kind: 'flip'; bits: number[] } | { kind: 'byte'; at: number; value: number }): Buffer {
  const b = Buffer.from(sample);
  if (m.kind === 'truncate') return b.subarray(0, m.at);
  if (m.kind === 'flip') for (const bit of m.bits) b[bit >> 3] = b[bit >> 3]! ^ (1 << (bit & 7));
  else b[m.at] = m.value;
  return b;
}

/** A valid request of each method, rich enough that mutations reach every field. */
export function request_samples(event_id: string): Record<string, Record<string, unknown>> {
  return {
    ReserveTickets: { event_id: event_id, seat_ids: ['101-A-1', '102-B-10'], hold_ttl_seconds: '300', user_id: 'u1' },
    ReleaseHold: { hold_id: 'hold_1_AAAA' },
    ConfirmAllocation: { order_id: 'ord_1', hold_id: 'hold_1_AAAA' },
    CreateEvent: { event: {
      event_id: event_id, name: 'Évent', starts_at_unix: '1811836800', currency: 'EUR', price_tiers: { A: '89000000', B: '1' },
      sections: [{ name: '101', rows: [{ name: 'A', seats: 24, tier: 'A', accessible_seats: [1, 2], priority: 1 }], priority: 2 }], max_seats_per_user: 8,
      promo_codes: [{ code: 'EARLY10', percent_off: 10, max_uses: 500, valid_until_unix: '1809244800' }],
      areas: [{ name: 'FLOOR', capacity: 500, tier: 'B' }],
    } },
    GetEvent: { event_id: event_id },
    GetAvailability: { event_id: event_id, section: '101' },
    WatchAvailability: { event_id: event_id },
    Advance: { millis: '60000' },
    CreateDraft: { user_id: 'u1', event_id: event_id, seat_ids: ['101-A-1'], promo_code: 'EARLY10', idempotency_key: 'k' },
    ConfirmOrder: { order_id: 'ord_1', payment_id: 'pay_1' },
    GetOrder: { order_id: 'ord_1' },
    ListOrders: { user_id: 'u1', page_size: 10, page_token: 'tok' },
    Authorize: { order_id: 'ord_1', amount: { amount_micros: '1000', currency: 'EUR' }, payment_token: 'tok_x' },
    Capture: { payment_id: 'pay_1' },
    Refund: { payment_id: 'pay_1', amount: { amount_micros: '1000', currency: 'EUR' } },
    ScoreTransaction: { order_id: 'ord_1', user_id: 'u1', ip: '10.0.0.1', device_id: 'd1' },
    ReserveBestAvailable: {
      event_id: event_id, user_id: 'u1', quantity: 4, tiers: ['A'], sections: ['101', '102'],
      accessible_quantity: 1, hold_ttl_seconds: '300',
    },
    ReserveGeneralAdmission: { event_id: event_id, area: 'FLOOR', quantity: 2, user_id: 'u1', hold_ttl_seconds: '300' },
    ExtendHold: { hold_id: 'hold_1_AAAA', extend_seconds: '300' },
    CreateDraftFromHold: { hold_id: 'hold_1_AAAA', promo_code: 'EARLY10', idempotency_key: 'k' },
    ReturnSeats: {
      order_id: 'ord_1', seat_ids: ['101-A-1', '101-A-2'],
      refund_amount: { amount_micros: '1000', currency: 'EUR' }, idempotency_key: 'k',
    },
    // The waiting room (queue.proto).
    ConfigureQueue: {
      event_id: event_id, opens_at_unix: '1811836000', sale_starts_at_unix: '1811836800',
      admit_per_minute: 1000, admission_ttl_seconds: 600, service_bypass: true,
    },
    SetAdmissionRate: { event_id: event_id, admit_per_minute: 500 },
    CloseQueue: { event_id: event_id },
    Join: { event_id: event_id, user_id: 'u1', device_id: 'phone-Ω' },
    GetPosition: { ticket_id: 'ticket_1_AAAA' },
    WatchPosition: { ticket_id: 'ticket_1_AAAA' },
    GetFairness: { event_id: event_id },
  };
}
