// The import structure of src/: no circle among its files, and every import from one top-level
// folder into another allowed by the one table, scripts/layers.json (bottom folder first; each
// folder: what it may touch, and the folders it may import; "folder/file" allows one file only).
// Plain Node and regular expressions, no parser: TypeScript's import forms are few and
// line-anchored here (import/export ... from, import('…'), require('…'), and
// new URL('…', import.meta.url), which loads a module in a worker: a layering edge, no circle).
// Usage: node scripts/check_layers.mjs [--matrix]   (exit 1 on a circle or a forbidden import)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const static_import = /^[ \t]*(import|export)\s+(type\s+)?(?:[^;'"]*?\sfrom\s*)?['"]([^'"]+)['"]/gm;
const dynamic_import = /\b(import|require)\(\s*['"]([^'"]+)['"]\s*\)/g;
const url_load = /new URL\(\s*['"]([^'"]+\.js)['"]\s*,\s*import\.meta\.url\s*\)/g;

/** Every .ts file under dir, as paths relative to it with '/' separators, sorted. */
export function ts_files(dir) {
  const out = [];
  const walk = (at) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
        out.push(relative(dir, path).split(sep).join('/'));
      }
    }
  };
  walk(dir);
  return out.sort();
}

/** Comments that begin a line removed: an import named in prose is no import. Only those
 *  (a string such as 'proto/*.proto' would otherwise open a "comment" that hides real imports). */
function strip_comments(text) {
  return text.replace(/^[ \t]*\/\*[\s\S]*?\*\//gm, '').replace(/^[ \t]*\/\/.*$/gm, '');
}

/** The project file a relative specifier names ('./x.js' is x.ts), or null (a package). */
function resolve_specifier(file, specifier, files) {
  if (!specifier.startsWith('.')) return null;
  const target = join(dirname(file), specifier).split(sep).join('/').replace(/\.js$/, '.ts');
  return files.has(target) ? target : `${target} (missing)`;
}

/**
 * Edges between the files under src_dir: { from, to, kind } with kind 'import' (a static or
 * dynamic import, type-only included: a type circle is a circle for the reader too) or 'url'.
 */
export function scan_imports(src_dir) {
  const files = ts_files(src_dir);
  const known = new Set(files);
  const edges = [];
  for (const file of files) {
    const text = strip_comments(readFileSync(join(src_dir, file), 'utf8'));
    const add = (specifier, kind) => {
      const to = resolve_specifier(file, specifier, known);
      if (to !== null) edges.push({ from: file, to, kind });
    };
    for (const m of text.matchAll(static_import)) add(m[3], 'import');
    for (const m of text.matchAll(dynamic_import)) add(m[2], 'import');
    for (const m of text.matchAll(url_load)) add(m[1], 'url');
  }
  return { files, edges };
}

/** The top-level folder of a file under src ('(root)' for a file directly in src/). */
export function folder_of(file) {
  const slash = file.indexOf('/');
  return slash === -1 ? '(root)' : file.slice(0, slash);
}

/** Import circles among files: per strongly connected part, its files and one concrete cycle
 *  [a, b, ..., a] through them. */
export function find_cycles(files, edges) {
  const next = new Map(files.map((f) => [f, []]));
  for (const e of edges) if (e.kind === 'import' && next.has(e.to)) next.get(e.from).push(e.to);
  // Tarjan's strongly connected components, iterative (no recursion limit on a deep chain).
  const index = new Map();
  const low = new Map();
  const on_stack = new Set();
  const stack = [];
  const parts = [];
  let counter = 0;
  for (const start of files) {
    if (index.has(start)) continue;
    const work = [[start, 0]];
    index.set(start, counter); low.set(start, counter); counter++;
    stack.push(start); on_stack.add(start);
    while (work.length > 0) {
      const frame = work[work.length - 1];
      const [v, i] = frame;
      const out = next.get(v);
      if (i < out.length) {
        frame[1]++;
        const w = out[i];
        if (!index.has(w)) {
          index.set(w, counter); low.set(w, counter); counter++;
          stack.push(w); on_stack.add(w);
          work.push([w, 0]);
        } else if (on_stack.has(w)) low.set(v, Math.min(low.get(v), index.get(w)));
        continue;
      }
      work.pop();
      if (work.length > 0) {
        const parent = work[work.length - 1][0];
        low.set(parent, Math.min(low.get(parent), low.get(v)));
      }
      if (low.get(v) !== index.get(v)) continue;
      const part = [];
      let w;
      do {
        w = stack.pop();
        on_stack.delete(w);
        part.push(w);
      } while (w !== v);
      if (part.length > 1 || next.get(v).includes(v)) parts.push(part);
    }
  }
  return parts.map((part) => ({ cycle: cycle_in(part, next), files: [...part].sort() }));
}

/** A shortest way back to the part's first file (sorted), through the part only. */
function cycle_in(part, next) {
  const members = new Set(part);
  const first = [...part].sort()[0];
  const came_from = new Map();
  const queue = [first];
  for (let q = 0; q < queue.length; q++) {
    const v = queue[q];
    for (const w of next.get(v)) {
      if (!members.has(w)) continue;
      if (w === first) {
        const path = [v];
        while (path[0] !== first) path.unshift(came_from.get(path[0]));
        return [...path, first];
      }
      if (!came_from.has(w)) { came_from.set(w, v); queue.push(w); }
    }
  }
  throw new Error(`no cycle through ${first}`);
}

/** Whether `folders[from]` allows an import of file `to` ("x" allows x/*, "x/f" only x/f.ts). */
function allowed(table, from_folder, to) {
  const to_folder = folder_of(to);
  if (from_folder === to_folder) return true;
  const rule = table.folders[from_folder];
  if (rule === undefined) return false;
  return rule.imports.some((entry) => entry === to_folder || `${entry}.ts` === to);
}

/** Imports that leave their folder for one the table does not allow, and folders with no row. */
export function find_violations(files, edges, table) {
  const out = [];
  for (const folder of new Set(files.map(folder_of))) {
    if (table.folders[folder] === undefined) out.push({ folder, missing_row: true });
  }
  for (const e of edges) {
    if (!allowed(table, folder_of(e.from), e.to)) out.push({ ...e, missing_row: false });
  }
  return out;
}

/** Checks a table's own shape: every allowed entry names a folder that has a row. */
export function check_table(table) {
  const problems = [];
  for (const [folder, rule] of Object.entries(table.folders)) {
    if (typeof rule.touches !== 'string' || rule.touches.length === 0) {
      problems.push(`${folder}: no "touches" line`);
    }
    for (const entry of rule.imports) {
      if (table.folders[entry.split('/')[0]] !== undefined) continue;
      problems.push(`${folder}: imports ${entry}, which has no row`);
    }
  }
  return problems;
}

/** Folder-to-folder counts of what src imports today (the edges that leave a folder). */
export function folder_matrix(edges) {
  const counts = new Map();
  for (const e of edges) {
    const from = folder_of(e.from);
    const to = folder_of(e.to);
    if (from === to) continue;
    const key = `${from} -> ${to}`;
    const entry = counts.get(key) ?? { count: 0, files: new Set() };
    entry.count++;
    entry.files.add(`${e.from} -> ${e.to}`);
    counts.set(key, entry);
  }
  return [...counts.entries()].sort(([a], [b]) => a.localeCompare(b));
}

export function read_table(repo_root) {
  return JSON.parse(readFileSync(join(repo_root, 'scripts', 'layers.json'), 'utf8'));
}

/** The whole check of a tree: { cycles, violations, table_problems }. */
export function check_tree(src_dir, table) {
  const { files, edges } = scan_imports(src_dir);
  return {
    cycles: find_cycles(files, edges),
    violations: find_violations(files, edges, table),
    table_problems: check_table(table),
  };
}

export function describe(result) {
  const lines = [];
  for (const { cycle, files } of result.cycles) {
    lines.push(`circle: ${cycle.join(' -> ')} (files in circles with them: ${files.join(', ')})`);
  }
  for (const v of result.violations) {
    if (v.missing_row) lines.push(`folder src/${v.folder} has no row in scripts/layers.json`);
    else lines.push(`forbidden: ${v.from} -> ${v.to}${v.kind === 'url' ? ' (new URL)' : ''}`);
  }
  for (const problem of result.table_problems) lines.push(`table: ${problem}`);
  return lines;
}

function main(argv) {
  const repo_root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const src_dir = join(repo_root, 'src');
  if (!existsSync(src_dir)) throw new Error(`${src_dir} does not exist`);
  if (argv.includes('--matrix')) {
    const { edges } = scan_imports(src_dir);
    for (const [key, { count, files }] of folder_matrix(edges)) {
      console.log(`${key}  (${count})`);
      for (const f of files) console.log(`    ${f}`);
    }
  }
  const lines = describe(check_tree(src_dir, read_table(repo_root)));
  for (const line of lines) console.log(line);
  if (lines.length > 0) process.exitCode = 1;
  else console.log('layers: no circle, every import allowed by scripts/layers.json');
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2));
}
