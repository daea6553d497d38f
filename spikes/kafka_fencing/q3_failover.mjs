// Q3: two consumers (processes) in one group, N partitions; kill -9 (or SIGTERM / SIGSTOP) one, time until the other owns all.
import { spawn } from 'node:child_process';
import { kafka, ensureTopics, sleep } from './common.mjs';
const MODE = process.argv[2] ?? 'kill'; // kill | term | stop
const ROUNDS = Number(process.argv[3] ?? 5);
const MAXWAIT = process.argv[4] ?? '5000';
const N = 6;
const run = Date.now();
const TOPIC = `q3-journal-${run}`, GROUP = `q3-group-${run}`;
await ensureTopics(kafka('q3'), [TOPIC], N);
const members = new Map(); // name -> {child, assignment}
const events = [];
function start(name) {
  const child = spawn(process.execPath, ['q3_member.mjs', GROUP, TOPIC, name, MAXWAIT], { stdio: ['ignore', 'pipe', 'inherit'] });
  const m = { child, name, assignment: [] };
  members.set(name, m);
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d; let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i); buf = buf.slice(i + 1);
      try { const e = JSON.parse(line); events.push(e); if (e.ev === 'GROUP_JOIN') m.assignment = e.assignment; if (process.env.V) console.log(line); } catch { console.log(line); }
    }
  });
  return m;
}
const until = async (pred, ms = 60000) => { const d = Date.now() + ms; while (!pred()) { if (Date.now() > d) throw new Error('timeout'); await sleep(20); } };
const times = [];
start('n0'); start('n1');
let next = 2;
for (let r = 0; r < ROUNDS; r++) {
  const live = [...members.values()];
  await until(() => live.every((m) => m.assignment.length === N / 2));
  await sleep(1500);
  const [victim, survivor] = live;
  const from = events.length;
  const t0 = Date.now();
  if (MODE === 'kill') victim.child.kill('SIGKILL');
  else if (MODE === 'term') victim.child.kill('SIGTERM');
  else victim.child.kill('SIGSTOP');
  await until(() => survivor.assignment.length === N);
  const t1 = Date.now();
  const reb = events.slice(from).find((e) => e.name === survivor.name && e.ev === 'REBALANCING');
  const join = events.slice(from).find((e) => e.name === survivor.name && e.ev === 'GROUP_JOIN' && e.assignment.length === N);
  const line = { round: r, mode: MODE, maxWaitTimeInMs: Number(MAXWAIT), signal_to_survivor_REBALANCING_ms: reb ? reb.t - t0 : null, signal_to_survivor_GROUP_JOIN_all_ms: join.t - t0, join_duration_ms: join.duration };
  if (MODE === 'stop') {
    await sleep(3000);
    const tc = Date.now();
    victim.child.kill('SIGCONT');
    const f2 = events.length;
    await until(() => events.slice(f2).some((e) => e.name === victim.name && e.ev === 'GROUP_JOIN'));
    const ve = events.slice(f2).filter((e) => e.name === victim.name);
    line.after_SIGCONT = ve.map((e) => `${e.ev}${e.assignment ? JSON.stringify(e.assignment) : ''}+${e.t - tc}ms`).join(' ');
    await until(() => live.every((m) => m.assignment.length === N / 2));
    line.zombie_window_ms_SIGCONT_to_REBALANCING = (ve.find((e) => e.ev === 'REBALANCING')?.t ?? NaN) - tc;
    members.delete(victim.name); members.set(victim.name, victim); // keep order rotating
    // rotate roles: make the other one the victim next time
    const a = members.get(survivor.name); members.delete(survivor.name); members.set(survivor.name, a);
    const v = members.get(victim.name); members.delete(victim.name); members.set(victim.name, v);
  } else {
    members.delete(victim.name);
    start(`n${next++}`);
  }
  console.log(JSON.stringify(line));
  times.push(line.signal_to_survivor_GROUP_JOIN_all_ms);
}
times.sort((a, b) => a - b);
console.log(`${MODE} maxWait=${MAXWAIT}: failover ms (signal -> survivor GROUP_JOIN with all ${N}) sorted: ${times.join(', ')}; p50=${times[Math.floor(times.length / 2)]} max=${times.at(-1)}`);
for (const m of members.values()) { m.child.kill('SIGCONT'); m.child.kill('SIGKILL'); }
process.exit(0);
