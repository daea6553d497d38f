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
  // protobufjs writes the type name relative to the message; it must name the renamed entry.
  assert.ok(['PriceTiersEntry', '.ticketing.catalog.v1.Event.PriceTiersEntry'].includes(field.typeName), field.typeName);
  assert.is(field.number, 5, 'field numbers unchanged');
  // The seed's messages have no maps: their descriptors come out byte-identical.
  const before = (definition['ticketing.inventory.v1.ReserveTicketsRequest'] as { fileDescriptorProtos: Buffer[] }).fileDescriptorProtos;
  const after = (fixed['ticketing.inventory.v1.ReserveTicketsRequest'] as { fileDescriptorProtos: Buffer[] }).fileDescriptorProtos;
  const inventory = (files: Buffer[]) => files.find((b) => FileDescriptorProto.decode(b).package === 'ticketing.inventory.v1')!;
  assert.ok(Buffer.compare(inventory(before), inventory(after)) === 0);
});

test.run();
