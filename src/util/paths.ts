// Where the files shipped beside the code live. The gRPC edge loads its services from proto/
// and the Kafka codec its event messages: both read the same files, neither owns them.
import { fileURLToPath } from 'node:url';

/** proto/ at the package root (this file runs as dist/src/util/paths.js). */
export const proto_root = fileURLToPath(new URL('../../../proto/', import.meta.url));
