// Section "memory" (7a): memory per seat, and per active 1-seat hold, of the partition state,
// measured in an isolated --expose-gc process (bench/memory_probe.ts).
import { seats_of } from '../common.js';
import { cfg, targets } from '../config.js';
import { log, run_json_probe } from '../harness/processes.js';
import { f, fmt_int } from '../harness/report.js';
import type { Section, SectionContext } from '../harness/section.js';

/** The figures memory_probe.js prints (the ones this section reads; results.json has all). */
interface MemoryProbe {
  seats: number;
  heap_used_delta: number;
  array_buffers_delta: number;
  bytes_per_seat: number;
  holds?: { holds: number; bytes_total: number; bytes_per_hold: number };
}

function run_probe(): Promise<MemoryProbe> {
  const args = { events: cfg.big_events, layout: cfg.big_layout, holds: cfg.fill_holds };
  return run_json_probe<MemoryProbe>('memory_probe.js', args, 'memory probe');
}

async function run({ report }: SectionContext): Promise<void> {
  log(`memory probe: ${cfg.big_events} events x ${seats_of(cfg.big_layout)} seats ` +
    `(+ ${cfg.fill_holds} holds) in an isolated process`);
  const mem = await run_probe();
  report.results['memory'] = mem;
  report.check({
    order: 50, check: 'Memory per seat (heap + arrayBuffers)',
    ours: `${fmt_int(mem.heap_used_delta + mem.array_buffers_delta)} B / ` +
      `${fmt_int(mem.seats)} seats`,
    reference: '-', value: `${f(mem.bytes_per_seat, 1)} B/seat`,
    target: `<= ${targets.bytes_per_seat} B`,
  }, mem.bytes_per_seat <= targets.bytes_per_seat);
  // memory_probe prints `holds: undefined` (so no key) when asked for no holds.
  if (mem.holds !== undefined) {
    report.check({
      order: 51, check: 'Memory per active 1-seat hold',
      ours: `${fmt_int(mem.holds.bytes_total)} B / ${fmt_int(mem.holds.holds)} holds`,
      reference: '-', value: `${f(mem.holds.bytes_per_hold, 0)} B/hold`, target: 'info',
    }, undefined);
  }
  report.detail(`memory: heapUsed +${fmt_int(mem.heap_used_delta)} B, ` +
    `arrayBuffers +${fmt_int(mem.array_buffers_delta)} B for ${fmt_int(mem.seats)} seats`);
}

export const memory_section: Section = { key: 'memory', name: 'memory', order: 50, run };
