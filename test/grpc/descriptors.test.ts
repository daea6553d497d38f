import { createRequire } from 'node:module';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { canonical_map_entries, map_entry_name } from '../../src/grpc/descriptors.js';
import { load_definitions } from '../../src/grpc/proto.js';

const require = createRequire(import.meta.url);
const { FileDescriptorProto } = require('protobufjs/ext/descriptor');

test('map_entry_name follows protoc', () => {
  assert.is(map_entry_name('price_tiers'), 'PriceTiersEntry');
  assert.is(map_entry_name('statuses'), 'StatusesEntry');
  assert.is(map_entry_name('a_b_c'), 'ABCEntry');
  assert.is(map_entry_name('x2_y'), 'X2YEntry');
});

test('reflection descriptors name map entries as protoc does; other names untouched', () => {
  const { definition } = load_definitions();
  const fixed = canonical_map_entries(definition);
  const files = (fixed['ticketing.catalog.v1.Event'] as { fileDescriptorProtos: Buffer[] }).fileDescriptorProtos;
  const catalog = files.map((b) => FileDescriptorProto.decode(b)).find((f: { package: string }) => f.package === 'ticketing.catalog.v1');
  const event = catalog.messageType.find((m: { name: string }) => m.name === 'Event');
  const entry = event.nestedType.find((n: { options?: { mapEntry?: boolean } }) => n.options?.mapEntry === true);
  assert.is(entry.name, 'PriceTiersEntry');
  const field = event.field.find((f: { name: string }) => f.name === 'price_tiers');
  assert.is(field.typeName, '.ticketing.catalog.v1.Event.PriceTiersEntry');
  assert.is(field.number, 5, 'field numbers unchanged');
});

test('every type name is fully qualified and defined in the file or one it declares as a dependency', () => {
  const { definition } = load_definitions();
  const fixed = canonical_map_entries(definition);
  const files = new Map<string, any>();
  for (const value of Object.values(fixed)) {
    for (const b of (value as { fileDescriptorProtos?: Buffer[] }).fileDescriptorProtos ?? []) {
      const f = FileDescriptorProto.decode(b);
      files.set(f.name, f);
    }
  }
  const defined = (file: any): Set<string> => {
    const names = new Set<string>();
    const visit = (scope: string, m: any): void => {
      names.add(`${scope}.${m.name}`);
      for (const n of m.nestedType) visit(`${scope}.${m.name}`, n);
    };
    for (const m of file.messageType) visit(`.${file.package}`, m);
    for (const e of file.enumType ?? []) names.add(`.${file.package}.${e.name}`);
    return names;
  };
  let checked = 0;
  for (const file of files.values()) {
    const visible = new Set([...defined(file), ...file.dependency.flatMap((d: string) => [...defined(files.get(d))])]);
    const check = (type_name: string, where: string): void => {
      assert.ok(type_name.startsWith('.'), `${where}: ${type_name} is fully qualified`);
      assert.ok(visible.has(type_name), `${where}: ${type_name} is visible from ${file.name}`);
      checked++;
    };
    const visit = (m: any): void => {
      for (const f of m.field) if (f.typeName) check(f.typeName, `${file.name} ${m.name}.${f.name}`);
      for (const n of m.nestedType) visit(n);
    };
    for (const m of file.messageType) visit(m);
    for (const s of file.service ?? []) for (const method of s.method) {
      check(method.inputType, `${file.name} ${s.name}.${method.name}`);
      check(method.outputType, `${file.name} ${s.name}.${method.name}`);
    }
  }
  assert.ok(checked > 40, `type references checked: ${checked}`);
  const order = [...files.values()].find((f) => f.package === 'ticketing.order.v1');
  assert.ok(order.dependency.some((d: string) => files.get(d).package === 'ticketing.common.v1'), 'order imports common (Money)');
});

test.run();
