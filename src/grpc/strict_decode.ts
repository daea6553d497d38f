// A strict check of a request's bytes against its message type, run before protobufjs decodes
// them. protobufjs 7 is lenient where the spec is not: BufferReader#string clamps a length that
// runs past the end (a ReserveTickets whose last seat id "102-B-10" lost its last byte was read
// as "102-B-1", a seat nobody asked for, and held), field number 0 and the reserved range are
// accepted, a known field with the wrong wire type is misread as its declared type. Bytes that
// are not a valid encoding of the message are refused here, so that a damaged request can never
// be answered as a different, valid one.
//
// What is checked, in one pass without allocation (a fault allocates its description only):
// - every tag: a varint of at most 32 bits, field number 1..2^29-1 and not 19000..19999, wire
//   type 0, 1, 2 or 5 (groups, 3 and 4, are refused: no proto here uses them);
// - every varint at most 10 bytes and within 64 bits; every fixed32/fixed64 and every length
//   within the enclosing message;
// - a known field's wire type is its declared type's (a repeated scalar may also come packed,
//   as length-delimited; packed contents must be whole elements);
// - known message fields recursively (at most message_depth_max deep); known string fields are
//   valid UTF-8 where the file says so (proto3: utf8_validation VERIFY, all the seed protos).
// Unknown fields pass when their own encoding is valid: newer clients may send fields this node
// does not know yet (forward compatibility); their contents are skipped, not interpreted.
//
// Cost (node dist/bench/strict_decode.js, node 20, 2 shared cores at load average ~14, so the
// absolute figures are inflated; the ratio is the point): ~1.0 µs for a 4-seat
// ReserveTicketsRequest (72 bytes) and ~5-6 µs for a CreateEventRequest with 3 sections of 3
// rows, price tiers and a promo code (211 bytes), against ~7.5 µs and ~35 µs for proto-loader's
// decode + toObject of the same bytes: the check adds about a seventh to deserialization.
import type protobuf from 'protobufjs';
import { assert } from '../util/assert.js';

/** Deepest nesting of messages accepted (protobuf's usual recursion limit). */
export const message_depth_max = 100;

const wire_varint = 0;
const wire_fixed64 = 1;
const wire_len = 2;
const wire_fixed32 = 5;

export interface FieldPlan {
  readonly name: string;
  /** The wire type the declared type is encoded with. */
  readonly wire: number;
  /** A repeated scalar: may also come packed (wire type 2) holding elements of `wire`. */
  readonly packable: boolean;
  /** A string field whose file asks for UTF-8 validation. */
  readonly utf8: boolean;
  /** The field's message type, if it is one (map entries are messages on the wire). */
  readonly message: MessagePlan | undefined;
}

export interface MessagePlan {
  readonly name: string;
  readonly fields: Map<number, FieldPlan>;
}

const scalar_wire: Readonly<Record<string, number>> = {
  int32: wire_varint, int64: wire_varint, uint32: wire_varint, uint64: wire_varint,
  sint32: wire_varint, sint64: wire_varint, bool: wire_varint,
  fixed64: wire_fixed64, sfixed64: wire_fixed64, double: wire_fixed64,
  fixed32: wire_fixed32, sfixed32: wire_fixed32, float: wire_fixed32,
  string: wire_len, bytes: wire_len,
};

/** The check's plan for `type` and every message type it reaches (resolved types required). */
export function plan_of(type: protobuf.Type, plans: Map<protobuf.Type, MessagePlan> = new Map()): MessagePlan {
  const known = plans.get(type);
  if (known !== undefined) return known;
  const fields = new Map<number, FieldPlan>();
  // Registered before the fields: a recursive type refers to its own plan.
  const plan: MessagePlan = { name: type.fullName.replace(/^\./, ''), fields };
  plans.set(type, plan);
  for (const field of type.fieldsArray) {
    field.resolve();
    const resolved = field.resolvedType;
    let wire: number;
    let message: MessagePlan | undefined;
    if (resolved !== null && 'fieldsArray' in resolved) {
      wire = wire_len;
      message = plan_of(resolved as protobuf.Type, plans);
    } else if (resolved !== null) {
      wire = wire_varint; // an enum
    } else {
      const w = scalar_wire[field.type];
      assert(w !== undefined, `${plan.name}.${field.name}: unknown scalar type ${field.type}`);
      wire = w;
    }
    if (field.map) {
      // protobufjs's own parse gives a MapField; on the wire it is a repeated entry message.
      const map = field as unknown as protobuf.MapField;
      const entry = new Map<number, FieldPlan>();
      entry.set(1, leaf('key', scalar_wire[map.keyType]!, map.keyType === 'string' && utf8_of(field)));
      entry.set(2, { name: 'value', wire, packable: false, utf8: map.type === 'string' && utf8_of(field), message });
      message = { name: `${plan.name}.${field.name}Entry`, fields: entry };
      wire = wire_len;
    }
    const packable = field.repeated && !field.map && wire !== wire_len;
    fields.set(field.id, { name: field.name, wire, packable, utf8: field.type === 'string' && utf8_of(field), message });
  }
  return plan;
}

function leaf(name: string, wire: number, utf8: boolean): FieldPlan {
  return { name, wire, packable: false, utf8, message: undefined };
}

function utf8_of(field: protobuf.Field): boolean {
  // protobufjs resolves each field's features from its file's syntax: proto3 → VERIFY.
  const features = (field as unknown as { _features?: { utf8_validation?: string } })._features;
  return features?.utf8_validation !== 'NONE';
}

/** Why the bytes are not a valid encoding: the message type, the field number (0 for a tag that
 *  could not be read) and the byte offset in the whole request. Never the data itself. */
export interface Fault {
  message: string;
  field: number;
  offset: number;
  reason: string;
}

export function describe_fault(fault: Fault): string {
  const where = fault.field === 0 ? '' : ` field ${fault.field}`;
  return `malformed request: ${fault.message}${where} at byte ${fault.offset}: ${fault.reason}`;
}

// The pass's scratch state: the last varint read, and the fault if any. Module-level so that the
// walk allocates nothing (the check is synchronous: no interleaving).
let varint_value = 0;
let varint_wide = false;
let fault: Fault | undefined;

const varint_truncated = -1;
const varint_too_long = -2;
const varint_overflow = -3;

/** Reads a varint at `pos`: the position after it, or a negative code. Sets varint_value (exact
 *  when below 2^32) and varint_wide (the value needs more than 32 bits). */
function read_varint(buf: Uint8Array, pos: number, end: number): number {
  // Most tags and lengths are one byte.
  if (pos < end && buf[pos]! < 0x80) {
    varint_value = buf[pos]!;
    varint_wide = false;
    return pos + 1;
  }
  let value = 0;
  let wide = false;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) return varint_truncated;
    const byte = buf[pos++]!;
    if (i < 4) value |= (byte & 0x7f) << (7 * i); // 28 bits at most: a small integer
    else if (i === 4) {
      value += (byte & 0x0f) * 268435456; // 2^28: past int32, so no shift
      if ((byte & 0x70) !== 0) wide = true;
    } else if (i === 9 && byte > 1) return byte >= 0x80 ? varint_too_long : varint_overflow;
    else if ((byte & 0x7f) !== 0) wide = true;
    if (byte < 0x80) {
      varint_value = value;
      varint_wide = wide;
      return pos;
    }
  }
  return varint_too_long;
}

function varint_reason(code: number): string {
  if (code === varint_truncated) return 'varint truncated at the end of the message';
  if (code === varint_too_long) return 'varint longer than 10 bytes';
  assert(code === varint_overflow, 'a varint fault code');
  return 'varint exceeds 64 bits';
}

function fail(plan: MessagePlan, field: number, offset: number, reason: string): number {
  fault = { message: plan.name, field, offset, reason };
  return -1;
}

/** The offset of the first byte of buf[pos..end) that is not valid UTF-8, or -1 (RFC 3629:
 *  no overlong forms, no surrogates, nothing above U+10FFFF). */
export function utf8_invalid_at(buf: Uint8Array, pos: number, end: number): number {
  while (pos < end) {
    const b = buf[pos]!;
    if (b < 0x80) {
      pos++;
      continue;
    }
    const at = pos;
    let need: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (b < 0xc2) return at; // a continuation byte, or an overlong 2-byte form
    else if (b < 0xe0) need = 1;
    else if (b < 0xf0) {
      need = 2;
      if (b === 0xe0) lo = 0xa0; // overlong
      else if (b === 0xed) hi = 0x9f; // surrogates
    } else if (b < 0xf5) {
      need = 3;
      if (b === 0xf0) lo = 0x90; // overlong
      else if (b === 0xf4) hi = 0x8f; // above U+10FFFF
    } else return at;
    if (pos + need >= end) return at; // truncated sequence
    const second = buf[pos + 1]!;
    if (second < lo || second > hi) return at;
    for (let k = 2; k <= need; k++) if ((buf[pos + k]! & 0xc0) !== 0x80) return at;
    pos += need + 1;
  }
  return -1;
}

/** Packed contents: whole elements only. */
function check_packed(buf: Uint8Array, pos: number, end: number, wire: number): number {
  const length = end - pos;
  if (wire === wire_fixed64) return length % 8 === 0 ? end : -1;
  if (wire === wire_fixed32) return length % 4 === 0 ? end : -1;
  while (pos < end) {
    pos = read_varint(buf, pos, end);
    if (pos < 0) return -1;
  }
  return end;
}

function walk(buf: Uint8Array, pos: number, end: number, plan: MessagePlan, depth: number): number {
  if (depth > message_depth_max) return fail(plan, 0, pos, `messages nested deeper than ${message_depth_max}`);
  while (pos < end) {
    const tag_at = pos;
    pos = read_varint(buf, pos, end);
    if (pos < 0) return fail(plan, 0, tag_at, `tag: ${varint_reason(pos)}`);
    if (varint_wide) return fail(plan, 0, tag_at, 'tag exceeds 32 bits');
    const number = varint_value >>> 3;
    const wire = varint_value & 7;
    if (number === 0) return fail(plan, 0, tag_at, 'field number 0 is not allowed');
    if (number >= 19000 && number <= 19999) return fail(plan, number, tag_at, 'field numbers 19000 to 19999 are reserved');
    if (wire === 3 || wire === 4) return fail(plan, number, tag_at, `wire type ${wire} (group) is not supported`);
    if (wire !== wire_varint && wire !== wire_fixed64 && wire !== wire_len && wire !== wire_fixed32) {
      return fail(plan, number, tag_at, `invalid wire type ${wire}`);
    }
    const field = plan.fields.get(number);
    if (field !== undefined && wire !== field.wire && !(field.packable && wire === wire_len)) {
      return fail(plan, number, tag_at, `wire type ${wire} does not match ${field.name}'s declared wire type ${field.wire}`);
    }
    const value_at = pos;
    if (wire === wire_varint) {
      pos = read_varint(buf, pos, end);
      if (pos < 0) return fail(plan, number, value_at, varint_reason(pos));
    } else if (wire === wire_fixed64 || wire === wire_fixed32) {
      const size = wire === wire_fixed64 ? 8 : 4;
      if (end - pos < size) return fail(plan, number, value_at, `${size}-byte value truncated: ${end - pos} bytes left`);
      pos += size;
    } else {
      pos = read_varint(buf, pos, end);
      if (pos < 0) return fail(plan, number, value_at, `length: ${varint_reason(pos)}`);
      const left = end - pos;
      if (varint_wide || varint_value > left) {
        return fail(plan, number, value_at, `length ${varint_wide ? 'above 2^32' : varint_value} exceeds the ${left} bytes left`);
      }
      const stop = pos + varint_value;
      if (field !== undefined) {
        if (field.message !== undefined) {
          if (walk(buf, pos, stop, field.message, depth + 1) < 0) return -1;
        } else if (field.packable) {
          if (check_packed(buf, pos, stop, field.wire) < 0) return fail(plan, number, value_at, 'packed elements truncated');
        } else if (field.utf8) {
          const bad = utf8_invalid_at(buf, pos, stop);
          if (bad >= 0) return fail(plan, number, bad, 'string is not valid UTF-8');
        }
      }
      pos = stop;
    }
  }
  assert(pos === end, 'the walk ends exactly at the end of the message');
  return end;
}

/** undefined if `bytes` is a valid encoding of `plan`'s message, else why not. */
export function check_message(bytes: Uint8Array, plan: MessagePlan): Fault | undefined {
  fault = undefined;
  const end = walk(bytes, 0, bytes.length, plan, 0);
  if (end >= 0) return undefined;
  const found = fault;
  fault = undefined;
  assert(found !== undefined, 'a failed walk records its fault');
  return found;
}
