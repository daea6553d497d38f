// Operator HTTP endpoint: /metrics (Prometheus text), /healthz (alive), /readyz (serving).
import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface Readiness { ready(): boolean; degraded(): string[] }

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
      const degraded = readiness.degraded();
      const ok = readiness.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' })
        .end(ok ? (degraded.length === 0 ? 'ready\n' : `ready, degraded: ${degraded.join('; ')}\n`) : `not ready: ${degraded.join('; ')}\n`);
    } else {
      res.writeHead(404).end('not found\n');
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
