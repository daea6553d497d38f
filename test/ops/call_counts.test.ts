// CallCounts: per-call integers that ticketing_grpc_requests_total shows, exactly, at every
// scrape, beside incs made on the counter directly.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Metrics } from '../../src/ops/metrics.js';

const sample = async (metrics: Metrics, labels: string): Promise<number | undefined> => {
  const text = await metrics.registry.getSingleMetricAsString('ticketing_grpc_requests_total');
  const line = text.split('\n').find((l) => l.startsWith(`ticketing_grpc_requests_total{${labels}} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
};

test('counts show at the scrape, each once, added to direct incs', async () => {
  const metrics = new Metrics();
  const counts = metrics.call_counts('InventoryService', 'ReserveTickets');
  const ok = 'service="InventoryService",method="ReserveTickets",code="OK"';
  const invalid = 'service="InventoryService",method="ReserveTickets",code="INVALID_ARGUMENT"';
  assert.is(await sample(metrics, ok), undefined);
  counts.inc('OK');
  counts.inc('OK');
  counts.inc('INVALID_ARGUMENT');
  metrics.grpc_requests.inc({ service: 'InventoryService', method: 'ReserveTickets', code: 'INVALID_ARGUMENT' });
  assert.is(await sample(metrics, ok), 2);
  assert.is(await sample(metrics, invalid), 2);
  assert.is(await sample(metrics, ok), 2, 'a second scrape adds nothing new');
  counts.inc('OK');
  assert.is(await sample(metrics, ok), 3);
});

test('methods counted are bounded by call_counts_max', async () => {
  const { call_counts_max } = await import('../../src/ops/metrics.js');
  const metrics = new Metrics();
  for (let i = 0; i < call_counts_max; i++) metrics.call_counts('S', `M${i}`);
  assert.throws(() => metrics.call_counts('S', 'one too many'));
});

test.run();
