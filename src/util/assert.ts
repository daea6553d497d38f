// TigerBeetle-style assertions: a failed assertion is a bug, never a user error. Callers must
// not catch AssertionError to carry on; a worker that trips one dies and is recovered from disk.
export class AssertionError extends Error {
  override readonly name = 'AssertionError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}

export function unreachable(value: never, what: string): never {
  throw new AssertionError(`unreachable ${what}: ${JSON.stringify(value)}`);
}
