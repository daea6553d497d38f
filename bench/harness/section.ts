// The contract of a bench section: one file under bench/sections/, listed once in run.ts.
// A section starts what it measures, writes rows, details and results into the report, and
// removes what it started (its servers and data dirs) before it returns or throws.
import type { Report } from './report.js';

export interface SectionContext {
  /** The run's temp dir (removed on exit): a section makes its data dirs under it. */
  root: string;
  /** TICKETING_AUTH_SECRET of every server of the run, so the bench can mint tokens. */
  secret: string;
  report: Report;
}

export interface Section {
  /** Its name in BENCH_ONLY. */
  key: string;
  /** Its name in the log and in the ERROR row when it could not measure. */
  name: string;
  /** Where its ERROR row sorts in the table: the order of its first row. */
  order: number;
  run(ctx: SectionContext): Promise<void>;
}
