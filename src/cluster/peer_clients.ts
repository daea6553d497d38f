// The forwarding side: one grpc-js channel per peer address, reused by every call to it. A call
// carries the caller's deadline (as the grpc deadline, and signed in the request) and trace id;
// the owner's reply is a value or a WireError revived as the owner's exact error class.
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import type { WireError } from '../runtime/errors.js';
import { revive_wire_error } from '../runtime/pool.js';
import { assert } from '../util/assert.js';
import {
  ForwardDeadlineExceededError, ForwardMessageTooLargeError, ForwardsInFlightExceededError,
  PeerAuthError, PeerUnavailableError, revive_forward_error,
} from './forward_errors.js';
import { peer_auth_header, sign_peer_call } from './peer_auth.js';
import { peer_limits_default } from './peer_server.js';
import { decode_reply, encode, forward_path, peer_service } from './peer_wire.js';

export interface PeerClientLimits {
  /** Largest request sent / reply accepted (as the server's: peer_server.ts). */
  message_bytes_max: number;
  /** Most forwards to one peer outstanding from this node; the next is refused at once. */
  forwards_in_flight_per_peer_max: number;
  /** Most peer channels kept open; the oldest is closed to make room (a cluster has a few). */
  peers_max: number;
}

export const peer_client_limits_default: PeerClientLimits = {
  message_bytes_max: peer_limits_default.message_bytes_max,
  forwards_in_flight_per_peer_max: peer_limits_default.forwards_in_flight_per_peer_max,
  peers_max: 256,
};

export interface PeerClientOptions {
  /** Revives the behaviour's errors (and any other class the owner may answer with) from their
   *  wire form, as the pool's `revive` option; runtime and forwarding classes are revived here. */
  revive?: (wire: WireError) => Error | undefined;
  limits?: Partial<PeerClientLimits>;
  now_ms?: () => number;
}

/** A peer's refusal or answer, rebuilt as the class the owner threw. */
export function revive_forwarded(
  wire: WireError, revive: (wire: WireError) => Error | undefined,
): Error {
  return revive_forward_error(wire) ?? revive_wire_error(wire, revive);
}

/** 96 random bits: a collision between two calls of one sender within the replay window is
 *  out of reach. */
const nonce_bytes = 12;

const PeerClient = grpc.makeGenericClientConstructor(peer_service, 'Peer');
type Client = InstanceType<typeof PeerClient>;

interface Peer {
  client: Client;
  in_flight: number;
}

export class PeerClients {
  private readonly peers = new Map<string, Peer>();
  private readonly limits: PeerClientLimits;
  private readonly revive: (wire: WireError) => Error | undefined;
  private readonly now_ms: () => number;
  private closed = false;

  constructor(private readonly key: Buffer, private readonly node_id: string,
    options: PeerClientOptions = {}) {
    assert(key.length === 32, 'the peer key is an HMAC-SHA256 output');
    assert(node_id.length > 0, 'node_id is set');
    this.limits = { ...peer_client_limits_default, ...options.limits };
    assert(this.limits.peers_max > 0, 'peers_max is positive');
    this.revive = options.revive ?? (() => undefined);
    this.now_ms = options.now_ms ?? Date.now;
  }

  /** Forwards (partition, body) to the node at addr, until deadline_ms_epoch (absolute, ms since
   *  the epoch). Resolves with the owner's reply; rejects with the owner's error, revived. */
  call(addr: string, partition: number, body: unknown, deadline_ms_epoch: number,
    trace_id: string): Promise<unknown> {
    assert(Number.isInteger(partition) && partition >= 0, 'partition is an index');
    assert(Number.isFinite(deadline_ms_epoch), 'a forward has a finite deadline');
    if (this.closed) return Promise.reject(new PeerUnavailableError('forwarding is closed'));
    const now_ms = this.now_ms();
    if (deadline_ms_epoch <= now_ms) {
      return Promise.reject(new ForwardDeadlineExceededError(
        'the caller\'s deadline passed before the call could be forwarded; not applied'));
    }
    const nonce = randomBytes(nonce_bytes).toString('base64url');
    const bytes = encode({ partition, body, deadline_ms_epoch, trace_id, nonce });
    if (bytes.length > this.limits.message_bytes_max) {
      return Promise.reject(new ForwardMessageTooLargeError(`the forwarded request is `
        + `${bytes.length} bytes (message_bytes_max ${this.limits.message_bytes_max})`));
    }
    const peer = this.peer(addr);
    if (peer.in_flight >= this.limits.forwards_in_flight_per_peer_max) {
      return Promise.reject(new ForwardsInFlightExceededError(`${peer.in_flight} forwards to `
        + `${addr} already in flight (forwards_in_flight_per_peer_max `
        + `${this.limits.forwards_in_flight_per_peer_max}); not applied, retry later`));
    }
    const metadata = new grpc.Metadata();
    metadata.set(peer_auth_header, sign_peer_call(this.key, this.node_id, now_ms, bytes));
    peer.in_flight++;
    return new Promise<unknown>((resolve, reject) => {
      peer.client.makeUnaryRequest(forward_path, (b: Buffer) => b, (b: Buffer) => b, bytes,
        metadata, { deadline: deadline_ms_epoch }, (error, reply) => {
          peer.in_flight--;
          if (error) reject(transport_error(addr, error));
          else if (reply === undefined) reject(new PeerUnavailableError(`${addr}: no reply`));
          else this.settle(addr, reply, resolve, reject);
        });
    });
  }

  /** Closes every channel; calls in flight fail (PeerUnavailableError), later ones too. */
  close(): void {
    this.closed = true;
    for (const peer of this.peers.values()) peer.client.close();
    this.peers.clear();
  }

  private settle(addr: string, bytes: Buffer, resolve: (value: unknown) => void,
    reject: (error: Error) => void): void {
    const reply = decode_reply(bytes);
    if (reply === undefined) {
      // A peer of another version, or a bug: no class to give it; INTERNAL at the edge.
      reject(new Error(`peer ${addr} sent a malformed forward reply`));
    } else if (reply.ok) {
      resolve(reply.value);
    } else {
      reject(revive_forwarded(reply.error, this.revive));
    }
  }

  private peer(addr: string): Peer {
    const known = this.peers.get(addr);
    if (known !== undefined) return known;
    if (this.peers.size >= this.limits.peers_max) {
      const [oldest_addr, oldest] = this.peers.entries().next().value ?? [];
      if (oldest_addr !== undefined && oldest !== undefined) {
        oldest.client.close();
        this.peers.delete(oldest_addr);
      }
    }
    const client = new PeerClient(addr, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': this.limits.message_bytes_max,
      'grpc.max_send_message_length': this.limits.message_bytes_max,
    });
    const peer: Peer = { client, in_flight: 0 };
    this.peers.set(addr, peer);
    return peer;
  }
}

/** What a failed peer call means to the caller, by its gRPC status. */
function transport_error(addr: string, error: grpc.ServiceError): Error {
  const details = error.details;
  switch (error.code) {
    case grpc.status.DEADLINE_EXCEEDED:
      return new ForwardDeadlineExceededError(`the caller's deadline passed before the owner `
        + `(${addr}) answered; the call may or may not have been applied`);
    case grpc.status.UNAUTHENTICATED:
      return new PeerAuthError(`the owner (${addr}) refused this node's peer credentials `
        + `(${details}); not applied`);
    case grpc.status.RESOURCE_EXHAUSTED:
      return new ForwardMessageTooLargeError(`the owner (${addr}) refused the size: ${details}`);
    case grpc.status.UNAVAILABLE:
    case grpc.status.CANCELLED:
      // Most often the connection failed before anything was sent; a connection lost after
      // sending leaves the outcome unknown, as a worker dying mid-call does.
      return new PeerUnavailableError(`the partition's owner (${addr}) cannot be reached `
        + `(${details}); retry shortly`);
    default:
      // INTERNAL, UNIMPLEMENTED, ...: a peer of another version, or a bug.
      return new Error(`peer ${addr} answered ${grpc.status[error.code]}: ${details}`);
  }
}
