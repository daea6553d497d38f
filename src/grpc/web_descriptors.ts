// The node's protos as @bufbuild/protobuf descriptors, for the Connect / gRPC-Web edge
// (web_calls.ts) and the page's client (web/, bundled by scripts/build_web.mjs). They are made
// from the very FileDescriptorProtos proto-loader built from proto/ (made protoc-like by
// descriptors.ts), so nothing needs protoc at build or run time and a service added to proto/
// comes through without a line here.
//
// protobufjs writes json_name "" for every field; protobuf-es would then name every JSON field
// "". It is set to the lowerCamelCase name protoc would write ("event_id" → "eventId").
import type { PackageDefinition } from '@grpc/proto-loader';
import {
  create, createFileRegistry, fromBinary, toBinary, type FileRegistry,
} from '@bufbuild/protobuf';
import {
  FileDescriptorProtoSchema, FileDescriptorSetSchema, type DescriptorProto,
  type FileDescriptorProto,
} from '@bufbuild/protobuf/wkt';
import { protoCamelCase } from '@bufbuild/protobuf/reflect';
import { assert } from '../util/assert.js';
import { canonical_map_entries } from './descriptors.js';

function clear_json_names(message: DescriptorProto): void {
  for (const field of message.field) {
    if (field.jsonName === '') field.jsonName = protoCamelCase(field.name);
  }
  for (const nested of message.nestedType) clear_json_names(nested);
}

/** Every file of `definition` once, protoc-like, dependencies before their dependents. */
export function web_files(definition: PackageDefinition): FileDescriptorProto[] {
  const by_name = new Map<string, FileDescriptorProto>();
  for (const value of Object.values(canonical_map_entries(definition))) {
    const protos = (value as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos ?? [];
    for (const bytes of protos) {
      const file = fromBinary(FileDescriptorProtoSchema, bytes);
      if (by_name.has(file.name)) continue;
      for (const message of file.messageType) clear_json_names(message);
      by_name.set(file.name, file);
    }
  }
  const ordered: FileDescriptorProto[] = [];
  const placed = new Set<string>();
  const place = (file: FileDescriptorProto, depth: number): void => {
    assert(depth <= by_name.size, `descriptor ${file.name}: its imports form a cycle`);
    if (placed.has(file.name)) return;
    for (const dependency of file.dependency) {
      const dep = by_name.get(dependency);
      assert(dep !== undefined, `descriptor ${file.name} imports ${dependency}: not loaded`);
      place(dep, depth + 1);
    }
    placed.add(file.name);
    ordered.push(file);
  };
  for (const file of by_name.values()) place(file, 0);
  return ordered;
}

/** The FileDescriptorSet's bytes (what the page embeds). */
export function web_descriptor_set(definition: PackageDefinition): Uint8Array {
  return toBinary(FileDescriptorSetSchema, create(FileDescriptorSetSchema, {
    file: web_files(definition),
  }));
}

export function web_registry(definition: PackageDefinition): FileRegistry {
  return createFileRegistry(create(FileDescriptorSetSchema, { file: web_files(definition) }));
}
