// Single-executable build: injected by the bundler into every module whose `import.meta.url`,
// `__dirname` or `__filename` it rewrote (scripts/build_binary.mjs), so those modules see their
// place in the extracted tree (src/binary/layout.ts).
export { sea_path as __ticketing_sea_path, sea_url as __ticketing_sea_url } from './layout.js';
