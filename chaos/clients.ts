// gRPC clients built from the protos (proto/), one set per node address, and the bearer
// tokens the load presents (minted with the run's TICKETING_AUTH_SECRET, as a deployment's
// identity provider would). Every call carries a deadline: a call that would hang (a paused
// node) ends DEADLINE_EXCEEDED, an unknown outcome, instead of stalling the user.
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { strict as assert } from 'node:assert';
import { fileURLToPath } from 'node:url';
import { sign_token, type Role } from '../src/auth/token.js';

export const proto_dir = fileURLToPath(new URL('../../proto/', import.meta.url));
/** A call's deadline: a healthy node answers in milliseconds; 2 s under two shared cores is
 *  generous, and short enough that a paused node costs a user little. */
export const call_deadline_ms = 2_000;
/** Tokens outlive any run (the longest run is bounded by --minutes plus the final reads). */
const token_ttl_s = 6 * 3600;

const protos = [
  'ticketing/inventory/v1/inventory.proto',
  'ticketing/catalog/v1/catalog.proto',
  'ticketing/testing/v1/test_clock.proto',
  'ticketing/order/v1/order.proto',
  'ticketing/order/v1/order_query.proto',
  'ticketing/payment/v1/payment.proto',
  'ticketing/fraud/v1/fraud.proto',
];

const services = {
  inventory: 'ticketing.inventory.v1.InventoryService',
  catalog: 'ticketing.catalog.v1.CatalogService',
  clock: 'ticketing.testing.v1.TestClockService',
  order: 'ticketing.order.v1.OrderService',
  order_query: 'ticketing.order.v1.OrderQueryService',
  payment: 'ticketing.payment.v1.PaymentService',
  fraud: 'ticketing.fraud.v1.FraudService',
} as const;
type ServiceName = keyof typeof services;

let root: grpc.GrpcObject | undefined;
function loaded(): grpc.GrpcObject {
  root ??= grpc.loadPackageDefinition(
    loader.loadSync(protos, {
      keepCase: true,
      longs: String,
      enums: String,
      defaults: true,
      includeDirs: [proto_dir],
    }),
  );
  return root;
}

function ctor(path: string): grpc.ServiceClientConstructor {
  let node: unknown = loaded();
  for (const part of path.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  assert.ok(typeof node === 'function', `${path} is in the protos`);
  return node as grpc.ServiceClientConstructor;
}

type Unary = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, reply: unknown) => void,
) => void;

export class NodeClients {
  private readonly clients = new Map<ServiceName, grpc.Client>();

  constructor(readonly address: string) {
    for (const [name, path] of Object.entries(services) as [ServiceName, string][]) {
      const Client = ctor(path);
      this.clients.set(
        name,
        new Client(address, grpc.credentials.createInsecure(), {
          // Reconnect quickly after a restart: the default backoff grows to 120 s.
          'grpc.initial_reconnect_backoff_ms': 100,
          'grpc.max_reconnect_backoff_ms': 1_000,
        }),
      );
    }
  }

  /** One unary call with a bearer token, optional metadata and the deadline. */
  call(
    service: ServiceName,
    method: string,
    request: unknown,
    bearer: string,
    extra: Record<string, string> = {},
    deadline_ms = call_deadline_ms,
  ): Promise<unknown> {
    const client = this.clients.get(service);
    assert.ok(client !== undefined, `client ${service}`);
    const fn = (client as unknown as Record<string, unknown>)[method];
    assert.ok(typeof fn === 'function', `${service}.${method} exists`);
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${bearer}`);
    for (const [k, v] of Object.entries(extra)) metadata.set(k, v);
    return new Promise((resolve, reject) => {
      (fn as Unary).call(
        client,
        request,
        metadata,
        { deadline: Date.now() + deadline_ms },
        (error, reply) => (error !== null ? reject(error) : resolve(reply)),
      );
    });
  }

  close(): void {
    for (const c of this.clients.values()) c.close();
  }
}

export class Tokens {
  private readonly cache = new Map<string, string>();
  constructor(private readonly secret: string) {}

  of(user_id: string, role: Role): string {
    const k = `${role}:${user_id}`;
    let t = this.cache.get(k);
    if (t === undefined) {
      t = sign_token(Buffer.from(this.secret, 'utf8'), { user_id, role }, token_ttl_s);
      this.cache.set(k, t);
    }
    return t;
  }
}
