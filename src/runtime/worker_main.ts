// Entry point of a worker thread. Loads the behaviour named in workerData, recovers its
// partitions, then serves batches. Any unexpected error ends the thread: the pool rejects what
// was in flight and starts a replacement that recovers from disk (fail-stop, never limp on).
// With a remote journal the thread starts with no partitions, opens no store and no outbox:
// the main thread adopts partitions into it, and its commits go back as 'journal' messages.
import { parentPort, workerData } from 'node:worker_threads';
import { assert } from '../util/assert.js';
import type { BehaviourModule } from './behaviour.js';
import { OffsetClock } from './clock.js';
import { error_to_wire } from './errors.js';
import { PartitionHost } from './host.js';
import { RemoteJournal } from './journal_remote.js';
import { outbox_trim_interval_ms, worker_share } from './outbox.js';
import {
  decode, encode, type AdoptWire, type FromWorker, type JournalWire, type ToWorker, type WireRequest, type WorkerConfig,
} from './protocol.js';
import { seeded_random_bytes } from './random.js';
import { is_storage_full } from './storage.js';
import { WorkerOutbox } from './worker_outbox.js';

/** How often a worker reports its figures to the main thread. */
export const stats_interval_ms = 1000;

const port = parentPort;
assert(port !== null, 'worker_main runs inside a worker thread');
const config = workerData as WorkerConfig;

type Host = PartitionHost<unknown, unknown, unknown>;

/** What the thread serves with once its partitions are recovered. */
interface Serving {
  host: Host;
  clock: OffsetClock;
  /** Local journal only: a remote worker has no outbox (the journal's writer emits). */
  outbox: WorkerOutbox<unknown> | undefined;
  /** Remote journal only. */
  remote: RemoteJournal | undefined;
  stats_timer: NodeJS.Timeout;
}

function send(message: FromWorker, transfer: ArrayBuffer[] = []): void {
  port!.postMessage(message, transfer);
}

function fatal(error: unknown): never {
  // Printed for the operator; the main thread sees the exit and fails in-flight requests.
  const text = error instanceof Error ? error.stack : String(error);
  process.stderr.write(`worker ${config.worker_index} fatal: ${text}\n`);
  process.exit(70);
}

async function main(): Promise<void> {
  const module = (await import(config.behaviour_url)) as BehaviourModule;
  const clock = new OffsetClock();
  clock.offset_ms = config.clock_offset_ms;
  let outbox: WorkerOutbox<unknown> | undefined;
  // Undefined until the stats timer runs: a storage change before that is only printed.
  let report: (() => void) | undefined;
  const remote = config.journal === 'remote' ? new RemoteJournal(send_journal) : undefined;
  const host = create_host(module, clock, () => outbox?.on_committed(), () => report?.(), remote);
  if (remote === undefined) {
    await host.recover();
    outbox = create_outbox(host);
  }
  const serving_outbox = outbox;
  report = () => report_stats(host, serving_outbox);
  const stats_timer = setInterval(report, stats_interval_ms);
  stats_timer.unref();

  const serving: Serving = { host, clock, outbox: serving_outbox, remote, stats_timer };
  port!.on('message', (message: ToWorker) => on_message(serving, message));
  send({
    tag: 'ready',
    recovered_partitions: config.partitions.length,
    replayed_records: host.recovered_records,
  });
  // A first report before any batch is served: the main thread's baseline for counters that
  // are derived from absolute figures (seats sold) is then exactly the recovered state.
  report();
}

/** The host for this worker's partitions, as workerData configures it (not yet recovered). */
function create_host(
  module: BehaviourModule,
  clock: OffsetClock,
  on_outbox_committed: () => void,
  report: () => void,
  remote_journal: RemoteJournal | undefined,
): Host {
  const random_bytes = config.random_seed === undefined
    ? undefined
    : seeded_random_bytes(config.random_seed);
  return new PartitionHost(module.behaviour, {
    partitions: config.partitions,
    data_dir: config.data_dir,
    node_id: config.node_id,
    clock,
    snapshot_every_records: config.snapshot_every_records,
    store_count: config.store_count,
    random_bytes,
    on_outbox_committed,
    store_map_bytes: config.store_map_bytes,
    storage_probe_interval_ms: config.storage_probe_interval_ms,
    on_storage_change: (message) => {
      const text = message ?? 'storage has room again: writes resume';
      process.stderr.write(`worker ${config.worker_index}: ${text}\n`);
      report(); // at once: /readyz need not wait for the next interval
    },
    remote_journal,
    // Background snapshots (compactor.ts) unless a remote journal, whose snapshots ride on its
    // commits. TICKETING_SNAPSHOT_INLINE=1 keeps the old inline snapshot: only the bench's
    // before/after comparison sets it (bench/sections/snapshot.ts).
    snapshot_behaviour_url: remote_journal !== undefined || process.env['TICKETING_SNAPSHOT_INLINE'] === '1'
      ? undefined
      : config.behaviour_url,
    on_compaction_error: (partition, error) => {
      const text = error instanceof Error ? error.message : String(error);
      process.stderr.write(`worker ${config.worker_index}: snapshot of partition ${partition} failed (kept the previous one; retried later): ${text}\n`);
    },
  }, fatal);
}

/** One commit of a remote journal to the main thread, its buffer transferred. */
function send_journal(id: number, wire: JournalWire): void {
  const bytes = encode(wire);
  send({ tag: 'journal', id, bytes }, [bytes.buffer as ArrayBuffer]);
}

/** The outbox over the recovered host's stores, trimming at this worker's share of the cap. */
function create_outbox(host: Host): WorkerOutbox<unknown> {
  const stores = host.stores();
  assert(stores.size === config.partitions.length, 'the host has recovered every partition');
  // An outbox delete or trim refused for want of space is retried later, never fatal.
  const outbox_failed = (error: unknown): void => (
    is_storage_full(error) ? host.note_storage_full(error) : fatal(error)
  );
  const outbox = new WorkerOutbox(
    stores, () => host.now_ms(), () => send({ tag: 'outbox_ready' }), outbox_failed,
  );
  if (config.outbox_cap !== null) {
    // The cap is node-wide; this worker keeps its partitions' share of it (OutboxCap).
    const share = worker_share(
      config.outbox_cap.entries_max, config.partitions.length, config.partition_count,
    );
    outbox.start_trimming({ ...config.outbox_cap, entries_max: share }, outbox_trim_interval_ms);
  }
  return outbox;
}

/** Sends the figures since the last report to the main thread, and starts counting afresh. */
function report_stats(host: Host, outbox: WorkerOutbox<unknown> | undefined): void {
  const commits = host.commits;
  host.commits = [];
  send({
    tag: 'stats',
    stats: {
      commit_durations_s: commits.map((c) => c.duration_s),
      batch_records: commits.map((c) => c.records),
      gauges: host.gauges(),
      counters: {
        ...(outbox?.drain_counters() ?? { outbox_trimmed_count: 0, outbox_trimmed_age: 0 }),
        storage_refusals: host.storage_refusals,
        ...host.drain_snapshot_counters(),
      },
      storage: host.storage_messages(),
    },
  });
  host.storage_refusals = 0;
}

function on_message(serving: Serving, message: ToWorker): void {
  const { host, clock } = serving;
  switch (message.tag) {
    case 'batch': {
      run_batch(host, decode<WireRequest[]>(message.bytes));
      break;
    }
    case 'clock': {
      assert(message.offset_ms >= clock.offset_ms, 'clock offset only moves forward');
      clock.offset_ms = message.offset_ms;
      host.run_timers().catch(fatal);
      break;
    }
    case 'outbox_read': {
      const id = message.id;
      outbox_of(serving).read(message.request).then((wire) => {
        const bytes = encode(wire);
        send({ tag: 'outbox_entries', id, bytes }, [bytes.buffer as ArrayBuffer]);
      }, fatal);
      break;
    }
    case 'outbox_ack': {
      const id = message.id;
      outbox_of(serving).ack(message.acks).then((reply) => send({ tag: 'outbox_acked', id, reply }), fatal);
      break;
    }
    case 'adopt':
      adopt(host, message.id, decode<AdoptWire>(message.bytes));
      break;
    case 'release':
      host.release(message.partition);
      send({ tag: 'released', id: message.id });
      break;
    case 'journaled': {
      const remote = serving.remote;
      assert(remote !== undefined, 'journaled answers a remote journal');
      remote.settle(message.id, message.ok ? undefined : message.error);
      break;
    }
    case 'close': {
      clearInterval(serving.stats_timer);
      const outbox_closed = serving.outbox?.close() ?? Promise.resolve();
      outbox_closed.then(() => host.close()).then(() => send({ tag: 'closed' }), fatal);
      break;
    }
  }
}

function outbox_of(serving: Serving): WorkerOutbox<unknown> {
  assert(serving.outbox !== undefined, 'outbox messages go to a worker with a local journal');
  return serving.outbox;
}

/** Restores a partition from the journal's bytes. A partition that fails to load (bad bytes,
 *  the behaviour's check) is refused, not served; the worker's other partitions go on. */
function adopt(host: Host, id: number, wire: AdoptWire): void {
  const partition = wire.partition;
  // A bug of the main thread, not a bad journal: let it stop the worker.
  assert(!host.serves(partition), `partition ${partition} adopted while served`);
  let replayed_records: number;
  try {
    replayed_records = host.adopt(wire);
  } catch (cause) {
    const error = cause instanceof Error ? cause : new Error(String(cause));
    process.stderr.write(`worker ${config.worker_index}: adopting partition ${partition}: ${error.message}\n`);
    send({ tag: 'adopted', id, partition, ok: false, error: error_to_wire(error) });
    return;
  }
  send({ tag: 'adopted', id, partition, ok: true, replayed_records });
}

/** Runs one batch; its replies go back as one transferred buffer once they are released. */
function run_batch(host: Host, requests: WireRequest[]): void {
  let released: Promise<unknown>;
  try {
    released = host.run_batch(requests);
  } catch (error) {
    fatal(error);
  }
  released.then((replies) => {
    const bytes = encode(replies);
    send({ tag: 'replies', bytes }, [bytes.buffer as ArrayBuffer]);
  }, fatal);
}

main().catch(fatal);
