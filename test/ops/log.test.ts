// TurnBuffer: a turn's lines are written together, in order, at the end of the turn; at
// log_buffer_bytes_max at once; on flush(); and create_logger's lines keep their fields.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { log_buffer_bytes_max, TurnBuffer } from '../../src/ops/log.js';

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

test('the lines of one turn are one write, in order, once the turn ends', async () => {
  const writes: string[] = [];
  const buffer = new TurnBuffer({ write: (data) => writes.push(data) });
  buffer.write('a\n');
  buffer.write('b\n');
  buffer.write('c\n');
  assert.equal(writes, [], 'held for the rest of the turn');
  assert.is(buffer.held(), 3);
  await turn();
  assert.equal(writes, ['a\nb\nc\n']);
  buffer.write('d\n');
  await turn();
  assert.equal(writes, ['a\nb\nc\n', 'd\n']);
  assert.is(buffer.held(), 0);
});

test('at log_buffer_bytes_max the held lines are written at once', () => {
  const writes: string[] = [];
  const buffer = new TurnBuffer({ write: (data) => writes.push(data) });
  const line = 'x'.repeat(1023) + '\n';
  for (let i = 0; i < log_buffer_bytes_max / line.length - 1; i++) buffer.write(line);
  assert.is(writes.length, 0);
  buffer.write(line);
  assert.is(writes.length, 1);
  assert.is(writes[0]!.length, log_buffer_bytes_max);
  assert.is(buffer.held(), 0);
});

test('at exit the held lines are handed on, then the sink is flushed synchronously', () => {
  const calls: string[] = [];
  const buffer = new TurnBuffer({
    write: (data) => calls.push(`write ${data}`),
    flushSync: () => calls.push('flushSync'),
  });
  buffer.write('a\n');
  buffer.flush_at_exit();
  assert.equal(calls, ['write a\n', 'flushSync']);
  assert.is(buffer.held(), 0);
});

test('pino through a TurnBuffer: flush() writes what is held; lines are whole JSON', async () => {
  const writes: string[] = [];
  const log = pino({ base: { service: 'ticketing' } }, new TurnBuffer({ write: (d) => writes.push(d) }));
  log.info({ trace_id: 't1' }, 'one');
  log.child({ method: 'M' }, { redact: [] }).info({ trace_id: 't2' }, 'two');
  log.flush();
  assert.is(writes.length, 1);
  const lines = writes[0]!.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.map((l) => [l['msg'], l['trace_id'], l['service']]),
    [['one', 't1', 'ticketing'], ['two', 't2', 'ticketing']]);
  assert.is(lines[1]!['method'], 'M');
});

test.run();
