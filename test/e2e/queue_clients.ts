// Clients of the waiting room for end-to-end tests: QueueService and the hold RPCs, generated
// from the protos as an outside client would, with per-call metadata (admission-token).
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { join } from 'node:path';
import { repo_root } from './harness.js';

const definition = loader.loadSync(
  [
    'ticketing/queue/v1/queue.proto', 'ticketing/inventory/v1/inventory.proto',
    'ticketing/inventory/v1/seat_selection.proto', 'ticketing/order/v1/order.proto',
    'ticketing/catalog/v1/catalog.proto', 'ticketing/testing/v1/test_clock.proto',
  ],
  { keepCase: true, longs: String, enums: String, defaults: true, includeDirs: [join(repo_root, 'proto')] },
);
const root = grpc.loadPackageDefinition(definition);

function ctor(path: string): grpc.ServiceClientConstructor {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  return node as grpc.ServiceClientConstructor;
}

export type Reply = Record<string, unknown>;
export type Call = (request: unknown, bearer?: string, extra?: Record<string, string>) => Promise<Reply>;

function caller(client: grpc.Client, method: string): Call {
  const fn = (client as unknown as Record<string, Function>)[method];
  if (fn === undefined) throw new Error(`no method ${method}`);
  return (request, bearer, extra = {}) => new Promise((resolve, reject) => {
    const metadata = new grpc.Metadata();
    if (bearer !== undefined) metadata.set('authorization', `Bearer ${bearer}`);
    for (const [key, value] of Object.entries(extra)) metadata.set(key, value);
    fn.call(client, request, metadata, { deadline: Date.now() + 60_000 },
      (error: grpc.ServiceError | null, reply: Reply) => (error ? reject(error) : resolve(reply)));
  });
}

export interface QueueClients {
  configure: Call; set_rate: Call; close_queue: Call; join: Call; position: Call; fairness: Call;
  /** WatchPosition: collects messages until the stream ends (or `stop_after` messages, or
   *  `cancel_on` settles: then the client cancels). */
  watch(request: unknown, bearer: string, stop_after?: number, cancel_on?: Promise<unknown>): Promise<{ messages: Reply[]; code: number; details: string }>;
  reserve: Call; confirm: Call; create_draft: Call; best: Call; ga: Call;
  create_event: Call; availability: Call; advance: Call;
  close(): void;
}

export function queue_clients(port: number): QueueClients {
  const address = `127.0.0.1:${port}`;
  const creds = grpc.credentials.createInsecure();
  const make = (path: string) => new (ctor(path))(address, creds);
  const queue = make('ticketing.queue.v1.QueueService');
  const inventory = make('ticketing.inventory.v1.InventoryService');
  const selection = make('ticketing.inventory.v1.SeatSelectionService');
  const order = make('ticketing.order.v1.OrderService');
  const catalog = make('ticketing.catalog.v1.CatalogService');
  const clock = make('ticketing.testing.v1.TestClockService');
  const watch_fn = (queue as unknown as Record<string, Function>)['WatchPosition']!;
  return {
    configure: caller(queue, 'ConfigureQueue'), set_rate: caller(queue, 'SetAdmissionRate'),
    close_queue: caller(queue, 'CloseQueue'), join: caller(queue, 'Join'),
    position: caller(queue, 'GetPosition'), fairness: caller(queue, 'GetFairness'),
    watch: (request, bearer, stop_after, cancel_on) => new Promise((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', `Bearer ${bearer}`);
      const stream = watch_fn.call(queue, request, metadata) as grpc.ClientReadableStream<Reply>;
      const messages: Reply[] = [];
      stream.on('data', (m: Reply) => {
        messages.push(m);
        if (stop_after !== undefined && messages.length >= stop_after) stream.cancel();
      });
      stream.on('error', (e: grpc.ServiceError) => resolve({ messages, code: e.code, details: e.details }));
      stream.on('end', () => resolve({ messages, code: grpc.status.OK, details: '' }));
      cancel_on?.finally(() => stream.cancel());
    }),
    reserve: caller(inventory, 'ReserveTickets'), confirm: caller(inventory, 'ConfirmAllocation'),
    create_draft: caller(order, 'CreateDraft'), best: caller(selection, 'ReserveBestAvailable'),
    ga: caller(selection, 'ReserveGeneralAdmission'),
    create_event: caller(catalog, 'CreateEvent'), availability: caller(catalog, 'GetAvailability'),
    advance: caller(clock, 'Advance'),
    close() {
      for (const c of [queue, inventory, selection, order, catalog, clock]) c.close();
    },
  };
}

/** `count` calls of `call(i)`, `concurrency` at a time; results in index order. */
export async function each<T>(count: number, concurrency: number, call: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(count);
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) {
      const i = next++;
      out[i] = await call(i);
    }
  }));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Fairness, recomputed by an outsider from GetFairness and the receipts (docs/contracts.md
// "Waiting room, as built"): nothing here imports the node's code.

export interface WireReceipt {
  body: string; signature: Buffer; event_id: string; ticket_id: string; seq: string;
  joined_at_unix_ms: string; user_hash: string; chain: string;
}

const sha256 = (...parts: (Buffer | string)[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** The body the chain hashes: the signed body without its last ("|<chain>") field. */
export function body_head(body: string): string {
  return body.slice(0, body.lastIndexOf('|'));
}

/** Why the receipts (every receipt of the queue, any order) do not check, or '' when they do:
 *  each signature verifies with the queue's key, each body repeats its fields, and the chain
 *  runs from sha256(commitment) through every seq without a gap. */
export function check_receipts(fairness: Reply, receipts: WireReceipt[]): string {
  const key = createPublicKey({
    key: Buffer.from(String(fairness['receipt_public_key']), 'base64'), format: 'der', type: 'spki',
  });
  const by_seq = [...receipts].sort((a, b) => Number(a.seq) - Number(b.seq));
  let chain = sha256(String(fairness['seed_commitment']));
  for (let i = 0; i < by_seq.length; i++) {
    const r = by_seq[i]!;
    if (Number(r.seq) !== i + 1) return `seq ${r.seq} where ${i + 1} was due`;
    if (!verify(null, Buffer.from(r.body), key, r.signature)) return `seq ${r.seq}: bad signature`;
    const fields = ['ticketing-queue-receipt/v1', r.event_id, r.ticket_id, r.seq,
      r.joined_at_unix_ms, r.user_hash, r.chain].join('|');
    if (fields !== r.body) return `seq ${r.seq}: body does not repeat its fields`;
    chain = sha256(chain, body_head(r.body));
    if (chain.toString('hex') !== r.chain) return `seq ${r.seq}: chain broken`;
  }
  return '';
}

/** Every early joiner's position (seq → position) from the revealed seed, as the scheme says. */
export function early_positions(fairness: Reply): Map<number, number> {
  const seed = Buffer.from(String(fairness['seed']), 'hex');
  const head = Buffer.from(String(fairness['early_chain_head']), 'hex');
  const early = Number(fairness['early_count']);
  const keys: { seq: number; key: Buffer }[] = [];
  for (let s = 1; s <= early; s++) {
    const n = Buffer.alloc(8);
    n.writeBigUInt64BE(BigInt(s));
    keys.push({ seq: s, key: sha256(seed, head, n) });
  }
  keys.sort((a, b) => Buffer.compare(a.key, b.key) || a.seq - b.seq);
  return new Map(keys.map((k, i) => [k.seq, i + 1]));
}
