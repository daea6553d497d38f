// Puts strict_decode's check in front of every request deserializer the server is given, driven
// by the descriptors proto-loader attaches to each method (requestType.fileDescriptorProtos), so
// every service added with server.addService — ours, grpc.health.v1, server reflection, and any
// added later — is checked without a line of its own. A service without descriptors fails
// start-up rather than go unchecked.
//
// grpc-js answers a deserializer that throws with INTERNAL "Error deserializing request" (its
// server-interceptors.js; not configurable). A malformed request is the client's fault, so the
// deserializer does not throw: it returns a MalformedRequest, and the server interceptor
// answers it INVALID_ARGUMENT before any handler sees it (malformed_details).
import * as grpc from '@grpc/grpc-js';
import { createRequire } from 'node:module';
import protobuf from 'protobufjs';
import { assert } from '../util/assert.js';
import { check_message, describe_fault, plan_of, type Fault, type MessagePlan } from './strict_decode.js';

const require = createRequire(import.meta.url);
const descriptor = require('protobufjs/ext/descriptor') as {
  FileDescriptorProto: { decode(bytes: Uint8Array): { name: string } };
};

/** What the deserializer hands on for bytes that are not a valid encoding of the request. */
export class MalformedRequest {
  constructor(readonly details: string) {}
}

/** Told of each refusal: the service's short name ("InventoryService"), the method, the fault. */
export type OnMalformed = (service: string, method: string, fault: Fault) => void;

interface MethodWithDescriptors extends grpc.MethodDefinition<unknown, unknown> {
  requestType?: { fileDescriptorProtos?: Buffer[] };
}

/** One protobufjs Root from the files every method of `service` carries (each file once). */
function root_of(service_name: string, methods: MethodWithDescriptors[]): protobuf.Root {
  const files = new Map<string, unknown>();
  const seen = new Set<Buffer>();
  for (const method of methods) {
    const protos = method.requestType?.fileDescriptorProtos;
    assert(protos !== undefined && protos.length > 0, `${service_name}: no descriptors for ${method.path}, so its requests cannot be checked`);
    for (const bytes of protos) {
      if (seen.has(bytes)) continue;
      seen.add(bytes);
      const file = descriptor.FileDescriptorProto.decode(bytes);
      if (!files.has(file.name)) files.set(file.name, file);
    }
  }
  const root = (protobuf.Root as unknown as { fromDescriptor(set: { file: unknown[] }): protobuf.Root }).fromDescriptor({ file: [...files.values()] });
  root.resolveAll();
  return root;
}

/** `service` with each method's request deserializer checking the bytes first. */
export function strict_service(service: grpc.ServiceDefinition, on_malformed: OnMalformed): grpc.ServiceDefinition {
  const methods = Object.values(service) as MethodWithDescriptors[];
  if (methods.length === 0) return service;
  const full_name = methods[0]!.path.split('/')[1]!;
  const root = root_of(full_name, methods);
  const reflected = root.lookupService(full_name);
  const plans = new Map<protobuf.Type, MessagePlan>();
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [key, method] of Object.entries(service) as [string, MethodWithDescriptors][]) {
    const [, service_path, method_name] = method.path.split('/');
    assert(service_path === full_name && method_name !== undefined, `${method.path}: one service per definition`);
    const rpc = reflected.methods[method_name];
    assert(rpc !== undefined, `${method.path}: not in its own descriptors`);
    rpc.resolve();
    const plan = plan_of(rpc.resolvedRequestType!, plans);
    const short = full_name.split('.').pop()!;
    const decode = method.requestDeserialize;
    out[key] = {
      ...method,
      requestDeserialize: (bytes: Buffer) => {
        const fault = check_message(bytes, plan);
        if (fault === undefined) return decode(bytes);
        on_malformed(short, method_name, fault);
        return new MalformedRequest(`${method_name}: ${describe_fault(fault)}`);
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

/** Every service later added to `server` gets strict request checks (addService is wrapped). */
export function check_requests_of(server: grpc.Server, on_malformed: OnMalformed): void {
  const add = server.addService.bind(server);
  server.addService = (service, implementation) => add(strict_service(service, on_malformed), implementation);
}

/** The INVALID_ARGUMENT details for a MalformedRequest, undefined for any other message: give it
 *  to ConnectionGuard.server_options, whose interceptor answers the call before any handler
 *  sees it. */
export function malformed_details(message: unknown): string | undefined {
  return message instanceof MalformedRequest ? message.details : undefined;
}
