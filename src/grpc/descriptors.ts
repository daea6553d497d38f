// Descriptors for server reflection, made acceptable to strict clients. protobufjs (under
// @grpc/proto-loader) names a map field's implicit entry message after the field as written
// ("Price_tiers"), while protoc, and the validation in current grpcurl and protobuf-go, require
// CamelCase(field) + "Entry" ("PriceTiersEntry"). Without this, grpcurl refuses every service
// whose file has a map field (grpcurl#519). Only names change: wire format is unaffected.
import type { PackageDefinition } from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { assert } from '../runtime/assert.js';

const require = createRequire(import.meta.url);
interface FieldProto { name: string; label: number; typeName: string }
interface MessageProto { name: string; field: FieldProto[]; nestedType: MessageProto[]; options?: { mapEntry?: boolean } }
interface FileProto { messageType: MessageProto[] }
const { FileDescriptorProto } = require('protobufjs/ext/descriptor') as {
  FileDescriptorProto: { decode(bytes: Uint8Array): FileProto; encode(message: FileProto): { finish(): Uint8Array } };
};

/** protoc's map entry name: "price_tiers" -> "PriceTiersEntry". */
export function map_entry_name(field_name: string): string {
  const camel = field_name.replace(/_+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
  return camel.charAt(0).toUpperCase() + camel.slice(1) + 'Entry';
}

function fix_message(message: MessageProto): void {
  for (const field of message.field) {
    const last = field.typeName?.split('.').pop();
    const entry = message.nestedType.find((n) => n.name === last && n.options?.mapEntry === true);
    if (entry === undefined) continue;
    const name = map_entry_name(field.name);
    field.typeName = field.typeName.slice(0, field.typeName.length - last!.length) + name;
    entry.name = name;
  }
  for (const nested of message.nestedType) fix_message(nested);
}

export function canonical_map_entries(definition: PackageDefinition): PackageDefinition {
  const fixed = new Map<Buffer, Buffer>();
  const out: PackageDefinition = {};
  for (const [name, value] of Object.entries(definition)) {
    const files = (value as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    if (files === undefined) {
      out[name] = value;
      continue;
    }
    const renamed = files.map((bytes) => {
      let result = fixed.get(bytes);
      if (result === undefined) {
        const file = FileDescriptorProto.decode(bytes);
        for (const message of file.messageType) fix_message(message);
        result = Buffer.from(FileDescriptorProto.encode(file).finish());
        fixed.set(bytes, result);
      }
      return result;
    });
    assert(renamed.length === files.length, 'one descriptor per file');
    out[name] = { ...value, fileDescriptorProtos: renamed } as PackageDefinition[string];
  }
  return out;
}
