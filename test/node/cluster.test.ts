// Cluster mode's start-time checks (src/node/cluster.ts check_cluster_config and the CLI's
// flags): each missing or contradictory piece is refused with the flag to fix, before the
// data directory is touched. What the cluster does once running is tested end to end with
// real brokers and node processes (test/e2e/cluster_*.e2e.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { check_cluster_config } from '../../src/node/cluster.js';
import { backup } from '../../src/ops/backup.js';
import { open_data_dir, read_node_meta } from '../../src/ops/data_dir.js';
import { serve_defaults, type ServeConfig } from '../../src/node/config.js';
import { spawnSync } from 'node:child_process';
import { bin, cleanup, run_cli, temp_dir } from '../e2e/harness.js';
import { guarded_after } from '../guard.js';

const secret_env = { TICKETING_AUTH_SECRET: 'x'.repeat(40) };
const dirs: string[] = [];

function config(over: Partial<ServeConfig>): ServeConfig {
  return {
    ...serve_defaults, cluster: 'c1', kafka_brokers: '127.0.0.1:9', advertise_addr: '127.0.0.1:17000', ...over,
  };
}

function refusal(over: Partial<ServeConfig>, env: Record<string, string> = secret_env): string {
  try {
    check_cluster_config(config(over), env);
  } catch (error) {
    return (error as Error).message;
  }
  return 'accepted';
}

test('a complete cluster configuration is accepted', () => {
  assert.is(refusal({}), 'accepted');
});

test('each missing piece is refused, naming what to set', () => {
  assert.match(refusal({ kafka_brokers: undefined }), '--kafka');
  assert.match(refusal({ advertise_addr: undefined }), '--advertise');
  assert.match(refusal({ advertise_addr: 'nowhere' }), '--advertise');
  assert.match(refusal({}, {}), 'TICKETING_AUTH_SECRET');
  assert.match(refusal({ cluster: 'bad name' }), '--cluster');
  assert.match(refusal({ cluster: '' }), '--cluster');
  assert.match(refusal({ cluster_min_insync_replicas: 4 }), '--min-insync-replicas');
  assert.match(refusal({ cluster_min_insync_replicas: 0 }), '--min-insync-replicas');
});

test('serve refuses cluster flags without --cluster, and --cluster without its secret, before touching --data', () => {
  const parent = temp_dir('cluster-cli');
  const dir = join(parent, 'data');
  dirs.push(parent);
  const no_cluster = run_cli(['serve', '--data', dir, '--advertise', '127.0.0.1:17001']);
  assert.is(no_cluster.status, 2);
  assert.match(no_cluster.stderr, '--advertise, --replication-factor and --min-insync-replicas need --cluster');
  const env = { ...process.env };
  delete env['TICKETING_AUTH_SECRET'];
  const no_secret = spawnSync(process.execPath, [bin, 'serve', '--data', dir, '--cluster', 'c1', '--kafka', '127.0.0.1:9', '--advertise', '127.0.0.1:17001'], { encoding: 'utf8', env });
  assert.is.not(no_secret.status, 0);
  assert.match(no_secret.stderr, 'TICKETING_AUTH_SECRET');
  assert.not.ok(existsSync(dir), 'the data directory was not created');
});

test('a data directory is a cluster node\'s or a single node\'s for life', () => {
  const single = temp_dir('cluster-dir');
  const member = temp_dir('cluster-dir');
  dirs.push(single, member);
  open_data_dir(single, 2, 1);
  open_data_dir(member, 8, 1, 'c1');
  assert.throws(() => open_data_dir(single, 2, 1, 'c1'), /created for a single node/);
  assert.throws(() => open_data_dir(member, 8, 1), /created for a node of cluster c1/);
  assert.throws(() => open_data_dir(member, 8, 1, 'c2'), /created for a node of cluster c1; it cannot serve as a node of cluster c2/);
  assert.is(open_data_dir(member, 8, 1, 'c1').cluster, 'c1');
});

test('backup of a cluster node copies its identity only (its partitions are in Kafka)', async () => {
  const member = temp_dir('cluster-backup');
  const parent = temp_dir('cluster-backup');
  const dest = join(parent, 'copy');
  dirs.push(member, parent);
  const meta = open_data_dir(member, 8, 1, 'c1');
  const lines: string[] = [];
  const result = await backup(member, dest, (line) => lines.push(line));
  assert.equal(result.stores, []);
  assert.equal(result.files.map((f) => f.name), ['node.json']);
  assert.ok(lines.some((l) => l.includes('ticketing-cluster.c1.journal')), lines.join('\n'));
  assert.is(read_node_meta(dest).node_id, meta.node_id);
});

guarded_after(test, () => {
  for (const dir of dirs) cleanup(dir);
});

test.run();
