// Authentication between the nodes of a cluster. Every node shares TICKETING_AUTH_SECRET (tokens
// from one node are accepted by all); the peer key is derived from it, so the secret itself
// never keys anything but tokens. A forwarded call carries a proof that its sender knows the
// key, bound to the exact bytes of the call (partition, body, deadline, trace id) and to the
// sender's clock: `v1.<node_id base64url>.<ts_ms>.<hmac hex>` with
// hmac = HMAC-SHA256(key, `<node_id base64url>.<ts_ms>.` followed by the call's bytes).
// The key is never sent. A proof outside clock_skew_ms_max of the receiver's clock is refused,
// which bounds how long a captured call could be replayed (see notes: forward.md).
import { createHmac, timingSafeEqual } from 'node:crypto';
import { assert } from '../util/assert.js';

export const peer_key_label = 'ticketing-cluster-peer';
/** The metadata key a proof travels under. */
export const peer_auth_header = 'x-ticketing-peer-auth';
/** Most clock difference between two nodes a proof survives. NTP keeps nodes within ms; 10 s
 *  tolerates a badly drifting clock and still keeps the replay window short. */
export const clock_skew_ms_max_default = 10_000;
const secret_bytes_min = 32;
const node_id_chars_max = 256;
const proof_chars_max = 1024;

/** HMAC-SHA256(secret, 'ticketing-cluster-peer'): the same on every node of a cluster. */
export function peer_key_of(secret: Buffer): Buffer {
  assert(secret.length >= secret_bytes_min, 'TICKETING_AUTH_SECRET is at least 32 bytes');
  return createHmac('sha256', secret).update(peer_key_label).digest();
}

/** One pass over the bytes: the prefix is unambiguous (base64url and digits hold no '.'), so
 *  no separate body hash is needed (it measured ~1.5% of a forward's CPU on its own). */
function mac(key: Buffer, node_b64: string, ts_ms: number, message: Uint8Array): Buffer {
  return createHmac('sha256', key).update(`${node_b64}.${ts_ms}.`).update(message).digest();
}

/** The proof for one call's bytes, sent at now_ms. */
export function sign_peer_call(
  key: Buffer, node_id: string, now_ms: number, message: Uint8Array,
): string {
  assert(node_id.length > 0 && node_id.length <= node_id_chars_max, 'node_id is bounded');
  assert(Number.isSafeInteger(now_ms) && now_ms > 0, 'now_ms is an integer epoch time');
  const node_b64 = Buffer.from(node_id, 'utf8').toString('base64url');
  return `v1.${node_b64}.${now_ms}.${mac(key, node_b64, now_ms, message).toString('hex')}`;
}

export type PeerAuthRefusal = 'missing' | 'malformed' | 'bad_proof' | 'clock_skew';
export type PeerAuthResult =
  /** `mac`: the proof's MAC, unique per call (the owner's replay guard keys on it). */
  | { ok: true; node_id: string; ts_ms: number; mac: string }
  | { ok: false; reason: PeerAuthRefusal; detail: string };

const proof_pattern = /^v1\.([A-Za-z0-9_-]+)\.([0-9]{1,16})\.([0-9a-f]{64})$/;

/** Checks a proof against the bytes received, at the receiver's now_ms. */
export function verify_peer_call(
  key: Buffer, proof: unknown, message: Uint8Array, now_ms: number, clock_skew_ms_max: number,
): PeerAuthResult {
  assert(clock_skew_ms_max > 0, 'clock_skew_ms_max is positive');
  if (typeof proof !== 'string' || proof.length === 0) {
    return { ok: false, reason: 'missing', detail: `no ${peer_auth_header} metadata` };
  }
  const match = proof.length <= proof_chars_max ? proof_pattern.exec(proof) : null;
  if (match === null) return { ok: false, reason: 'malformed', detail: 'malformed peer proof' };
  const node_b64 = match[1]!;
  const ts_ms = Number(match[2]!);
  const hmac_hex = match[3]!;
  // Checked before the MAC, without revealing anything about the key: only the sender's clock.
  const skew_ms = Math.abs(now_ms - ts_ms);
  if (skew_ms > clock_skew_ms_max) {
    return {
      ok: false, reason: 'clock_skew',
      detail: `peer proof is ${skew_ms} ms from this node's clock (clock_skew_ms_max `
        + `${clock_skew_ms_max}): check the nodes' clocks`,
    };
  }
  const expected = mac(key, node_b64, ts_ms, message);
  const given = Buffer.from(hmac_hex, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    return {
      ok: false, reason: 'bad_proof',
      detail: 'peer proof does not match: do all nodes share TICKETING_AUTH_SECRET?',
    };
  }
  const node_id = Buffer.from(node_b64, 'base64url').toString('utf8');
  return { ok: true, node_id, ts_ms, mac: hmac_hex };
}
