// `npm run chaos -- --minutes N [--seed S] [--cluster] [--users U] [--out DIR]`: one chaos run;
// prints the summary and exits 1 on any violation (or if a fault kind was not injected).
import { parseArgs } from 'node:util';
import { random_seed, seed_max } from './prng.js';
import { default_out_dir, defaults, run_chaos } from './run.js';
import { cluster_kinds, per_kind, single_kinds } from './schedule.js';

function number_of(
  text: string | undefined,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isFinite(n) || n < min || n > max)
    throw new Error(`--${name} must be a number in [${min}, ${max}], got ${text}`);
  return n;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string' },
      seed: { type: 'string' },
      cluster: { type: 'boolean' },
      users: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const seed = Math.floor(number_of(values.seed, 'seed', random_seed(), 0, seed_max));
  const minutes = number_of(values.minutes, 'minutes', 3, 0.5, 24 * 60);
  const cluster = values.cluster === true;
  const summary = await run_chaos({
    minutes,
    seed,
    cluster,
    users: Math.floor(number_of(values.users, 'users', defaults.users, 1, 1000)),
    out_dir: values.out ?? default_out_dir(seed),
    recover_ms_max: defaults.recover_ms_max,
    fs_size_mb: defaults.fs_size_mb,
  });
  for (const line of summary.lines) console.log(line);
  const short = (cluster ? cluster_kinds : single_kinds).filter(
    (k) => (summary.faults_run[k] ?? 0) < per_kind(minutes),
  );
  if (short.length > 0)
    console.log(
      `FAIL: fault kinds injected fewer than ${per_kind(minutes)} times: ${short.join(', ')}`,
    );
  if (summary.violations.length > 0) console.log(`FAIL: ${summary.violations.length} violation(s)`);
  return summary.violations.length > 0 || short.length > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error('chaos run failed:', error);
    process.exit(2);
  },
);
