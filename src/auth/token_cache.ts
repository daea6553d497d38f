// Verified bearer tokens, remembered so that a client sending the same token on every call pays
// the signature check once, not per call (issue 13: HMAC, base64url and two JSON.parse were 6 %
// of the main thread's time under ghz ReserveTickets). Keyed by the exact token string: a hit
// needs the very bytes that were verified, so nothing about a token is believed that was not
// checked. Only successes are kept: a refused token is checked again every time it is sent
// (no negative cache an attacker could poison or use to pin an error). A hit is refused once
// the token's exp has passed, exactly as verify_token would (its other time checks only get
// easier as time advances: see check_times). Bounded: at most verified_tokens_max entries; a
// full cache drops its oldest entry first (insertion order), and an expired entry is dropped
// when met.
import { assert } from '../util/assert.js';
import { token_length_max, verify_token_expiry, type Principal, type VerificationKeys } from './token.js';

/** Tokens remembered at most. Each entry holds the token string (≤ token_length_max chars) and
 *  a principal: at most about 16 MiB at the 4096-char maximum, ~2 MiB for typical 300-char
 *  HS256 tokens. A node's callers are a handful of services plus its customers' sessions; a
 *  customer beyond the bound costs one extra verification, never a refusal. */
export const verified_tokens_max = 4096;

interface Entry { principal: Principal; expires_at_ms: number }

export class VerifiedTokens {
  private readonly entries = new Map<string, Entry>();
  /** Lookups answered from the cache, and those that verified the token (for metrics). */
  hits = 0;
  misses = 0;

  constructor(
    private readonly keys: VerificationKeys,
    readonly entries_max: number = verified_tokens_max,
  ) {
    assert(Number.isInteger(entries_max) && entries_max >= 1, 'entries_max is a positive count');
  }

  /** The principal of a valid token; throws UnauthenticatedError as verify_token does. */
  principal_of(token: string, now_ms: number = Date.now()): Principal {
    const entry = this.entries.get(token);
    if (entry !== undefined) {
      if (now_ms < entry.expires_at_ms) {
        this.hits++;
        return entry.principal;
      }
      // Expired: forget it, and let verify_token refuse it with its own message.
      this.entries.delete(token);
    }
    this.misses++;
    const verified = verify_token_expiry(this.keys, token, now_ms);
    assert(token.length <= token_length_max, 'a verified token is within token_length_max');
    assert(verified.expires_at_ms > now_ms, 'a verified token has not expired');
    if (this.entries.size >= this.entries_max) {
      const oldest = this.entries.keys().next();
      assert(oldest.done !== true, 'a full cache has an oldest entry');
      this.entries.delete(oldest.value);
    }
    // Frozen: one principal now answers many calls, none of which may change it for the rest.
    Object.freeze(verified.principal);
    this.entries.set(token, verified);
    assert(this.entries.size <= this.entries_max, 'within entries_max');
    return verified.principal;
  }

  size(): number {
    return this.entries.size;
  }
}
