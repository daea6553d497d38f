// Reference server for the throughput ratios: the RPCs the bench drives (InventoryService,
// OrderService, FraudService, PaymentService) on grpc-js doing no work at all (no auth, no
// routing, no storage): each answers a canned reply of the right shape, with ids as long as
// ours. Own process. Prints one JSON line {"msg":"serving","grpc":"127.0.0.1:PORT"} once bound.
// Usage: node dist/bench/noop_server.js [HOST:PORT]
import * as grpc from '@grpc/grpc-js';
import { inventory_proto, load_protos, purchase_protos, service_def } from './common.js';

const root = load_protos([inventory_proto, ...purchase_protos]);
// Same transport limits as the real server (src/grpc/edge.ts), so only the work differs.
const server = new grpc.Server({
  'grpc.max_receive_message_length': 256 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
});

type Handler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;
const canned = (reply: unknown): Handler => (_call, callback) => callback(null, reply);

const hold_id = 'hold-00-noopnoopnoopnoopnoop';
const random = 'noopnoopnoopnoopnoopno'; // 22 chars, like the base64url of our ids' 16 random bytes
const order_id = `order_00_${random}`;
const payment_id = `pay_00_${random}`;
const unix = '1811836800';
const order = (status: string) => ({ id: order_id, status, created_at_unix: unix, updated_at_unix: unix, total: { amount_micros: '50000000', currency: 'EUR' } });

server.addService(service_def(root, 'ticketing.inventory.v1.InventoryService'), {
  ReserveTickets: canned({ hold_id, expires_at_unix: unix }),
  ReleaseHold: canned({ released: true }),
  ConfirmAllocation: canned({ confirmed: true }),
});
server.addService(service_def(root, 'ticketing.order.v1.OrderService'), {
  CreateDraft: canned(order('DRAFT')),
  ConfirmOrder: canned(order('CONFIRMED')),
});
server.addService(service_def(root, 'ticketing.fraud.v1.FraudService'), {
  ScoreTransaction: canned({ risk_score: 0, decision: 'APPROVE' }),
});
server.addService(service_def(root, 'ticketing.payment.v1.PaymentService'), {
  Authorize: canned({ payment_id, status: 'AUTHORIZED', authorized_at_unix: unix }),
  Capture: canned({ payment_id, status: 'CAPTURED' }),
  Refund: canned({ refund_id: `refund_00_${random}`, status: 'REFUNDED' }),
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
