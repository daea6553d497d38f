// Failure modes of the runtime itself (threads, mailboxes, shutdown). One class per mode with a
// fixed name; src/grpc maps the classes to status codes in one table. These carry no ticket
// meaning.
import { assert } from '../util/assert.js';

export class RuntimeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The worker owning the partition died while the request was in flight, or is restarting. */
export class WorkerUnavailableError extends RuntimeError {
  override readonly name = 'WorkerUnavailableError';
}

/** The worker's mailbox already holds mailbox_depth_max requests: back-pressure, retry later. */
export class MailboxFullError extends RuntimeError {
  override readonly name = 'MailboxFullError';
}

/** The pool is shutting down and accepts nothing new. */
export class ShuttingDownError extends RuntimeError {
  override readonly name = 'ShuttingDownError';
}

/** Remote journal: this worker pool does not serve the partition (never adopted, released, or
 *  lost when a commit failed or its worker died). The request was not applied; retry (the
 *  partition may be moving to, or back to, a node that serves it). */
export class PartitionNotServedError extends RuntimeError {
  override readonly name = 'PartitionNotServedError';
}

/** An error as it crosses a thread boundary: its name and its message, never a stack. */
export interface WireError {
  name: string;
  message: string;
}

export function error_to_wire(error: Error): WireError {
  return { name: error.name, message: error.message };
}

/** A class an error crossing a thread boundary can be rebuilt as: its message is all it takes. */
export type WireErrorClass<E extends Error = Error> = new (message: string) => E;

/** Rebuilds errors of `classes` from their wire form, by the name each class gives its errors;
 *  undefined for any other name (the caller decides what an unknown one means). */
export function reviver<E extends Error>(classes: readonly WireErrorClass<E>[]): (wire: WireError) => E | undefined {
  const by_name = new Map(classes.map((c): [string, WireErrorClass<E>] => [new c('').name, c]));
  // Two classes under one name would revive one of them as the other.
  assert(by_name.size === classes.length, 'one wire name per class');
  return (wire) => {
    const Class = by_name.get(wire.name);
    return Class === undefined ? undefined : new Class(wire.message);
  };
}

/** Rejections are expected, typed refusals (bad input, seat taken); anything else is a bug. */
export interface Rejection extends Error {
  readonly rejection: true;
}

export function is_rejection(error: unknown): error is Rejection {
  return error instanceof Error && (error as Partial<Rejection>).rejection === true;
}
