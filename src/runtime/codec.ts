// The one msgpackr codec of the runtime: journal records, snapshots and outbox records are stored
// in its encoding, and thread messages (protocol.ts) travel in it. On disk it is the format:
// changing an option here changes what every existing data dir and backup decodes to.
import { Packr } from 'msgpackr';

export const packr = new Packr({ moreTypes: true, structuredClone: false });
