#!/usr/bin/env node
// npm run build:binary → build/ticketing: one file, Node's single executable application (SEA),
// that runs every `ticketing` command on a Linux host with no Node and no node_modules.
//
//   1. esbuild bundles src/binary/main.ts (the CLI), src/binary/worker.ts (worker_main with
//      the ticketing behaviour and lmdb) and src/kafka/emitter_thread.ts (the Kafka emitter's
//      thread: kafkajs, protobufjs, lmdb) to CommonJS. In every bundled module, `import.meta.url`,
//      `__dirname` and `__filename` become that module's place in a tree laid out like a
//      checkout (dist/src/…, node_modules/…, proto/…; see src/binary/layout.ts);
//      node-gyp-build-optional-packages becomes src/binary/load_addon.ts, and msgpackr-extract (an
//      optional speed-up) is left out, so msgpackr runs in plain JavaScript.
//   2. The tree is staged in build/.sea-XXXXXX/tree (removed afterwards): the worker bundle as dist/src/runtime/worker_main.js
//      (where src/runtime/pool.ts starts it), the emitter's as dist/src/kafka/emitter_thread.js
//      (where src/kafka/emitter_host.ts starts it), a stub dist/src/actors/behaviour.js (the URL
//      src/node/pool.ts hands to workers), the .proto files of this repository and of the
//      bundled packages that read their own, and the LMDB addon that
//      node-gyp-build-optional-packages picks for the Node running this script.
//   3. node --experimental-sea-config makes a blob of main.cjs with the tree and its manifest
//      as assets; postject injects it into a copy of this Node's executable (skipped when
//      build/ticketing already holds the same blob on the same Node).
//
// The executable is the Node running this script (same version, same ABI as the embedded
// addon): build with the Node you mean to ship. Linux only (ELF injection, glibc addon).
import * as esbuild from 'esbuild';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(join(repo, 'package.json'));
const out_dir = join(repo, 'build');
const output = join(out_dir, 'ticketing');
const sentinel_fuse = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
const version = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).version;

const [major, minor] = process.versions.node.split('.').map(Number);
if (process.platform !== 'linux') fail(`builds for Linux only (this is ${process.platform})`);
if (major < 20 || (major === 20 && minor < 12)) fail(`needs Node >= 20.12 (SEA assets), this is ${process.version}`);

function fail(message) {
  process.stderr.write(`build:binary: ${message}\n`);
  process.exit(1);
}

const posix = (path) => path.split(sep).join('/');

/** Where a bundled source file sits in the tree: src/x.ts → dist/src/x.js, node_modules as is. */
function tree_path(file) {
  const rel = posix(relative(repo, file));
  if (rel.startsWith('src/') && rel.endsWith('.ts')) return `dist/${rel.slice(0, -3)}.js`;
  if (rel.startsWith('node_modules/')) return rel;
  throw new Error(`${rel}: no place in the executable's tree for this file`);
}

/** Package directories (tree paths) whose files had paths rewritten, and those loading addons. */
const rewritten_packages = new Set();
const addon_packages = new Set();

function package_of(path) {
  const parts = path.split('/');
  const at = parts.lastIndexOf('node_modules');
  if (at === -1) return undefined;
  return parts.slice(0, at + (parts[at + 1]?.startsWith('@') ? 3 : 2)).join('/');
}

const layout_plugin = {
  name: 'ticketing-sea-layout',
  setup(build) {
    build.onResolve({ filter: /^node-gyp-build-optional-packages$/ }, (args) => {
      const pkg = package_of(tree_path(args.importer));
      if (pkg === undefined) throw new Error(`${args.importer} loads a native addon from outside node_modules`);
      addon_packages.add(pkg);
      return { path: join(repo, 'src/binary/load_addon.ts') };
    });
    build.onResolve({ filter: /^msgpackr-extract$/ }, () => ({
      path: join(repo, 'src/binary/no_module.ts'),
    }));
    build.onLoad({ filter: /\.(ts|js|mjs|cjs)$/ }, (args) => {
      let text = readFileSync(args.path, 'utf8');
      const has_dir = /(?<![\w$.])__(dirname|filename)(?![\w$])/.test(text);
      if (!text.includes('import.meta.url') && !has_dir) return undefined;
      const at = tree_path(args.path);
      if (at.startsWith('dist/')) {
        // Our modules' `const require = createRequire(import.meta.url)`: dropped, so that their
        // require('pkg') calls are the bundler's and pkg is bundled rather than looked up in
        // node_modules at run time. Any other use of createRequire would escape the bundle.
        text = text.replace(/\b(const|let|var)\s+require\s*=\s*createRequire\(\s*import\.meta\.url\s*\);?/g, '/* require: the bundler\'s */');
        if (/createRequire\(/.test(text.replace(/import\s*\{[^}]*\}\s*from\s*'node:module';?/g, ''))) {
          throw new Error(`${args.path}: createRequire other than \`const require = createRequire(import.meta.url)\` is not bundled`);
        }
      }
      text = text.replaceAll('import.meta.url', `__ticketing_sea_url(${JSON.stringify(at)})`);
      if (has_dir) {
        if (/\b(const|let|var|function)\s+__(dirname|filename)\b/.test(text)) {
          throw new Error(`${args.path} declares its own __dirname/__filename: teach the build about it`);
        }
        text = text
          .replace(/(?<![\w$.])__dirname(?![\w$])/g, `__ticketing_sea_path(${JSON.stringify(dirname(at))})`)
          .replace(/(?<![\w$.])__filename(?![\w$])/g, `__ticketing_sea_path(${JSON.stringify(at)})`);
      }
      const pkg = package_of(at);
      if (pkg !== undefined) rewritten_packages.add(pkg);
      return { contents: text, loader: args.path.endsWith('.ts') ? 'ts' : 'js', resolveDir: dirname(args.path) };
    });
  },
};

async function bundle(entry, outfile) {
  const result = await esbuild.build({
    entryPoints: [join(repo, entry)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: `node${major}`,
    inject: [join(repo, 'src/binary/inject.ts')],
    plugins: [layout_plugin],
    legalComments: 'none',
    logLevel: 'silent',
  });
  for (const warning of result.warnings) {
    const where = warning.location ? `${warning.location.file}:${warning.location.line}: ` : '';
    // import.meta would be empty in CommonJS, and a require the bundler cannot follow would look
    // in node_modules at run time: either would break the executable, so refuse to build it.
    if (/import\.meta|require/.test(warning.text)) fail(`${where}${warning.text}`);
    process.stderr.write(`build:binary: warning: ${where}${warning.text}\n`);
  }
  return result;
}

/** Files under `dir` that `keep`; nested node_modules (other packages) left out unless `all`. */
function files_under(dir, keep, all = false) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (all || entry.name !== 'node_modules') out.push(...files_under(path, keep, all));
    } else if (keep(path)) out.push(path);
  }
  return out;
}

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

const started = performance.now();
// A private working directory, so that two builds at once (two test runs) cannot mix files;
// build/ticketing is replaced by a rename, whole.
mkdirSync(out_dir, { recursive: true });
const work = mkdtempSync(join(out_dir, '.sea-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const tree = join(work, 'tree');
mkdirSync(tree, { recursive: true });

// 1. The three scripts; bundling tells which packages load addons and read their own files.
await bundle('src/binary/worker.ts', join(tree, 'dist/src/runtime/worker_main.js'));
await bundle('src/kafka/emitter_thread.ts', join(tree, 'dist/src/kafka/emitter_thread.js'));
const main_file = join(work, 'ticketing.cjs');
await bundle('src/binary/main.ts', main_file);

// 2. The rest of the tree: addons chosen for this Node as node-gyp-build-optional-packages
//    would choose them, the behaviour stub, the .proto files.
const load_napi = require('node-gyp-build-optional-packages');
const addons = {};
for (const pkg of addon_packages) addons[pkg] = posix(relative(repo, load_napi.path(join(repo, pkg))));
const stage = (path, bytes) => {
  mkdirSync(dirname(join(tree, path)), { recursive: true });
  writeFileSync(join(tree, path), bytes);
};
stage('package.json', JSON.stringify({ type: 'commonjs', description: 'ticketing single executable: unpacked files' }) + '\n');
stage('dist/src/actors/behaviour.js', `'use strict';
// Single executable: the behaviour is bundled into ../runtime/worker_main.js, this thread's
// entry script (src/binary/worker.ts); this stub hands that copy to worker_main's import().
const entry = require.cache[require.resolve('../runtime/worker_main.js')];
if (entry === undefined) throw new Error('the behaviour is available only inside a ticketing worker thread');
exports.behaviour = entry.exports.behaviour;
`);
for (const file of files_under(join(repo, 'proto'), (p) => p.endsWith('.proto'))) {
  stage(posix(relative(repo, file)), readFileSync(file));
}
const data_files = (pkg) => files_under(join(repo, pkg), (p) => p.endsWith('.proto') || posix(p).includes('/lmdb/dict/'));
for (const pkg of new Set([...rewritten_packages, ...addon_packages])) {
  for (const file of data_files(pkg)) stage(posix(relative(repo, file)), readFileSync(file));
}
for (const addon of Object.values(addons)) stage(addon, readFileSync(join(repo, addon)));

// 3. The manifest: every file with its hash; the tree's directory is named by their hash.
const executable = new Set(Object.values(addons));
const files = files_under(tree, () => true, true).map((file) => {
  const path = posix(relative(tree, file));
  return { path, sha256: sha256(readFileSync(file)), mode: executable.has(path) ? 0o500 : 0o400 };
}).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
const id = `${version}-${sha256(files.map((f) => `${f.path} ${f.sha256} ${f.mode}`).join('\n')).slice(0, 16)}`;
const manifest_file = join(work, 'manifest.json');
writeFileSync(manifest_file, JSON.stringify({ id, files, addons }, null, 1));

// 4. The SEA blob and the executable.
const sea_config = join(work, 'sea-config.json');
const blob = join(work, 'sea-prep.blob');
writeFileSync(sea_config, JSON.stringify({
  // Relative, with cwd = work below: the blob keeps this name (stack traces show it), and a
  // temporary directory in it would make every blob, and executable, different.
  main: 'ticketing.cjs',
  output: 'sea-prep.blob',
  disableExperimentalSEAWarning: true,
  // No code cache: it saves ~10 ms per start but makes the blob differ from build to build;
  // without it the same sources and Node give the same executable.
  useCodeCache: false,
  assets: {
    'ticketing-sea-manifest.json': manifest_file, // src/binary/layout.ts: manifest_asset
    ...Object.fromEntries(files.map((f) => [f.path, join(tree, f.path)])),
  },
}, null, 2));
const prep = spawnSync(process.execPath, ['--experimental-sea-config', sea_config], { cwd: work, encoding: 'utf8' });
if (prep.status !== 0) fail(`node --experimental-sea-config failed:\n${prep.stdout}${prep.stderr}`);

// Injecting takes postject a few seconds (it rewrites a ~100 MB ELF file): skip it when the
// executable on disk was made from the same blob and the same Node.
const stamp_file = join(out_dir, '.ticketing.stamp.json');
const node_stat = statSync(process.execPath);
const stamp = {
  blob_sha256: sha256(readFileSync(blob)),
  node: { path: process.execPath, version: process.version, size: node_stat.size, mtime_ms: node_stat.mtimeMs },
};
const up_to_date = (() => {
  try {
    const old = JSON.parse(readFileSync(stamp_file, 'utf8'));
    const out = statSync(output);
    return JSON.stringify(old.inputs) === JSON.stringify(stamp) && old.output.size === out.size && old.output.mtime_ms === out.mtimeMs;
  } catch {
    return false;
  }
})();
if (!up_to_date) {
  rmSync(stamp_file, { force: true });
  const partial = join(work, 'ticketing');
  copyFileSync(process.execPath, partial);
  chmodSync(partial, 0o755);
  // postject's CLI, in a child process so that LIEF's known-harmless ELF notes warnings
  // ("Can't find string offset for section name '.note…'") can be dropped from the output.
  const postject = spawnSync(process.execPath, [
    require.resolve('postject/dist/cli.js'), partial, 'NODE_SEA_BLOB', blob, '--sentinel-fuse', sentinel_fuse,
  ], { encoding: 'utf8' });
  const noise = /^warning: Can't find string offset for section name '\.note[^']*'$/;
  const said = `${postject.stdout}${postject.stderr}`.replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((line) => line.trim() !== '' && !noise.test(line));
  if (postject.status !== 0) fail(`postject failed:\n${said.join('\n')}`);
  if (said.some((line) => !/^(Start injection|Injection done|💉)/u.test(line))) process.stderr.write(`${said.join('\n')}\n`);
  renameSync(partial, output);
  const out = statSync(output);
  writeFileSync(stamp_file, JSON.stringify({ inputs: stamp, output: { size: out.size, mtime_ms: out.mtimeMs } }, null, 1));
}

const mib = (n) => (n / 1024 / 1024).toFixed(1);
process.stdout.write(`build:binary: ${relative(process.cwd(), output) || output} (${mib(statSync(output).size)} MiB; ` +
  `Node ${process.version}, ${files.length} embedded files, ${mib(files.reduce((n, f) => n + statSync(join(tree, f.path)).size, 0))} MiB, ` +
  `tree ${id})${up_to_date ? ', already up to date' : ''} in ${((performance.now() - started) / 1000).toFixed(1)} s\n`);
