// Token verification: HS256 with the node's secret; ES256 and RS256 with configured public keys
// by kid; the key decides the algorithm (no alg confusion, no `none`); expiry, subject and role.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load_public_keys, sign_token, verify_token, type VerificationKeys } from '../../src/auth/token.js';
import { b64, sign_asymmetric } from './sign.js';
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

guarded_after(test, () => rmSync(dir, { recursive: true, force: true }));

test.run();
