// Drains every partition's outbox to Kafka, beside the request path: a client call never waits
// for it, never fails because of it. One round: read a bounded batch from every worker (per
// partition in seq order), encode, one producer send for all of it, and only once the broker
// acknowledged it, acknowledge those entries to their workers (gone for readers at once, deleted
// on disk with the store's next commit). Then the next round, at
// once while there is work; when every outbox was empty, it sleeps until a worker reports a new
// durable entry (outbox_ready) or emitter_idle_poll_ms passes.
//
// Why rounds are serial (read -> send -> ack -> read): a round always starts from the oldest
// entry still in the outbox, so a failed send or a lost acknowledgement (a worker died) needs no
// bookkeeping: the same entries are read and sent again (duplicates with the same event-id are
// allowed, loss is not), and per partition, hence per key, the order is kept. The next round may
// carry other entries than the failed one (rotation, the send_records_max cut): that is safe
// only because every failed send drops the producer (sink.reset(), and KafkaSink does it itself;
// why, in sink.ts), so a new round is never numbered like a batch the broker may already hold. While a round is in
// flight new entries pile up, so under load each send carries many records.
//
// A record that cannot be encoded (unknown type, payload not fitting its message) would block
// nothing, but must not be retried forever: it is parked (moved aside in its store, counted,
// logged once per type) and moved back into the outbox when an emitter starts, so a version
// that knows the type sends it.
import assert from 'node:assert/strict';
import type { Logger } from 'pino';
import {
  outbox_read_batch_max, type OutboxAck, type OutboxAckReply, type OutboxItem, type OutboxReadReply, type OutboxReadRequest,
} from '../runtime/outbox.js';
import type { KafkaMessage, EventCodec } from './encode.js';
import { InvalidEventPayloadError, UnknownEventTypeError } from './errors.js';
import type { EventSink } from './sink.js';

/** Records in one producer send at most (split evenly over the workers' reads). */
export const kafka_send_records_max = outbox_read_batch_max;
/** Backoff after a failed send: doubles per consecutive failure up to the max. */
export const kafka_retry_delay_ms = 100;
export const kafka_retry_delay_ms_max = 5_000;
/** A send unanswered this long counts as failing at once (ticketing_kafka_sends_unanswered_total,
 *  ticketing_kafka_publish_errors_total, /readyz "failing"), without waiting for kafkajs to give
 *  up, which takes (retries + 1) × the request timeout: 45 s by default on a frozen broker. A
 *  healthy send of 2,000 records is answered in tens of ms (--kafka-send-unanswered-max-ms). */
export const kafka_send_unanswered_ms_max = 5_000;
export const kafka_send_unanswered_ms_min = 100;
export const kafka_send_unanswered_ms_limit = 3_600_000;
/** With every outbox empty, look again after this long even without a wake-up. */
export const emitter_idle_poll_ms = 1_000;
/** stop() waits this long for a send in flight, then abandons it (its entries stay). */
export const emitter_stop_wait_ms = 5_000;
/** While sends keep failing, one warn line per this interval (the first failure logs at once). */
export const emitter_failure_log_interval_ms = 30_000;

/** Where the emitter reads and acknowledges: the pool itself (the owning workers read), or, in
 *  the emitter's own thread, cursor_source.ts (reads the stores itself). */
export interface OutboxSource {
  partitions_by_worker(): number[][];
  outbox_read(worker: number, request: OutboxReadRequest): Promise<OutboxReadReply>;
  outbox_ack(worker: number, acks: OutboxAck[]): Promise<OutboxAckReply>;
  on(event: 'outbox_ready' | 'worker_ready', listener: (worker: number) => void): unknown;
  off(event: 'outbox_ready' | 'worker_ready', listener: (worker: number) => void): unknown;
}

/** What the emitter reports to (ops' Metrics on the main thread; in the emitter's own thread a
 *  relay to it, emitter_thread.ts). */
export interface EmitterMetrics {
  kafka_errors: { inc(): void };
  kafka_sends_unanswered: { inc(): void };
  kafka_sent: { inc(records: number): void };
  kafka_send_records: { observe(records: number): void };
  kafka_send_duration: { observe(seconds: number): void };
  outbox_parked: { inc(labels: { reason: string }): void };
}

export type EmitterLog = Pick<Logger, 'debug' | 'info' | 'warn' | 'error'>;

export interface EmitterOptions {
  source: OutboxSource;
  sink: EventSink;
  codec: EventCodec;
  topic_prefix: string;
  metrics: EmitterMetrics;
  log: EmitterLog;
  send_records_max?: number;
  retry_delay_ms?: number;
  retry_delay_ms_max?: number;
  idle_poll_ms?: number;
  stop_wait_ms?: number;
  send_unanswered_ms_max?: number;
}

export interface EmitterStatus {
  /** The last send failed, or the send in flight is unanswered past send_unanswered_ms_max
   *  (the outbox grows until one succeeds). */
  failing: boolean;
  consecutive_failures: number;
  last_error: string | undefined;
  /** Records the broker acknowledged since start. */
  sent: number;
}

interface Round {
  events: KafkaMessage[];
  acks: Map<number, OutboxAck[]>;
  parked: number;
}

export class OutboxEmitter {
  private readonly send_records_max: number;
  private rounds = 0;
  private stopping = false;
  private abandoned = false;
  private loop: Promise<void> | undefined;
  /** Set by outbox_ready / worker_ready; cleared just before a round reads. */
  private signalled = false;
  private wake: (() => void) | undefined;
  /** Workers whose parked entries were moved back (first successful read after start). */
  private readonly requeued = new Set<number>();
  private readonly unknown_types_logged = new Set<string>();
  private consecutive_failures = 0;
  private failing_since_ms = 0;
  private last_failure_log_ms = 0;
  private last_error: string | undefined;
  private sent = 0;
  /** The send in flight passed send_unanswered_ms_max without an answer (already counted). */
  private unanswered = false;
  private readonly on_ready = (): void => this.signal();

  constructor(private readonly options: EmitterOptions) {
    this.send_records_max = options.send_records_max ?? kafka_send_records_max;
    const unanswered_ms = options.send_unanswered_ms_max ?? kafka_send_unanswered_ms_max;
    assert(Number.isInteger(unanswered_ms) && unanswered_ms >= kafka_send_unanswered_ms_min && unanswered_ms <= kafka_send_unanswered_ms_limit, 'send_unanswered_ms_max within bounds');
  }

  start(): void {
    if (this.loop !== undefined) return;
    this.options.source.on('outbox_ready', this.on_ready);
    this.options.source.on('worker_ready', this.on_ready);
    this.loop = this.run().catch((error: unknown) => {
      // A bug, not an outage (those are caught per send): say so loudly; events stay durable.
      this.options.log.error({ err: error }, 'outbox emitter stopped on an unexpected error; events stay in the outbox');
    });
  }

  status(): EmitterStatus {
    return { failing: this.consecutive_failures > 0 || this.unanswered, consecutive_failures: this.consecutive_failures, last_error: this.last_error, sent: this.sent };
  }

  private signal(): void {
    this.signalled = true;
    this.wake?.();
  }

  /** Sleeps up to ms, or until signalled or stopping. */
  private async pause(ms: number): Promise<void> {
    if (this.signalled || this.stopping) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
    this.wake = undefined;
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const round = await this.read_round();
      if (round.events.length === 0 && round.parked === 0) {
        await this.pause(this.options.idle_poll_ms ?? emitter_idle_poll_ms);
        continue;
      }
      if (round.events.length > 0 && !(await this.send(round.events))) {
        const delay = Math.min(
          this.options.retry_delay_ms_max ?? kafka_retry_delay_ms_max,
          (this.options.retry_delay_ms ?? kafka_retry_delay_ms) * 2 ** Math.min(16, this.consecutive_failures - 1),
        );
        this.signalled = false; // a wake-up must not cut the backoff short
        await this.pause(delay);
        continue;
      }
      // Delivered (or nothing to deliver but records to park): delete them from the outbox.
      if (this.abandoned) return; // stop() gave up on this send: the pool may be closing
      await this.acknowledge(round.acks);
    }
  }

  private async read_round(): Promise<Round> {
    const { source, codec, topic_prefix, metrics, log } = this.options;
    const by_worker = source.partitions_by_worker();
    const limit = Math.max(1, Math.min(outbox_read_batch_max, Math.ceil(this.send_records_max / by_worker.length)));
    this.signalled = false;
    const rotation = this.rounds++;
    const replies = await Promise.all(by_worker.map(async (partitions, worker) => {
      // Rotated per round: a backlog in one partition cannot hold the others back for long.
      const k = rotation % partitions.length;
      const order = [...partitions.slice(k), ...partitions.slice(0, k)];
      try {
        const reply = await source.outbox_read(worker, {
          cursors: order.map((partition) => ({ partition, after_seq: 0 })),
          limit, limit_per_partition: limit, requeue_parked: !this.requeued.has(worker),
        });
        this.requeued.add(worker);
        if (reply.requeued > 0) log.info({ worker, entries: reply.requeued }, 'parked outbox entries moved back to be sent again');
        return { worker, entries: reply.entries };
      } catch {
        // The worker is restarting (WorkerUnavailableError) or the pool is closing: its entries
        // wait for a later round; worker_ready wakes the emitter.
        return { worker, entries: [] as OutboxItem[] };
      }
    }));
    const round: Round = { events: [], acks: new Map(), parked: 0 };
    for (const { worker, entries } of replies) {
      const acks = new Map<number, OutboxAck>();
      for (const entry of entries) {
        let ack = acks.get(entry.partition);
        if (ack === undefined) {
          ack = { partition: entry.partition, seqs: [], park: [] };
          acks.set(entry.partition, ack);
        }
        try {
          round.events.push(codec.to_message(entry.record, topic_prefix));
          ack.seqs.push(entry.seq);
        } catch (error) {
          if (!(error instanceof UnknownEventTypeError || error instanceof InvalidEventPayloadError)) throw error;
          const reason = error instanceof UnknownEventTypeError ? 'unknown_type' : 'invalid_payload';
          metrics.outbox_parked.inc({ reason });
          ack.park.push(entry.seq);
          round.parked++;
          const type = String(entry.record.type);
          if (!this.unknown_types_logged.has(`${reason}:${type}`)) {
            this.unknown_types_logged.add(`${reason}:${type}`);
            log.warn({ type, event_id: entry.record.event_id, reason, err: error.message }, 'outbox record cannot be sent; parked (counted in ticketing_outbox_parked_total, see ticketing outbox tail --parked)');
          }
        }
      }
      if (acks.size > 0) round.acks.set(worker, [...acks.values()]);
    }
    return round;
  }

  /** One producer send; true once the broker acknowledged every record. */
  private async send(events: KafkaMessage[]): Promise<boolean> {
    const { sink, metrics, log } = this.options;
    const started = performance.now();
    const watch = setTimeout(() => this.on_unanswered(events.length), this.options.send_unanswered_ms_max ?? kafka_send_unanswered_ms_max).unref();
    try {
      await sink.send(events);
    } catch (error) {
      if (this.abandoned) return false; // stop() closed the producer under this send
      // A send already counted as unanswered is one failure, not two.
      const counted = this.unanswered;
      if (!counted) metrics.kafka_errors.inc();
      this.unanswered = false;
      const now = Date.now();
      const message = error instanceof Error ? error.message : String(error);
      this.last_error = message;
      if (this.consecutive_failures === 0 && !counted) {
        this.failing_since_ms = now;
        this.last_failure_log_ms = now;
        log.warn({ err: message, records: events.length }, 'kafka send failed; the events stay in the outbox and are retried');
      } else if (now - this.last_failure_log_ms >= emitter_failure_log_interval_ms) {
        this.last_failure_log_ms = now;
        log.warn({ err: message, failed_sends: this.consecutive_failures + 1, failing_s: Math.round((now - this.failing_since_ms) / 1000) }, 'kafka sends still failing; the outbox grows');
      }
      this.consecutive_failures++;
      // Always, not after a few failures in a row: a producer whose send failed has sequence
      // numbers the broker may already hold for other records (sink.ts).
      await sink.reset();
      return false;
    } finally {
      clearTimeout(watch);
    }
    if (this.unanswered) {
      this.unanswered = false;
      if (this.consecutive_failures === 0) this.last_error = undefined;
      log.info({ records: events.length, answered_after_ms: Math.round(performance.now() - started) }, 'the unanswered kafka send was acknowledged after all');
    }
    metrics.kafka_sent.inc(events.length);
    metrics.kafka_send_records.observe(events.length);
    metrics.kafka_send_duration.observe((performance.now() - started) / 1000);
    this.sent += events.length;
    if (this.consecutive_failures > 0) {
      log.info({ failed_sends: this.consecutive_failures, failing_s: Math.round((Date.now() - this.failing_since_ms) / 1000) }, 'kafka sends succeed again; the outbox drains');
      this.consecutive_failures = 0;
      this.last_error = undefined;
    }
    return true;
  }

  /** The send in flight passed send_unanswered_ms_max: count it as a failed send now. */
  private on_unanswered(records: number): void {
    if (this.abandoned || this.stopping) return;
    const { metrics, log } = this.options;
    const bound_ms = this.options.send_unanswered_ms_max ?? kafka_send_unanswered_ms_max;
    this.unanswered = true;
    this.last_error = `a send of ${records} records is unanswered after ${bound_ms} ms (--kafka-send-unanswered-max-ms)`;
    metrics.kafka_sends_unanswered.inc();
    metrics.kafka_errors.inc();
    const now = Date.now();
    if (this.consecutive_failures === 0) {
      this.failing_since_ms = now;
      this.last_failure_log_ms = now;
      log.warn({ records, unanswered_ms_max: bound_ms }, 'kafka send unanswered; counted as failing, the events stay in the outbox');
    }
  }

  private async acknowledge(acks: Map<number, OutboxAck[]>): Promise<void> {
    await Promise.all([...acks].map(async ([worker, list]) => {
      try {
        await this.options.source.outbox_ack(worker, list);
      } catch {
        // The worker died (or the pool is closing) before taking the acknowledgement: those
        // entries are read and sent again later, as are entries acknowledged but not yet deleted
        // on disk when a worker dies. Duplicates carry the same event-id; nothing is lost.
      }
    }));
  }

  /** Finishes the round in flight (or abandons its send after stop_wait_ms: its entries stay
   *  in the outbox, never deleted unacknowledged), then closes the producer. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.options.source.off('outbox_ready', this.on_ready);
    this.options.source.off('worker_ready', this.on_ready);
    this.wake?.();
    if (this.loop !== undefined) {
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        this.loop.then(() => true),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), this.options.stop_wait_ms ?? emitter_stop_wait_ms))),
      ]);
      clearTimeout(timer);
      if (!finished) {
        this.abandoned = true;
        this.options.log.warn('abandoned the kafka send in flight at shutdown; its events stay in the outbox and are sent after restart');
      }
    }
    await this.options.sink.close();
  }
}
