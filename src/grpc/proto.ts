// Loads the .proto files shipped in proto/. int64 arrives as a decimal string (never a rounded
// number); convert.ts turns it into a safe integer or refuses it.
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { proto_root } from '../util/paths.js';
// Before any request is decoded: protobufjs's 32-bit varint reader is wrong for long encodings.
import './varint_fix.js';

export { proto_root };

export const proto_files = [
  'ticketing/common/v1/common.proto',
  'ticketing/inventory/v1/inventory.proto',
  'ticketing/inventory/v1/seat_selection.proto',
  'ticketing/order/v1/order.proto',
  'ticketing/order/v1/order_query.proto',
  'ticketing/order/v1/checkout.proto',
  'ticketing/payment/v1/payment.proto',
  'ticketing/fraud/v1/fraud.proto',
  'ticketing/events/v1/events.proto',
  'ticketing/events/v1/lifecycle.proto',
  'ticketing/catalog/v1/catalog.proto',
  'ticketing/testing/v1/test_clock.proto',
  'ticketing/queue/v1/queue.proto',
];

export const loader_options: loader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [proto_root],
};

export function load_definitions(): { definition: loader.PackageDefinition; grpc_object: grpc.GrpcObject } {
  const definition = loader.loadSync(proto_files, loader_options);
  return { definition, grpc_object: grpc.loadPackageDefinition(definition) };
}

export function service_of(root: grpc.GrpcObject, path: string): grpc.ServiceDefinition {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  const ctor = node as { service?: grpc.ServiceDefinition } | undefined;
  if (ctor?.service === undefined) throw new Error(`service ${path} not found in protos`);
  return ctor.service;
}
