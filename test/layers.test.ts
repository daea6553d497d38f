// The import structure of src/ (scripts/check_layers.mjs against scripts/layers.json), and the
// checker itself on small synthetic trees, so that a broken checker cannot pass silently.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { guarded_after } from './guard.js';

interface Table {
  folders: Record<string, { touches: string; imports: string[] }>;
}
interface Violation {
  from?: string;
  to?: string;
  kind?: 'import' | 'url';
  folder?: string;
  missing_row: boolean;
}
interface Result {
  cycles: { cycle: string[]; files: string[] }[];
  violations: Violation[];
  table_problems: string[];
}
interface Checker {
  check_tree(src_dir: string, table: Table): Result;
  read_table(repo_root: string): Table;
  describe(result: Result): string[];
}

// Tests run from dist/test: the repository (its src/*.ts and scripts/) is two levels up.
const repo_root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const checker_url = pathToFileURL(join(repo_root, 'scripts', 'check_layers.mjs')).href;
const checker: Checker = await import(checker_url);

const dirs: string[] = [];
guarded_after(test, () => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A src/ tree of the given files (path under src -> text); returns its src directory. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'layers-test-'));
  dirs.push(root);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, 'src', path)), { recursive: true });
    writeFileSync(join(root, 'src', path), text);
  }
  return join(root, 'src');
}

function table(folders: Record<string, string[]>): Table {
  const out: Table = { folders: {} };
  for (const [folder, imports] of Object.entries(folders)) {
    out.folders[folder] = { touches: folder, imports };
  }
  return out;
}

test('checker: reports a circle (type-only imports count) and an import of a folder above', () => {
  const src = tree({
    'low/a.ts': "import { b } from './b.js';\nexport const a = b;\n",
    'low/b.ts': "import type { A } from './a.js';\nexport const b = 1;\nexport type B = A;\n",
    // Multi-line, as tsc and the style here write long imports.
    'low/c.ts': "import {\n  x,\n  type X,\n} from '../high/x.js';\nexport const c: X = x;\n",
    'high/x.ts': "import { a } from '../low/a.js';\nexport const x = a;\nexport type X = number;\n",
    // Named only in comments: no import.
    'high/y.ts': "// import { c } from '../low/c.js';\n/* import '../low/b.js'; */\nexport {};\n",
  });
  const result = checker.check_tree(src, table({ low: [], high: ['low'], not_yet: ['low'] }));
  assert.equal(result.cycles, [
    { cycle: ['low/a.ts', 'low/b.ts', 'low/a.ts'], files: ['low/a.ts', 'low/b.ts'] },
  ]);
  assert.equal(result.violations, [
    { from: 'low/c.ts', to: 'high/x.ts', kind: 'import', missing_row: false },
  ]);
  assert.equal(result.table_problems, [], 'a folder that does not exist yet may have a row');
  const lines = checker.describe(result);
  assert.is(lines.length, 2);
  assert.match(lines[0]!, 'circle: low/a.ts -> low/b.ts -> low/a.ts');
  assert.match(lines[1]!, 'forbidden: low/c.ts -> high/x.ts');
});

test('checker: a longer circle across folders, every import form, one-file allowances', () => {
  const src = tree({
    'a/one.ts': "export { two } from '../b/two.js';\n",
    'b/two.ts': "export const two = 2;\nexport const load = () => import('../c/three.js');\n",
    'c/three.ts': "import '../a/one.js';\nexport const three = 3;\n",
    'c/four.ts': "const worker = new URL('../a/one.js', import.meta.url);\nexport { worker };\n",
    // A string that looks like a comment's start does not hide the imports after it.
    'd/five.ts': "export const glob = 'c/*.ts';\nimport { three } from '../c/three.js';\n"
      + "import { four } from '../c/four.js';\n/** The end. */\n",
    'e/stray.ts': "import { readFileSync } from 'node:fs';\nexport { readFileSync };\n",
  });
  const result = checker.check_tree(src, table({ a: ['b'], b: ['c'], c: ['a'], d: ['c/three'] }));
  const cycles = result.cycles.map((c) => c.cycle);
  assert.equal(cycles, [['a/one.ts', 'b/two.ts', 'c/three.ts', 'a/one.ts']]);
  assert.equal(result.violations, [
    { folder: 'e', missing_row: true },
    { from: 'd/five.ts', to: 'c/four.ts', kind: 'import', missing_row: false },
  ], 'a one-file allowance allows that file only; a folder with no row is reported');
  assert.is(result.cycles.length, 1, 'new URL() loads a module in a worker: no circle');
  const url_only = checker.check_tree(src, table({ a: ['b'], b: ['c'], c: [], d: ['c'], e: [] }));
  assert.equal(url_only.violations.map((v) => [v.from, v.to, v.kind]), [
    ['c/four.ts', 'a/one.ts', 'url'],
    ['c/three.ts', 'a/one.ts', 'import'],
  ], 'a new URL() module load is a layering edge');
  assert.equal(
    checker.check_tree(src, { folders: { a: { touches: '', imports: ['zz'] } } }).table_problems,
    ['a: no "touches" line', 'a: imports zz, which has no row'],
  );
});

test('src has no import circle', () => {
  const result = checker.check_tree(join(repo_root, 'src'), checker.read_table(repo_root));
  const lines = checker.describe({ ...result, violations: [], table_problems: [] });
  assert.equal(result.cycles, [], lines.join('\n'));
});

test('scripts/layers.json has a row for every src folder, and every row is well formed', () => {
  const result = checker.check_tree(join(repo_root, 'src'), checker.read_table(repo_root));
  assert.equal(result.table_problems, []);
  assert.equal(result.violations.filter((v) => v.missing_row), []);
});

test('every import in src stays within the layers of scripts/layers.json', () => {
  const result = checker.check_tree(join(repo_root, 'src'), checker.read_table(repo_root));
  const lines = checker.describe({ ...result, cycles: [], table_problems: [] });
  assert.ok(lines.length === 0, `${lines.length} imports the layers forbid:\n${lines.join('\n')}`);
});

test.run();
