// The nemesis: runs the schedule's faults one at a time against the target (nodes, brokers,
// the data filesystem, the node clocks, the gateway), and after each one measures the time until
// the target serves again: a write for node, disk and clock faults, a Kafka delivery for broker
// faults, an approved authorization for the gateway. Its probes are real calls, recorded.
import type { Broker } from '../test/kafka/broker.js';
import type { History, Call } from './history.js';
import type { Fault } from './schedule.js';
import { invoke, layout, type World } from './load.js';
import type { NodeProc, SmallFs } from './processes.js';
import { sleep } from './processes.js';
import { str } from './checker_state.js';

export const probe_event = 'evt-chaos-probe';
export const probe_layout = { sections: 20, rows: 10, seats: 25 };
/** Between probe attempts: fine enough for the figure, light on a recovering node. */
const probe_pause_ms = 200;

/** Bounds of one node's clock offset. The history gets the bounds over every node (a
 *  partition may move between nodes of different clocks): the lowest lo, the highest hi. */
export class ClockTracker {
  private static readonly group = new Map<History, ClockTracker[]>();

  constructor(
    private readonly history: History,
    public lo_ms: number,
    public hi_ms: number,
  ) {
    const group = ClockTracker.group.get(history) ?? [];
    group.push(this);
    ClockTracker.group.set(history, group);
    this.record();
  }

  record(): void {
    const group = ClockTracker.group.get(this.history) ?? [this];
    this.history.clock_step({
      at_ms: Date.now(),
      lo_ms: Math.min(...group.map((c) => c.lo_ms)),
      hi_ms: Math.max(...group.map((c) => c.hi_ms)),
    });
  }

  exact(offset_ms: number): void {
    this.lo_ms = offset_ms;
    this.hi_ms = offset_ms;
    this.record();
  }

  async advance(world: World, ms: number, node: number): Promise<Call> {
    this.hi_ms += ms;
    this.record();
    const c = await invoke(world, 'nemesis', 'admin', 'advance', { millis: String(ms) }, { node });
    if (c.result === 'ok') {
      this.lo_ms += ms;
      this.record();
    }
    return c;
  }
}

export interface Target {
  world: World;
  nodes: NodeProc[];
  clocks: ClockTracker[];
  brokers: Broker[];
  fs: SmallFs;
  /** Cluster mode: writes go through Kafka (the journal), so a write probes delivery too. */
  cluster: boolean;
  /** /metrics of a node: ticketing_kafka_records_sent_total (or NaN when it does not answer). */
  kafka_sent(node: number): Promise<number>;
}

export interface Outcome {
  lifted_ms: number;
  note: string;
}

let probe_seq = 0;
function probe_seat(): string[] {
  const n = probe_seq++;
  const per_section = probe_layout.rows * probe_layout.seats;
  const s = Math.floor(n / per_section) % probe_layout.sections;
  const rest = n % per_section;
  return [
    `S${s + 1}-R${Math.floor(rest / probe_layout.seats) + 1}-${(rest % probe_layout.seats) + 1}`,
  ];
}

/** A write reaches the node and is answered: reserve a probe seat, then release it. */
async function write_probe(t: Target, node: number): Promise<boolean> {
  const request = {
    event_id: probe_event,
    seat_ids: probe_seat(),
    hold_ttl_seconds: 30,
    user_id: 'nemesis',
  };
  const c = await invoke(t.world, 'nemesis', 'customer', 'reserve', request, { node });
  if (c.result !== 'ok') return false;
  await invoke(
    t.world,
    'nemesis',
    'customer',
    'release',
    { hold_id: str(c.reply, 'hold_id') },
    { node },
  );
  return true;
}

/** Kafka acknowledges the node's sends again: its sent counter moves past `before`. */
async function delivery_probe(t: Target, node: number, before: number): Promise<boolean> {
  if (!(await write_probe(t, node))) return false;
  if (t.cluster) return true;
  const now = await t.kafka_sent(node);
  return Number.isFinite(now) && now > before;
}

let gateway_seq = 0;
/** The gateway approves again: a probe draft authorized with tok_visa. */
async function gateway_probe(t: Target, node: number): Promise<boolean> {
  const key = `nemesis-gw-${gateway_seq++}`;
  const draft = await invoke(
    t.world,
    'nemesis',
    'customer',
    'create_draft',
    {
      user_id: 'nemesis',
      event_id: probe_event,
      seat_ids: probe_seat(),
      promo_code: '',
      idempotency_key: key,
    },
    { key, node },
  );
  if (draft.result !== 'ok') return false;
  const auth = await invoke(
    t.world,
    'nemesis',
    'customer',
    'authorize',
    {
      order_id: str(draft.reply, 'id'),
      amount: draft.reply?.['total'] ?? null,
      payment_token: 'tok_visa',
    },
    { key: `${key}-a1`, metadata_key: true, node },
  );
  return auth.result === 'ok' && str(auth.reply, 'status') === 'AUTHORIZED';
}

/** Polls `probe` from `lifted_ms` until it succeeds or the bound passes; ms, or null. */
async function recover(
  probe: () => Promise<boolean>,
  lifted_ms: number,
  bound_ms: number,
): Promise<number | null> {
  while (Date.now() - lifted_ms <= bound_ms) {
    if (await probe()) return Date.now() - lifted_ms;
    await sleep(probe_pause_ms);
  }
  return null;
}

export { layout, recover, write_probe, delivery_probe, gateway_probe };
