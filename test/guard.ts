// uvu swallows an error thrown by an `after` or `after.each` hook: its runner returns from a
// `finally`, so the file reports "Passed 0" (or fewer than Total) and the process exits 0.
// Measured with uvu 0.5.6: a throwing after.each in a two-test file prints "(0 / 2)", exit 0.
// These guards make such an error loud: an after.each error fails the test it ran after (uvu
// reruns after.each in its catch branch, where the guard does not throw again, so the test is
// reported with the hook's error), an after error is printed, and either sets the exit code.
import type { Test } from 'uvu';

let hook_failures = 0;
process.on('exit', () => {
  // Registered after uvu's runner set process.exitCode from the tests it counted.
  if (hook_failures > 0) {
    console.error(`${hook_failures} test hook(s) threw; failing the run`);
    process.exitCode = 1;
  }
});

export function guarded_after_each<C>(suite: Test<C>, hook: (ctx: C) => unknown): void {
  let thrown_for = '';
  suite.after.each(async (ctx) => {
    const name = (ctx as { __test__?: string }).__test__ ?? '';
    try {
      await hook(ctx);
    } catch (error) {
      hook_failures++;
      if (thrown_for === name) return; // uvu's second call for the same test: already reported
      thrown_for = name;
      throw error;
    }
  });
}

export function guarded_after<C>(suite: Test<C>, hook: (ctx: C) => unknown): void {
  suite.after(async (ctx) => {
    try {
      await hook(ctx);
    } catch (error) {
      hook_failures++;
      console.error('an after hook threw:', error);
    }
  });
}
