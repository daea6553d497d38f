// Purchase load generator, run as its own process: `node dist/bench/purchase_gen.js '<PurchaseSpec JSON>'`
// with TICKETING_AUTH_SECRET in the environment, to sign one customer token per simulated user
// (a customer may act only for its own user_id). Closed loop: `concurrency` ops in flight. An op
// is one RPC of the purchase, or the whole purchase for a fresh user. Each user buys once, so
// the per-user rate limit and the per-user velocity fraud rules never fire.
// Prints one PurchaseResult JSON line on stdout; the advanced orders go to `orders_out`.
import * as grpc from '@grpc/grpc-js';
import { createHmac } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import {
  client_ctor, load_protos, purchase_protos, seat_id, seats_of,
  type BenchOrder, type PurchaseResult, type PurchaseSpec,
} from './common.js';

type Callback = (error: grpc.ServiceError | null, reply: any) => void;
type UnaryMethod = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback) => void;

/** A failed call: `Method:CODE`, or `Method:STATUS` when the reply says the step did not happen. */
class StepFailed extends Error {}

const spec = JSON.parse(process.argv[2] ?? '') as PurchaseSpec;
const secret = process.env['TICKETING_AUTH_SECRET'] ?? '';

// The server's token format (src/auth/token.ts): compact JWS, HS256, {sub, role, iat, exp}.
const b64url = (s: string) => Buffer.from(s).toString('base64url');
const token_header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
const tokens = new Map<string, string>();
function customer_token(user_id: string): string {
  let token = tokens.get(user_id);
  if (token === undefined) {
    const iat = Math.floor(Date.now() / 1000);
    const payload = b64url(JSON.stringify({ sub: user_id, role: 'customer', iat, exp: iat + 3600 }));
    token = `${token_header}.${payload}.${createHmac('sha256', secret).update(`${token_header}.${payload}`).digest('base64url')}`;
    tokens.set(user_id, token);
  }
  return token;
}

function bearer(token: string): grpc.Metadata {
  const metadata = new grpc.Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

async function main(): Promise<void> {
  if (secret === '') throw new Error('TICKETING_AUTH_SECRET is not set');
  const root = load_protos(purchase_protos);
  // One client per service; grpc-js shares one connection between clients of the same target.
  const clients = ['ticketing.order.v1.OrderService', 'ticketing.fraud.v1.FraudService', 'ticketing.payment.v1.PaymentService']
    .map((path) => new (client_ctor(root, path))(spec.target, grpc.credentials.createInsecure()));
  await Promise.all(clients.map((c) => new Promise<void>((resolve, reject) => c.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())))));
  const method = (c: number, name: string) => (clients[c] as unknown as Record<string, UnaryMethod>)[name]!.bind(clients[c]);
  const rpc = {
    CreateDraft: method(0, 'CreateDraft'), ConfirmOrder: method(0, 'ConfirmOrder'),
    ScoreTransaction: method(1, 'ScoreTransaction'), Authorize: method(2, 'Authorize'),
  };
  const service_md = bearer(spec.service_token);
  const seat_count = seats_of(spec.layout);

  /** Times one call into `lat`; throws StepFailed unless it answered OK with `ok(reply)`. */
  function call(name: keyof typeof rpc, request: unknown, metadata: grpc.Metadata, lat: Record<string, number>, ok: (reply: any) => string | true): Promise<any> {
    const t0 = performance.now();
    return new Promise((resolve, reject) => {
      rpc[name](request, metadata, { deadline: Date.now() + spec.deadline_ms }, (error, reply) => {
        lat[name] = performance.now() - t0;
        if (error !== null) return reject(new StepFailed(`${name}:${grpc.status[error.code] ?? error.code}`));
        const verdict = ok(reply);
        if (verdict !== true) return reject(new StepFailed(`${name}:${verdict}`));
        resolve(reply);
      });
    });
  }

  const steps = {
    async draft(i: number, lat: Record<string, number>): Promise<BenchOrder> {
      const user_id = `buyer-${i}`;
      const request = { user_id, event_id: spec.event_id, seat_ids: [seat_id(spec.layout, i % seat_count)], promo_code: '', idempotency_key: '' };
      const r = await call('CreateDraft', request, bearer(customer_token(user_id)), lat, (o) => o.status === 'DRAFT' || o.status);
      return { i, user_id, order_id: r.id, total: r.total, payment_id: '' };
    },
    async score(o: BenchOrder, lat: Record<string, number>): Promise<BenchOrder> {
      // The buyer's own ip and device, as the order service would pass them: shared ones would
      // trip the per-ip and per-device velocity rules, which is not what this measures.
      const ip = `10.${(o.i >> 16) & 255}.${(o.i >> 8) & 255}.${o.i & 255}`;
      await call('ScoreTransaction', { order_id: o.order_id, user_id: o.user_id, ip, device_id: `dev-${o.i}` }, service_md, lat, (s) => s.decision === 'APPROVE' || s.decision);
      return o;
    },
    async authorize(o: BenchOrder, lat: Record<string, number>): Promise<BenchOrder> {
      const r = await call('Authorize', { order_id: o.order_id, amount: o.total, payment_token: 'tok_visa' }, bearer(customer_token(o.user_id)), lat, (a) => a.status === 'AUTHORIZED' || a.status);
      return { ...o, payment_id: r.payment_id };
    },
    async confirm(o: BenchOrder, lat: Record<string, number>): Promise<BenchOrder> {
      await call('ConfirmOrder', { order_id: o.order_id, payment_id: o.payment_id }, bearer(customer_token(o.user_id)), lat, (x) => x.status === 'CONFIRMED' || x.status);
      return o;
    },
  };

  const input = spec.orders_in === null ? null : (JSON.parse(readFileSync(spec.orders_in, 'utf8')) as BenchOrder[]);
  if (input !== null && input.length === 0) throw new Error(`${spec.label}: no orders to work on`);
  const available = input === null ? spec.index_end - spec.first_index : spec.cycle ? Infinity : input.length;
  async function op(k: number, lat: Record<string, number>): Promise<BenchOrder> {
    switch (spec.step) {
      case 'draft':
        return steps.draft(spec.first_index + k, lat);
      case 'purchase':
        return steps.confirm(await steps.authorize(await steps.score(await steps.draft(spec.first_index + k, lat), lat), lat), lat);
      default:
        return steps[spec.step](input![k % input!.length]!, lat);
    }
  }

  const latencies: Record<string, number[]> = {};
  const errors: Record<string, number> = {};
  const out: BenchOrder[] = [];
  let error_count = 0;
  let ok_total = 0;
  let taken = 0;
  const cpu0 = process.cpuUsage();
  const t_start = performance.now();
  const measure_from = t_start + spec.warmup_s * 1000;
  const end = measure_from + spec.duration_s * 1000;
  // When the input runs out the window closes at once: until then all `concurrency` loops were busy.
  let window_end = end;
  await Promise.all(Array.from({ length: spec.concurrency }, async () => {
    while (performance.now() < end) {
      if (taken >= available) {
        window_end = Math.min(window_end, performance.now());
        break;
      }
      const lat: Record<string, number> = {};
      const t0 = performance.now();
      let failure: string | undefined;
      try {
        const advanced = await op(taken++, lat);
        if (spec.orders_out !== null) out.push(advanced);
        ok_total++;
      } catch (error) {
        if (!(error instanceof StepFailed)) throw error;
        failure = error.message;
      }
      const t1 = performance.now();
      if (t1 < measure_from || t1 > window_end) continue;
      if (failure !== undefined) {
        errors[failure] = (errors[failure] ?? 0) + 1;
        error_count++;
        continue;
      }
      lat['op'] = t1 - t0;
      for (const [name, ms] of Object.entries(lat)) (latencies[name] ??= []).push(Math.round(ms * 1000) / 1000);
    }
  }));
  const elapsed_ms = performance.now() - t_start;
  const cpu = process.cpuUsage(cpu0);
  for (const c of clients) c.close();
  if (spec.orders_out !== null) writeFileSync(spec.orders_out, JSON.stringify(out));
  const window_s = Math.max(0, (window_end - measure_from) / 1000);
  const ok_ops = latencies['op']?.length ?? 0;
  const result: PurchaseResult = {
    label: spec.label,
    step: spec.step,
    window_s,
    exhausted: window_end < end,
    ok_ops,
    ok_ops_total: ok_total,
    ops_per_s: window_s > 0 ? ok_ops / window_s : NaN,
    consumed: taken,
    latencies_ms: latencies,
    errors,
    error_count,
    loadgen_cpu: (cpu.user + cpu.system) / 1000 / elapsed_ms,
    elapsed_s: elapsed_ms / 1000,
  };
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

main().catch((error: unknown) => {
  process.stderr.write(`purchase_gen: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
