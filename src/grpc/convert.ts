// Wire -> plain values. Refuses, never rounds: int64 beyond 2^53 or not an integer is
// INVALID_ARGUMENT. Strings are length-capped here, before anything crosses a thread.
import { FieldTooLongError, InvalidArgumentError } from '../actors/errors.js';
import { currency_pattern, id_pattern } from '../actors/limits.js';

export function int64(value: unknown, field: string, min = -Number.MAX_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER): number {
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^-?[0-9]{1,20}$/.test(text)) throw new InvalidArgumentError(`${field} must be an integer`);
  const big = BigInt(text);
  if (big < BigInt(min) || big > BigInt(max)) throw new InvalidArgumentError(`${field} must be between ${min} and ${max}, got ${text}`);
  return Number(big);
}

export function str(value: unknown, field: string, length_max: number): string {
  if (typeof value !== 'string') throw new InvalidArgumentError(`${field} must be a string`);
  if (value.length > length_max) throw new FieldTooLongError(`${field} is longer than ${length_max} characters`);
  return value;
}

export function required(value: unknown, field: string, length_max: number): string {
  const s = str(value, field, length_max);
  if (s.length === 0) throw new InvalidArgumentError(`${field} is required`);
  return s;
}

/** A caller-supplied id: required, length-capped, letters, digits and . _ : - only (so invalid
 *  UTF-8, which decodes to U+FFFD, and control characters never reach a worker). */
export function id(value: unknown, field: string, length_max: number): string {
  const s = required(value, field, length_max);
  if (!id_pattern.test(s)) throw new InvalidArgumentError(`${field} may contain only letters, digits and . _ : -`);
  return s;
}

/** A seat id: SECTION-ROW-NUMBER, where section and row names are letters and digits (event
 *  files allow no more), so anything else (control characters, spaces, invalid UTF-8 decoded to
 *  U+FFFD) is refused here with a message that does not echo it; plausible ids go on to the
 *  event, which names the ones it does not have. */
export function seat_id(value: unknown, field: string, length_max: number): string {
  const s = str(value, field, length_max);
  if (!/^[A-Za-z0-9-]+$/.test(s)) throw new InvalidArgumentError(`${field} is not a seat id: SECTION-ROW-NUMBER in letters and digits, e.g. 101-A-7`);
  return s;
}

/** An optional id ('' allowed): length-capped, same charset as ids. */
export function optional_id(value: unknown, field: string, length_max: number): string {
  const s = str(value ?? '', field, length_max);
  return s === '' ? s : id(s, field, length_max);
}

/** A Money message: amount_micros a safe integer ≥ min (never rounded), an ISO 4217 code. */
export function money(value: unknown, field: string, min: 0 | 1 = 1): { amount_micros: number; currency: string } {
  if (typeof value !== 'object' || value === null) throw new InvalidArgumentError(`${field} is required`);
  const m = value as { amount_micros?: unknown; currency?: unknown };
  const amount_micros = int64(m.amount_micros ?? '0', `${field}.amount_micros`, min);
  const currency = str(m.currency ?? '', `${field}.currency`, 3);
  if (!currency_pattern.test(currency)) throw new InvalidArgumentError(`${field}.currency must be an ISO 4217 code such as EUR`);
  return { amount_micros, currency };
}

/** Money out: int64 as a decimal string. */
export function money_out(amount_micros: number, currency: string): { amount_micros: string; currency: string } {
  return { amount_micros: String(amount_micros), currency };
}
