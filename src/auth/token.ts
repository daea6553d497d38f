// Bearer tokens: compact JWS with HS256 (RFC 7519 subset). Only what we issue is accepted:
// alg must be HS256, exp is required, role must be known. The secret never appears in logs or
// errors, and error messages never echo the token.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { assert } from '../runtime/assert.js';
import { UnauthenticatedError } from './errors.js';

export const roles = ['customer', 'service', 'admin'] as const;
export type Role = (typeof roles)[number];
export interface Principal { user_id: string; role: Role }

export const token_length_max = 4096;
export const token_ttl_seconds_max = 366 * 24 * 3600;
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

export function verify_token(secret: Buffer, token: string, now_ms = Date.now()): Principal {
  if (token.length === 0 || token.length > token_length_max) throw new UnauthenticatedError('bearer token is missing or too long');
  const parts = token.split('.');
  if (parts.length !== 3) throw new UnauthenticatedError('bearer token is malformed');
  const [header_b64, payload_b64, signature_b64] = parts as [string, string, string];
  const expected = createHmac('sha256', secret).update(`${header_b64}.${payload_b64}`).digest();
  const given = Buffer.from(signature_b64, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new UnauthenticatedError('bearer token signature is invalid');
  }
  let header: Record<string, unknown>;
  let payload: Record<string, unknown>;
  try {
    header = JSON.parse(Buffer.from(header_b64, 'base64url').toString('utf8')) as Record<string, unknown>;
    payload = JSON.parse(Buffer.from(payload_b64, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new UnauthenticatedError('bearer token is malformed');
  }
  if (header['alg'] !== 'HS256') throw new UnauthenticatedError('bearer token algorithm must be HS256');
  const { sub, role, exp } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > 128) throw new UnauthenticatedError('bearer token has no valid subject');
  if (typeof role !== 'string' || !(roles as readonly string[]).includes(role)) throw new UnauthenticatedError('bearer token has no valid role');
  if (typeof exp !== 'number' || !Number.isFinite(exp)) throw new UnauthenticatedError('bearer token has no expiry');
  if (exp * 1000 <= now_ms) throw new UnauthenticatedError('bearer token has expired');
  return { user_id: sub, role: role as Role };
}

/** Parses "1h", "30m", "90s", "2d" or a number of seconds. */
export function parse_duration_seconds(text: string): number {
  const match = /^([0-9]{1,9})([smhd]?)$/.exec(text);
  if (match === null) throw new Error(`bad duration ${JSON.stringify(text)} (use e.g. 90s, 30m, 1h, 2d)`);
  const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[match[2] as '' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}
