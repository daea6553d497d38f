// Descriptors for server reflection, made acceptable to strict clients (grpcurl, protobuf-go).
// Two things protobufjs (under @grpc/proto-loader) writes differently from protoc:
// - a map field's implicit entry message is named after the field as written ("Price_tiers"),
//   while protoc and the validation in current grpcurl require CamelCase(field) + "Entry"
//   ("PriceTiersEntry"); without the rename grpcurl refuses every service whose file has a map
//   field (grpcurl#519);
// - type names are relative ("common.v1.Money") and files declare no imports, so a client that
//   builds a registry file by file cannot resolve a type from another package: grpcurl refused
//   OrderService and PaymentService ("cannot resolve type *.common.v1.Money"). Every type name
//   is made fully qualified and every file lists the files it uses.
// Only names change: the wire format is unaffected.
import type { PackageDefinition } from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import { assert } from '../util/assert.js';

const require = createRequire(import.meta.url);
interface FieldProto { name: string; label: number; typeName: string }
interface EnumProto { name: string }
interface MessageProto { name: string; field: FieldProto[]; nestedType: MessageProto[]; enumType?: EnumProto[]; options?: { mapEntry?: boolean } }
interface MethodProto { inputType: string; outputType: string }
interface FileProto { name: string; package: string; dependency: string[]; messageType: MessageProto[]; enumType?: EnumProto[]; service?: { method: MethodProto[] }[] }
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

/** Every message and enum of `files` by fully qualified name (".pkg.Msg.Nested") → file name. */
function symbols_of(files: FileProto[]): Map<string, string> {
  const symbols = new Map<string, string>();
  const visit = (scope: string, message: MessageProto, file: string): void => {
    const name = `${scope}.${message.name}`;
    symbols.set(name, file);
    for (const e of message.enumType ?? []) symbols.set(`${name}.${e.name}`, file);
    for (const nested of message.nestedType) visit(name, nested, file);
  };
  for (const file of files) {
    const scope = file.package === '' ? '' : `.${file.package}`;
    for (const message of file.messageType) visit(scope, message, file.name);
    for (const e of file.enumType ?? []) symbols.set(`${scope}.${e.name}`, file.name);
  }
  return symbols;
}

/** Resolves a type name as protoc does: innermost scope outwards; absolute names as they are. */
function resolve(symbols: Map<string, string>, scope: string, type_name: string): string {
  if (type_name.startsWith('.')) return type_name;
  const parts = scope.split('.').filter((p) => p !== '');
  for (let n = parts.length; n >= 0; n--) {
    const candidate = `.${[...parts.slice(0, n), type_name].join('.')}`;
    if (symbols.has(candidate)) return candidate;
  }
  throw new Error(`descriptor type ${type_name} (in ${scope}) resolves to no known message or enum`);
}

function qualify(file: FileProto, symbols: Map<string, string>): void {
  const deps = new Set<string>();
  const use = (scope: string, type_name: string): string => {
    const full = resolve(symbols, scope, type_name);
    const owner = symbols.get(full);
    if (owner !== undefined && owner !== file.name) deps.add(owner);
    return full;
  };
  const visit = (scope: string, message: MessageProto): void => {
    const name = `${scope}.${message.name}`;
    for (const field of message.field) if (field.typeName) field.typeName = use(name, field.typeName);
    for (const nested of message.nestedType) visit(name, nested);
  };
  const scope = file.package === '' ? '' : `.${file.package}`;
  for (const message of file.messageType) visit(scope, message);
  for (const service of file.service ?? []) {
    for (const method of service.method) {
      method.inputType = use(scope, method.inputType);
      method.outputType = use(scope, method.outputType);
    }
  }
  file.dependency = [...deps].sort();
  assert(!file.dependency.includes(file.name), 'a file does not import itself');
}

export function canonical_map_entries(definition: PackageDefinition): PackageDefinition {
  // Every distinct file once, across all the definition's entries (each carries its closure).
  // proto-loader shares one Buffer per file between entries: decode each Buffer once.
  const decoded = new Map<string, FileProto>();
  const name_of = new Map<Buffer, string>();
  for (const value of Object.values(definition)) {
    for (const bytes of (value as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos ?? []) {
      if (name_of.has(bytes)) continue;
      const file = FileDescriptorProto.decode(bytes);
      name_of.set(bytes, file.name);
      if (!decoded.has(file.name)) decoded.set(file.name, file);
    }
  }
  for (const file of decoded.values()) for (const message of file.messageType) fix_message(message);
  const symbols = symbols_of([...decoded.values()]);
  const encoded = new Map<string, Buffer>();
  for (const file of decoded.values()) {
    qualify(file, symbols);
    encoded.set(file.name, Buffer.from(FileDescriptorProto.encode(file).finish()));
  }
  const out: PackageDefinition = {};
  for (const [name, value] of Object.entries(definition)) {
    const files = (value as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos;
    if (files === undefined) {
      out[name] = value;
      continue;
    }
    const renamed = files.map((bytes) => encoded.get(name_of.get(bytes)!)!);
    assert(renamed.length === files.length && renamed.every((b) => b !== undefined), 'one descriptor per file');
    out[name] = { ...value, fileDescriptorProtos: renamed } as PackageDefinition[string];
  }
  return out;
}
