// Spawns a real `ticketing serve` process and talks to it over a real socket with a client
// generated from the proto files (the seed's text plus import lines).
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Test } from 'uvu';
import { load_secret, sign_token, type Role } from '../../src/auth/token.js';

export const repo_root = fileURLToPath(new URL('../../../', import.meta.url));
export const bin = join(repo_root, 'bin/ticketing.js');
export const arena_file = join(repo_root, 'test/fixtures/arena.json');
export const arena_id = 'evt-arena-2027-06-01';

const definition = loader.loadSync(
  [
    'ticketing/inventory/v1/inventory.proto', 'ticketing/catalog/v1/catalog.proto', 'ticketing/testing/v1/test_clock.proto',
    'ticketing/order/v1/order.proto', 'ticketing/order/v1/order_query.proto', 'ticketing/payment/v1/payment.proto',
    'ticketing/fraud/v1/fraud.proto',
  ],
  { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [join(repo_root, 'proto')] },
);
const root = grpc.loadPackageDefinition(definition) as any;

export interface Server {
  data_dir: string;
  grpc_port: number;
  http_port: number;
  process: ChildProcess;
  log: string[];
  exited: Promise<number | null>;
}

export function temp_dir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `ticketing-${prefix}-`));
}

/** Starts the server and resolves once it logs "serving" (or rejects with its output). */
export function start_server(data_dir: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Server> {
  const child = spawn(process.execPath, [bin, 'serve', '--data', data_dir, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, TICKETING_LOG_LEVEL: 'info', ...env },
  });
  const serving = await_serving(child, 'server');
  return serving.then((ready) => ({ data_dir, process: child, ...ready }));
}

export interface Serving {
  log: string[];
  exited: Promise<number | null>;
  grpc_port: number;
  http_port: number;
}

/** Collects a `ticketing serve` process's output and resolves on its JSON "serving" line. */
export function await_serving(child: ChildProcess, label: string): Promise<Serving> {
  const log: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let nl: number;
      while ((nl = buffer.indexOf('\n')) !== -1) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        log.push(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; grpc?: string; http?: string };
          if (entry.msg === 'serving') {
            resolve({ log, exited, grpc_port: Number(entry.grpc!.split(':').pop()), http_port: Number(entry.http!.split(':').pop()) });
          }
        } catch {
          // not JSON: keep it in the log
        }
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => log.push(chunk.toString()));
    child.once('error', reject);
    exited.then((code) => reject(new Error(`${label} exited (${code}) before serving:\n${log.join('\n')}`)));
  });
}

export async function kill9(server: Server): Promise<void> {
  server.process.kill('SIGKILL');
  await server.exited;
}

export async function stop(server: Server): Promise<number | null> {
  server.process.kill('SIGTERM');
  return server.exited;
}

export function cleanup(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export function token(data_dir: string, user_id: string, role: Role, ttl_s = 3600): string {
  return sign_token(load_secret(data_dir, process.env, false), { user_id, role }, ttl_s);
}

export function run_cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A unary call; `extra` adds metadata (e.g. { 'idempotency-key': 'k1' }). */
type Call = (request: unknown, bearer?: string, extra?: Record<string, string>) => Promise<any>;

function caller(client: grpc.Client, method: string): Call {
  return (request, bearer, extra = {}) => new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    if (bearer !== undefined) metadata.set('authorization', `Bearer ${bearer}`);
    for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
    (client as any)[method](request, metadata, (error: grpc.ServiceError | null, reply: unknown) => (error ? reject(error) : resolve(reply)));
  });
}

export interface Clients {
  reserve: Call;
  release: Call;
  confirm: Call;
  create_event: Call;
  get_event: Call;
  availability: Call;
  advance: Call;
  create_draft: Call;
  confirm_order: Call;
  authorize: Call;
  capture: Call;
  refund: Call;
  score: Call;
  get_order: Call;
  list_orders: Call;
  close(): void;
}

/** Clients for 127.0.0.1:port; plaintext unless `creds` is given (e.g. grpc.credentials.createSsl). */
export function clients(port: number, creds: grpc.ChannelCredentials = grpc.credentials.createInsecure()): Clients {
  const address = `127.0.0.1:${port}`;
  const options = { 'grpc.max_send_message_length': 8 * 1024 * 1024 };
  const inventory = new root.ticketing.inventory.v1.InventoryService(address, creds, options) as grpc.Client;
  const catalog = new root.ticketing.catalog.v1.CatalogService(address, creds, options) as grpc.Client;
  const clock = new root.ticketing.testing.v1.TestClockService(address, creds, options) as grpc.Client;
  const order = new root.ticketing.order.v1.OrderService(address, creds, options) as grpc.Client;
  const order_query = new root.ticketing.order.v1.OrderQueryService(address, creds, options) as grpc.Client;
  const payment = new root.ticketing.payment.v1.PaymentService(address, creds, options) as grpc.Client;
  const fraud = new root.ticketing.fraud.v1.FraudService(address, creds, options) as grpc.Client;
  return {
    create_draft: caller(order, 'CreateDraft'),
    confirm_order: caller(order, 'ConfirmOrder'),
    authorize: caller(payment, 'Authorize'),
    capture: caller(payment, 'Capture'),
    refund: caller(payment, 'Refund'),
    score: caller(fraud, 'ScoreTransaction'),
    get_order: caller(order_query, 'GetOrder'),
    list_orders: caller(order_query, 'ListOrders'),
    reserve: caller(inventory, 'ReserveTickets'),
    release: caller(inventory, 'ReleaseHold'),
    confirm: caller(inventory, 'ConfirmAllocation'),
    create_event: caller(catalog, 'CreateEvent'),
    get_event: caller(catalog, 'GetEvent'),
    availability: caller(catalog, 'GetAvailability'),
    advance: caller(clock, 'Advance'),
    close() {
      for (const c of [inventory, catalog, clock, order, order_query, payment, fraud]) c.close();
    },
  };
}

/** Resolves with the gRPC status of a call expected to fail. */
export async function code_of(promise: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await promise;
  } catch (error) {
    const e = error as grpc.ServiceError;
    return { code: e.code, details: e.details };
  }
  throw new Error('expected the call to fail, it succeeded');
}

export { grpc };

/**
 * uvu swallows an error thrown by a `before` hook (the suite reports 0 / N passed and exits 0),
 * so a suite's setup runs through this: the error is kept and rethrown by every test, which
 * uvu does count as failures. A failed setup fails loudly.
 */
export interface Guarded { setup_error?: unknown }
export function guarded_setup<C extends Guarded>(suite: Test<C>, setup: (ctx: C) => Promise<void> | void): void {
  suite.before(async (ctx) => {
    try {
      await setup(ctx);
    } catch (error) {
      ctx.setup_error = error ?? new Error('setup failed');
    }
  });
  suite.before.each((ctx) => {
    if (ctx.setup_error !== undefined) throw ctx.setup_error;
  });
}

/**
 * Runs `body` against a fresh server in a fresh data dir. Whatever happens, a server still
 * running afterwards is killed and the dir removed, so a failed assertion never leaves a process
 * behind (uvu would never exit). The body stops the server itself to check its exit code.
 */
export async function with_server(prefix: string, extra: string[], body: (server: Server, dir: string) => Promise<void>): Promise<void> {
  const dir = temp_dir(prefix);
  let server: Server | undefined;
  try {
    server = await start_server(dir, extra);
    await body(server, dir);
  } finally {
    if (server !== undefined && server.process.exitCode === null && server.process.signalCode === null) server.process.kill('SIGKILL');
    cleanup(dir);
  }
}
