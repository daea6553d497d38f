// The KRaft cluster id scripts/kafka/broker.mjs formats a test broker's storage with. It used to
// be any 16 random bytes in base64url: one draw in 64 starts with '-' (62 of the 64 letters do
// not), `kafka-storage format -t -Abc…` then reads the id as an unknown flag and the broker never
// starts. Now the id never starts with '-' (Kafka's own Uuid.randomUuid() rule) and is passed as
// `--cluster-id=ID`, one argument, which no id can break.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { broker_classpath, broker_module } from './broker.js';

const exec_file = promisify(execFile);

/** Draws: a leading '-' has probability 1/64 per draw, so 20,000 draws miss it with p ≈ 1e-136. */
const draws = 20_000;

test('cluster ids: 22 base64url characters of 16 bytes, never a leading "-", never all zero, distinct', async () => {
  const { cluster_id } = await broker_module();
  const seen = new Set<string>();
  const first_letters = new Set<string>();
  for (let i = 0; i < draws; i++) {
    const id = cluster_id();
    assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/, id);
    const bytes = Buffer.from(id, 'base64url');
    assert.is(bytes.length, 16, id);
    assert.is(bytes.toString('base64url'), id, `${id} is canonical base64url`);
    assert.ok(bytes.some((b) => b !== 0), 'not the zero uuid');
    seen.add(id);
    first_letters.add(id[0]!);
  }
  assert.is(seen.size, draws, 'distinct');
  assert.is(first_letters.size, 63, 'every base64url letter but "-" begins some id');
});

test('kafka-storage format: an id beginning with "-" is a flag after -t, a value in --cluster-id=ID', async () => {
  const classpath = await broker_classpath();
  const dir = mkdtempSync(join(tmpdir(), 'cluster-id-test-'));
  try {
    const config = join(dir, 'server.properties');
    writeFileSync(config, [
      'process.roles=broker,controller', 'node.id=1', 'controller.quorum.voters=1@127.0.0.1:9',
      'listeners=PLAINTEXT://127.0.0.1:8,CONTROLLER://127.0.0.1:9', 'controller.listener.names=CONTROLLER',
      `log.dirs=${join(dir, 'data')}`, '',
    ].join('\n'));
    const id = `-${'A'.repeat(21)}`; // a valid id: 16 bytes, the first 6 bits set
    assert.is(Buffer.from(id, 'base64url').toString('base64url'), id);
    const tool = (args: string[]) => exec_file('java', ['-cp', classpath, 'kafka.tools.StorageTool', 'format', ...args, '-c', config]);
    const old_form = await tool(['-t', id]).then(() => 'formatted', (error: { stderr?: string }) => `failed: ${error.stderr ?? ''}`);
    assert.match(old_form, /^failed: /, 'the old form fails on such an id');
    await tool([`--cluster-id=${id}`]);
    assert.match(readFileSync(join(dir, 'data', 'meta.properties'), 'utf8'), new RegExp(`cluster\\.id=${id}\\n`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
