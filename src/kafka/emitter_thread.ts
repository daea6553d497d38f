// The Kafka emitter's own thread (started by emitter_host.ts): the OutboxEmitter loop of
// emitter.ts, unchanged, over a CursorOutboxSource (entries read from the stores here, decoded
// and protobuf-encoded here), with the kafkajs producer and its idempotence state living here
// for the thread's whole life. Why a thread and not a piscina task: the producer's sequence
// numbers, the cursors and the serial rounds are state that must outlive any one batch, and
// the main thread serves gRPC: every µs spent there per event cost calls (emitter on/off 0.85×
// with the emitter on the main thread, ~125 µs of its CPU per event).
// What crosses to the main thread: per round the control calls only the owning workers can
// answer (relayed to the pool), the metrics (prom-client lives there) and log lines.
import { parentPort, workerData } from 'node:worker_threads';
import { OutboxStoresReader } from '../runtime/outbox_reader.js';
import type { OutboxAckReply, OutboxReadReply } from '../runtime/outbox.js';
import { assert } from '../util/assert.js';
import { CursorOutboxSource, type OutboxControl } from './cursor_source.js';
import { OutboxEmitter, type EmitterLog, type EmitterMetrics, type EmitterStatus } from './emitter.js';
import {
  log_level_values, type EmitterThreadConfig, type FromEmitterThread, type LogLevel, type MetricReport, type ToEmitterThread,
} from './emitter_protocol.js';
import { EventCodec } from './encode.js';
import { KafkaSink } from './sink.js';

/** How often the thread looks whether its status changed (readiness reads the main thread's
 *  copy; /readyz only turns on outbox lag measured in seconds). */
export const emitter_status_report_ms = 100;
/** Control calls waiting for the main thread at most: a round has one read per worker and one
 *  acknowledgement per worker, so more is a bug. */
const calls_in_flight_max = 4_096;

const port = parentPort;
assert(port !== null, 'emitter_thread runs in a worker thread');
const config = workerData as EmitterThreadConfig;

function post(message: FromEmitterThread): void {
  port!.postMessage(message);
}

/** A pino-shaped logger whose lines the main thread writes (its logger, its destination). */
function relay_log(min_level: string): EmitterLog {
  const min = log_level_values[min_level] ?? log_level_values['info']!;
  const line = (level: LogLevel) => (a: unknown, b?: unknown): void => {
    if (log_level_values[level]! < min) return;
    const fields = typeof a === 'object' && a !== null ? (a as Record<string, unknown>) : undefined;
    const msg = typeof a === 'string' ? a : typeof b === 'string' ? b : undefined;
    try {
      post({ tag: 'log', level, fields, msg });
    } catch {
      // A field that cannot be cloned (kafkajs debug detail): sent as JSON-safe values.
      post({ tag: 'log', level, fields: JSON.parse(JSON.stringify(fields ?? {}, (_k, v: unknown) => (v instanceof Error ? { name: v.name, message: v.message } : v))) as Record<string, unknown>, msg });
    }
  };
  return { debug: line('debug'), info: line('info'), warn: line('warn'), error: line('error') } as unknown as EmitterLog;
}

function relay_metrics(): EmitterMetrics {
  const report = (r: MetricReport) => post({ tag: 'metric', report: r });
  return {
    kafka_errors: { inc: () => report({ name: 'kafka_errors' }) },
    kafka_sends_unanswered: { inc: () => report({ name: 'kafka_sends_unanswered' }) },
    kafka_sent: { inc: (value) => report({ name: 'kafka_sent', value }) },
    kafka_send_records: { observe: (value) => report({ name: 'kafka_send_records', value }) },
    kafka_send_duration: { observe: (value) => report({ name: 'kafka_send_duration', value }) },
    outbox_parked: { inc: ({ reason }) => report({ name: 'outbox_parked', reason }) },
  };
}

/** Control calls to the owning workers, through the main thread's pool. */
class RelayControl implements OutboxControl {
  private next_id = 1;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();

  private call<T>(message: (id: number) => FromEmitterThread): Promise<T> {
    assert(this.pending.size < calls_in_flight_max, 'control calls within calls_in_flight_max');
    const id = this.next_id++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      post(message(id));
    });
  }

  outbox_read(worker: number, request: Parameters<OutboxControl['outbox_read']>[1]): Promise<OutboxReadReply> {
    return this.call((id) => ({ tag: 'call', id, op: 'read', worker, request }));
  }

  outbox_ack(worker: number, acks: Parameters<OutboxControl['outbox_ack']>[1]): Promise<OutboxAckReply> {
    return this.call((id) => ({ tag: 'call', id, op: 'ack', worker, acks }));
  }

  settle(message: Extract<ToEmitterThread, { tag: 'reply' }>): void {
    const pending = this.pending.get(message.id);
    assert(pending !== undefined, 'a reply answers a call in flight');
    this.pending.delete(message.id);
    if (message.ok) pending.resolve(message.value);
    else pending.reject(new Error(message.error));
  }
}

const log = relay_log(config.log_level);
const control = new RelayControl();
const reader = new OutboxStoresReader(config.stores);
const source = new CursorOutboxSource(reader, control, config.stores.partitions_by_worker);
const codec = new EventCodec();
const emitter = new OutboxEmitter({
  source,
  sink: new KafkaSink({
    brokers: config.brokers, client_id: config.client_id, topic_prefix: config.topic_prefix, event_types: codec.known_types(), log,
    request_timeout_ms: config.request_timeout_ms, ack_timeout_ms: config.ack_timeout_ms, topic_partitions: config.topic_partitions,
  }),
  codec, topic_prefix: config.topic_prefix, metrics: relay_metrics(), log,
  send_unanswered_ms_max: config.send_unanswered_ms_max, send_records_max: config.send_records_max,
  retry_delay_ms: config.retry_delay_ms, retry_delay_ms_max: config.retry_delay_ms_max,
  idle_poll_ms: config.idle_poll_ms, stop_wait_ms: config.stop_wait_ms,
});

let reported = '';
function report_status(): void {
  const status: EmitterStatus = emitter.status();
  const text = JSON.stringify(status);
  if (text === reported) return;
  reported = text;
  post({ tag: 'status', status });
}
const status_timer = setInterval(report_status, emitter_status_report_ms);

port.on('message', (message: ToEmitterThread) => {
  switch (message.tag) {
    case 'reply':
      control.settle(message);
      break;
    case 'worker_ready':
      source.worker_ready(message.worker);
      break;
    case 'outbox_ready':
      source.outbox_ready(message.worker);
      break;
    case 'stop':
      void stop();
      break;
  }
});

async function stop(): Promise<void> {
  await emitter.stop(); // finishes or abandons the send in flight, closes the producer
  clearInterval(status_timer);
  report_status();
  await reader.close();
  post({ tag: 'stopped' });
  port!.close();
}

emitter.start();
post({ tag: 'started', event_types: codec.known_types() });
