// JSON-lines logs. Redaction is a backstop: code never passes secrets to the logger at all.
import { pino, type DestinationStream, type Logger } from 'pino';
import { assert } from '../util/assert.js';

/** Bytes of log lines held before they are written at once, whatever the turn (a bound on
 *  what the buffer holds, far above one turn's lines: 64 calls answered ~ 16 KiB). */
export const log_buffer_bytes_max = 64 * 1024;

/** What a TurnBuffer writes to: pino's sonic-boom destination, or a test's sink. */
export interface LineSink {
  write(data: string): unknown;
  /** Writes whatever the sink itself still holds, synchronously (on exit). */
  flushSync?(): void;
}

/** Buffers holding lines now: what the exit hook flushes (a buffer leaves it when flushed). */
const holding = new Set<TurnBuffer>();
let exit_hooked = false;

function hook_exit(): void {
  if (exit_hooked) return;
  exit_hooked = true;
  process.on('exit', () => {
    for (const buffer of [...holding]) buffer.flush_at_exit();
  });
}

/**
 * The lines logged in one turn of the event loop, handed to the destination together at its
 * end (setImmediate), in order, as one write: pino's destination took a write per line, 2.4 %
 * of the main thread under ghz ReserveTickets (issue 13), one `state changed` line per call.
 * A line is held for the rest of its turn only: handed on before the next turn's I/O, at
 * log_buffer_bytes_max at once, and on process exit (an uncaught exception or process.exit
 * included). The destination is sonic-boom writing synchronously to stdout: measured, the
 * asynchronous one (pino's default) lost or cut lines on process.exit when a 64 KiB chunk was
 * in flight to a pipe (2 of 5,000), the synchronous one none. The price, as for any
 * synchronous logger: a reader of stdout that stops reading stalls the node once the pipe is
 * full, where pino's default would have grown its buffer without bound.
 */
export class TurnBuffer implements DestinationStream {
  private lines: string[] = [];
  private bytes = 0;
  private scheduled = false;
  private readonly flush_soon = (): void => {
    this.scheduled = false;
    this.flush_now();
  };

  constructor(private readonly sink: LineSink) {
    hook_exit();
  }

  write(line: string): boolean {
    if (this.lines.length === 0) holding.add(this);
    this.lines.push(line);
    this.bytes += line.length;
    if (this.bytes >= log_buffer_bytes_max) this.flush_now();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(this.flush_soon);
    }
    return true;
  }

  /** Writes what is held, now. */
  flush_now(): void {
    if (this.lines.length === 0) return;
    const data = this.lines.length === 1 ? this.lines[0]! : this.lines.join('');
    this.lines = [];
    this.bytes = 0;
    holding.delete(this);
    this.sink.write(data);
    assert(this.lines.length === 0, 'nothing held after a flush');
  }

  /** On process exit: what is held, then what the sink holds, written synchronously. */
  flush_at_exit(): void {
    this.flush_now();
    try {
      this.sink.flushSync?.();
    } catch {
      // stdout gone (EPIPE) or not writable: nothing left to write the lines to
    }
  }

  /** pino's logger.flush(): what is held is handed to the sink before the callback. */
  flush(callback?: (error?: Error) => void): void {
    this.flush_now();
    callback?.();
  }

  /** Lines held now (tests). */
  held(): number {
    return this.lines.length;
  }
}

export function create_logger(level = process.env['TICKETING_LOG_LEVEL'] ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'ticketing' },
    redact: { paths: ['authorization', '*.authorization', 'token', '*.token', 'payment_token', '*.payment_token', 'secret'], censor: '[redacted]' },
  }, new TurnBuffer(pino.destination({ fd: 1, sync: true })));
}
