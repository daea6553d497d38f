// Issue 12: a node paused with SIGSTOP past its session timeout while calls to it are in
// flight; the others take its partitions (watched on their /readyz) and acknowledge changes
// while it is paused; SIGCONT. The paused node acknowledges nothing for partitions it lost:
// every call it still had (sent to it, or forwarded to it by another node) is answered
// UNAVAILABLE, or was forwarded and succeeded at the new owner (then the change is readable at
// the end, as every acknowledged change must be); it rejoins; the history check holds.
import { status } from '@grpc/grpc-js';
import * as assert from 'uvu/assert';
import {
  busiest,
  cluster_suite,
  expected_refusals,
  judge,
  Load,
  load_defaults,
} from './cluster_load.js';
import { format_call, summary, type Call } from './history.js';

const t = cluster_suite('sigstop');

/** OK (done where the partition is owned now), UNAVAILABLE, or a refusal the load provokes. */
function wrong_answers(calls: Call[]): Call[] {
  return calls.filter(
    (c) =>
      !c.outcome.ok &&
      c.outcome.code !== status.UNAVAILABLE &&
      !expected_refusals[c.rpc].includes(c.outcome.code),
  );
}

t(
  'SIGSTOP past the session, partitions moved, SIGCONT: nothing acknowledged for lost ' +
    'partitions, it rejoins',
  async ({ cluster, events }) => {
    // Calls held by the paused node wait for it: a deadline past the pause (the node caps
    // deadlines at 30 s), so each gets the node's own answer after SIGCONT.
    const load = new Load(cluster, events, { ...load_defaults, deadline_ms: 30_000 });
    const running = [load.run()];
    await load.until_acked(80);
    const victim = busiest(await cluster.settled());
    await load.until_in_flight(victim.node);
    const stopped_ms = Date.now();
    cluster.sigstop(victim.node);
    const moved_ms = await cluster.until_served(victim.partitions, victim.node, stopped_ms);
    console.log(
      `[failover] SIGSTOP of node ${victim.node}: partitions ${victim.partitions} served by the ` +
        `others ${moved_ms} ms after the stop`,
    );
    // The first clients may all be waiting on the paused node (directly or forwarded): fresh
    // ones make the new owners acknowledge changes while the old owner is still paused.
    running.push(load.run());
    await load.until_acked(40);
    const resumed_ms = Date.now();
    cluster.sigcont(victim.node);
    const rejoined = await cluster.rejoined(victim.node);
    console.log(
      `[sigstop] paused ${resumed_ms - stopped_ms} ms; node ${victim.node} serves ` +
        `${rejoined.get(victim.node)} again ${Date.now() - resumed_ms} ms after SIGCONT`,
    );
    assert.ok(
      (rejoined.get(victim.node) ?? []).length > 0,
      'the resumed node serves partitions again',
    );
    load.finish_after(60);
    await Promise.all(running);
    // The calls that waited over the pause, at the paused node or forwarded to it.
    const held = load.history.calls.filter(
      (c) => c.start_ms < resumed_ms && c.end_ms >= resumed_ms,
    );
    const at_victim = held.filter((c) => c.node === victim.node);
    console.log(
      `[sigstop] ${held.length} calls waited over the pause (${at_victim.length} sent to the ` +
        `paused node): ${summary(held)}`,
    );
    assert.ok(at_victim.length > 0, 'calls were in flight at the paused node');
    const wrong = wrong_answers(held);
    assert.equal(
      wrong.length,
      0,
      `calls held over the pause answered other than OK or ` +
        `UNAVAILABLE:\n${wrong.map(format_call).join('\n')}`,
    );
    // Every OK among them must be durable at the new owner: judge reads each change back.
    await judge(cluster, load, events, 'SIGSTOP of a node');
  },
);

t.run();
