// The final state, read through the public gRPC API once the load has stopped and every fault
// is lifted: availability of every event, every order (ListOrders of every user, GetOrder of
// every acknowledged one), then a ReleaseHold probe of every acknowledged hold; and the events
// on Kafka, read with a read_committed consumer (a fresh group, from the beginning).
import { status } from '@grpc/grpc-js';
import { Kafka, logLevel } from 'kafkajs';
import { EventCodec } from '../src/kafka/encode.js';
import { topic_of } from '../src/kafka/topics.js';
import type { Call, JsonObject } from './history.js';
import { to_json } from './history.js';
import { invoke, type World } from './load.js';
import {
  micros,
  num,
  obj,
  str,
  strs,
  type FinalState,
  type HoldProbe,
  type OrderRead,
  type SeenEvent,
} from './checker_state.js';
import { sleep } from './processes.js';

/** Attempts of one final read while its outcome is unknown (the node is healthy by now). */
const read_attempts_max = 20;
const page_size = 100;
/** Final reads in flight at once: fast, and gentle on a node just out of the faults. */
const reads_in_flight = 16;

async function in_batches<T>(items: T[], each: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += reads_in_flight) {
    await Promise.all(items.slice(i, i + reads_in_flight).map(each));
  }
}

async function read(
  world: World,
  user: string,
  role: 'service' | 'customer' | 'admin',
  rpc: 'get_order' | 'advance',
  request: JsonObject,
): Promise<Call> {
  let c = await invoke(world, user, role, rpc, request);
  for (let i = 0; i < read_attempts_max && c.result === 'unknown'; i++) {
    await sleep(500);
    c = await invoke(world, user, role, rpc, request);
  }
  return c;
}

/** A read that is not part of the history (availability, lists): plain, retried. */
async function plain(
  world: World,
  service: 'catalog' | 'order_query',
  method: string,
  request: JsonObject,
): Promise<JsonObject> {
  let last: unknown;
  for (let i = 0; i < read_attempts_max; i++) {
    try {
      return to_json(
        await world.nodes[0]!.call(service, method, request, world.tokens.of('checker', 'service')),
      );
    } catch (error) {
      last = error;
      await sleep(500);
    }
  }
  throw new Error(`final read ${service}.${method} failed: ${String(last)}`);
}

export function order_read(d: JsonObject): OrderRead {
  const order = obj(d, 'order');
  return {
    order_id: str(order, 'id'),
    status: str(order, 'status'),
    user_id: str(d, 'user_id'),
    event_id: str(d, 'event_id'),
    seat_ids: strs(d, 'seat_ids'),
    hold_id: str(d, 'hold_id'),
    payment_id: str(d, 'payment_id'),
    payment_status: str(d, 'payment_status'),
    total_micros: micros(order, 'total'),
    captured_micros: micros(d, 'captured'),
    refunded_micros: micros(d, 'refunded'),
  };
}

async function read_events(
  world: World,
  event_ids: string[],
  sections: number,
  final: FinalState,
): Promise<void> {
  for (const event_id of event_ids) {
    const top = await plain(world, 'catalog', 'GetAvailability', { event_id, section: '' });
    const free: string[] = [];
    for (let s = 1; s <= sections; s++) {
      const a = await plain(world, 'catalog', 'GetAvailability', { event_id, section: `S${s}` });
      for (const sec of (a['sections'] ?? []) as JsonObject[])
        free.push(...strs(sec, 'free_seat_ids'));
    }
    final.events[event_id] = {
      free_seat_ids: free,
      held: num(top, 'held'),
      sold: num(top, 'sold'),
    };
  }
}

async function read_orders(
  world: World,
  users: string[],
  acked: string[],
  final: FinalState,
): Promise<void> {
  for (const user_id of users) {
    const ids: string[] = [];
    let page_token = '';
    do {
      const page = await plain(world, 'order_query', 'ListOrders', {
        user_id,
        page_size,
        page_token,
      });
      for (const d of (page['orders'] ?? []) as JsonObject[]) {
        const o = order_read(d);
        ids.push(o.order_id);
        final.orders[o.order_id] = o;
      }
      page_token = str(page, 'next_page_token');
    } while (page_token !== '');
    final.user_orders[user_id] = ids;
  }
  await in_batches(
    acked.filter((id) => final.orders[id] === undefined),
    async (order_id) => {
      const c = await read(world, 'checker', 'service', 'get_order', { order_id });
      if (c.result === 'ok' && c.reply !== null) final.orders[order_id] = order_read(c.reply);
      else if (c.code === status.NOT_FOUND) final.orders[order_id] = 'not_found';
      else throw new Error(`final GetOrder of ${order_id}: code ${c.code} ${c.details}`);
    },
  );
}

async function probe_hold(world: World, hold_id: string, user: string): Promise<HoldProbe> {
  let unknown_seen = false;
  for (let i = 0; i < read_attempts_max; i++) {
    const c = await world.history.record('checker', 'release', { hold_id }, '', () =>
      world.nodes[0]!.call(
        'inventory',
        'ReleaseHold',
        { hold_id },
        world.tokens.of(user, 'customer'),
      ),
    );
    if (c.result === 'ok') {
      if (c.reply?.['released'] === true) return 'released';
      return unknown_seen ? 'ambiguous' : 'not_live';
    }
    if (c.code === status.FAILED_PRECONDITION) return 'confirmed';
    if (c.code === status.NOT_FOUND) return 'not_found';
    if (c.result === 'failed')
      throw new Error(`ReleaseHold probe of ${hold_id}: code ${c.code} ${c.details}`);
    unknown_seen = true;
    await sleep(500);
  }
  throw new Error(`ReleaseHold probe of ${hold_id} never answered`);
}

export async function read_final(
  world: World,
  users: string[],
  sections: number,
): Promise<FinalState> {
  const clock = await read(world, 'checker', 'admin', 'advance', { millis: '0' });
  const final: FinalState = {
    read_ms: Date.now(),
    node_now_ms: num(clock.reply, 'now_unix_ms'),
    events: {},
    orders: {},
    user_orders: {},
    holds: {},
  };
  await read_events(world, world.events, sections, final);
  const acked = world.history.calls
    .filter((c) => c.rpc === 'create_draft' && c.result === 'ok')
    .map((c) => str(c.reply, 'id'));
  await read_orders(world, users, [...new Set(acked)], final);
  const reserves = world.history.calls.filter(
    (x) => x.rpc === 'reserve' && x.result === 'ok' && x.user !== 'checker',
  );
  await in_batches(reserves, async (c) => {
    const hold_id = str(c.reply, 'hold_id');
    final.holds[hold_id] = await probe_hold(world, hold_id, str(c.request, 'user_id'));
  });
  return final;
}

/** Every event on the event topics, read_committed, until `enough` holds or the bound passes. */
export async function consume_all(
  brokers: string,
  enough: (seen: SeenEvent[]) => boolean,
  bound_ms: number,
): Promise<SeenEvent[]> {
  const codec = new EventCodec();
  const kafka = new Kafka({
    clientId: 'ticketing-chaos-checker',
    brokers: brokers.split(','),
    logLevel: logLevel.NOTHING,
  });
  const admin = kafka.admin();
  await admin.connect();
  const wanted = new Set(codec.known_types().map((t) => topic_of('', t)));
  const topics = (await admin.listTopics()).filter((t) => wanted.has(t));
  await admin.disconnect();
  const consumer = kafka.consumer({
    groupId: `chaos-${process.pid}-${Date.now()}`,
    readUncommitted: false,
    maxWaitTimeInMs: 200,
  });
  const seen: SeenEvent[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topics, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ topic, partition, message }) => {
        const type = topic.split('.').pop() ?? '';
        const event_id = String(message.headers?.['event-id'] ?? '');
        const decoded = codec.decode(type, message.value ?? Buffer.alloc(0));
        seen.push({
          event_id,
          type,
          topic,
          partition,
          offset: message.offset,
          message: to_json(decoded),
        });
      },
    });
    const deadline = Date.now() + bound_ms;
    while (!enough(seen) && Date.now() < deadline) await sleep(250);
    // A last moment for stragglers of the same fetch.
    await sleep(1_000);
  } finally {
    await consumer.disconnect();
  }
  return seen;
}
