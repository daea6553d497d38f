// `npm run bench`: measures the ticketing node against its targets, side by side in one run.
// Every figure that depends on machine speed is a ratio against something measured in the same
// run (a no-op gRPC server, or the same server under a different load shape). The bench measures;
// it never fails on a missed target (exit 0, MISSED in the report). Exit 1 only when it could
// not measure at all. Everything it starts (servers, generators, temp dirs) is removed on exit.
//
// Knobs: see bench/config.ts (BENCH_QUICK, BENCH_CONCURRENCY, BENCH_WORKERS, BENCH_ONLY).
// Each section is one file under bench/sections/ (the contract: bench/harness/section.ts); a new
// section is a new file and one line in `sections` below.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { repo_root } from './common.js';
import { cfg, quick, targets } from './config.js';
import { cleanup_sync, install_cleanup, log, temp_dirs } from './harness/processes.js';
import { f, Report } from './harness/report.js';
import type { Section } from './harness/section.js';
import { cluster_section } from './sections/cluster.js';
import { ghz_section } from './sections/ghz.js';
import { kafka_section } from './sections/kafka.js';
import { load_section } from './sections/load.js';
import { memory_section } from './sections/memory.js';
import { purchase_section } from './sections/purchase.js';
import { restart_section } from './sections/restart.js';
import { selection_section } from './sections/selection.js';
import { watch_section } from './sections/watch.js';
import { queue_section } from './sections/queue.js';
import { snapshot_section } from './sections/snapshot.js';

/** In the order they run; BENCH_ONLY picks some by key. */
const sections: Section[] = [
  memory_section, load_section, restart_section, kafka_section, purchase_section, cluster_section,
  selection_section,
  watch_section,
  ghz_section,
  queue_section,
  snapshot_section,
];

const results_path = join(repo_root, 'bench', 'results.json');

/** The run's own keys of results.json, written before any section's. */
function describe_run(report: Report): void {
  Object.assign(report.results, {
    started_at: new Date().toISOString(),
    machine: {
      cpus: cpus().length, available_parallelism: availableParallelism(),
      cpu_model: cpus()[0]?.model, total_mem_gb: totalmem() / 2 ** 30, node: process.version,
      loadavg_at_start: loadavg(),
    },
    config: { ...cfg, quick },
    targets,
  });
  report.detail(`machine: ${cpus().length} cpus (${cpus()[0]?.model ?? '?'}), ` +
    `node ${process.version}, load average at start ${loadavg().map((x) => f(x)).join(' ')}`);
}

/** Runs the chosen sections; one that throws becomes an ERROR row, and the others still run. */
async function run_sections(report: Report, root: string, secret: string): Promise<string[]> {
  const failures: string[] = [];
  const only = process.env['BENCH_ONLY']?.split(',');
  for (const section of sections) {
    if (only !== undefined && !only.includes(section.key)) continue;
    try {
      await section.run({ root, secret, report });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(`section ${section.name} failed: ${message}`);
      failures.push(`${section.name}: ${message}`);
      report.rows.push({
        order: section.order, check: `${section.name}`, ours: 'could not measure', reference: '-',
        value: message.split('\n')[0]!.slice(0, 80), target: '-', status: 'ERROR',
      });
    }
  }
  return failures;
}

function print_report(report: Report, failures: string[], wall_s: number): void {
  const missed = report.rows.filter((r) => r.status === 'MISSED').length;
  const details = report.details.map((d) => `  ${d}`).join('\n');
  process.stdout.write(`\nticketing bench (${quick ? 'QUICK, ' : ''}${f(wall_s, 0)} s)\n\n` +
    `${report.table()}\n\n${details}\n\n`);
  if (failures.length > 0) {
    process.stdout.write(`could not measure:\n${failures.map((x) => `  ${x}`).join('\n')}\n\n`);
  }
  const failed = failures.length > 0 ? `, ${failures.length} section(s) failed` : '';
  process.stdout.write(`${missed === 0 ? 'all targets met' : `${missed} target(s) MISSED`}` +
    `${failed}; full results: ${results_path}\n`);
}

async function main(): Promise<number> {
  install_cleanup();
  const deadline = setTimeout(() => {
    process.stderr.write(`bench: overall timeout (${cfg.overall_timeout_ms / 1000} s), aborting\n`);
    cleanup_sync();
    process.exit(1);
  }, cfg.overall_timeout_ms);
  deadline.unref();
  const bench_started = performance.now();
  const root = mkdtempSync(join(tmpdir(), 'ticketing-bench-'));
  temp_dirs.add(root);
  const secret = randomBytes(32).toString('hex');
  const report = new Report();
  describe_run(report);
  const failures = await run_sections(report, root, secret);
  const wall_s = (performance.now() - bench_started) / 1000;
  Object.assign(report.results, {
    rows: report.sorted_rows(), details: report.details, failures, wall_s,
  });
  writeFileSync(results_path, JSON.stringify(report.results, null, 2) + '\n');
  print_report(report, failures, wall_s);
  clearTimeout(deadline);
  return failures.length === 0 ? 0 : 1;
}

main().then(
  (code) => {
    cleanup_sync();
    process.exit(code);
  },
  (error: unknown) => {
    const text = error instanceof Error ? error.stack ?? error.message : String(error);
    process.stderr.write(`bench failed: ${text}\n`);
    cleanup_sync();
    process.exit(1);
  },
);
