// The waiting room's cryptography (docs/contracts.md "Waiting room"): ticket ids, receipts and
// their hash chain, admission tokens, and the draw. Pure functions of their inputs: the same
// code runs live and on replay, and a verifier outside the node can redo each step from the
// published values (the README's scheme; test/actors/queue_fairness.test.ts recomputes it
// without this file).
import {
  createHmac, createPrivateKey, createPublicKey, hash, sign, timingSafeEqual, type KeyObject,
} from 'node:crypto';
import { assert } from '../util/assert.js';
import { make_id } from './ids.js';

export const receipt_prefix = 'ticketing-queue-receipt/v1';
export const token_prefix = 'at1';
/** GetFairness's `scheme`: the rule, in one line (queue.proto). */
export const fairness_scheme =
  'draw key of seq s = sha256(seed || early_chain_head || uint64be(s)); '
  + 'early joiners in ascending key (ties: seq); later joiners after them, by seq';
/** PKCS#8 DER of an Ed25519 private key, less its 32-byte seed (RFC 8410). */
const ed25519_pkcs8_prefix = Buffer.from('302e020100300506032b657004220420', 'hex');
/** Draw keys sort on 32 bits of key above 20 bits of index, exactly in a float64 (2^52). */
const draw_index_bits = 20;
export const draw_entries_max = 2 ** draw_index_bits;

/** sha256 of the parts concatenated (strings as utf8). One-shot crypto.hash: a third of
 *  createHash's cost per call (measured beside it: 6.5 against 20.7 µs under load). */
export function sha256(...parts: (Uint8Array | string)[]): Buffer {
  const bytes = parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p));
  return hash('sha256', bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes), 'buffer');
}

export function receipt_key_of(seed: Uint8Array): { key: KeyObject; public_der_b64: string } {
  assert(seed.length === 32, 'an Ed25519 seed is 32 bytes');
  const key = createPrivateKey({
    key: Buffer.concat([ed25519_pkcs8_prefix, seed]), format: 'der', type: 'pkcs8',
  });
  const public_der = createPublicKey(key).export({ type: 'spki', format: 'der' });
  return { key, public_der_b64: public_der.toString('base64') };
}

/** chain_0: from the commitment, so the chain is fixed before anyone joins. */
export function chain_zero(seed_commitment: string): Buffer {
  return sha256(seed_commitment);
}

/** The receipt's body without its chain field (what chain_seq hashes). */
export function receipt_body_head(
  event_id: string, ticket_id: string, seq: number, joined_at_ms: number, user_hash: string,
): string {
  return `${receipt_prefix}|${event_id}|${ticket_id}|${seq}|${joined_at_ms}|${user_hash}`;
}

/** chain_seq = sha256(chain_(seq-1) ‖ utf8(body head)). */
export function chain_next(previous: Uint8Array, body_head: string): Buffer {
  assert(previous.length === 32, 'a chain link is 32 bytes');
  return sha256(previous, body_head);
}

export function sign_receipt(key: KeyObject, body: string): Buffer {
  return sign(null, Buffer.from(body, 'utf8'), key);
}

export function user_hash_of(event_id: string, user_id: string, device_id: string): Buffer {
  return sha256(`${event_id}|${user_id}|${device_id}`);
}

function mac(key: Uint8Array, data: Uint8Array | string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

/** 16 id bytes of entry `seq` of queue `queue_no`: uint32be(queue_no) ‖ uint32be(seq) ‖ the
 *  first 8 bytes of HMAC-SHA256(ticket_key, those 8 bytes). */
function ticket_bytes(ticket_key: Uint8Array, queue_no: number, seq: number): Buffer {
  const bytes = Buffer.alloc(16);
  bytes.writeUInt32BE(queue_no, 0);
  bytes.writeUInt32BE(seq, 4);
  mac(ticket_key, bytes.subarray(0, 8)).copy(bytes, 8, 0, 8);
  return bytes;
}

export function ticket_id_of(
  partition: number, ticket_key: Uint8Array, queue_no: number, seq: number,
): string {
  return make_id('ticket', partition, ticket_bytes(ticket_key, queue_no, seq));
}

const ticket_shape = /^ticket_([0-9]{1,4})_([A-Za-z0-9_-]{22})$/;

/** The queue number and seq a ticket id names, unchecked (null: not a ticket id shape). The
 *  caller checks the MAC with the queue's key: ticket_id_of(...) === ticket_id. */
export function parse_ticket_id(ticket_id: string): { queue_no: number; seq: number } | null {
  const match = ticket_shape.exec(ticket_id);
  if (match === null) return null;
  const bytes = Buffer.from(match[2]!, 'base64url');
  if (bytes.length !== 16) return null;
  return { queue_no: bytes.readUInt32BE(0), seq: bytes.readUInt32BE(4) };
}

function token_mac(
  token_key: Uint8Array, ticket_id: string, user_id: string, event_id: string,
  expires_at_ms: number,
): string {
  const text = `${ticket_id}|${user_id}|${event_id}|${expires_at_ms}`;
  return mac(token_key, text).toString('base64url');
}

export function mint_token(
  token_key: Uint8Array, ticket_id: string, user_id: string, event_id: string,
  expires_at_ms: number,
): string {
  const mac_b64 = token_mac(token_key, ticket_id, user_id, event_id, expires_at_ms);
  return `${token_prefix}.${ticket_id}.${expires_at_ms}.${mac_b64}`;
}

export interface TokenParts { ticket_id: string; expires_at_ms: number; mac: string }

/** The parts of an admission token, or null when it is not one's shape. */
export function parse_token(token: string): TokenParts | null {
  const parts = token.split('.');
  if (parts.length !== 4 || parts[0] !== token_prefix || !/^[0-9]{1,16}$/.test(parts[2]!)) {
    return null;
  }
  return { ticket_id: parts[1]!, expires_at_ms: Number(parts[2]), mac: parts[3]! };
}

/** Whether `parts` were minted with `token_key` for this user and event (constant time). */
export function token_mac_ok(
  token_key: Uint8Array, parts: TokenParts, user_id: string, event_id: string,
): boolean {
  const want = Buffer.from(
    token_mac(token_key, parts.ticket_id, user_id, event_id, parts.expires_at_ms), 'utf8');
  const got = Buffer.from(parts.mac, 'utf8');
  return got.length === want.length && timingSafeEqual(got, want);
}

/** The draw: seqs 1..n ordered by key_s = sha256(seed ‖ head ‖ uint64be(s)) ascending, ties
 *  by seq. Returns order (order[p-1] = seq at position p). Measured: 1,000,000 seqs in
 *  bench/queue_memory.ts (see notes). */
export function draw_order(seed: Uint8Array, head: Uint8Array, n: number): Int32Array {
  assert(n >= 0 && n <= draw_entries_max, 'the draw fits its sort key');
  assert(seed.length === 32 && head.length === 32, 'seed and head are 32 bytes');
  const input = Buffer.alloc(72);
  input.set(seed, 0);
  input.set(head, 32);
  const keys = Buffer.alloc(n * 32);
  const sortable = new Float64Array(n);
  for (let s = 1; s <= n; s++) {
    input.writeUInt32BE(Math.floor(s / 2 ** 32), 64);
    input.writeUInt32BE(s >>> 0, 68);
    // crypto.hash (one-shot, Node ≥ 20.12) took 10 µs a key where createHash took 18 µs
    // (100,000 keys on the 2 shared cores, load 19: the ratio is what counts).
    const key = hash('sha256', input, 'buffer');
    key.copy(keys, (s - 1) * 32);
    sortable[s - 1] = key.readUInt32BE(0) * draw_entries_max + (s - 1);
  }
  sortable.sort();
  const order = new Int32Array(n);
  for (let i = 0; i < n; i++) order[i] = (sortable[i]! % draw_entries_max) + 1;
  settle_prefix_ties(order, sortable, keys);
  return order;
}

/** Runs of equal 32-bit prefixes (about n²/2^33 pairs: ~116 at 1,000,000) sorted on the whole
 *  key, then seq. */
function settle_prefix_ties(order: Int32Array, sortable: Float64Array, keys: Buffer): void {
  const high = (i: number): number => Math.floor(sortable[i]! / draw_entries_max);
  let start = 0;
  while (start < order.length) {
    let end = start + 1;
    while (end < order.length && high(end) === high(start)) end++;
    if (end - start > 1) {
      const run = Array.from(order.subarray(start, end));
      const key = (seq: number): Buffer => keys.subarray((seq - 1) * 32, seq * 32);
      run.sort((a, b) => Buffer.compare(key(a), key(b)) || a - b);
      order.set(run, start);
    }
    start = end;
  }
}
