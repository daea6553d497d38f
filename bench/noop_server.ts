// Reference server for the throughput ratio: ticketing.inventory.v1.InventoryService on grpc-js
// doing no work at all (no auth, no routing, no storage). Own process. Prints one JSON line
// {"msg":"serving","grpc":"127.0.0.1:PORT"} once bound. Usage: node dist/bench/noop_server.js [HOST:PORT]
import * as grpc from '@grpc/grpc-js';
import { inventory_proto, load_protos, service_def } from './common.js';

const root = load_protos([inventory_proto]);
// Same transport limits as the real server (src/grpc/server.ts), so only the work differs.
const server = new grpc.Server({
  'grpc.max_receive_message_length': 256 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
});
const hold_id = 'hold-00-noopnoopnoopnoopnoop';
server.addService(service_def(root, 'ticketing.inventory.v1.InventoryService'), {
  ReserveTickets: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    callback(null, { hold_id, expires_at_unix: '1811836800' });
  },
  ReleaseHold: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    callback(null, { released: true });
  },
  ConfirmAllocation: (_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
    callback(null, { confirmed: true });
  },
});

const addr = process.argv[2] ?? '127.0.0.1:0';
server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    process.stderr.write(`noop_server: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({ msg: 'serving', grpc: `127.0.0.1:${port}` }) + '\n');
});
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.forceShutdown();
    process.exit(0);
  });
}
