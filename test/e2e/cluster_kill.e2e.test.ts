// Issue 12: 3 brokers, 3 nodes, purchases and reservations through all three; kill -9 of one
// node under load. Every partition it owned is served by another node (MEASURED: the time from
// the kill to the survivors' /readyz serving all of them is printed for the README; the 10 s
// target is not asserted, the takeover is); the killed node is restarted and rejoins; then
// every hold, draft, payment and sale acknowledged is there, no seat was in two holds, none
// sold twice (the client's history of answers against the final state read back).
import * as assert from 'uvu/assert';
import { busiest, cluster_suite, judge, Load, load_defaults } from './cluster_load.js';

const t = cluster_suite('kill');

t(
  'kill -9 of a node under load: its partitions move within the measured time, nothing ' +
    'acknowledged is lost',
  async ({ cluster, events }) => {
    const load = new Load(cluster, events, load_defaults);
    const running = load.run();
    await load.until_acked(80);
    const victim = busiest(await cluster.settled());
    const killed_ms = Date.now();
    await cluster.kill9(victim.node);
    const failover_ms = await cluster.until_served(victim.partitions, victim.node, killed_ms);
    console.log(
      `[failover] kill -9 of node ${victim.node}: partitions ${victim.partitions} served by the ` +
        `survivors ${failover_ms} ms after the kill (target 10000 ms)`,
    );
    const owners = await cluster.settled();
    assert.equal(
      [...owners.values()].flat().sort((a, b) => a - b),
      [0, 1, 2, 3, 4, 5, 6, 7],
      'the survivors serve every partition',
    );
    await load.until_acked(60);
    await cluster.start_node(victim.node);
    const rejoined = await cluster.rejoined(victim.node);
    assert.ok(
      (rejoined.get(victim.node) ?? []).length > 0,
      'the restarted node serves partitions again',
    );
    load.finish_after(60);
    await running;
    await judge(cluster, load, events, 'kill -9 of a node');
    const cut = load.history.calls.filter(
      (c) => c.node === victim.node && c.start_ms <= killed_ms && c.end_ms >= killed_ms,
    );
    console.log(`[kill] ${cut.length} calls were in flight at the killed node`);
  },
);

t.run();
