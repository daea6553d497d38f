// Kafka pieces of the bench (bench/sections/kafka.ts): a real broker from scripts/kafka, and a
// probe that measures the lag from a ReserveTickets reply to its HoldCreated event being readable
// on the topic (a consumer in this process, so both times come from one clock).
import * as grpc from '@grpc/grpc-js';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { client_ctor, inventory_proto, load_protos, repo_root, seat_id, seats_of, summarize, type Layout, type LatencySummary } from './common.js';

export interface BenchBroker {
  brokers: string;
  stop(): Promise<void>;
}

export async function start_bench_broker(work_dir: string): Promise<BenchBroker> {
  const module = (await import(pathToFileURL(join(repo_root, 'scripts', 'kafka', 'broker.mjs')).href)) as {
    start_broker(options: { work_dir: string; heap?: string }): Promise<BenchBroker>;
  };
  return module.start_broker({ work_dir });
}

export const hold_created_topic = 'ticketing.events.v1.HoldCreated';

/** Field 1 (string) of a protobuf message: HoldCreated.hold_id, without loading the protos. */
export function field_1(bytes: Buffer | null): string | undefined {
  if (bytes === null || bytes.length < 2 || bytes[0] !== 0x0a) return undefined;
  let length = 0;
  let shift = 0;
  let i = 1;
  for (; i < bytes.length && i < 6; i++) {
    length |= (bytes[i]! & 0x7f) << shift;
    shift += 7;
    if ((bytes[i]! & 0x80) === 0) break;
  }
  return bytes.toString('utf8', i + 1, i + 1 + length);
}

/**
 * Reserves (then releases) one seat at a time on `event_id` and records, per hold, the time its
 * reply arrived and the time its HoldCreated event arrived at a consumer.
 */
export class LagProbe {
  private readonly replied = new Map<string, number>();
  /** Events that reached the consumer before their reply reached the probe. */
  private readonly arrived = new Map<string, number>();
  private readonly lags_ms: number[] = [];
  private consumer: Consumer | undefined;
  private client: grpc.Client | undefined;
  private seat = 0;

  constructor(private readonly brokers: string, private readonly target: string, private readonly token: string,
    private readonly event_id: string, private readonly layout: Layout) {}

  async start(): Promise<void> {
    const kafka = new Kafka({ clientId: 'bench-lag-probe', brokers: [this.brokers], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    // The node creates its topics at its first send; the probe subscribes once it exists.
    for (let i = 0; i < 600 && !(await admin.listTopics()).includes(hold_created_topic); i++) await new Promise((r) => setTimeout(r, 100));
    await admin.disconnect();
    this.consumer = kafka.consumer({ groupId: `bench-lag-${process.pid}-${Date.now()}`, maxWaitTimeInMs: 10 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [hold_created_topic], fromBeginning: false });
    let joined!: () => void;
    const group_joined = new Promise<void>((resolve) => (joined = resolve));
    this.consumer.on(this.consumer.events.GROUP_JOIN, () => joined());
    await this.consumer.run({
      eachMessage: async ({ message }) => {
        const now = performance.now();
        if (message.key?.toString() !== this.event_id) return; // the load's events, not the probe's
        const hold_id = field_1(message.value);
        if (hold_id === undefined) return;
        const at = this.replied.get(hold_id);
        if (at === undefined) {
          this.arrived.set(hold_id, now);
          return;
        }
        this.lags_ms.push(now - at);
        this.replied.delete(hold_id);
      },
    });
    await group_joined;
    this.client ??= new (client_ctor(load_protos([inventory_proto]), 'ticketing.inventory.v1.InventoryService'))(this.target, grpc.credentials.createInsecure());
  }

  private record_reply(hold_id: string): void {
    const now = performance.now();
    const arrived = this.arrived.get(hold_id);
    if (arrived === undefined) {
      this.replied.set(hold_id, now);
      return;
    }
    // Readable on the topic before the reply reached the client (both follow the same commit).
    this.lags_ms.push(arrived - now);
    this.arrived.delete(hold_id);
  }

  /** One reservation and release, so the node's producer connects and creates its topics. */
  async warm_up(): Promise<void> {
    this.client ??= new (client_ctor(load_protos([inventory_proto]), 'ticketing.inventory.v1.InventoryService'))(this.target, grpc.credentials.createInsecure());
    await this.run(1, 0);
    this.replied.clear();
  }

  private call(method: string, request: unknown): Promise<any> {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${this.token}`);
    return new Promise((resolve, reject) => {
      (this.client as unknown as Record<string, Function>)[method]!.call(this.client, request, metadata, { deadline: Date.now() + 10_000 },
        (error: grpc.ServiceError | null, reply: unknown) => (error ? reject(error) : resolve(reply)));
    });
  }

  /** `count` probes, one every interval_ms (or until `until()` says stop). */
  async run(count: number, interval_ms: number, until: () => boolean = () => false): Promise<void> {
    for (let i = 0; i < count && !until(); i++) {
      const started = performance.now();
      const seat = seat_id(this.layout, this.seat++ % seats_of(this.layout));
      const hold = await this.call('ReserveTickets', { event_id: this.event_id, seat_ids: [seat], hold_ttl_seconds: '60', user_id: `probe-${i % 5}` });
      this.record_reply(hold.hold_id as string);
      await this.call('ReleaseHold', { hold_id: hold.hold_id });
      const wait = interval_ms - (performance.now() - started);
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** Waits (bounded) for the events still outstanding, then summarizes and resets. */
  async collect(bound_ms = 30_000): Promise<{ lag: LatencySummary; missing: number }> {
    const deadline = Date.now() + bound_ms;
    while (this.replied.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const result = { lag: summarize(this.lags_ms), missing: this.replied.size };
    this.lags_ms.length = 0;
    this.replied.clear();
    this.arrived.clear();
    return result;
  }

  async stop(): Promise<void> {
    this.client?.close();
    await this.consumer?.disconnect();
  }
}
