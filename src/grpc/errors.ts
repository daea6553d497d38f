// Refusals made by the gRPC edge itself (abuse limits), one class per failure mode with a fixed
// name; src/grpc/status.ts maps the classes to status codes.

/** A per-user or per-ip token bucket is empty: RESOURCE_EXHAUSTED, with the time to retry. */
export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';
  constructor(readonly scope: 'user' | 'ip', readonly retry_after_ms: number, message: string) {
    super(message);
  }
}

/** No answer within the call's deadline as capped by deadline_ms_max: DEADLINE_EXCEEDED. */
export class DeadlineCappedError extends Error {
  override readonly name = 'DeadlineCappedError';
}

/** WatchAvailability: the node already serves watch_streams_max streams: RESOURCE_EXHAUSTED. */
export class WatchStreamsExceededError extends Error {
  override readonly name = 'WatchStreamsExceededError';
}

/** WatchAvailability: the client read too slowly (more than watch_stream_backlog_max messages
 *  waiting while its buffer was full): its stream ends RESOURCE_EXHAUSTED. */
export class WatchReaderTooSlowError extends Error {
  override readonly name = 'WatchReaderTooSlowError';
}

/** WatchPosition: the node already serves queue_watch_streams_max streams: RESOURCE_EXHAUSTED. */
export class QueueWatchStreamsExceededError extends Error {
  override readonly name = 'QueueWatchStreamsExceededError';
}
