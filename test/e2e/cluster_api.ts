// Typed gRPC calls to one node of a cluster test (clients built from the proto files, as
// harness.ts does): every call carries a deadline, replies are checked field by field.
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { join } from 'node:path';
import { repo_root } from './harness.js';
import { broker_module } from '../kafka/broker.js';
import type {
  AuthorizeRequest,
  DraftRequest,
  OrderReply,
  ReserveRequest,
  Rpcs,
} from './history.js';

/** A free port below the ephemeral range (scripts/kafka/broker.mjs free_port: why). */
export async function free_port(): Promise<number> {
  return (await broker_module()).free_port();
}

const definition = loader.loadSync(
  [
    'ticketing/inventory/v1/inventory.proto',
    'ticketing/catalog/v1/catalog.proto',
    'ticketing/order/v1/order.proto',
    'ticketing/order/v1/order_query.proto',
    'ticketing/payment/v1/payment.proto',
  ],
  {
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    includeDirs: [join(repo_root, 'proto')],
  },
);
type Constructor = new (
  address: string,
  creds: grpc.ChannelCredentials,
  options: grpc.ChannelOptions,
) => grpc.Client;
function service(path: string): Constructor {
  let at: unknown = grpc.loadPackageDefinition(definition);
  for (const part of path.split('.')) at = (at as Record<string, unknown>)[part];
  if (typeof at !== 'function') throw new Error(`no service ${path} in the protos`);
  return at as Constructor;
}
const services = {
  inventory: service('ticketing.inventory.v1.InventoryService'),
  catalog: service('ticketing.catalog.v1.CatalogService'),
  order: service('ticketing.order.v1.OrderService'),
  query: service('ticketing.order.v1.OrderQueryService'),
  payment: service('ticketing.payment.v1.PaymentService'),
};
/** Reconnect fast after a node comes back (grpc-js backs off up to 120 s by default). */
const channel_options: grpc.ChannelOptions = {
  'grpc.initial_reconnect_backoff_ms': 100,
  'grpc.max_reconnect_backoff_ms': 1_000,
  'grpc.min_reconnect_backoff_ms': 100,
};

type Raw = Record<string, unknown>;
const str = (r: Raw, k: string): string => {
  const v = r[k];
  if (typeof v !== 'string')
    throw new Error(`reply field ${k} is not a string: ${JSON.stringify(r)}`);
  return v;
};
const num = (r: Raw, k: string): number => Number(str(r, k));
const obj = (r: Raw, k: string): Raw => {
  const v = r[k];
  if (typeof v !== 'object' || v === null) throw new Error(`reply field ${k} is not a message`);
  return v as Raw;
};
function order_reply(r: Raw): OrderReply {
  return {
    id: str(r, 'id'),
    status: str(r, 'status'),
    created_at_unix: num(r, 'created_at_unix'),
    total_micros: str(obj(r, 'total'), 'amount_micros'),
  };
}

export interface Availability {
  free_seat_ids: string[];
  free: number;
  held: number;
  sold: number;
  truncated: boolean;
}
export interface OrderDetails {
  status: string;
  user_id: string;
  event_id: string;
  seat_ids: string[];
  hold_id: string;
  payment_id: string;
  payment_status: string;
}
export interface Event {
  event_id: string;
  seats: number;
}

/** Typed unary calls to one node; every call has a deadline. */
export class NodeApi {
  private readonly clients: Record<keyof typeof services, grpc.Client>;

  constructor(readonly address: string) {
    const creds = grpc.credentials.createInsecure();
    this.clients = {
      inventory: new services.inventory(address, creds, channel_options),
      catalog: new services.catalog(address, creds, channel_options),
      order: new services.order(address, creds, channel_options),
      query: new services.query(address, creds, channel_options),
      payment: new services.payment(address, creds, channel_options),
    };
  }

  private call(
    client: keyof typeof services,
    method: string,
    request: object,
    bearer: string,
    deadline_ms: number,
    extra: Record<string, string> = {},
  ): Promise<Raw> {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${bearer}`);
    for (const [k, v] of Object.entries(extra)) metadata.set(k, v);
    const c = this.clients[client];
    const fn = (c as unknown as Record<string, unknown>)[method];
    if (typeof fn !== 'function') throw new Error(`no method ${method}`);
    return new Promise((resolve, reject) => {
      fn.call(
        c,
        request,
        metadata,
        { deadline: Date.now() + deadline_ms },
        (error: grpc.ServiceError | null, reply: Raw) =>
          error !== null ? reject(error) : resolve(reply),
      );
    });
  }

  async reserve(
    r: ReserveRequest,
    bearer: string,
    deadline_ms: number,
  ): Promise<Rpcs['reserve']['reply']> {
    const reply = await this.call('inventory', 'ReserveTickets', r, bearer, deadline_ms);
    return { hold_id: str(reply, 'hold_id'), expires_at_unix: num(reply, 'expires_at_unix') };
  }
  async release(
    hold_id: string,
    bearer: string,
    deadline_ms: number,
  ): Promise<Rpcs['release']['reply']> {
    const reply = await this.call('inventory', 'ReleaseHold', { hold_id }, bearer, deadline_ms);
    return { released: reply['released'] === true };
  }
  async confirm(
    r: Rpcs['confirm']['request'],
    bearer: string,
    deadline_ms: number,
  ): Promise<Rpcs['confirm']['reply']> {
    const reply = await this.call('inventory', 'ConfirmAllocation', r, bearer, deadline_ms);
    return { confirmed: reply['confirmed'] === true };
  }
  async create_draft(r: DraftRequest, bearer: string, deadline_ms: number): Promise<OrderReply> {
    return order_reply(
      await this.call('order', 'CreateDraft', { ...r, promo_code: '' }, bearer, deadline_ms),
    );
  }
  async authorize(
    r: AuthorizeRequest,
    bearer: string,
    deadline_ms: number,
  ): Promise<Rpcs['authorize']['reply']> {
    const request = {
      order_id: r.order_id,
      amount: { amount_micros: r.amount_micros, currency: 'EUR' },
      payment_token: 'tok_visa',
    };
    const reply = await this.call('payment', 'Authorize', request, bearer, deadline_ms, {
      'idempotency-key': r.idempotency_key,
    });
    return { payment_id: str(reply, 'payment_id'), status: str(reply, 'status') };
  }
  async confirm_order(
    r: Rpcs['confirm_order']['request'],
    bearer: string,
    deadline_ms: number,
  ): Promise<OrderReply> {
    return order_reply(await this.call('order', 'ConfirmOrder', r, bearer, deadline_ms));
  }
  async get_order(order_id: string, bearer: string, deadline_ms: number): Promise<OrderDetails> {
    const r = await this.call('query', 'GetOrder', { order_id }, bearer, deadline_ms);
    const seat_ids = r['seat_ids'];
    if (!Array.isArray(seat_ids)) throw new Error('GetOrder: seat_ids is not a list');
    return {
      status: str(obj(r, 'order'), 'status'),
      user_id: str(r, 'user_id'),
      event_id: str(r, 'event_id'),
      seat_ids: seat_ids.map(String),
      hold_id: str(r, 'hold_id'),
      payment_id: str(r, 'payment_id'),
      payment_status: str(r, 'payment_status'),
    };
  }
  async availability(event_id: string, bearer: string, deadline_ms: number): Promise<Availability> {
    const r = await this.call(
      'catalog',
      'GetAvailability',
      { event_id, section: '' },
      bearer,
      deadline_ms,
    );
    const sections = r['sections'];
    if (!Array.isArray(sections)) throw new Error('GetAvailability: sections is not a list');
    const free_seat_ids = sections.flatMap((s: Raw) => {
      const ids = s['free_seat_ids'];
      return Array.isArray(ids) ? ids.map(String) : [];
    });
    return {
      free_seat_ids,
      free: num(r, 'free'),
      held: num(r, 'held'),
      sold: num(r, 'sold'),
      truncated: r['truncated'] === true,
    };
  }
  async create_event(e: Event, bearer: string, deadline_ms: number): Promise<void> {
    const event = {
      event_id: e.event_id,
      name: `Cluster ${e.event_id}`,
      starts_at_unix: '1900000000',
      currency: 'EUR',
      price_tiers: { A: '10000000' },
      sections: [{ name: '1', rows: [{ name: 'A', seats: e.seats, tier: 'A' }] }],
      max_seats_per_user: 10,
      promo_codes: [],
    };
    await this.call('catalog', 'CreateEvent', { event }, bearer, deadline_ms);
  }

  close(): void {
    for (const c of Object.values(this.clients)) c.close();
  }
}
