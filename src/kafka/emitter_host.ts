// Main-thread side of the emitter's own thread (emitter_thread.ts): starts it, relays the
// pool's wake-ups to it and its control calls to the pool, and turns its reports into the
// node's metrics (prom-client lives here), log lines and the status /readyz reads. Per round
// that is a handful of messages, whatever the number of events in it.
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { Metrics } from '../ops/metrics.js';
import type { WorkerPool } from '../runtime/pool.js';
import { assert } from '../util/assert.js';
import { emitter_stop_wait_ms, type EmitterStatus } from './emitter.js';
import type { EmitterThreadConfig, FromEmitterThread, MetricReport, ToEmitterThread } from './emitter_protocol.js';

/** stop() waits this much beyond the emitter's own stop wait for the thread to say it stopped
 *  (closing the producer and the stores), then terminates it. */
export const emitter_thread_exit_wait_ms = 5_000;

export type EmitterPool = Pick<WorkerPool, 'outbox_read' | 'outbox_ack' | 'outbox_stores' | 'on' | 'off'>;

export class EmitterThread {
  private worker: Worker | undefined;
  private last_status: EmitterStatus = { failing: false, consecutive_failures: 0, last_error: undefined, sent: 0 };
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private resolve_stopped: (() => void) | undefined;
  private readonly on_worker_ready = (worker: number): void => this.send({ tag: 'worker_ready', worker });
  private readonly on_outbox_ready = (worker: number): void => this.send({ tag: 'outbox_ready', worker });

  constructor(
    private readonly pool: EmitterPool,
    private readonly config: Omit<EmitterThreadConfig, 'stores' | 'log_level'>,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  start(): void {
    assert(this.worker === undefined, 'the emitter thread starts once');
    const data: EmitterThreadConfig = { ...this.config, stores: this.pool.outbox_stores(), log_level: this.log.level };
    const worker = new Worker(new URL('./emitter_thread.js', import.meta.url), { workerData: data });
    this.worker = worker;
    this.stopped = new Promise<void>((resolve) => (this.resolve_stopped = resolve));
    worker.on('message', (message: FromEmitterThread) => this.on_message(message));
    worker.on('error', (error) => {
      this.log.error({ err: error }, 'outbox emitter stopped on an unexpected error; events stay in the outbox');
    });
    worker.on('exit', (code) => {
      if (!this.stopping) this.log.error({ code }, 'outbox emitter thread exited; events stay in the outbox');
      this.resolve_stopped?.();
    });
    this.pool.on('worker_ready', this.on_worker_ready);
    this.pool.on('outbox_ready', this.on_outbox_ready);
  }

  status(): EmitterStatus {
    return this.last_status;
  }

  private send(message: ToEmitterThread): void {
    if (this.worker === undefined) return;
    this.worker.postMessage(message);
  }

  private on_message(message: FromEmitterThread): void {
    switch (message.tag) {
      case 'call':
        this.relay(message);
        break;
      case 'log': {
        const line = this.log[message.level].bind(this.log);
        if (message.fields === undefined) line(message.msg ?? '');
        else line(message.fields, message.msg);
        break;
      }
      case 'metric':
        this.count(message.report);
        break;
      case 'status':
        this.last_status = message.status;
        break;
      case 'started':
        this.log.info({ topic_prefix: this.config.topic_prefix, brokers: this.config.brokers, event_types: message.event_types }, 'kafka emitter started');
        break;
      case 'stopped':
        this.resolve_stopped?.();
        break;
    }
  }

  private relay(call: Extract<FromEmitterThread, { tag: 'call' }>): void {
    const reply = call.op === 'read' ? this.pool.outbox_read(call.worker, call.request) : this.pool.outbox_ack(call.worker, call.acks);
    reply.then(
      (value) => this.send({ tag: 'reply', id: call.id, ok: true, value }),
      (error: unknown) => this.send({ tag: 'reply', id: call.id, ok: false, error: error instanceof Error ? error.message : String(error) }),
    );
  }

  private count(report: MetricReport): void {
    const m = this.metrics;
    switch (report.name) {
      case 'kafka_errors': m.kafka_errors.inc(); break;
      case 'kafka_sends_unanswered': m.kafka_sends_unanswered.inc(); break;
      case 'kafka_sent': m.kafka_sent.inc(report.value); break;
      case 'kafka_send_records': m.kafka_send_records.observe(report.value); break;
      case 'kafka_send_duration': m.kafka_send_duration.observe(report.value); break;
      case 'outbox_parked': m.outbox_parked.inc({ reason: report.reason }); break;
    }
  }

  /** Finishes the round in flight (or abandons its send after the stop wait: its entries stay
   *  in the outbox), closes the producer, ends the thread. Call before the pool closes: the
   *  round's acknowledgement still goes through it. */
  async stop(): Promise<void> {
    if (this.stopping || this.worker === undefined) return;
    this.stopping = true;
    this.pool.off('worker_ready', this.on_worker_ready);
    this.pool.off('outbox_ready', this.on_outbox_ready);
    this.send({ tag: 'stop' });
    let timer: NodeJS.Timeout | undefined;
    const bound_ms = (this.config.stop_wait_ms ?? emitter_stop_wait_ms) + emitter_thread_exit_wait_ms;
    await Promise.race([this.stopped, new Promise<void>((resolve) => (timer = setTimeout(resolve, bound_ms)))]);
    clearTimeout(timer);
    await this.worker.terminate();
  }
}
