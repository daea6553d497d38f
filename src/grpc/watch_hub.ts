// WatchAvailability's fan-out on the main thread: one poller per watched event, shared by every
// stream of that event. It polls the event's partition (read kind watch_changes, through the
// router) every watch_interval_ms while a stream of the event is open and stops when the last
// one closes; each update is encoded once and the same bytes are written to every stream. It
// routes and fans out only: what a seat's state is, the partition says (src/actors/change_log.ts).
//
// Bounded: watch_streams_max streams per node; a stream whose client does not drain (write()
// returned false) gets at most watch_stream_backlog_max more messages before it is ended
// RESOURCE_EXHAUSTED, so what one slow client pins is its transport's buffers plus that many
// messages, never an unbounded queue.
import { performance } from 'node:perf_hooks';
import type {
  WatchChangesReply, WatchChangesRequest, WatchCounts,
} from '../actors/change_log.js';
import type { Metrics, WatchEndReason } from '../ops/metrics.js';
import { ShuttingDownError } from '../runtime/errors.js';
import { assert } from '../util/assert.js';
import { WatchReaderTooSlowError, WatchStreamsExceededError } from './errors.js';

export interface WatchConfig {
  /** How often a watched event is polled: a change reaches its streams within about this
   *  (plus the poll's own time). */
  watch_interval_ms: number;
  /** Messages written to a stream after its write() returned false and before it drained; one
   *  more ends the stream RESOURCE_EXHAUSTED. */
  watch_stream_backlog_max: number;
  /** WatchAvailability streams open at once on this node; one more is refused
   *  RESOURCE_EXHAUSTED. */
  watch_streams_max: number;
}

/** What the hub polls: the node's Router; a fake in tests. */
export interface WatchSource {
  call(kind: 'watch_changes', request: WatchChangesRequest): Promise<WatchChangesReply>;
}

/** One stream as the hub sees it (server_stream.ts's StreamCall in the node). */
export interface WatchSink {
  /** Writes one encoded AvailabilityUpdate; false: the client's buffer is full. */
  write(message: Buffer): boolean;
  /** Ends the stream: with the error's status, or OK without one. */
  end(error?: Error): void;
}

/** What the stream's owner tells the hub. */
export interface WatchHandle {
  /** The stream drained (grpc-js 'drain'): its backlog is empty again. */
  drained(): void;
  /** The client went away (cancelled, or its connection closed). */
  closed(): void;
}

/** ticketing.catalog.v1.AvailabilityUpdate as protobufjs takes it (int64 as strings). */
export interface AvailabilityUpdateWire {
  event_id: string;
  full: boolean;
  version: string;
  seat_states: Uint8Array;
  changed_seats: number[];
  changed_states: Uint8Array;
  free: string;
  held: string;
  sold: string;
  sections: { name: string; free: string; held: string; sold: string }[];
  areas: { name: string; capacity: string; free: string; held: string; sold: string }[];
}

export type Encode = (update: AvailabilityUpdateWire) => Buffer;

export type WatchMetrics = Pick<Metrics, 'watch_streams' | 'watch_streams_ended' | 'watch_lag'>;

interface Stream {
  sink: WatchSink;
  watch: EventWatch;
  /** write() returned false and no 'drain' came since. */
  blocked: boolean;
  /** Messages written while blocked. */
  backlog: number;
  ended: boolean;
}

/** One watched event: the hub's own picture of it, kept current from the polls. */
interface EventWatch {
  event_id: string;
  streams: Set<Stream>;
  epoch: string;
  version: number;
  picture: Uint8Array | undefined;
  counts: WatchCounts | undefined;
  /** The whole picture at `version`, encoded once for every stream that opens meanwhile. */
  full_message: Buffer | undefined;
  timer: NodeJS.Timeout | undefined;
  /** When the previous poll was sent: every change the next poll reads committed after it. */
  previous_poll_ms: number;
  stopped: boolean;
}

const no_changes = new Uint8Array(0);
const shutting_down = 'the node is shutting down: watch again (on another node)';

export class WatchHub {
  private readonly watches = new Map<string, EventWatch>();
  private open = 0;
  private closing = false;

  constructor(
    private readonly source: WatchSource,
    private readonly config: WatchConfig,
    private readonly metrics: WatchMetrics,
    private readonly encode: Encode,
    private readonly now_ms: () => number = () => performance.now(),
  ) {
    assert(config.watch_interval_ms >= 1, 'watch_interval_ms is positive');
    assert(config.watch_stream_backlog_max >= 0, 'watch_stream_backlog_max is not negative');
    assert(config.watch_streams_max >= 1, 'watch_streams_max is positive');
  }

  /** Streams open now. */
  streams(): number {
    return this.open;
  }

  /** Events polled now (one poller each). */
  events_watched(): number {
    return this.watches.size;
  }

  /** Adds a stream of `event_id`: it gets the whole picture first, then the changes. Throws
   *  WatchStreamsExceededError at the cap, ShuttingDownError once close() ran. */
  subscribe(event_id: string, sink: WatchSink): WatchHandle {
    if (this.closing) throw new ShuttingDownError(shutting_down);
    if (this.open >= this.config.watch_streams_max) {
      this.metrics.watch_streams_ended.inc({ reason: 'limit' });
      throw new WatchStreamsExceededError(`this node already serves watch_streams_max `
        + `${this.config.watch_streams_max} WatchAvailability streams; retry later or elsewhere`);
    }
    let watch = this.watches.get(event_id);
    const first = watch === undefined;
    watch ??= this.new_watch(event_id);
    const stream: Stream = { sink, watch, blocked: false, backlog: 0, ended: false };
    watch.streams.add(stream);
    this.open += 1;
    this.metrics.watch_streams.set(this.open);
    if (first) this.poll(watch);
    else if (watch.picture !== undefined) this.send(stream, this.full_message_of(watch));
    // else: the first poll is in flight, and its whole picture goes to every stream.
    return {
      drained: () => {
        stream.blocked = false;
        stream.backlog = 0;
      },
      closed: () => this.end_stream(stream, 'client', undefined),
    };
  }

  /** Shutdown: ends every stream UNAVAILABLE (clients watch again elsewhere); refuses new
   *  ones. */
  close(): void {
    this.closing = true;
    const error = new ShuttingDownError(shutting_down);
    for (const watch of [...this.watches.values()]) {
      for (const stream of [...watch.streams]) this.end_stream(stream, 'shutdown', error);
    }
    assert(this.open === 0 && this.watches.size === 0, 'every stream ended');
  }

  private new_watch(event_id: string): EventWatch {
    const watch: EventWatch = {
      event_id, streams: new Set(), epoch: '', version: 0, picture: undefined, counts: undefined,
      full_message: undefined, timer: undefined, previous_poll_ms: this.now_ms(), stopped: false,
    };
    this.watches.set(event_id, watch);
    return watch;
  }

  private poll(watch: EventWatch): void {
    watch.timer = undefined;
    if (watch.stopped) return;
    const sent_ms = this.now_ms();
    const request = { event_id: watch.event_id, epoch: watch.epoch, since_version: watch.version };
    let reply: Promise<WatchChangesReply>;
    try {
      reply = this.source.call('watch_changes', request);
    } catch (error) {
      reply = Promise.reject(error);
    }
    reply.then((answer) => {
      if (watch.stopped) return;
      this.on_reply(watch, answer, watch.previous_poll_ms);
      watch.previous_poll_ms = sent_ms;
      // Sending may have ended the last stream (a slow reader): then the watch stopped.
      if (!watch.stopped) this.schedule(watch);
    }, (error: unknown) => {
      if (watch.stopped) return;
      const failure = error instanceof Error ? error : new Error(String(error));
      for (const stream of [...watch.streams]) this.end_stream(stream, 'error', failure);
    });
  }

  private schedule(watch: EventWatch): void {
    assert(!watch.stopped && watch.timer === undefined, 'one poll at a time');
    watch.timer = setTimeout(() => this.poll(watch), this.config.watch_interval_ms);
    watch.timer.unref();
  }

  private on_reply(watch: EventWatch, reply: WatchChangesReply, since_ms: number): void {
    if (reply.full) {
      assert(reply.seat_states.length === reply.seat_count, 'a whole picture has every seat');
      watch.picture = reply.seat_states;
      watch.epoch = reply.epoch;
      watch.version = reply.version;
      watch.counts = reply.counts;
      watch.full_message = undefined;
      const message = this.full_message_of(watch);
      for (const stream of [...watch.streams]) this.send(stream, message);
      return;
    }
    assert(watch.picture !== undefined && reply.epoch === watch.epoch, 'changes follow a picture');
    if (reply.version === watch.version) return; // nothing changed: nothing sent
    assert(reply.version > watch.version, 'versions only grow within an epoch');
    const picture = watch.picture;
    for (let i = 0; i < reply.changed.length; i++) picture[reply.changed[i]!] = reply.states[i]!;
    watch.version = reply.version;
    watch.counts = reply.counts;
    watch.full_message = undefined;
    const message = this.encode(update_of(watch, {
      full: false, seat_states: no_changes, changed_seats: Array.from(reply.changed),
      changed_states: reply.states,
    }));
    for (const stream of [...watch.streams]) this.send(stream, message);
    this.metrics.watch_lag.observe(Math.max(0, this.now_ms() - since_ms) / 1000);
  }

  private full_message_of(watch: EventWatch): Buffer {
    assert(watch.picture !== undefined, 'a picture to send');
    watch.full_message ??= this.encode(update_of(watch, {
      full: true, seat_states: watch.picture, changed_seats: [], changed_states: no_changes,
    }));
    return watch.full_message;
  }

  private send(stream: Stream, message: Buffer): void {
    if (stream.ended) return;
    if (stream.blocked) {
      if (stream.backlog >= this.config.watch_stream_backlog_max) {
        this.end_stream(stream, 'slow', new WatchReaderTooSlowError('the client read the '
          + 'WatchAvailability stream too slowly: more than watch_stream_backlog_max '
          + `${this.config.watch_stream_backlog_max} messages waited for it; watch again`));
        return;
      }
      stream.backlog += 1;
    }
    if (!stream.sink.write(message)) stream.blocked = true;
  }

  private end_stream(stream: Stream, reason: WatchEndReason, error: Error | undefined): void {
    if (stream.ended) return;
    stream.ended = true;
    const { watch } = stream;
    assert(watch.streams.delete(stream), 'an open stream is in its watch');
    this.open -= 1;
    assert(this.open >= 0, 'streams counted');
    this.metrics.watch_streams.set(this.open);
    this.metrics.watch_streams_ended.inc({ reason });
    // The client that left hears nothing more; every other one is told why.
    if (reason !== 'client') stream.sink.end(error);
    if (watch.streams.size > 0) return;
    watch.stopped = true;
    if (watch.timer !== undefined) clearTimeout(watch.timer);
    watch.timer = undefined;
    this.watches.delete(watch.event_id);
  }
}

type Body = Pick<
  AvailabilityUpdateWire, 'full' | 'seat_states' | 'changed_seats' | 'changed_states'
>;

function update_of(watch: EventWatch, body: Body): AvailabilityUpdateWire {
  const c = watch.counts;
  assert(c !== undefined, 'counts come with every picture');
  return {
    event_id: watch.event_id, ...body, version: String(watch.version),
    free: String(c.free), held: String(c.held), sold: String(c.sold),
    sections: c.sections.map((s) => ({
      name: s.name, free: String(s.free), held: String(s.held), sold: String(s.sold),
    })),
    areas: c.areas.map((a) => ({
      name: a.name, capacity: String(a.capacity), free: String(a.free), held: String(a.held),
      sold: String(a.sold),
    })),
  };
}
