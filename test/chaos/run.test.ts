// The chaos run inside `npm test`: 3 minutes of the real thing (a `ticketing serve` process, a
// real Kafka broker, a tmpfs the harness mounts, real signals) with every single-node fault kind
// injected at least once, checked by the checker. CHAOS_SEED replays a run (the seed is
// printed); the default seed is fixed so `npm test` is repeatable.
import { rmSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { default_out_dir, defaults, run_chaos } from '../../chaos/run.js';
import { per_kind, single_kinds } from '../../chaos/schedule.js';
import type { Summary } from '../../chaos/report.js';
import { guarded_after } from '../guard.js';

const minutes = 3;
const seed = Number(process.env['CHAOS_SEED'] ?? 15);
const out_dir = default_out_dir(seed);
let passed = false;

guarded_after(test, () => {
  // Kept when the run failed: its history, final state and node logs are the evidence.
  if (passed) rmSync(out_dir, { recursive: true, force: true });
  else console.error(`chaos run kept in ${out_dir}`);
});

test(`chaos: ${minutes} minutes, seed ${seed}, every fault kind, no violation`, async () => {
  const summary: Summary = await run_chaos({
    minutes,
    seed,
    cluster: false,
    users: defaults.users,
    out_dir,
    recover_ms_max: defaults.recover_ms_max,
    fs_size_mb: defaults.fs_size_mb,
  });
  console.log(summary.lines.join('\n'));
  for (const kind of single_kinds) {
    assert.ok(
      (summary.faults_run[kind] ?? 0) >= per_kind(minutes),
      `${kind} injected ${summary.faults_run[kind] ?? 0} times`,
    );
  }
  const acked = Object.values(summary.calls).reduce((n, per) => n + (per['ok'] ?? 0), 0);
  assert.ok(acked > 1_000, `the load made progress: ${acked} calls answered`);
  assert.ok(summary.kafka_messages > 0, 'events reached Kafka');
  assert.equal(
    summary.violations.map((v) => `[${v.check}] ${v.message}`),
    [],
  );
  passed = true;
});

test.run();
