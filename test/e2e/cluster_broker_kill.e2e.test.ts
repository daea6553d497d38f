// Issue 12: kill -9 of one Kafka broker (the one leading most journal partitions) under load.
// Writes stall while the controller fences it and leaders move (broker.session.timeout.ms,
// 5 s here); clients see at most UNAVAILABLE or DEADLINE_EXCEEDED meanwhile (the counts of
// each are printed); no acknowledged change is lost; the broker restarts and is in sync again.
import { status } from '@grpc/grpc-js';
import { cluster_suite, judge, Load, load_defaults } from './cluster_load.js';
import { summary } from './history.js';

const t = cluster_suite('broker');

t(
  'kill -9 of a broker under load: at most UNAVAILABLE / DEADLINE_EXCEEDED while leaders move, ' +
    'nothing lost',
  async ({ cluster, events }) => {
    const load = new Load(cluster, events, load_defaults);
    const running = load.run();
    await load.until_acked(80);
    const id = await cluster.busiest_broker();
    const killed_ms = Date.now();
    await cluster.broker(id).kill();
    await cluster.until_leaders_moved(id);
    const moved_ms = Date.now();
    console.log(`[broker] kill -9 of broker ${id}: leaders moved after ${moved_ms - killed_ms} ms`);
    await load.until_acked(80);
    const first_ack = load.history.calls.find((c) => c.start_ms >= killed_ms && c.outcome.ok);
    console.log(
      `[broker] first call started after the kill and acknowledged: ` +
        `${first_ack === undefined ? 'none' : `${first_ack.end_ms - killed_ms} ms after it`}`,
    );
    await cluster.broker(id).restart();
    await cluster.until_in_sync(id);
    load.finish_after(60);
    await running;
    const during = load.history.calls.filter(
      (c) => c.end_ms >= killed_ms && c.start_ms <= moved_ms,
    );
    const count = (code: number): number =>
      during.filter((c) => !c.outcome.ok && c.outcome.code === code).length;
    console.log(
      `[broker] calls while leaders moved: ${summary(during)} (UNAVAILABLE ` +
        `${count(status.UNAVAILABLE)}, DEADLINE_EXCEEDED ${count(status.DEADLINE_EXCEEDED)})`,
    );
    // judge: nothing acknowledged lost, and no answer beyond the unknown ones and the load's
    // refusals.
    await judge(cluster, load, events, 'kill -9 of a broker');
  },
);

t.run();
