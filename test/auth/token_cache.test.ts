// The verified-token cache: a hit needs the exact token string, is refused once the token's exp
// has passed, refusals are never remembered, and the cache never holds more than entries_max.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { UnauthenticatedError } from '../../src/auth/errors.js';
import { sign_token, type VerificationKeys } from '../../src/auth/token.js';
import { VerifiedTokens, verified_tokens_max } from '../../src/auth/token_cache.js';
import { sign_hs256 } from './sign.js';

const secret = Buffer.from('s'.repeat(40));
const keys: VerificationKeys = { secret, public_keys: new Map() };
const now = Date.UTC(2026, 11, 1, 12, 0, 0);
const t = Math.floor(now / 1000);

const reason_of = (f: () => unknown): string => {
  try {
    f();
  } catch (error) {
    assert.instance(error, UnauthenticatedError);
    return (error as UnauthenticatedError).reason;
  }
  return assert.unreachable('token accepted') as never;
};

test('a token is verified once, then answered from the cache until it expires', () => {
  const tokens = new VerifiedTokens(keys, 8);
  const token = sign_token(secret, { user_id: 'alice', role: 'customer' }, 60, now);
  assert.equal(tokens.principal_of(token, now), { user_id: 'alice', role: 'customer' });
  assert.equal([tokens.hits, tokens.misses, tokens.size()], [0, 1, 1]);
  assert.equal(tokens.principal_of(token, now + 59_999), { user_id: 'alice', role: 'customer' });
  assert.equal([tokens.hits, tokens.misses], [1, 1]);
  // At exp exactly the token is refused, as verify_token refuses it, and forgotten.
  assert.is(reason_of(() => tokens.principal_of(token, now + 60_000)), 'expired');
  assert.equal([tokens.hits, tokens.misses, tokens.size()], [1, 2, 0]);
});

test('the cached principal cannot be changed by a caller', () => {
  const tokens = new VerifiedTokens(keys, 8);
  const token = sign_token(secret, { user_id: 'bob', role: 'service' }, 60, now);
  const first = tokens.principal_of(token, now);
  assert.ok(Object.isFrozen(first));
  assert.throws(() => {
    (first as { user_id: string }).user_id = 'mallory';
  });
  assert.is(tokens.principal_of(token, now).user_id, 'bob');
});

test('a hit needs the exact token: a changed signature or payload is checked and refused', () => {
  const tokens = new VerifiedTokens(keys, 8);
  const token = sign_token(secret, { user_id: 'alice', role: 'customer' }, 60, now);
  tokens.principal_of(token, now);
  const [h, p, s] = token.split('.') as [string, string, string];
  // The first character carries six bits of the signature's first byte (the last has padding).
  const flipped = (s.startsWith('A') ? 'B' : 'A') + s.slice(1);
  assert.is(reason_of(() => tokens.principal_of(`${h}.${p}.${flipped}`, now)), 'signature');
  const admin = Buffer.from(JSON.stringify({ sub: 'alice', role: 'admin', iat: t, exp: t + 60 }))
    .toString('base64url');
  assert.is(reason_of(() => tokens.principal_of(`${h}.${admin}.${s}`, now)), 'signature');
  assert.is(tokens.size(), 1);
});

test('a refused token is not remembered: it is checked again every time', () => {
  const tokens = new VerifiedTokens(keys, 8);
  const early = sign_hs256(secret, { sub: 'u', role: 'customer', nbf: t + 3600, exp: t + 7200 });
  assert.is(reason_of(() => tokens.principal_of(early, now)), 'not_yet_valid');
  assert.is(reason_of(() => tokens.principal_of(early, now)), 'not_yet_valid');
  assert.equal([tokens.hits, tokens.misses, tokens.size()], [0, 2, 0]);
  // Once valid, it is verified (and only then remembered).
  assert.equal(tokens.principal_of(early, now + 3600_000), { user_id: 'u', role: 'customer' });
  assert.is(tokens.size(), 1);
});

test('never more than entries_max tokens: the oldest is dropped first', () => {
  const tokens = new VerifiedTokens(keys, 3);
  const token_of = (i: number) => sign_token(secret, { user_id: `u${i}`, role: 'customer' }, 60, now);
  for (let i = 0; i < 10; i++) {
    tokens.principal_of(token_of(i), now);
    assert.ok(tokens.size() <= 3);
  }
  assert.is(tokens.size(), 3);
  const misses = tokens.misses;
  tokens.principal_of(token_of(9), now); // among the newest three: a hit
  assert.is(tokens.misses, misses);
  tokens.principal_of(token_of(0), now); // dropped long ago: verified again
  assert.is(tokens.misses, misses + 1);
  assert.is(tokens.size(), 3);
});

test('the default bound is the named limit, and a bound below one is a bug', () => {
  assert.is(new VerifiedTokens(keys).entries_max, verified_tokens_max);
  assert.throws(() => new VerifiedTokens(keys, 0));
});

test.run();
