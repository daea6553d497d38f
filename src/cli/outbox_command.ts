// `ticketing outbox tail [--data DIR] [--limit N] [--follow] [--parked] [--kafka-topic-prefix P]`
import { check_topic_prefix } from '../kafka/topics.js';
import { outbox_tail, tail_limit_max } from './outbox_tail.js';
import { flag, int_flag, parse_args } from './args.js';

/** How often --follow looks for new entries. */
export const tail_poll_ms = 500;
export const tail_limit_default = 20;

export async function cmd_outbox_tail(argv: string[], data_default: string): Promise<void> {
  const args = parse_args(argv, ['follow', 'parked'], ['data', 'limit', 'kafka-topic-prefix']);
  if (args.positional.length > 0) throw new Error(`outbox tail takes no arguments, got ${args.positional.join(' ')}`);
  const controller = new AbortController();
  const follow = args.flags.get('follow') === true;
  if (follow) for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => controller.abort());
  await outbox_tail({
    data_dir: flag(args, 'data', 'TICKETING_DATA_DIR', data_default),
    limit: int_flag(flag(args, 'limit', undefined, undefined), 'limit', 1, tail_limit_max) ?? tail_limit_default,
    follow,
    parked: args.flags.get('parked') === true,
    topic_prefix: check_topic_prefix(flag(args, 'kafka-topic-prefix', 'TICKETING_KAFKA_TOPIC_PREFIX', '')),
    poll_ms: tail_poll_ms,
    out: (line) => process.stdout.write(line + '\n'),
    signal: controller.signal,
  });
}
