// The one peer method, without a .proto: both directions are msgpack (the runtime's codec, so a
// body crosses nodes exactly as it crosses threads to a worker) packed by the caller itself, so
// the server can authenticate the exact bytes before decoding anything from them.
import type * as grpc from '@grpc/grpc-js';
import { packr } from '../runtime/codec.js';
import type { WireError } from '../runtime/errors.js';

export const forward_path = '/ticketing.cluster.v1.Peer/Forward';

/** What a forwarded call carries (all of it under the sender's proof). */
export interface ForwardRequest {
  partition: number;
  /** The typed actor request `{ k: kind, ...request }`, as the Router built it. */
  body: unknown;
  /** The caller's deadline, ms since the epoch (the grpc deadline carries it too, relative). */
  deadline_ms_epoch: number;
  trace_id: string;
  /** Random per call: two identical calls in one ms still differ, so the owner's replay guard
   *  refuses only a real replay (peer_server.ts). */
  nonce: string;
}

export type ForwardReply = { ok: true; value: unknown } | { ok: false; error: WireError };

const identity = (bytes: Buffer): Buffer => bytes;

export const peer_service: grpc.ServiceDefinition = {
  Forward: {
    path: forward_path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

function is_record(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function encode(value: ForwardRequest | ForwardReply): Buffer {
  return packr.pack(value);
}

/** The request in `bytes`, or undefined if they are not one (a bug of the sender). */
export function decode_request(bytes: Buffer): ForwardRequest | undefined {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    return undefined;
  }
  if (!is_record(value) || !('body' in value)) return undefined;
  const { partition, body, deadline_ms_epoch, trace_id, nonce } = value;
  if (typeof partition !== 'number' || !Number.isInteger(partition) || partition < 0) {
    return undefined;
  }
  const finite = typeof deadline_ms_epoch === 'number' && Number.isFinite(deadline_ms_epoch);
  if (!finite) return undefined;
  if (typeof trace_id !== 'string' || trace_id.length === 0) return undefined;
  if (typeof nonce !== 'string' || nonce.length === 0) return undefined;
  return { partition, body, deadline_ms_epoch, trace_id, nonce };
}

/** The reply in `bytes`, or undefined if they are not one. */
export function decode_reply(bytes: Buffer): ForwardReply | undefined {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    return undefined;
  }
  if (!is_record(value)) return undefined;
  if (value['ok'] === true) return { ok: true, value: value['value'] };
  const error = value['error'];
  if (value['ok'] !== false || !is_record(error)) return undefined;
  const { name, message } = error;
  if (typeof name !== 'string' || typeof message !== 'string') return undefined;
  return { ok: false, error: { name, message } };
}
