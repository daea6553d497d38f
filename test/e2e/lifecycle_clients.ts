// Clients of the services issue 14's lifecycle lane serves (SeatSelectionService.ExtendHold,
// CheckoutService, OrderAdminService), generated from their .proto files.
import * as loader from '@grpc/proto-loader';
import { join } from 'node:path';
import { grpc, repo_root } from './harness.js';

export type Unary = (request: object, bearer: string | undefined) => Promise<Record<string, unknown>>;
export interface Lifecycle { extend: Unary; from_hold: Unary; return_seats: Unary; close(): void }

/** Clients of the new services, generated from their .proto files. */
export function lifecycle_clients(port: number): Lifecycle {
  const definition = loader.loadSync(
    ['ticketing/inventory/v1/seat_selection.proto', 'ticketing/order/v1/checkout.proto'],
    { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [join(repo_root, 'proto')] },
  );
  const make = (name: string): grpc.Client => {
    const ctor = grpc.makeClientConstructor(definition[name] as grpc.ServiceDefinition, name);
    return new ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  };
  const selection = make('ticketing.inventory.v1.SeatSelectionService');
  const checkout = make('ticketing.order.v1.CheckoutService');
  const admin = make('ticketing.order.v1.OrderAdminService');
  const unary = (client: grpc.Client, method: string): Unary => (request, bearer) => new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    if (bearer !== undefined) metadata.set('authorization', `Bearer ${bearer}`);
    const fn = Reflect.get(client, method) as (r: object, m: grpc.Metadata, cb: grpc.requestCallback<Record<string, unknown>>) => void;
    fn.call(client, request, metadata, (error: grpc.ServiceError | null, reply?: Record<string, unknown>) => (error !== null ? reject(error) : resolve(reply ?? {})));
  });
  return {
    extend: unary(selection, 'ExtendHold'),
    from_hold: unary(checkout, 'CreateDraftFromHold'),
    return_seats: unary(admin, 'ReturnSeats'),
    close() {
      for (const c of [selection, checkout, admin]) c.close();
    },
  };
}

