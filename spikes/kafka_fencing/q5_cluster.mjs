// Drives two q5_node processes: SIGSTOP one past its session, SIGCONT it, then kill -9 the other; checks the journal.
import { spawn } from 'node:child_process';
import { kafka, ensureTopics, readAll, sleep } from './common.mjs';
const run = Date.now();
const N = 4, TOPIC = `q5-journal-${run}`, CLUSTER = `q5-cluster-${run}`;
const RF = Number(process.env.RF ?? 1);
await ensureTopics(kafka('q5'), [TOPIC, `${TOPIC}-events`], N, RF, RF > 1 ? [{ name: 'min.insync.replicas', value: '2' }] : []);
const ev = [];
const nodes = {};
const log = (...a) => console.log(new Date().toISOString().slice(11, 23), ...a);
function start(name) {
  const child = spawn(process.execPath, ['q5_node.mjs', CLUSTER, TOPIC, name], { stdio: ['ignore', 'pipe', 'inherit'] });
  nodes[name] = child; let buf = '';
  child.stdout.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); try { const e = JSON.parse(l); ev.push(e); if (e.ev !== 'ACK') log(l); } catch { log(l); } } });
}
const serving = (since) => { const m = new Map(); for (const e of ev.slice(since)) { if (e.ev === 'SERVING') m.set(e.p, e.node); if (e.ev === 'STOP_ALL') for (const p of e.partitions) if (m.get(p) === e.node) m.delete(p); if (e.ev === 'FENCED' && m.get(e.p) === e.node) m.delete(e.p); } return m; };
const until = async (pred, ms = 60000) => { const d = Date.now() + ms; while (!pred()) { if (Date.now() > d) throw new Error('timeout'); await sleep(20); } };
start('A'); start('B');
await until(() => { const s = serving(0); return s.size === N && new Set(s.values()).size === 2; });
await sleep(3000);
// 1. SIGSTOP A past its session timeout
let from = ev.length; let t0 = Date.now();
nodes.A.kill('SIGSTOP'); log('>>> SIGSTOP A');
await until(() => { const s = serving(from); return [...Array(N).keys()].every((p) => s.get(p) === 'B' || (ev.slice(0, from).filter((e) => e.ev === 'SERVING' && e.p === p).at(-1)?.node === 'B' && !ev.slice(from).some((e) => e.node === 'B' && e.ev === 'STOP_ALL'))); });
const tStopTakeover = Date.now() - t0; log(`>>> B serves all partitions ${tStopTakeover} ms after SIGSTOP A`);
await sleep(3000);
from = ev.length; t0 = Date.now();
nodes.A.kill('SIGCONT'); log('>>> SIGCONT A');
const tCont = Date.now();
await sleep(10000);
// 2. kill -9 B
from = ev.length; t0 = Date.now();
nodes.B.kill('SIGKILL'); log('>>> kill -9 B');
await until(() => { const s = serving(from); const before = serving(0); return [...Array(N).keys()].every((p) => s.get(p) === 'A' || (before.get(p) === 'A' && !ev.slice(from).some((e) => e.node === 'A' && e.ev === 'STOP_ALL'))); });
const tKill = Date.now() - t0; log(`>>> A serves all partitions ${tKill} ms after kill -9 B`);
await sleep(2000);
nodes.A.kill('SIGTERM'); await sleep(1500);
// checks
const acks = ev.filter((e) => e.ev === 'ACK');
const journal = (await readAll(kafka('check'), [TOPIC])).map((m) => ({ p: m.partition, offset: Number(m.offset), ...JSON.parse(m.value) }));
const inJournal = new Set(journal.map((r) => r.id));
const lost = acks.filter((a) => !inJournal.has(a.id));
let stale = 0; const byP = new Map();
for (const r of journal.sort((a, b) => a.p - b.p || a.offset - b.offset)) { const n = byP.get(r.p) ?? 0; if (r.basedOn !== n) { stale++; if (stale < 5) log('STALE', JSON.stringify(r), 'expected basedOn', n); } byP.set(r.p, n + 1); }
const aAfterCont = acks.filter((a) => a.node === 'A' && a.t >= tCont);
const firstAJoinAfterCont = ev.find((e) => e.node === 'A' && e.ev === 'JOIN' && e.t >= tCont);
const zombieAcks = aAfterCont.filter((a) => !firstAJoinAfterCont || a.t < firstAJoinAfterCont.t);
const fenced = ev.filter((e) => e.ev === 'FENCED');
log(JSON.stringify({ acks: acks.length, journal_records: journal.length, acked_but_lost: lost.length, records_with_stale_basedOn: stale, A_acks_after_SIGCONT_before_its_rejoin: zombieAcks.length, fenced_events: fenced.map((f) => `${f.node} p${f.p} ${f.error.slice(0, 60)}`), failover_ms: { sigstop_to_B_serving_all: tStopTakeover, kill9_to_A_serving_all: tKill } }, null, 1));
process.exit(0);
