// Worker-thread script of the single executable: worker_main with the ticketing behaviour
// bundled in. Unpacked as dist/src/runtime/worker_main.js in the tree (src/binary/layout.ts), so
// src/runtime/pool.ts starts it unchanged. worker_main loads the behaviour by URL,
// dist/src/actors/behaviour.js; in the tree that file is a stub handing over this script's
// copy (exported below), so behaviour and runtime share one set of modules, as in dist/.
export { behaviour } from '../actors/behaviour.js';
import '../runtime/worker_main.js';
