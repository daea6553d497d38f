// The draw, checked from the outside (issue 16 §3): a verifier that knows only the published
// values (GetFairness after the draw) and the receipts recomputes every receipt's signature,
// the hash chain from the commitment, and every early joiner's position, with node:crypto alone
// (none of src/actors/queue_crypto.ts), and finds them equal to what GetPosition serves. A
// changed receipt (a body edited, a signature from another key, a chain link that does not
// follow) is detected.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import type { QueueFairness, QueueReceipt } from '../../src/actors/queue.js';
import { EVENT, MINUTE_MS, QueueHarness, with_queue } from './queue_helpers.js';
import { T0 } from './helpers.js';

const sha256 = (...parts: (Buffer | string)[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** What is wrong with `receipts` (seq order, 1..n) against `fairness`; [] when they verify. */
function problems(fairness: QueueFairness, receipts: QueueReceipt[]): string[] {
  const found: string[] = [];
  if (sha256(Buffer.from(fairness.seed, 'hex')).toString('hex') !== fairness.seed_commitment) {
    found.push('the seed does not match its commitment');
  }
  const key = createPublicKey({ key: Buffer.from(fairness.receipt_public_key, 'base64'), format: 'der', type: 'spki' });
  let chain = sha256(fairness.seed_commitment);
  receipts.forEach((r, i) => {
    const fields = r.body.split('|');
    const [prefix, event_id, ticket_id, seq, joined_at_ms, user_hash, link] = fields;
    if (!verify(null, Buffer.from(r.body, 'utf8'), key, Buffer.from(r.signature))) found.push(`seq ${i + 1}: bad signature`);
    if (fields.length !== 7 || prefix !== 'ticketing-queue-receipt/v1' || event_id !== fairness.event_id
      || Number(seq) !== i + 1) found.push(`seq ${i + 1}: not this queue's receipt ${i + 1}`);
    if (ticket_id !== r.ticket_id || Number(joined_at_ms) !== r.joined_at_ms || user_hash !== r.user_hash) {
      found.push(`seq ${i + 1}: fields differ from the signed body`);
    }
    chain = sha256(chain, fields.slice(0, 6).join('|'));
    if (link !== chain.toString('hex') || r.chain !== link) found.push(`seq ${i + 1}: chain mismatch`);
    if (i + 1 === fairness.early_count && chain.toString('hex') !== fairness.early_chain_head) {
      found.push('the early chain head does not follow from the receipts');
    }
  });
  return found;
}

/** Positions of seqs 1..early_count, recomputed: ascending sha256(seed ‖ head ‖ uint64be(s)). */
function recompute_positions(fairness: QueueFairness): Map<number, number> {
  const seed = Buffer.from(fairness.seed, 'hex');
  const head = Buffer.from(fairness.early_chain_head, 'hex');
  const keyed: { seq: number; key: Buffer }[] = [];
  for (let s = 1; s <= fairness.early_count; s++) {
    const n = Buffer.alloc(8);
    n.writeBigUInt64BE(BigInt(s));
    keyed.push({ seq: s, key: sha256(seed, head, n) });
  }
  keyed.sort((a, b) => Buffer.compare(a.key, b.key) || a.seq - b.seq);
  return new Map(keyed.map((k, i) => [k.seq, i + 1]));
}

function sale(n_early: number, n_late: number): { h: QueueHarness; receipts: QueueReceipt[] } {
  const h = with_queue({ admit_per_minute: 600 });
  h.advance_to(T0 + MINUTE_MS);
  const receipts: QueueReceipt[] = [];
  for (let i = 0; i < n_early; i++) {
    receipts.push(h.call('join_queue', { event_id: EVENT, user_id: `buyer-${i}`, device_id: `d${i}`, trace_id: 't' }).receipt);
    h.advance(137);
  }
  h.advance_to(T0 + 10 * MINUTE_MS);
  for (let i = 0; i < n_late; i++) {
    receipts.push(h.call('join_queue', { event_id: EVENT, user_id: `late-${i}`, device_id: 'd', trace_id: 't' }).receipt);
  }
  return { h, receipts };
}

test('every position served equals the one recomputed from the revealed seed and the receipts', () => {
  const { h, receipts } = sale(300, 20);
  const fairness = h.call('queue_fairness', { event_id: EVENT });
  assert.ok(fairness.drawn && fairness.early_count === 300, 'drawn over the 300 early joiners');
  assert.equal(problems(fairness, receipts), []);
  const want = recompute_positions(fairness);
  let moved = 0;
  for (const r of receipts) {
    const served = h.call('queue_position', { ticket_id: r.ticket_id, actor_user_id: null }).position;
    const expected = r.seq <= fairness.early_count ? want.get(r.seq) : r.seq;
    assert.is(served, expected, `seq ${r.seq}`);
    if (served !== r.seq) moved++;
  }
  assert.ok(moved > 250, `the draw shuffles (moved ${moved} of 300)`);
});

test('before the draw the seed is secret; after it, it matches the commitment published first', () => {
  const h = with_queue();
  const before = h.call('queue_fairness', { event_id: EVENT });
  assert.is(before.seed, '');
  assert.is(before.early_chain_head, '');
  h.advance_to(T0 + 10 * MINUTE_MS);
  const after = h.call('queue_fairness', { event_id: EVENT });
  assert.is(after.seed_commitment, before.seed_commitment);
  assert.is(sha256(Buffer.from(after.seed, 'hex')).toString('hex'), before.seed_commitment);
  assert.match(after.scheme, 'sha256(seed || early_chain_head || uint64be(s))');
});

test('a changed receipt is detected: an edited body, another key\'s signature, a broken chain', () => {
  const { h, receipts } = sale(12, 0);
  const fairness = h.call('queue_fairness', { event_id: EVENT });
  assert.equal(problems(fairness, receipts), []);
  // The node (or anyone) moves a joiner earlier by editing its join time: the signature fails.
  const edited = receipts.map((r) => ({ ...r }));
  edited[5] = { ...edited[5]!, body: edited[5]!.body.replace(`|${edited[5]!.joined_at_ms}|`, `|${edited[5]!.joined_at_ms - 1}|`) };
  assert.ok(problems(fairness, edited).includes('seq 6: bad signature'));
  // Re-signed by another key: still a bad signature.
  const other = generateKeyPairSync('ed25519').privateKey;
  const resigned = receipts.map((r) => ({ ...r }));
  resigned[2] = { ...resigned[2]!, signature: sign(null, Buffer.from(resigned[2]!.body), other) };
  assert.ok(problems(fairness, resigned).includes('seq 3: bad signature'));
  // A receipt dropped (an entry removed from the draw): every later link mismatches.
  const dropped = [...receipts.slice(0, 4), ...receipts.slice(5)];
  const found = problems(fairness, dropped);
  assert.ok(found.some((p) => p.includes('chain mismatch')), found.join('; '));
  assert.ok(found.includes('the early chain head does not follow from the receipts')
    || found.some((p) => p.startsWith('seq 5')), found.join('; '));
  // A forged seed: it no longer matches the commitment, and the positions move.
  const forged = { ...fairness, seed: 'ab'.repeat(32) };
  assert.ok(problems(forged, receipts).includes('the seed does not match its commitment'));
  assert.not.equal([...recompute_positions(forged)], [...recompute_positions(fairness)]);
});

test.run();
