// Operator HTTP endpoint: /metrics (Prometheus text), /healthz (alive), /readyz (serving).
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface Readiness {
  ready(): boolean;
  degraded(): string[];
  /** Cluster mode: which partitions this node owns and which it is recovering. */
  cluster?: () => { name: string; node_id: string; generation: number; owned: number[]; recovering: number[] };
}

/** /readyz's body: text for people and probes; JSON when asked (`accept: application/json`). */
function readyz(readiness: Readiness, accept: string | undefined): { type: string; body: string; ok: boolean } {
  const degraded = readiness.degraded();
  const ok = readiness.ready();
  const cluster = readiness.cluster?.();
  if (accept !== undefined && accept.includes('application/json')) {
    return { type: 'application/json', ok, body: `${JSON.stringify({ ready: ok, degraded, ...(cluster === undefined ? {} : { cluster }) })}\n` };
  }
  const head = ok ? (degraded.length === 0 ? 'ready' : `ready, degraded: ${degraded.join('; ')}`) : `not ready: ${degraded.join('; ')}`;
  const tail = cluster === undefined ? '' : `\ncluster ${cluster.name} node ${cluster.node_id} generation ${cluster.generation}: owns partitions [${cluster.owned.join(',')}], recovering [${cluster.recovering.join(',')}]`;
  return { type: 'text/plain', ok, body: `${head}${tail}\n` };
}

export function start_http(host: string, port: number, metrics: Metrics, readiness: Readiness): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405).end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
      }, () => res.writeHead(500).end('metrics unavailable\n'));
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    } else if (path === '/readyz') {
      const answer = readyz(readiness, req.headers.accept);
      res.writeHead(answer.ok ? 200 : 503, { 'content-type': answer.type }).end(answer.body);
    } else {
      res.writeHead(404).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
