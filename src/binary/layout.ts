// Single-executable build (npm run build:binary, scripts/build_binary.mjs): where the bundled
// code believes it lives.
//
// The executable carries, besides the bundled code, the files that code reads at run time: the
// LMDB addon, this repository's .proto files and those of grpc-js, reflection and health, and
// the worker-thread script. At start they are written to a cache directory, laid out like a
// checkout of the repository (dist/src/runtime/worker_main.js, proto/…, node_modules/…). The
// bundler rewrites every `import.meta.url`, `__dirname` and `__filename` in the bundled modules
// to that module's own place in the tree (`sea_url` / `sea_path`), so each relative lookup —
// proto/ from src/grpc/proto.ts, the worker script from src/runtime/pool.ts, health.proto from
// grpc-health-check — resolves exactly as when running from dist/ and node_modules.
//
// The tree's directory is named by a hash of its contents (one per build). It is written whole
// under a temporary name and renamed into place, so concurrent or interrupted first starts are
// harmless; at every start the main thread checks each file against its hash and rewrites the
// tree if anything differs. The parent directory must belong to the user and not be writable
// by others, since the addon in it is loaded as code.
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import * as sea from 'node:sea';
import { pathToFileURL } from 'node:url';
import { getEnvironmentData, isMainThread, setEnvironmentData } from 'node:worker_threads';

export interface SeaFile {
  /** Path inside the tree, '/'-separated; also the SEA asset key. */
  path: string;
  sha256: string;
  mode: number;
}

export interface SeaManifest {
  /** Names the tree's directory: package version and a hash of every file. */
  id: string;
  files: SeaFile[];
  /** Native addon (tree path) by the package directory that loads it, e.g. node_modules/lmdb. */
  addons: Record<string, string>;
}

/** What a worker thread inherits from the main thread (worker_threads environment data). */
interface Tree {
  root: string;
  addons: Record<string, string>;
}

/** SEA asset holding the SeaManifest (written by scripts/build_binary.mjs). */
export const manifest_asset = 'ticketing-sea-manifest.json';

const tree_key = 'ticketing.sea.tree';
let tree: Tree | undefined;

/** The extracted tree: prepared on first use in the main thread, inherited by worker threads. */
function current(): Tree {
  if (tree === undefined) {
    if (isMainThread) {
      const manifest = JSON.parse(sea.getAsset(manifest_asset, 'utf8')) as SeaManifest;
      tree = { root: prepare_tree(manifest), addons: manifest.addons };
      setEnvironmentData(tree_key, tree);
    } else {
      const inherited = getEnvironmentData(tree_key) as Tree | undefined;
      if (inherited === undefined) throw new Error('worker thread started without the embedded files of the main thread');
      tree = inherited;
    }
  }
  return tree;
}

/** Prepares the tree (main thread); throws, naming each directory tried, if none is usable. */
export function sea_root(): string {
  return current().root;
}

/** Stands in for `import.meta.url` of the module compiled to `path` (relative to the tree). */
export function sea_url(path: string): string {
  return pathToFileURL(join(current().root, path)).href;
}

/** Stands in for `__dirname` / `__filename` of the module at `path` (relative to the tree). */
export function sea_path(path: string): string {
  return join(current().root, path);
}

/**
 * Loads the native addon of the package at `package_dir` (a directory in the tree): what the
 * bundles call in place of node-gyp-build-optional-packages (src/binary/load_addon.ts).
 */
export function load_addon(package_dir: string, { root, addons }: Tree = current()): unknown {
  const key = relative(root, package_dir).split(sep).join('/');
  const addon = addons[key];
  if (addon === undefined) throw new Error(`no native addon embedded for ${key}`);
  const module = { exports: {} as unknown };
  process.dlopen(module, join(root, addon));
  return module.exports;
}

/** Parent directories for the tree, best first. */
function cache_candidates(env = process.env): string[] {
  const given = env['TICKETING_CACHE_DIR'];
  if (given !== undefined && given !== '') return [resolve(given)];
  const out: string[] = [];
  const xdg = env['XDG_CACHE_HOME'];
  if (xdg !== undefined && isAbsolute(xdg)) out.push(join(xdg, 'ticketing'));
  let home = '';
  try {
    home = homedir();
  } catch {
    // no home directory: the temporary directory below
  }
  if (home !== '') out.push(join(home, '.cache', 'ticketing'));
  out.push(join(tmpdir(), `ticketing-${process.getuid?.() ?? 'user'}`));
  return out;
}

/** mkdir -p, each new directory 0700. (Node's recursive mkdir spins forever where mkdir says
 * ENOENT under an existing parent, as in /proc.) */
function make_dirs(dir: string): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw error;
    make_dirs(dirname(dir));
    mkdirSync(dir, { mode: 0o700 });
  }
}

/** Creates `dir` (0700) if needed and refuses one that others could write to. */
function private_dir(dir: string): string {
  make_dirs(dir);
  const stat = lstatSync(dir);
  if (!stat.isDirectory()) throw new Error(`${dir} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) throw new Error(`${dir} belongs to uid ${stat.uid}, not to this user (${uid})`);
  if ((stat.mode & 0o022) !== 0) throw new Error(`${dir} is writable by group or others (mode ${(stat.mode & 0o777).toString(8)})`);
  return dir;
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function intact(manifest: SeaManifest, dir: string): boolean {
  for (const file of manifest.files) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(join(dir, file.path));
    } catch {
      return false;
    }
    if (sha256(bytes) !== file.sha256) return false;
  }
  return true;
}

function write_tree(manifest: SeaManifest, parent: string): string {
  const staging = mkdtempSync(join(parent, '.staging-'));
  try {
    for (const file of manifest.files) {
      const bytes = new Uint8Array(sea.getAsset(file.path));
      if (sha256(bytes) !== file.sha256) throw new Error(`embedded ${file.path} does not match its hash`);
      const target = join(staging, file.path);
      make_dirs(dirname(target));
      writeFileSync(target, bytes, { mode: file.mode });
      chmodSync(target, file.mode);
    }
    const final = join(parent, manifest.id);
    try {
      renameSync(staging, final);
    } catch {
      // Another process put a tree there first, or a damaged one is in the way.
      if (!intact(manifest, final)) {
        rmSync(final, { recursive: true, force: true });
        renameSync(staging, final);
      }
    }
    return final;
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
}

/** Staging directories left by a start that was killed while writing (older than an hour). */
function remove_stale_staging(parent: string): void {
  for (const name of readdirSync(parent)) {
    if (!name.startsWith('.staging-')) continue;
    try {
      if (Date.now() - lstatSync(join(parent, name)).mtimeMs > 3_600_000) rmSync(join(parent, name), { recursive: true, force: true });
    } catch {
      // gone already, or not ours to judge: leave it
    }
  }
}

function prepare_tree(manifest: SeaManifest): string {
  const errors: string[] = [];
  for (const candidate of cache_candidates()) {
    try {
      const parent = private_dir(candidate);
      let root = join(parent, manifest.id);
      if (!intact(manifest, root)) {
        rmSync(root, { recursive: true, force: true });
        root = write_tree(manifest, parent);
      }
      // Loading the addons once here finds a noexec mount now, and moves on to the next
      // candidate, rather than as worker threads that die at start.
      for (const dir of Object.keys(manifest.addons)) load_addon(join(root, dir), { root, addons: manifest.addons });
      remove_stale_staging(parent);
      return root;
    } catch (error) {
      errors.push(`${candidate}: ${(error as Error).message}`);
    }
  }
  throw new Error(`no usable directory for the embedded files (set TICKETING_CACHE_DIR to one):\n  ${errors.join('\n  ')}`);
}
