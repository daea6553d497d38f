// Issue 12: exactly-once events in cluster mode. Over a run with a node failover (kill -9) and
// a broker kill (-9), a read_committed consumer sees exactly one OrderConfirmed per confirmed
// order and one HoldCreated per acknowledged hold (and per draft's hold), no event twice, and
// each event-id as CLUSTER_CONTRACT §1 names it: <NAME>-p<p>-<journal offset>-<index>.
import * as assert from 'uvu/assert';
import { EventCodec } from '../../src/kafka/encode.js';
import { topic_of } from '../../src/kafka/topics.js';
import { busiest, cluster_suite, judge, Load, load_defaults } from './cluster_load.js';
import { check_events, format_call } from './history.js';

const t = cluster_suite('events');
const codec = new EventCodec();

t(
  'a failover and a broker kill: one HoldCreated per hold, one OrderConfirmed per confirmed order',
  async ({ cluster, events }) => {
    const load = new Load(cluster, events, load_defaults);
    const running = load.run();
    await load.until_acked(100);
    const victim = busiest(await cluster.settled());
    const killed_ms = Date.now();
    await cluster.kill9(victim.node);
    const failover_ms = await cluster.until_served(victim.partitions, victim.node, killed_ms);
    console.log(
      `[failover] kill -9 of node ${victim.node}: partitions ${victim.partitions} served by the ` +
        `survivors ${failover_ms} ms after the kill`,
    );
    await load.until_acked(60);
    const broker = await cluster.busiest_broker();
    await cluster.broker(broker).kill();
    await cluster.until_leaders_moved(broker);
    await load.until_acked(60);
    load.finish_after(40);
    await running;
    const final = await judge(cluster, load, events, 'events');

    const types = ['HoldCreated', 'OrderConfirmed'];
    const seen = await cluster.consume_to_end(types.map((type) => topic_of('', type)));
    const ids = new Set<string>();
    const pattern = new RegExp(`^${cluster.name}-p[0-9]+-[0-9]+-[0-9]+$`);
    const hold_created: string[] = [];
    const order_confirmed: string[] = [];
    for (const m of seen) {
      const type = m.topic.split('.').pop()!;
      const event_id = m.headers['event-id'] ?? '';
      assert.match(event_id, pattern, `event-id of ${m.topic}@${m.partition}/${m.offset}`);
      assert.not.ok(ids.has(event_id), `event-id ${event_id} seen once`);
      ids.add(event_id);
      const message = codec.decode(type, m.value);
      if (type === 'HoldCreated') hold_created.push(String(message['hold_id']));
      else order_confirmed.push(String(message['order_id']));
    }
    console.log(
      `[events] ${hold_created.length} HoldCreated, ${order_confirmed.length} OrderConfirmed ` +
        `read_committed`,
    );
    const violations = check_events(load.history.calls, final, { hold_created, order_confirmed });
    const context =
      violations.length === 0 ? '' : load.history.calls.slice(-5).map(format_call).join('\n');
    assert.equal(violations.length, 0, `${violations.slice(0, 30).join('\n')}\n${context}`);
  },
);

t.run();
