// Load generator, run as its own process: `node dist/bench/loadgen.js '<LoadSpec JSON>'`.
// Prints one LoadResult JSON line on stdout. Closed loop (C calls in flight), open loop (fixed
// arrival rate; latency measured from each op's intended start, so a stalled server is not
// hidden by the generator waiting for it) or a fixed number of ops (filling state).
import * as grpc from '@grpc/grpc-js';
import { performance } from 'node:perf_hooks';
import {
  catalog_proto, client_ctor, inventory_proto, load_protos, rng, seat_id, seats_of, summarize,
  type LoadResult, type LoadSpec,
} from './common.js';

interface Outcome { ok: boolean; error?: string; reserve_ms: number; release_ms: number }

type Callback = (error: grpc.ServiceError | null, reply: any) => void;
type UnaryMethod = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback) => void;

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  const root = load_protos([inventory_proto]);
  const Inventory = client_ctor(root, 'ticketing.inventory.v1.InventoryService');
  const targets = spec.targets ?? [spec.target];
  const insecure = grpc.credentials.createInsecure();
  const clients = targets.map((target) => new Inventory(target, insecure));
  const ready = (client: grpc.Client) => new Promise<void>((resolve, reject) =>
    client.waitForReady(Date.now() + 10_000, (e) => (e ? reject(e) : resolve())));
  await Promise.all(clients.map(ready));
  const method = (client: grpc.Client, name: string) =>
    (client as unknown as Record<string, UnaryMethod>)[name]!.bind(client);
  const reserves = clients.map((client) => method(client, 'ReserveTickets'));
  const releases = clients.map((client) => method(client, 'ReleaseHold'));
  const Catalog = client_ctor(load_protos([catalog_proto]), 'ticketing.catalog.v1.CatalogService');
  const catalogs = spec.op === 'get_event' ? targets.map((t) => new Catalog(t, insecure)) : [];
  const get_events = catalogs.map((client) => method(client, 'GetEvent'));
  const metadata = new grpc.Metadata();
  if (spec.token !== null) metadata.set('authorization', `Bearer ${spec.token}`);

  const random = rng(spec.seed);
  const seat_count = seats_of(spec.layout);
  const E = spec.event_ids.length;
  // Per-event rotating seat cursor, random start: an op's seats are reused only after the
  // cursor wraps the whole event, so concurrent ops of this generator never collide.
  const cursors = spec.event_ids.map(() => Math.floor(random() * seat_count));
  let op_no = 0;

  function next_request(): { event_id: string; seat_ids: string[]; hold_ttl_seconds: string; user_id: string } {
    const k = op_no++;
    const seat_ids: string[] = [];
    let e: number;
    if (spec.seat_pick === 'sequential') {
      e = k % E;
      seat_ids.push(seat_id(spec.layout, Math.floor(k / E) % seat_count));
    } else {
      e = Math.floor(random() * E);
      const count = spec.seats_min + Math.floor(random() * (spec.seats_max - spec.seats_min + 1));
      for (let i = 0; i < count; i++) {
        const index = cursors[e]!;
        cursors[e] = (index + 1) % seat_count;
        seat_ids.push(seat_id(spec.layout, index));
      }
    }
    return { event_id: spec.event_ids[e]!, seat_ids, hold_ttl_seconds: String(spec.hold_ttl_seconds), user_id: `${spec.user_prefix}${k % spec.user_count}` };
  }

  function call(method: UnaryMethod, request: unknown): Promise<{ error: grpc.ServiceError | null; reply: any }> {
    return new Promise((resolve) => {
      method(request, metadata, { deadline: Date.now() + spec.deadline_ms }, (error, reply) => resolve({ error, reply }));
    });
  }

  async function op(): Promise<Outcome> {
    // The node of op k (before next_request counts it): its reserve and its release go there.
    const node = op_no % clients.length;
    const reserve = reserves[node]!;
    const release = releases[node]!;
    const t0 = performance.now();
    if (spec.op === 'get_event') {
      const g = await call(get_events[node]!, { event_id: next_request().event_id });
      const ms = performance.now() - t0;
      if (g.error !== null) {
        const code = grpc.status[g.error.code] ?? g.error.code;
        return { ok: false, error: `GetEvent:${code}`, reserve_ms: ms, release_ms: 0 };
      }
      return { ok: true, reserve_ms: ms, release_ms: 0 };
    }
    const r = await call(reserve, next_request());
    const t1 = performance.now();
    if (r.error !== null) return { ok: false, error: `ReserveTickets:${grpc.status[r.error.code] ?? r.error.code}`, reserve_ms: t1 - t0, release_ms: 0 };
    if (spec.op === 'reserve') return { ok: true, reserve_ms: t1 - t0, release_ms: 0 };
    const hold_id = (r.reply as { hold_id: string }).hold_id;
    const x = await call(release, { hold_id });
    const t2 = performance.now();
    if (x.error !== null) return { ok: false, error: `ReleaseHold:${grpc.status[x.error.code] ?? x.error.code}`, reserve_ms: t1 - t0, release_ms: t2 - t1 };
    if ((x.reply as { released: boolean }).released !== true) return { ok: false, error: 'ReleaseHold:released=false', reserve_ms: t1 - t0, release_ms: t2 - t1 };
    return { ok: true, reserve_ms: t1 - t0, release_ms: t2 - t1 };
  }

  const latencies: number[] = [];
  const reserve_lat: number[] = [];
  const release_lat: number[] = [];
  const errors: Record<string, number> = {};
  let error_count = 0;
  let ok_total = 0;
  const record = (o: Outcome, latency_ms: number): void => {
    if (o.ok) {
      latencies.push(latency_ms);
      reserve_lat.push(o.reserve_ms);
      if (spec.op === 'reserve_release') release_lat.push(o.release_ms);
    } else {
      errors[o.error!] = (errors[o.error!] ?? 0) + 1;
      error_count++;
    }
  };

  const cpu0 = process.cpuUsage();
  const t_start = performance.now();
  const measure_from = t_start + spec.warmup_s * 1000;
  const end = measure_from + spec.duration_s * 1000;
  let window_s = spec.duration_s;

  if (spec.mode === 'closed') {
    // Throughput counts ops that completed inside [measure_from, end].
    await Promise.all(Array.from({ length: spec.concurrency }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const o = await op();
        const t1 = performance.now();
        if (o.ok) ok_total++;
        if (t1 >= measure_from && t1 <= end) record(o, t1 - t0);
      }
    }));
  } else if (spec.mode === 'count') {
    await Promise.all(Array.from({ length: spec.concurrency }, async () => {
      while (op_no < spec.total_ops) {
        const t0 = performance.now();
        const o = await op();
        if (o.ok) ok_total++;
        record(o, performance.now() - t0);
      }
    }));
    window_s = (performance.now() - t_start) / 1000;
  } else {
    // Open loop: op i is due at t_start + i/rate; ops due in the warmup are not recorded.
    const interval_ms = 1000 / spec.rate;
    const total = Math.floor((spec.warmup_s + spec.duration_s) * spec.rate);
    let issued = 0;
    let in_flight = 0;
    await new Promise<void>((resolve) => {
      const finish_if_done = () => {
        if (issued >= total && in_flight === 0) resolve();
      };
      const tick = (): void => {
        const now = performance.now();
        while (issued < total && t_start + issued * interval_ms <= now) {
          const intended = t_start + issued * interval_ms;
          issued++;
          const measured = intended >= measure_from;
          if (in_flight >= spec.max_in_flight) {
            if (measured) record({ ok: false, error: 'client:SHED', reserve_ms: 0, release_ms: 0 }, 0);
            continue;
          }
          in_flight++;
          void op().then((o) => {
            in_flight--;
            if (o.ok) ok_total++;
            if (measured) record(o, performance.now() - intended);
            finish_if_done();
          });
        }
        if (issued < total) setTimeout(tick, Math.max(0, t_start + issued * interval_ms - performance.now()));
        else finish_if_done();
      };
      tick();
    });
  }

  const elapsed_ms = performance.now() - t_start;
  const cpu = process.cpuUsage(cpu0);
  for (const client of [...clients, ...catalogs]) client.close();
  const calls_per_op = spec.op === 'reserve_release' ? 2 : 1;
  const result: LoadResult = {
    label: spec.label,
    mode: spec.mode,
    window_s,
    ok_ops: latencies.length,
    ok_ops_total: ok_total,
    ops_per_s: latencies.length / window_s,
    calls_per_s: (latencies.length * calls_per_op) / window_s,
    latency: summarize(latencies),
    reserve: summarize(reserve_lat),
    release: summarize(release_lat),
    errors,
    error_count,
    loadgen_cpu: (cpu.user + cpu.system) / 1000 / elapsed_ms,
    elapsed_s: elapsed_ms / 1000,
  };
  if (spec.return_latencies) result.latencies_ms = latencies.map((x) => Math.round(x * 1000) / 1000);
  process.stdout.write(JSON.stringify(result) + '\n', () => process.exit(0));
}

main().catch((error: unknown) => {
  process.stderr.write(`loadgen: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
  process.exit(1);
});
