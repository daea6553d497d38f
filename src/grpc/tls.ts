// gRPC listener credentials: plaintext (default), TLS (--tls-cert + --tls-key) or mutual TLS
// (plus --tls-client-ca: every client must present a certificate signed by that CA).
// Errors name the flag and the file, never the file's contents; logs never carry key material.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';

export interface TlsFiles {
  tls_cert_file?: string | undefined;
  tls_key_file?: string | undefined;
  tls_client_ca_file?: string | undefined;
}

export type TlsMode = 'insecure' | 'tls' | 'mtls';

export class TlsConfigError extends Error {
  override name = 'TlsConfigError';
}

const label = {
  tls_cert_file: '--tls-cert (TICKETING_TLS_CERT)',
  tls_key_file: '--tls-key (TICKETING_TLS_KEY)',
  tls_client_ca_file: '--tls-client-ca (TICKETING_TLS_CLIENT_CA)',
} as const;

/** Which transport the files ask for; refuses incomplete combinations. Reads nothing. */
export function tls_mode(files: TlsFiles): TlsMode {
  for (const key of Object.keys(label) as (keyof typeof label)[]) {
    if (files[key] === '') throw new TlsConfigError(`${label[key]} needs a file path, got an empty value`);
  }
  const cert = files.tls_cert_file !== undefined;
  const key = files.tls_key_file !== undefined;
  const client_ca = files.tls_client_ca_file !== undefined;
  if (cert && !key) throw new TlsConfigError(`${label.tls_cert_file} needs ${label.tls_key_file} (the certificate's private key)`);
  if (key && !cert) throw new TlsConfigError(`${label.tls_key_file} needs ${label.tls_cert_file} (the certificate chain for that key)`);
  if (client_ca && !cert) {
    throw new TlsConfigError(`${label.tls_client_ca_file} (mutual TLS) needs ${label.tls_cert_file} and ${label.tls_key_file}: the server must present a certificate too`);
  }
  return client_ca ? 'mtls' : cert ? 'tls' : 'insecure';
}

function read(files: TlsFiles, key: keyof typeof label): Buffer {
  const path = files[key]!;
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new TlsConfigError(`${label[key]}: cannot read ${path}${code === undefined ? '' : ` (${code})`}`);
  }
}

function certificate(files: TlsFiles, key: 'tls_cert_file' | 'tls_client_ca_file', pem: Buffer): X509Certificate {
  // X509Certificate parses the first certificate of a PEM bundle; that is enough to refuse a
  // file that is not a certificate at all (a key, a CSR, DER, an empty file).
  if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new TlsConfigError(`${label[key]}: ${files[key]} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  }
  try {
    return new X509Certificate(pem);
  } catch {
    throw new TlsConfigError(`${label[key]}: ${files[key]} holds no valid PEM certificate`);
  }
}

export interface LoadedTls {
  mode: TlsMode;
  cert?: Buffer;
  key?: Buffer;
  client_ca?: Buffer;
  /** Server certificate (first of the chain), for the startup log. */
  leaf?: X509Certificate;
}

/** Validates the combination, reads and checks the files (certificate parses, key matches it). */
export function load_tls(files: TlsFiles): LoadedTls {
  const mode = tls_mode(files);
  if (mode === 'insecure') return { mode };
  const cert = read(files, 'tls_cert_file');
  const key = read(files, 'tls_key_file');
  const leaf = certificate(files, 'tls_cert_file', cert);
  let private_key;
  try {
    private_key = createPrivateKey(key);
  } catch {
    // The parser's message is dropped on purpose: nothing derived from the key is printed.
    throw new TlsConfigError(`${label.tls_key_file}: ${files.tls_key_file} holds no valid unencrypted PEM private key`);
  }
  if (!leaf.checkPrivateKey(private_key)) {
    throw new TlsConfigError(`${label.tls_key_file}: ${files.tls_key_file} is not the private key of the certificate in ${files.tls_cert_file}`);
  }
  if (mode === 'tls') return { mode, cert, key, leaf };
  const client_ca = read(files, 'tls_client_ca_file');
  certificate(files, 'tls_client_ca_file', client_ca);
  return { mode, cert, key, client_ca, leaf };
}

/**
 * The gRPC listener's TLS material, and one startup log line saying which transport is on
 * (file paths and the certificate's subject and expiry; never key material).
 */
export function listener_tls(files: TlsFiles & { grpc_addr?: string }, log?: Logger): LoadedTls {
  const tls = load_tls(files);
  if (tls.mode === 'insecure') {
    const host = files.grpc_addr?.replace(/:[0-9]+$/, '').replace(/^\[|\]$/g, '');
    const loopback = host === undefined || host === 'localhost' || host === '::1' || /^127\./.test(host);
    if (loopback) log?.info({ grpc_tls: 'off' }, 'gRPC TLS off: plaintext listener (loopback)');
    else log?.warn({ grpc_tls: 'off' }, 'gRPC TLS off on a non-loopback address: tokens travel in plaintext; set --tls-cert and --tls-key');
    return tls;
  }
  const fields = {
    grpc_tls: tls.mode,
    tls_cert_file: files.tls_cert_file,
    tls_cert_subject: tls.leaf!.subject.replace(/\n/g, ', '),
    tls_cert_valid_to: tls.leaf!.validTo,
    ...(tls.mode === 'mtls' ? { tls_client_ca_file: files.tls_client_ca_file } : {}),
  };
  if (Date.parse(tls.leaf!.validTo) < Date.now()) log?.warn(fields, 'gRPC TLS certificate has expired: clients will refuse it');
  if (tls.mode === 'tls') log?.info(fields, 'gRPC TLS on (server certificate only; clients are not asked for one)');
  else log?.info(fields, 'gRPC mutual TLS on: clients must present a certificate signed by --tls-client-ca');
  return tls;
}
