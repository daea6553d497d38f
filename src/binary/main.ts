// Main script of the single executable (npm run build:binary): the `ticketing` command line.
// Bundled to CommonJS by scripts/build_binary.mjs; see src/binary/layout.ts for the files it
// unpacks at start.
import { sea_root } from './layout.js';

try {
  sea_root();
} catch (error) {
  process.stderr.write(`ticketing: ${(error as Error).message}\n`);
  process.exit(2);
}
// Loaded only now, so that nothing reads an embedded file before the tree is in place.
import('../cli/main.js').then(({ main }) => main(process.argv.slice(2)));
