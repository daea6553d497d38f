// The history of a chaos run: every call as invoked and as it ended (ok, failed, unknown), the
// node's clock bounds over time, and the faults as they ran. Written as JSON lines while the run
// goes (an invoke line before the call, a complete line after), so a run that dies still leaves
// its history; read back by the checker tests from the same shape.
import { status } from '@grpc/grpc-js';
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Fault } from './schedule.js';

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export const rpcs = [
  'reserve',
  'release',
  'confirm_allocation',
  'create_draft',
  'score',
  'authorize',
  'confirm_order',
  'capture',
  'refund',
  'advance',
  'get_order',
] as const;
export type Rpc = (typeof rpcs)[number];
/** ok: answered; failed: refused with a code that means nothing happened; unknown: the change
 *  may or may not have happened (deadline, UNAVAILABLE, connection lost). */
export type Result = 'ok' | 'failed' | 'unknown';

export interface Call {
  id: number;
  /** The simulated user (or 'nemesis', 'checker') that made it. */
  user: string;
  rpc: Rpc;
  request: JsonObject;
  /** The idempotency key sent (metadata or field), '' when none. */
  key: string;
  start_ms: number;
  end_ms: number;
  result: Result;
  reply: JsonObject | null;
  code: number;
  details: string;
}

/** From at_ms on (until the next step), the node's clock offset lies within [lo_ms, hi_ms]. */
export interface ClockStep {
  at_ms: number;
  lo_ms: number;
  hi_ms: number;
}

export interface FaultRun {
  fault: Fault;
  started_ms: number;
  /** When the fault was lifted (restart, SIGCONT, ballast removed, window closed). */
  lifted_ms: number;
  /** Lifted until the first successful probe; null: never within the bound. */
  recover_ms: number | null;
  note: string;
}

/** Codes whose outcome is unknown: the change may have been made (or may still be). */
export const unknown_codes: ReadonlySet<number> = new Set([
  status.UNAVAILABLE,
  status.DEADLINE_EXCEEDED,
  status.CANCELLED,
  status.UNKNOWN,
  status.INTERNAL,
]);

export function result_of_code(code: number): Result {
  return unknown_codes.has(code) ? 'unknown' : 'failed';
}

/** A reply as plain JSON (proto-loader answers with plain objects, longs as strings). */
export function to_json(value: unknown): JsonObject {
  const parsed: unknown = JSON.parse(JSON.stringify(value ?? {}));
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return {};
  return parsed as JsonObject;
}

export class History {
  readonly calls: Call[] = [];
  readonly clock: ClockStep[] = [];
  readonly faults: FaultRun[] = [];
  private readonly fd: number | null;

  constructor(file: string | null) {
    this.fd = file === null ? null : openSync(file, 'w');
  }

  line(entry: JsonObject): void {
    if (this.fd !== null) writeSync(this.fd, `${JSON.stringify(entry)}\n`);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
  }

  clock_step(step: ClockStep): void {
    this.clock.push(step);
    this.line({ type: 'clock', ...step });
  }

  fault_run(run: FaultRun): void {
    this.faults.push(run);
    this.line({ type: 'fault', ...to_json(run) });
  }

  /** Runs `run` and records it; a thrown error without a numeric gRPC code is rethrown. */
  async record(
    user: string,
    rpc: Rpc,
    request: JsonObject,
    key: string,
    run: () => Promise<unknown>,
  ): Promise<Call> {
    const call: Call = {
      id: this.calls.length,
      user,
      rpc,
      request,
      key,
      start_ms: Date.now(),
      end_ms: 0,
      result: 'unknown',
      reply: null,
      code: -1,
      details: 'in flight',
    };
    this.calls.push(call);
    this.line({ type: 'invoke', id: call.id, user, rpc, request, key, start_ms: call.start_ms });
    try {
      call.reply = to_json(await run());
      call.result = 'ok';
      call.code = status.OK;
      call.details = '';
    } catch (error) {
      const e = error as { code?: unknown; details?: unknown };
      if (typeof e.code !== 'number') throw error;
      call.code = e.code;
      call.details = String(e.details ?? '');
      call.result = result_of_code(e.code);
    }
    call.end_ms = Date.now();
    const { id, result, reply, code, details, end_ms } = call;
    this.line({ type: 'complete', id, result, reply, code, details, end_ms });
    return call;
  }
}

/** Reads a JSON-lines history back into calls (a call never completed stays unknown). */
export function parse_history(text: string): Call[] {
  const calls = new Map<number, Call>();
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const e = JSON.parse(line) as JsonObject;
    const id = Number(e['id']);
    if (e['type'] === 'invoke') {
      calls.set(id, {
        id,
        user: String(e['user']),
        rpc: String(e['rpc']) as Rpc,
        request: (e['request'] ?? {}) as JsonObject,
        key: String(e['key'] ?? ''),
        start_ms: Number(e['start_ms']),
        end_ms: Number.MAX_SAFE_INTEGER,
        result: 'unknown',
        reply: null,
        code: -1,
        details: 'never completed',
      });
    } else if (e['type'] === 'complete') {
      const c = calls.get(id);
      if (c === undefined) continue;
      c.result = String(e['result']) as Result;
      c.reply = (e['reply'] ?? null) as JsonObject | null;
      c.code = Number(e['code']);
      c.details = String(e['details'] ?? '');
      c.end_ms = Number(e['end_ms']);
    }
  }
  return [...calls.values()].sort((a, b) => a.id - b.id);
}
