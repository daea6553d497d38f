// Single-executable build: replaces node-gyp-build-optional-packages in the bundles (the
// bundler redirects that import here). lmdb calls it with its package directory, which in the
// executable is node_modules/lmdb inside the extracted tree (src/binary/layout.ts); the addon for
// it was chosen at build time for the Node that became the executable.
import { load_addon } from './layout.js';

export default function load_napi(package_dir: string): unknown {
  return load_addon(package_dir.replace(/[\\/]+$/, ''));
}
