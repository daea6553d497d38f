// WatchPosition's streams on the main thread: each open stream polls its entry's position
// (read kind queue_position, through the router) every queue_watch_interval_ms and writes a
// message when what it would say changed. It routes and relays only: the position, the
// admission and the token are the partition's (src/actors/queue*.ts).
//
// Bounded: queue_watch_streams_max streams per node (one more is refused RESOURCE_EXHAUSTED); a
// stream whose client does not drain gets at most watch_stream_backlog_max more messages before
// it is ended RESOURCE_EXHAUSTED, as WatchAvailability's (src/grpc/watch_hub.ts). One poll per
// stream per interval: 10,000 streams at 1 s are 10,000 reads/s spread over the partitions, a
// fraction of what one worker answers (a read is a Map lookup and, while admitted, one HMAC).
import { assert } from '../util/assert.js';
import type { QueuePosition, QueuePositionRequest } from '../actors/queue.js';
import { ShuttingDownError } from '../runtime/errors.js';
import { QueueWatchStreamsExceededError, WatchReaderTooSlowError } from './errors.js';

export interface QueueWatchConfig {
  /** How often an open WatchPosition stream reads its position. */
  queue_watch_interval_ms: number;
  /** WatchPosition streams open at once on this node; one more is refused RESOURCE_EXHAUSTED. */
  queue_watch_streams_max: number;
  /** Shared with WatchAvailability: messages written to a blocked stream before it is ended. */
  watch_stream_backlog_max: number;
}

/** What the streams poll: the node's Router; a fake in tests. */
export interface PositionSource {
  call(kind: 'queue_position', request: QueuePositionRequest): Promise<QueuePosition>;
}

/** One stream as the watcher drives it (server_stream.ts's StreamCall, message already typed). */
export interface PositionSink {
  /** Writes one Position; false: the client's buffer is full. */
  write(position: QueuePosition): boolean;
  end(error?: Error): void;
}

export interface PositionHandle {
  drained(): void;
  closed(): void;
}

interface Stream {
  request: QueuePositionRequest;
  sink: PositionSink;
  /** What the previous message said (position_key), '' before the first. */
  last: string;
  blocked: boolean;
  backlog: number;
  timer: NodeJS.Timeout | undefined;
  ended: boolean;
}

const shutting_down = 'the node is shutting down: watch your position again (on another node)';

/** The fields a client acts on: a message is written when one of them changes. */
export function position_key(p: QueuePosition): string {
  return [p.position, p.admitted, p.admission_token, p.admission_expires_at_ms,
    p.estimated_wait_seconds, p.drawn, p.used, p.admitted_count].join('|');
}

export class QueueWatch {
  private readonly streams = new Set<Stream>();
  private closing = false;

  constructor(
    private readonly source: PositionSource,
    private readonly config: QueueWatchConfig,
    private readonly on_count: (open: number) => void,
  ) {
    assert(config.queue_watch_interval_ms >= 1, 'queue_watch_interval_ms is positive');
    assert(config.queue_watch_streams_max >= 1, 'queue_watch_streams_max is positive');
    assert(config.watch_stream_backlog_max >= 0, 'watch_stream_backlog_max is not negative');
  }

  open(): number {
    return this.streams.size;
  }

  /** Starts a stream: its first message comes from the first read, then one per change. */
  subscribe(request: QueuePositionRequest, sink: PositionSink): PositionHandle {
    if (this.closing) throw new ShuttingDownError(shutting_down);
    if (this.streams.size >= this.config.queue_watch_streams_max) {
      throw new QueueWatchStreamsExceededError('this node already serves queue_watch_streams_max '
        + `${this.config.queue_watch_streams_max} WatchPosition streams; poll GetPosition `
        + 'instead, or watch again later');
    }
    const stream: Stream = {
      request, sink, last: '', blocked: false, backlog: 0, timer: undefined, ended: false,
    };
    this.streams.add(stream);
    this.on_count(this.streams.size);
    this.poll(stream);
    return {
      drained: () => {
        stream.blocked = false;
        stream.backlog = 0;
      },
      closed: () => this.end(stream, undefined, false),
    };
  }

  /** Shutdown: every stream ends UNAVAILABLE; new ones are refused. */
  close(): void {
    this.closing = true;
    const error = new ShuttingDownError(shutting_down);
    for (const stream of [...this.streams]) this.end(stream, error, true);
    assert(this.streams.size === 0, 'every stream ended');
  }

  private poll(stream: Stream): void {
    stream.timer = undefined;
    if (stream.ended) return;
    let reply: Promise<QueuePosition>;
    try {
      reply = this.source.call('queue_position', stream.request);
    } catch (error) {
      reply = Promise.reject(error);
    }
    reply.then((position) => {
      if (stream.ended) return;
      this.on_position(stream, position);
      if (stream.ended) return;
      stream.timer = setTimeout(() => this.poll(stream), this.config.queue_watch_interval_ms);
      stream.timer.unref();
    }, (error: unknown) => {
      this.end(stream, error instanceof Error ? error : new Error(String(error)), true);
    });
  }

  private on_position(stream: Stream, position: QueuePosition): void {
    const key = position_key(position);
    if (key === stream.last) return;
    stream.last = key;
    if (stream.blocked) {
      if (stream.backlog >= this.config.watch_stream_backlog_max) {
        this.end(stream, new WatchReaderTooSlowError('the client read the WatchPosition stream '
          + 'too slowly: more than watch_stream_backlog_max '
          + `${this.config.watch_stream_backlog_max} messages waited for it; watch again`), true);
        return;
      }
      stream.backlog += 1;
    }
    if (!stream.sink.write(position)) stream.blocked = true;
    // A used token is the entry's last state: nothing more will change, the stream is done.
    if (position.used) this.end(stream, undefined, true);
  }

  private end(stream: Stream, error: Error | undefined, tell: boolean): void {
    if (stream.ended) return;
    stream.ended = true;
    if (stream.timer !== undefined) clearTimeout(stream.timer);
    stream.timer = undefined;
    assert(this.streams.delete(stream), 'an open stream is counted');
    this.on_count(this.streams.size);
    if (tell) stream.sink.end(error);
  }
}
