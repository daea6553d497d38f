// Bearer tokens: compact JWS (RFC 7519 subset). HS256 with the node's secret (what `ticketing
// token` issues), or ES256 / RS256 from an identity provider whose public keys the operator
// configured (--auth-public-keys, by `kid`). exp is required, role must be known, and a token
// may live at most token_lifetime_seconds_max (checked against both its own iat..exp span and
// what is left of it from now, so neither a missing nor a forged iat gets round it); nbf is
// honoured. The algorithm
// is only believed together with a key of its own kind, so a token cannot pick how it is checked
// (no `none`, no HS256 keyed with a public key). The secret never appears in logs or errors,
// and error messages never echo the token.
import { createHmac, createPublicKey, randomBytes, timingSafeEqual, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../util/assert.js';
import { UnauthenticatedError } from './errors.js';

export const roles = ['customer', 'service', 'admin'] as const;
export type Role = (typeof roles)[number];
export interface Principal { user_id: string; role: Role }

export const token_length_max = 4096;
/** Ceiling of the configurable lifetime cap (and of `ticketing token --ttl`). */
export const token_ttl_seconds_max = 366 * 24 * 3600;
/** Longest a token may live by default (`--token-lifetime-max`, TICKETING_TOKEN_LIFETIME_MAX).
 *  A day: a leaked token is worthless by tomorrow, and services re-mint on a timer anyway. */
export const token_lifetime_seconds_max_default = 24 * 3600;
/** Smallest cap an operator may set: the CLI's own admin tokens live 300 s. */
export const token_lifetime_seconds_min = 300;
/** Clock difference allowed between a token's issuer and this node: a token whose nbf is up to
 *  this far in the future is accepted, and its remaining lifetime may exceed the cap by this
 *  much (an identity provider whose clock runs ahead). Expiry itself gets no allowance:
 *  refusing a token a little early is safe. */
export const token_clock_skew_seconds = 60;
const secret_file = 'auth.secret';

function b64url(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** The HMAC key: TICKETING_AUTH_SECRET, else `<data>/auth.secret`, created 0600 on first use. */
export function load_secret(data_dir: string, env = process.env, create = true): Buffer {
  const from_env = env['TICKETING_AUTH_SECRET'];
  if (from_env !== undefined && from_env !== '') {
    if (from_env.length < 32) throw new Error('TICKETING_AUTH_SECRET must be at least 32 characters');
    return Buffer.from(from_env, 'utf8');
  }
  const path = join(data_dir, secret_file);
  if (!existsSync(path)) {
    if (!create) throw new Error(`no ${secret_file} in ${data_dir}: start the server once, or set TICKETING_AUTH_SECRET`);
    writeFileSync(path, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
  }
  chmodSync(path, 0o600);
  const secret = Buffer.from(readFileSync(path, 'utf8').trim(), 'utf8');
  assert(secret.length >= 32, 'secret has at least 256 bits');
  return secret;
}

export function sign_token(secret: Buffer, principal: Principal, ttl_seconds: number, now_ms = Date.now()): string {
  assert(roles.includes(principal.role), 'known role');
  assert(ttl_seconds > 0 && ttl_seconds <= token_ttl_seconds_max, 'ttl within token_ttl_seconds_max');
  const iat = Math.floor(now_ms / 1000);
  const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const payload = b64url(JSON.stringify({ sub: principal.user_id, role: principal.role, iat, exp: iat + ttl_seconds }));
  const signature = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
  return `${header}.${payload}.${signature}`;
}

/** What tokens are checked with: the node's HMAC secret and any configured public keys by kid. */
export interface VerificationKeys {
  secret: Buffer;
  public_keys: ReadonlyMap<string, KeyObject>;
  /** Longest lifetime accepted; token_lifetime_seconds_max_default when absent. */
  lifetime_seconds_max?: number;
}

/** Public keys kept at most (a JWKS of an identity provider holds a handful). */
export const public_keys_max = 32;

/** `--auth-public-keys FILE`: a JSON object mapping each key id (the tokens' `kid`) to a PEM
 *  public key, EC P-256 (ES256) or RSA ≥ 2048 bits (RS256). Unset: HS256 tokens only. */
export function load_public_keys(file: string | undefined): Map<string, KeyObject> {
  const keys = new Map<string, KeyObject>();
  if (file === undefined) return keys;
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`--auth-public-keys ${file}: not readable JSON (${(error as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`--auth-public-keys ${file}: expected {"kid": "-----BEGIN PUBLIC KEY-----..."}`);
  const entries = Object.entries(raw as Record<string, unknown>);
  if (entries.length === 0 || entries.length > public_keys_max) throw new Error(`--auth-public-keys ${file}: 1 to ${public_keys_max} keys`);
  for (const [kid, pem] of entries) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(kid)) throw new Error(`--auth-public-keys ${file}: key id ${JSON.stringify(kid.slice(0, 64))} must be 1..64 of A-Z a-z 0-9 . _ -`);
    let key: KeyObject;
    try {
      key = createPublicKey(String(pem));
    } catch {
      throw new Error(`--auth-public-keys ${file}: key ${kid} is not a PEM public key`);
    }
    const ok = (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1')
      || (key.asymmetricKeyType === 'rsa' && (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048);
    if (!ok) throw new Error(`--auth-public-keys ${file}: key ${kid} must be EC P-256 (ES256) or RSA of at least 2048 bits (RS256)`);
    keys.set(kid, key);
  }
  return keys;
}

function check_signature(keys: VerificationKeys, header: Record<string, unknown>, signed: string, signature: Buffer): void {
  const alg = header['alg'];
  if (alg === 'HS256') {
    const expected = createHmac('sha256', keys.secret).update(signed).digest();
    if (signature.length !== expected.length || !timingSafeEqual(signature, expected)) throw new UnauthenticatedError('bearer token signature is invalid', 'signature');
    return;
  }
  if (alg !== 'ES256' && alg !== 'RS256') throw new UnauthenticatedError('bearer token algorithm must be HS256, or ES256/RS256 with a configured key', 'algorithm');
  const kid = header['kid'];
  const key = typeof kid === 'string' ? keys.public_keys.get(kid) : undefined;
  if (key === undefined) throw new UnauthenticatedError('bearer token names no configured key (kid)', 'key');
  // The key decides which algorithm is acceptable, not the token.
  if (key.asymmetricKeyType !== (alg === 'ES256' ? 'ec' : 'rsa')) throw new UnauthenticatedError('bearer token algorithm does not match its key', 'algorithm');
  const valid = verify('sha256', Buffer.from(signed), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key, signature);
  if (!valid) throw new UnauthenticatedError('bearer token signature is invalid', 'signature');
}

export function verify_token(keys_or_secret: VerificationKeys | Buffer, token: string, now_ms = Date.now()): Principal {
  return verify_token_expiry(keys_or_secret, token, now_ms).principal;
}

/** A verified token: who it names, and the instant (ms since the epoch) its exp refuses it. */
export interface VerifiedToken { principal: Principal; expires_at_ms: number }

/** verify_token, with the token's exp: what a cache of verified tokens must respect. */
export function verify_token_expiry(keys_or_secret: VerificationKeys | Buffer, token: string, now_ms = Date.now()): VerifiedToken {
  const keys: VerificationKeys = Buffer.isBuffer(keys_or_secret) ? { secret: keys_or_secret, public_keys: new Map() } : keys_or_secret;
  if (token.length === 0 || token.length > token_length_max) throw new UnauthenticatedError('bearer token is missing or too long', token.length === 0 ? 'missing' : 'malformed');
  const parts = token.split('.');
  if (parts.length !== 3) throw new UnauthenticatedError('bearer token is malformed');
  const [header_b64, payload_b64, signature_b64] = parts as [string, string, string];
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(header_b64, 'base64url').toString('utf8')) as Record<string, unknown>;
    payload = JSON.parse(Buffer.from(payload_b64, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new UnauthenticatedError('bearer token is malformed');
  }
  if (typeof header !== 'object' || header === null || typeof payload !== 'object' || payload === null) throw new UnauthenticatedError('bearer token is malformed');
  // Nothing of the payload is believed before the signature is checked.
  check_signature(keys, header, `${header_b64}.${payload_b64}`, Buffer.from(signature_b64, 'base64url'));
  const { sub, role } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 128) throw new UnauthenticatedError('bearer token has no valid subject', 'claims');
  if (typeof role !== 'string' || !(roles as readonly string[]).includes(role)) throw new UnauthenticatedError('bearer token has no valid role', 'claims');
  const exp = check_times(payload, now_ms, keys.lifetime_seconds_max ?? token_lifetime_seconds_max_default);
  return { principal: { user_id: sub, role: role as Role }, expires_at_ms: exp * 1000 };
}

/** A numeric time claim (seconds since the epoch): the number, undefined when absent. */
function time_claim(payload: Record<string, unknown>, name: 'exp' | 'iat' | 'nbf'): number | undefined {
  const value = payload[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new UnauthenticatedError(`bearer token's ${name} is not a number of seconds`, 'claims');
  return value;
}

/** exp (required, in the future), nbf (reached, within the skew), and the lifetime cap on both
 *  iat..exp and now..exp; returns exp. Messages give the limits, never the token. Every check
 *  but expiry only gets easier as now advances: a token that passed once passes until exp. */
function check_times(payload: Record<string, unknown>, now_ms: number, lifetime_seconds_max: number): number {
  assert(Number.isInteger(lifetime_seconds_max) && lifetime_seconds_max > 0, 'lifetime cap is a positive number of seconds');
  const exp = time_claim(payload, 'exp');
  const iat = time_claim(payload, 'iat');
  const nbf = time_claim(payload, 'nbf');
  const now = now_ms / 1000;
  if (exp === undefined) throw new UnauthenticatedError('bearer token has no expiry', 'claims');
  if (exp <= now) throw new UnauthenticatedError('bearer token has expired', 'expired');
  if (nbf !== undefined && nbf > now + token_clock_skew_seconds) {
    throw new UnauthenticatedError(`bearer token is not valid yet (nbf is ${Math.ceil(nbf - now)} s from now; clock skew allowed ${token_clock_skew_seconds} s)`, 'not_yet_valid');
  }
  const cap = `token lifetime cap of ${lifetime_seconds_max} s (token_lifetime_seconds_max)`;
  if (iat !== undefined && exp - iat > lifetime_seconds_max) {
    throw new UnauthenticatedError(`bearer token lives ${Math.round(exp - iat)} s from iat to exp, above the ${cap}: mint a shorter-lived one`, 'lifetime');
  }
  if (exp - now > lifetime_seconds_max + token_clock_skew_seconds) {
    throw new UnauthenticatedError(`bearer token expires ${Math.ceil(exp - now)} s from now, above the ${cap}: mint a shorter-lived one`, 'lifetime');
  }
  return exp;
}
