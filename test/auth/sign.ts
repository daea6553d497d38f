// Signs tokens the way an identity provider would (ES256 / RS256 with a private key), for tests.
import { createHmac, sign, type KeyObject } from 'node:crypto';

function b64(x: unknown): string {
  return Buffer.from(JSON.stringify(x)).toString('base64url');
}

export function sign_asymmetric(alg: 'ES256' | 'RS256', kid: string, key: KeyObject, payload: Record<string, unknown>): string {
  const signed = `${b64({ alg, typ: 'JWT', kid })}.${b64(payload)}`;
  const signature = sign('sha256', Buffer.from(signed), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${signed}.${signature.toString('base64url')}`;
}

/** An HS256 token with any claims (as a client holding the node's secret could mint). */
export function sign_hs256(secret: Buffer, payload: Record<string, unknown>): string {
  const signed = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(payload)}`;
  return `${signed}.${createHmac('sha256', secret).update(signed).digest('base64url')}`;
}

export { b64 };
