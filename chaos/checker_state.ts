// What the checker reads besides the history: the final state (read through the public gRPC
// API once the load stopped) and the events a read_committed Kafka consumer saw. Plain JSON
// shapes, so a recorded run (or a fabricated bad one) can be checked again by a test.
import type { Json, JsonObject } from './history.js';

/** What a ReleaseHold probe of an acknowledged hold answered at the end: 'released' (it was
 *  live), 'not_live' (released=false: it had ended), 'confirmed' (FAILED_PRECONDITION: sold),
 *  'not_found' (lost), 'ambiguous' (an attempt was unknown, a retry found it not live). */
export type HoldProbe = 'released' | 'not_live' | 'confirmed' | 'not_found' | 'ambiguous';

export interface OrderRead {
  order_id: string;
  status: string;
  user_id: string;
  event_id: string;
  seat_ids: string[];
  hold_id: string;
  payment_id: string;
  payment_status: string;
  total_micros: number;
  captured_micros: number;
  refunded_micros: number;
}

export interface EventRead {
  free_seat_ids: string[];
  held: number;
  sold: number;
}

export interface FinalState {
  /** Wall time (ms) when the reads began, after the load stopped. */
  read_ms: number;
  /** The node's clock then (TestClockService.Advance by 0). */
  node_now_ms: number;
  /** GetAvailability of every event (all sections), read first. */
  events: Record<string, EventRead>;
  /** GetOrder of every order id the history or ListOrders named. */
  orders: Record<string, OrderRead | 'not_found'>;
  /** ListOrders of every user: the order ids it lists. */
  user_orders: Record<string, string[]>;
  /** ReleaseHold of every hold id the history acknowledged, read last. */
  holds: Record<string, HoldProbe>;
}

/** One message a read_committed consumer saw (duplicates included). */
export interface SeenEvent {
  event_id: string;
  type: string;
  topic: string;
  partition: number;
  offset: string;
  /** The decoded message (protobufjs toObject: longs as strings, defaults on). */
  message: JsonObject;
}

export function str(o: JsonObject | null | undefined, field: string): string {
  const v: Json | undefined = o?.[field];
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '';
}

export function num(o: JsonObject | null | undefined, field: string): number {
  const v: Json | undefined = o?.[field];
  return typeof v === 'number' ? v : typeof v === 'string' && v !== '' ? Number(v) : 0;
}

export function obj(o: JsonObject | null | undefined, field: string): JsonObject {
  const v: Json | undefined = o?.[field];
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {};
}

export function strs(o: JsonObject | null | undefined, field: string): string[] {
  const v: Json | undefined = o?.[field];
  return Array.isArray(v) ? v.map(String) : [];
}

/** A Money field's micros ({ amount_micros: '123', currency }). */
export function micros(o: JsonObject | null | undefined, field: string): number {
  return num(obj(o, field), 'amount_micros');
}
