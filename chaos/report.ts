// The run's summary: the seed and how to replay it, the schedule, counts per fault kind and per
// outcome, time to recover per fault, and every violation with the calls involved.
import { status } from '@grpc/grpc-js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Violation } from './checker.js';
import type { SeenEvent } from './checker_state.js';
import type { Call, History } from './history.js';
import { count_kinds, per_kind, type Fault, type FaultKind } from './schedule.js';

export interface Summary {
  seed: number;
  replay: string;
  faults_planned: number;
  faults_run: Record<string, number>;
  recover_ms: Record<string, (number | null)[]>;
  calls: Record<string, Record<string, number>>;
  kafka_messages: number;
  violations: Violation[];
  history_file: string;
  lines: string[];
}

const code_names = new Map(Object.entries(status).map(([name, code]) => [code, name]));

function outcome_counts(calls: Call[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const c of calls) {
    const per = (out[c.rpc] ??= {});
    const k = c.result === 'ok' ? 'ok' : `${c.result} ${code_names.get(c.code) ?? c.code}`;
    per[k] = (per[k] ?? 0) + 1;
  }
  return out;
}

function format_call(c: Call): string {
  const outcome =
    c.result === 'ok'
      ? `ok ${JSON.stringify(c.reply)}`
      : `${c.result} ${code_names.get(c.code) ?? c.code} ${c.details}`;
  return `    #${c.id} ${c.user} ${c.rpc} ${JSON.stringify(c.request)} key=${c.key} [${c.start_ms}..${c.end_ms}] → ${outcome}`;
}

export function report(
  o: { minutes: number; seed: number; cluster: boolean; out_dir: string },
  r: {
    faults: Fault[];
    history: History;
    events: SeenEvent[];
    violations: Violation[];
    load_ms: number;
  },
): Summary {
  const lines: string[] = [];
  const replay = `npm run chaos -- --minutes ${o.minutes} --seed ${o.seed}${o.cluster ? ' --cluster' : ''}`;
  lines.push(`seed ${o.seed} (replay: ${replay}); load ran ${(r.load_ms / 1000).toFixed(0)} s`);
  lines.push('schedule:');
  for (const f of r.faults)
    lines.push(
      `  #${f.index} at ${(f.at_ms / 1000).toFixed(1)} s ${f.kind} for ${f.duration_ms} ms${f.amount > 0 ? ` (${f.amount})` : ''}`,
    );
  const run = count_kinds(r.history.faults.map((x) => x.fault));
  const recover_ms: Record<string, (number | null)[]> = {};
  for (const x of r.history.faults) (recover_ms[x.fault.kind] ??= []).push(x.recover_ms);
  lines.push(`faults injected (each kind needs ${per_kind(o.minutes)}):`);
  for (const [kind, n] of [...run].sort()) {
    const ms = recover_ms[kind] ?? [];
    lines.push(
      `  ${kind.padEnd(16)} ${n}×  serving again after ${ms.map((m) => (m === null ? 'never' : `${m} ms`)).join(', ')}`,
    );
  }
  const calls = outcome_counts(r.history.calls);
  lines.push(`calls: ${r.history.calls.length}`);
  for (const [rpc, per] of Object.entries(calls))
    lines.push(
      `  ${rpc.padEnd(18)} ${Object.entries(per)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  lines.push(
    `kafka: ${r.events.length} messages read (read_committed), ${new Set(r.events.map((e) => e.event_id)).size} distinct event-ids`,
  );
  lines.push(`violations: ${r.violations.length}`);
  const by_id = new Map(r.history.calls.map((c) => [c.id, c]));
  for (const v of r.violations.slice(0, 50)) {
    lines.push(`  [${v.check}] ${v.message}`);
    for (const id of v.calls.slice(0, 12)) {
      const c = by_id.get(id);
      if (c !== undefined) lines.push(format_call(c));
    }
  }
  if (r.violations.length > 50)
    lines.push(`  ... ${r.violations.length - 50} more in summary.json`);
  const history_file = join(o.out_dir, 'history.jsonl');
  lines.push(`history: ${history_file}`);
  const summary: Summary = {
    seed: o.seed,
    replay,
    faults_planned: r.faults.length,
    faults_run: Object.fromEntries(run) as Record<FaultKind, number>,
    recover_ms,
    calls,
    kafka_messages: r.events.length,
    violations: r.violations,
    history_file,
    lines,
  };
  writeFileSync(join(o.out_dir, 'summary.json'), JSON.stringify(summary, null, 1));
  return summary;
}
