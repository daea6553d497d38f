// A consumer for tests: reads topics from the beginning (a fresh group each time) until a
// condition holds or a generous bound passes (the bound only turns a hang into a failure).
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel } from 'kafkajs';

export interface Consumed {
  topic: string;
  partition: number;
  offset: string;
  key: string;
  value: Buffer;
  headers: Record<string, string>;
  /** Local time the consumer received it (bench: delivery lag). */
  received_ms: number;
}

export const consume_bound_ms = 120_000;

/** `brokers`: one HOST:PORT or a bootstrap list 'HOST:PORT,HOST:PORT'. */
function client(brokers: string): Kafka {
  return new Kafka({ clientId: 'ticketing-test-consumer', brokers: brokers.split(','), logLevel: logLevel.NOTHING });
}

/** Waits (bounded) until every topic exists: the emitter creates them on its first send. */
export async function wait_for_topics(brokers: string, topics: string[], bound_ms = consume_bound_ms): Promise<void> {
  const admin = client(brokers).admin();
  await admin.connect();
  try {
    const deadline = Date.now() + bound_ms;
    for (;;) {
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((t) => !existing.has(t));
      if (missing.length === 0) return;
      if (Date.now() > deadline) throw new Error(`topics never appeared: ${missing.join(', ')}`);
      await sleep(100);
    }
  } finally {
    await admin.disconnect();
  }
}

export interface Consumer {
  messages: Consumed[];
  /** Resolves once done(messages) holds, or after the bound (then the caller's asserts fail). */
  until(done: (messages: Consumed[]) => boolean, bound_ms?: number): Promise<Consumed[]>;
  stop(): Promise<void>;
}

/** Starts consuming `topics` from the beginning; messages accumulate in `messages`. */
export async function start_consumer(brokers: string, topics: string[]): Promise<Consumer> {
  await wait_for_topics(brokers, topics);
  const consumer = client(brokers).consumer({ groupId: `test-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`, maxWaitTimeInMs: 100 });
  const messages: Consumed[] = [];
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ topic, partition, message }) => {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(message.headers ?? {})) headers[name] = String(value);
      messages.push({
        topic, partition, offset: message.offset, key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0), headers, received_ms: Date.now(),
      });
    },
  });
  return {
    messages,
    async until(done, bound_ms = consume_bound_ms) {
      const deadline = Date.now() + bound_ms;
      while (!done(messages) && Date.now() < deadline) await sleep(50);
      return messages;
    },
    stop: () => consumer.disconnect(),
  };
}
