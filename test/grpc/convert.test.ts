import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { id, int64, str } from '../../src/grpc/convert.js';

const refused = (fn: () => unknown, match: RegExp) => {
  try {
    fn();
  } catch (e) {
    // Over a length limit is its own failure mode (counted per limit); the rest is bad input.
    assert.is((e as Error).name, (e as Error).message.includes('is longer than') ? 'FieldTooLongError' : 'InvalidArgumentError');
    assert.match((e as Error).message, match);
    return;
  }
  assert.unreachable('expected InvalidArgumentError');
};

test('int64: exact integers within range; refuses, never rounds', () => {
  assert.is(int64('9007199254740991', 'n'), Number.MAX_SAFE_INTEGER);
  assert.is(int64('-30', 'n'), -30);
  assert.is(int64(42, 'n'), 42);
  refused(() => int64('9007199254740992', 'n'), /between/);
  refused(() => int64('-9223372036854775808', 'n'), /between/);
  refused(() => int64('1e3', 'n'), /integer/);
  refused(() => int64('', 'n'), /integer/);
  refused(() => int64(undefined, 'n'), /integer/);
  refused(() => int64('5', 'n', 10, 20), /between 10 and 20/);
});

test('id: required, capped, charset before routing (invalid UTF-8 decodes to U+FFFD and is refused)', () => {
  assert.is(id('evt-arena-2027.06:01_x', 'event_id', 64), 'evt-arena-2027.06:01_x');
  refused(() => id('', 'event_id', 64), /required/);
  refused(() => id('x'.repeat(65), 'event_id', 64), /longer than 64/);
  for (const bad of ['a b', 'a\u0000', '\ufffd', 'é', 'a/b', '\u202eabc']) refused(() => id(bad, 'event_id', 64), /only letters/);
  refused(() => id(7, 'event_id', 64), /string/);
});

test('str: type and length only', () => {
  assert.is(str('', 's', 3), '');
  refused(() => str('abcd', 's', 3), /longer than 3/);
});

test.run();
