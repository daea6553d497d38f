// The node's web listener (--web HOST:PORT, off unless given): the services over the Connect,
// gRPC-Web and gRPC protocols (web_calls.ts: the gRPC edge's own handlers), the page at /
// (built into dist/web by `npm run build`), and, with --web-dev-tokens on a loopback address
// only, GET /dev/token?user=NAME minting a customer token for trying the page out. GET
// /ops/figures (admin token; /ops/outbox its first name) gives the operator view the outbox and
// waiting-room figures /metrics has.
//
// A listener of its own rather than the operator HTTP port (src/ops/http.ts): that one serves
// /metrics and /readyz to probes and scrapers and is often reachable only from inside; the page
// and its RPCs are for box offices and operators, who get a separate address to expose.
//
// CORS is closed by default: the page is served from the same origin and needs none. Origins
// listed in --web-cors-origins (TICKETING_WEB_CORS_ORIGINS, comma-separated) may call the RPCs
// from their own pages; any other origin's preflight is refused 403 and gets no CORS headers.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { fileURLToPath } from 'node:url';
import {
  Code, ConnectError, cors as connect_cors, createConnectRouter, createContextValues,
} from '@connectrpc/connect';
import { uResponseNotFound, type UniversalHandler } from '@connectrpc/connect/protocol';
import {
  compressionBrotli, compressionGzip, universalRequestFromNodeRequest,
  universalResponseToNodeResponse,
} from '@connectrpc/connect-node';
import type { FileRegistry } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { ForbiddenError } from '../auth/errors.js';
import { sign_token, type VerificationKeys } from '../auth/token.js';
import { require_role } from '../auth/policy.js';
import { principal_of } from './context.js';
import { assert } from '../util/assert.js';
import { peer_key, web_routes, type ServedService } from './web_calls.js';
import { with_raw_decode } from './web_binary.js';
import type { OnMalformed } from './strict_service.js';

export interface WebConfig {
  /** --web HOST:PORT; undefined: no web listener. */
  web_addr: string | undefined;
  /** Origins allowed to call the RPCs cross-origin (exact 'https://host:port' strings). */
  web_cors_origins: readonly string[];
  /** GET /dev/token?user=NAME mints customer tokens: loopback addresses only. */
  web_dev_tokens: boolean;
}

export interface WebParts {
  config: WebConfig & { message_bytes_max: number };
  registry: FileRegistry;
  services: readonly ServedService[];
  on_malformed: OnMalformed;
  /** Verifies the operator's token for /ops/figures; its secret signs the dev tokens. */
  keys: VerificationKeys;
  /** Figures /metrics has, for the operator view (admin tokens only). */
  figures: () => OpsFigures;
  log: Logger;
}

/** GET /ops/figures (and its first name, /ops/outbox): what the operator view polls. */
export interface OpsFigures {
  /** ticketing_outbox_pending: events not yet delivered to Kafka. */
  pending: number;
  /** ticketing_outbox_lag_seconds: the oldest undelivered event's age. */
  lag_seconds: number;
  /** ticketing_queue_length: buyers waiting (joined, not admitted) over every waiting room. */
  queue_length: number;
}

export interface WebServer {
  port: number;
  /** Stops accepting; open connections get drain_ms_max to finish, then are closed. */
  close(drain_ms_max: number): Promise<void>;
}

/** A dev token's lifetime: an afternoon of trying the page. */
const dev_token_ttl_seconds = 4 * 3600;
const dev_user_pattern = /^[A-Za-z0-9_.-]{1,64}$/;
/** What dist/web holds after `npm run build`: name → content type. Nothing else is served. */
const page_files: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'app.js.map': 'application/json',
};
/** dist/web/ (this file runs as dist/src/grpc/web_server.js). */
const page_root = fileURLToPath(new URL('../../web/', import.meta.url));

/** The dev flag on an address others can reach would hand anyone a customer token. */
export class WebDevTokensRefusedError extends Error {
  override readonly name = 'WebDevTokensRefusedError';
}

export function is_loopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/** Refuses --web-dev-tokens off loopback (and without --web), before anything starts. */
export function check_web_config(config: WebConfig, host: string | undefined): void {
  if (!config.web_dev_tokens) return;
  if (host === undefined) {
    throw new WebDevTokensRefusedError('--web-dev-tokens needs --web HOST:PORT (a loopback one)');
  }
  if (!is_loopback(host)) {
    throw new WebDevTokensRefusedError(`--web-dev-tokens mints tokens for anyone who asks: refused `
      + `on ${host}, which is not a loopback address (use 127.0.0.1 or ::1)`);
  }
}

export function start_web(parts: WebParts, host: string, port: number): Promise<WebServer> {
  const { config, log } = parts;
  check_web_config(config, host);
  const shutdown = new AbortController();
  const rpc = rpc_handler(parts, shutdown.signal);
  const server = createServer((req, res) => {
    if (!cors(config.web_cors_origins, req, res)) return;
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (get && path === '/dev/token' && config.web_dev_tokens) {
      dev_token(parts.keys.secret, req, res);
    } else if (get && path === '/web-config.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(`${JSON.stringify({ dev_tokens: config.web_dev_tokens })}\n`);
    } else if (get && (path === '/ops/figures' || path === '/ops/outbox')) {
      figures(parts, req, res);
    } else if (req.method === 'GET' && !path.slice(1).includes('.Service/') && page(path, res)) {
      return;
    } else {
      rpc(req, res);
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const bound = (server.address() as { port: number }).port;
      if (config.web_dev_tokens) log.warn('--web-dev-tokens: GET /dev/token mints customer tokens');
      resolve({ port: bound, close: (drain_ms_max) => close(server, shutdown, drain_ms_max) });
    });
  });
}

/** The Connect / gRPC-Web / gRPC requests: connectNodeAdapter's few lines (connect-node's
 *  connect-node-adapter.ts), with each method's universal handler wrapped by web_binary.ts so
 *  binary bodies are decoded by the gRPC edge's own deserializer from the client's bytes. */
function rpc_handler(
  parts: WebParts, shutdown: AbortSignal,
): (req: IncomingMessage, res: ServerResponse) => void {
  const read_bytes_max = parts.config.message_bytes_max;
  const router = createConnectRouter({
    acceptCompression: [...web_compressions], readMaxBytes: read_bytes_max,
    shutdownSignal: shutdown,
  });
  const routes = web_routes(router, parts.registry, parts.services, parts.on_malformed);
  if (routes.skipped.length > 0) {
    parts.log.warn({ skipped: routes.skipped }, 'client-streaming methods: gRPC only');
  }
  const paths = new Map<string, UniversalHandler>();
  for (const handler of router.handlers) {
    const deserialize = routes.deserializers.get(handler.requestPath);
    assert(deserialize !== undefined, `${handler.requestPath}: registered without a deserializer`);
    paths.set(handler.requestPath,
      with_raw_decode(handler, deserialize, web_compressions, read_bytes_max));
  }
  return (req, res) => {
    const handler = paths.get((req.url ?? '').split('?', 2)[0] ?? '');
    if (handler === undefined) {
      res.writeHead(uResponseNotFound.status).end();
      return;
    }
    const values = createContextValues().set(peer_key, peer_of(req));
    handler(universalRequestFromNodeRequest(req, res, undefined, values))
      .then((answer) => universalResponseToNodeResponse(answer, res))
      .catch((reason: unknown) => {
        if (ConnectError.from(reason).code === Code.Aborted) return;
        parts.log.error({ err: reason, path: handler.requestPath }, 'web handler failed');
      });
  };
}

/** What connectNodeAdapter accepts by default. */
const web_compressions = [compressionGzip, compressionBrotli] as const;

/** grpc-js's getPeer() form, which unary.ts's ip_of_peer reads. */
function peer_of(req: { socket: { remoteAddress?: string; remotePort?: number } }): string {
  const address = req.socket.remoteAddress ?? 'unknown';
  const port = req.socket.remotePort ?? 0;
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Sets CORS headers for an allowed origin; answers preflights. False: answered here. */
function cors(origins: readonly string[], req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  const preflight = req.method === 'OPTIONS';
  if (origin === undefined) {
    if (preflight) res.writeHead(403).end('CORS preflight without Origin\n');
    return !preflight;
  }
  if (!origins.includes(origin)) {
    // Same-origin requests carry Origin too (POSTs): they need no CORS headers.
    if (preflight) res.writeHead(403).end('origin not allowed (--web-cors-origins)\n');
    return !preflight;
  }
  res.setHeader('access-control-allow-origin', origin);
  res.setHeader('vary', 'Origin');
  res.setHeader('access-control-expose-headers', connect_cors.exposedHeaders.join(', '));
  if (!preflight) return true;
  res.writeHead(204, {
    'access-control-allow-methods': connect_cors.allowedMethods.join(', '),
    'access-control-allow-headers': [...connect_cors.allowedHeaders, 'authorization',
      'idempotency-key', 'traceparent'].join(', '),
    'access-control-max-age': '600',
  }).end();
  return false;
}

/** Serves a built page file; false when `path` is none of them. */
function page(path: string, res: ServerResponse): boolean {
  const name = path === '/' ? 'index.html' : path.slice(1);
  const type = page_files[name];
  if (type === undefined) return false;
  let body: Buffer;
  try {
    body = readFileSync(`${page_root}${name}`);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('page not built: run npm run build\n');
    return true;
  }
  res.writeHead(200, {
    'content-type': type,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    // Everything the page loads or calls is this origin's: no CDN, no inline script.
    'content-security-policy': "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
  }).end(body);
  return true;
}

function dev_token(secret: Buffer, req: IncomingMessage, res: ServerResponse): void {
  const user = new URL(req.url ?? '/', 'http://x').searchParams.get('user') ?? '';
  if (!dev_user_pattern.test(user)) {
    res.writeHead(400, { 'content-type': 'text/plain' })
      .end('user must be 1..64 of A-Z a-z 0-9 _ . -\n');
    return;
  }
  const token = sign_token(secret, { user_id: user, role: 'customer' }, dev_token_ttl_seconds);
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(`${JSON.stringify({ user_id: user, token })}\n`);
}

/** The operator view's figures: an admin token, as for /metrics' figures. */
function figures(parts: WebParts, req: IncomingMessage, res: ServerResponse): void {
  const metadata = new grpc.Metadata();
  const authorization = req.headers.authorization;
  if (authorization !== undefined) metadata.set('authorization', authorization);
  try {
    require_role(principal_of(metadata, parts.keys), ['admin'], 'operator figures');
  } catch (error) {
    const code = error instanceof ForbiddenError ? 403 : 401;
    const message = error instanceof Error ? error.message : 'refused';
    res.writeHead(code, { 'content-type': 'text/plain' }).end(`${message}\n`);
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
    .end(`${JSON.stringify(parts.figures())}\n`);
}

function close(server: Server, shutdown: AbortController, drain_ms_max: number): Promise<void> {
  assert(drain_ms_max >= 0, 'drain_ms_max is not negative');
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      shutdown.abort();
      server.closeAllConnections();
    }, drain_ms_max);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
}
