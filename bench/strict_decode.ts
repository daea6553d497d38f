// `node dist/bench/strict_decode.js`: the cost of the strict wire check per request (µs), beside
// the cost of the decode it guards (proto-loader's deserializer: protobufjs decode + toObject).
// Single-threaded, in-process; each figure is the median of 5 rounds of 200,000 calls.
import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import protobuf from 'protobufjs';
import { load_definitions, proto_files, proto_root } from '../src/grpc/proto.js';
import { check_message, plan_of } from '../src/grpc/strict_decode.js';
import { MalformedRequest, strict_service } from '../src/grpc/strict_service.js';

const { definition } = load_definitions();
const service = (name: string) => definition[name] as unknown as grpc.ServiceDefinition;
const inventory = service('ticketing.inventory.v1.InventoryService');
const catalog = service('ticketing.catalog.v1.CatalogService');
const strict_inventory = strict_service(inventory, () => {});
const strict_catalog = strict_service(catalog, () => {});

const reserve = inventory['ReserveTickets']!.requestSerialize({ event_id: 'evt-arena-2027-06-01', seat_ids: ['101-A-1', '101-A-2', '101-A-3', '101-A-4'], hold_ttl_seconds: '300', user_id: 'user-1234' });
const create = catalog['CreateEvent']!.requestSerialize({ event: {
  event_id: 'evt-arena-2027-06-01', name: 'Arena, 1 June 2027', starts_at_unix: '1811836800', currency: 'EUR',
  price_tiers: { A: '89000000', B: '49000000' },
  sections: ['101', '102', '103'].map((name) => ({ name, rows: ['A', 'B', 'C'].map((row) => ({ name: row, seats: 24, tier: 'A' })) })),
  max_seats_per_user: 8, promo_codes: [{ code: 'EARLY10', percent_off: 10, max_uses: 500, valid_until_unix: '1809244800' }],
} });

function us_per_call(fn: () => unknown, calls = 200_000): number {
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const start = performance.now();
    for (let i = 0; i < calls; i++) fn();
    rounds.push(((performance.now() - start) * 1000) / calls);
  }
  return rounds.sort((a, b) => a - b)[2]!;
}

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => `${proto_root}${target}`;
root.loadSync(proto_files, { keepCase: true });
root.resolveAll();

for (const [label, bytes, plain, strict] of [
  ['ReserveTicketsRequest', reserve, inventory['ReserveTickets']!, strict_inventory['ReserveTickets']!],
  ['CreateEventRequest', create, catalog['CreateEvent']!, strict_catalog['CreateEvent']!],
] as const) {
  if (strict.requestDeserialize(bytes) instanceof MalformedRequest) throw new Error(`${label}: the sample is refused`);
  const plan = plan_of(root.lookupType(label));
  const check = us_per_call(() => check_message(bytes, plan));
  const decode = us_per_call(() => plain.requestDeserialize(bytes));
  const both = us_per_call(() => strict.requestDeserialize(bytes));
  console.log(`${label} (${bytes.length} bytes): check ${check.toFixed(2)} µs; decode ${decode.toFixed(2)} µs; the server's deserializer (check + decode) ${both.toFixed(2)} µs`);
}
