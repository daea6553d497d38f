// Token verification: HS256 with the node's secret; ES256 and RS256 with configured public keys
// by kid; the key decides the algorithm (no alg confusion, no `none`); expiry, subject and role.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UnauthenticatedError } from '../../src/auth/errors.js';
import {
  load_public_keys, sign_token, token_clock_skew_seconds, token_lifetime_seconds_max_default, verify_token, type VerificationKeys,
} from '../../src/auth/token.js';
import { b64, sign_asymmetric, sign_hs256 } from './sign.js';
import { guarded_after } from '../guard.js';

const secret = Buffer.from('s'.repeat(40));
const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const now = Date.now();


const dir = mkdtempSync(join(tmpdir(), 'keys-'));
const keys_file = join(dir, 'keys.json');
writeFileSync(keys_file, JSON.stringify({
  'idp-ec': ec.publicKey.export({ type: 'spki', format: 'pem' }),
  'idp-rsa': rsa.publicKey.export({ type: 'spki', format: 'pem' }),
}));
const keys: VerificationKeys = { secret, public_keys: load_public_keys(keys_file) };
const claims = { sub: 'alice', role: 'customer', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 600 };

const refused = (token: string, message: RegExp) => {
  try {
    verify_token(keys, token, now);
  } catch (error) {
    assert.is((error as Error).name, 'UnauthenticatedError');
    assert.match((error as Error).message, message);
    return;
  }
  assert.unreachable('token accepted');
};

test('HS256 from `ticketing token`, ES256 and RS256 from configured keys', () => {
  assert.equal(verify_token(keys, sign_token(secret, { user_id: 'bob', role: 'service' }, 60, now), now), { user_id: 'bob', role: 'service' });
  assert.equal(verify_token(keys, sign_asymmetric('ES256', 'idp-ec', ec.privateKey, claims), now), { user_id: 'alice', role: 'customer' });
  assert.equal(verify_token(keys, sign_asymmetric('RS256', 'idp-rsa', rsa.privateKey, claims), now), { user_id: 'alice', role: 'customer' });
});

test('unknown kid, wrong key, algorithm not matching its key, none, tampered payload: UNAUTHENTICATED', () => {
  refused(sign_asymmetric('ES256', 'nope', ec.privateKey, claims), /no configured key/);
  const other = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  refused(sign_asymmetric('ES256', 'idp-ec', other.privateKey, claims), /signature is invalid/);
  refused(sign_asymmetric('RS256', 'idp-ec', rsa.privateKey, claims), /does not match its key/);
  refused(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`, /algorithm/);
  // HS256 keyed with the public key's PEM (the classic confusion) is just a wrong HMAC.
  const pem = ec.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  refused(sign_token(Buffer.from(pem), { user_id: 'mallory', role: 'admin' }, 60, now), /signature is invalid/);
  const good = sign_asymmetric('ES256', 'idp-ec', ec.privateKey, claims).split('.');
  refused(`${good[0]}.${b64({ ...claims, role: 'admin' })}.${good[2]}`, /signature is invalid/);
  refused(sign_asymmetric('ES256', 'idp-ec', ec.privateKey, { ...claims, exp: Math.floor(now / 1000) - 1 }), /expired/);
  refused(sign_asymmetric('ES256', 'idp-ec', ec.privateKey, { ...claims, role: 'root' }), /role/);
});

test('a keys file that is not JSON, has a bad kid, or a weak or wrong key is refused at start', () => {
  const bad = (content: string, message: RegExp) => {
    const file = join(dir, 'bad.json');
    writeFileSync(file, content);
    assert.throws(() => load_public_keys(file), message);
  };
  bad('{', /not readable JSON/);
  bad('{}', /1 to 32 keys/);
  bad(JSON.stringify({ 'bad kid!': ec.publicKey.export({ type: 'spki', format: 'pem' }) }), /key id/);
  bad(JSON.stringify({ k: 'not a pem' }), /not a PEM public key/);
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  bad(JSON.stringify({ k: weak.publicKey.export({ type: 'spki', format: 'pem' }) }), /at least 2048/);
  assert.is(load_public_keys(undefined).size, 0);
});

/** The reason a token is refused for (asserting the message too, and that it never echoes it). */
const reason_of = (token: string, message: RegExp, with_keys: VerificationKeys = keys): string => {
  try {
    verify_token(with_keys, token, now);
  } catch (error) {
    assert.ok(error instanceof UnauthenticatedError, String(error));
    assert.match(error.message, message);
    for (const part of token.split('.')) if (part.length > 8) assert.not.ok(error.message.includes(part), 'the message echoes the token');
    return error.reason;
  }
  return assert.unreachable('token accepted') as never;
};

const t = Math.floor(now / 1000);
const day = token_lifetime_seconds_max_default;
const skew = token_clock_skew_seconds;

test('lifetime cap: iat..exp and now..exp at most token_lifetime_seconds_max (default 24 h)', () => {
  const ok = (payload: Record<string, unknown>, with_keys: VerificationKeys = keys) => assert.equal(verify_token(with_keys, sign_hs256(secret, payload), now), { user_id: 'u', role: 'customer' });
  const base = { sub: 'u', role: 'customer' };
  assert.is(day, 24 * 3600);
  ok({ ...base, iat: t, exp: t + day });              // exactly the cap
  ok({ ...base, exp: t + day + skew });               // no iat: what is left of it counts, plus the skew
  // A year-long token, with or without iat, and one that hides its span behind a recent iat.
  assert.is(reason_of(sign_hs256(secret, { ...base, iat: t, exp: t + 365 * day }), /lives 31536000 s from iat to exp, above the token lifetime cap of 86400 s/), 'lifetime');
  assert.is(reason_of(sign_hs256(secret, { ...base, exp: t + day + skew + 1 }), /expires 86461 s from now, above the token lifetime cap/), 'lifetime');
  assert.is(reason_of(sign_hs256(secret, { ...base, iat: t + 30 * day, exp: t + 30 * day + 60 }), /expires .* from now, above the token lifetime cap/), 'lifetime');
  // Issued 25 h ago, expiring in an hour: its span is over the cap although little of it is left.
  assert.is(reason_of(sign_hs256(secret, { ...base, iat: t - 25 * 3600, exp: t + 3600 }), /lives 93600 s from iat to exp/), 'lifetime');
  // ES256 from an identity provider is held to the same cap.
  assert.is(reason_of(sign_asymmetric('ES256', 'idp-ec', ec.privateKey, { ...claims, exp: t + 7 * day }), /above the token lifetime cap/), 'lifetime');
  // The operator's cap (--token-lifetime-max 1h).
  const hour: VerificationKeys = { ...keys, lifetime_seconds_max: 3600 };
  ok({ ...base, iat: t, exp: t + 3600 }, hour);
  assert.is(reason_of(sign_token(secret, { user_id: 'u', role: 'customer' }, 7200, now), /lives 7200 s from iat to exp, above the token lifetime cap of 3600 s/, hour), 'lifetime');
});

test('nbf: honoured with the clock skew allowance; time claims must be numbers', () => {
  const base = { sub: 'u', role: 'customer', iat: t, exp: t + 3600 };
  assert.equal(verify_token(keys, sign_hs256(secret, { ...base, nbf: t - 10 }), now), { user_id: 'u', role: 'customer' });
  assert.equal(verify_token(keys, sign_hs256(secret, { ...base, nbf: t + skew }), now), { user_id: 'u', role: 'customer' });
  assert.is(reason_of(sign_hs256(secret, { ...base, nbf: t + 600 }), /not valid yet \(nbf is 600 s from now; clock skew allowed 60 s\)/), 'not_yet_valid');
  assert.is(reason_of(sign_asymmetric('RS256', 'idp-rsa', rsa.privateKey, { ...claims, nbf: t + 3 * skew }), /not valid yet/), 'not_yet_valid');
  assert.is(reason_of(sign_hs256(secret, { ...base, nbf: String(t + 600) }), /nbf is not a number/), 'claims');
  assert.is(reason_of(sign_hs256(secret, { ...base, iat: 'yesterday' }), /iat is not a number/), 'claims');
});

test('each refusal carries its reason (ticketing_auth_refusals_total)', () => {
  assert.is(reason_of('', /missing/), 'missing');
  assert.is(reason_of('a.b', /malformed/), 'malformed');
  assert.is(reason_of(sign_token(Buffer.from('x'.repeat(40)), { user_id: 'u', role: 'admin' }, 60, now), /signature/), 'signature');
  assert.is(reason_of(sign_asymmetric('ES256', 'nope', ec.privateKey, claims), /no configured key/), 'key');
  assert.is(reason_of(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`, /algorithm/), 'algorithm');
  assert.is(reason_of(sign_hs256(secret, { sub: 'u', role: 'customer', exp: t - 1 }), /expired/), 'expired');
  assert.is(reason_of(sign_hs256(secret, { sub: 'u', role: 'root', exp: t + 60 }), /role/), 'claims');
});

guarded_after(test, () => rmSync(dir, { recursive: true, force: true }));

test.run();
