#!/usr/bin/env node
// Hand-written mutants of the core rules, each applied to a copy of the build (dist/ copied to
// a temporary directory, one textual replacement in one compiled .js file, which must match
// exactly once), then run against the test files that should kill it. Reports which mutants die
// and by which test; exits 1 if any survives, or if a replacement no longer matches (the code
// moved: update the mutant), or if a listed test file fails on the unmutated copy.
//
// Usage: npm run mutants [-- NAME...]   (names select mutants; default all)
// Why not StrykerJS: its thousands of generated mutants against this suite (real LMDB files,
// worker threads, property runs) would take hours on 2 cores; these target the rules that lose
// or invent sales and money, and each names the tests expected to catch it.
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export const mutants = [
  {
    name: 'gateway-declines-every-card',
    why: 'the sandbox gateway declines tok_visa and tok_mastercard',
    file: 'src/purchase/sandbox_gateway.js',
    from: "if (rule === 'approve') {",
    to: 'if (false) {',
    tests: ['test/purchase/purchase.property.test.js', 'test/purchase/sandbox_gateway.test.js'],
  },
  {
    name: 'seat-free-check-skipped-in-hold',
    why: 'ReserveTickets/CreateDraft do not check that the seats are free',
    file: 'src/actors/inventory.js',
    from: 'if (check.taken.length > 0) {',
    to: 'if (false) {',
    tests: ['test/actors/inventory.test.js'],
  },
  {
    name: 'seat-free-check-skipped-in-retake',
    why: 'ConfirmOrder of a lapsed draft retakes its seats without checking they are free',
    file: 'src/actors/orders.js',
    from: 'if (seats.taken.length > 0) {',
    to: 'if (false) {',
    tests: ['test/actors/orders.test.js', 'test/purchase/purchase.property.test.js'],
  },
  {
    name: 'promo-expiry-ignored-in-retake',
    why: 'ConfirmOrder retakes a lapsed draft\'s seats with a promo that expired since',
    file: 'src/actors/orders.js',
    from: "return promo.k === 'expired' ? promo.message : null;",
    to: 'return null;',
    tests: ['test/actors/orders.test.js'],
  },
  {
    name: 'hold-expires-one-ttl-late',
    why: 'a hold expires at twice its TTL',
    file: 'src/actors/inventory.js',
    from: 'expires_at_ms: ctx.now_ms + hold.ttl_s * 1000,',
    to: 'expires_at_ms: ctx.now_ms + 2 * hold.ttl_s * 1000,',
    tests: ['test/actors/inventory.test.js', 'test/actors/inventory.property.test.js'],
  },
  {
    name: 'ga-capacity-unchecked',
    why: 'ReserveGeneralAdmission holds more places than the area has left',
    file: 'src/actors/selection.js',
    from: 'if (left < quantity) {',
    to: 'if (false) {',
    tests: ['test/actors/selection.test.js', 'test/actors/selection.property.test.js'],
  },
  {
    name: 'best-available-strands-seats',
    why: 'best available takes a block nearest the centre even when it strands a single seat',
    file: 'src/actors/selection.js',
    from: 'strands_none(run_l, run_r, s, q)',
    to: 'true',
    tests: ['test/actors/selection.oracle.test.js'],
  },
  {
    name: 'extend-past-life-cap',
    why: 'ExtendHold extends a hold beyond hold_life_seconds_max',
    file: 'src/actors/inventory.js',
    from: 'Math.min(hold.expires_at_ms + s * 1000, life_end_ms)',
    to: 'hold.expires_at_ms + s * 1000',
    tests: ['test/actors/lifecycle.test.js'],
  },
  {
    name: 'returned-seat-stays-sold',
    why: 'ReturnSeats owes the refund but leaves the seats sold',
    file: 'src/actors/inventory.js',
    from: "'a returned seat was sold to its order');\n        set_seat(event, seat, SEAT_FREE, -1);",
    to: "'a returned seat was sold to its order');",
    tests: ['test/actors/lifecycle.test.js'],
  },
  {
    name: 'seat-change-not-logged',
    why: 'a seat change never reaches WatchAvailability\'s change log',
    file: 'src/actors/seat_change.js',
    from: 'changes_on_change(event, index, seat_state);',
    to: '',
    tests: ['test/actors/change_log.test.js'],
  },
  {
    name: 'refund-cap-off-by-one',
    why: 'a refund of one micro more than is left is accepted',
    file: 'src/actors/payments.js',
    from: 'if (req.amount_micros > refundable) {',
    to: 'if (req.amount_micros > refundable + 1) {',
    tests: ['test/purchase/purchase.property.test.js'],
  },
  {
    name: 'reply-before-durable-commit',
    why: 'the host releases replies without waiting for their commit',
    file: 'src/runtime/host.js',
    from: 'this.reply_chain.then(() => durable)',
    to: 'this.reply_chain.then(() => undefined)',
    tests: ['test/runtime/host.test.js'],
  },
  {
    name: 'idempotency-key-ignored',
    why: 'Authorize and Refund ignore their idempotency-key',
    file: 'src/actors/payments.js',
    from: "function idempotent(state, key, fingerprint) {\n    if (key === '')",
    to: 'function idempotent(state, key, fingerprint) {\n    if (true)',
    tests: ['test/purchase/purchase.property.test.js', 'test/purchase/purchases.test.js'],
  },
  {
    name: 'outbox-deleted-before-broker-ack',
    why: 'the emitter deletes a round from the outbox before the broker acknowledged it',
    file: 'src/kafka/emitter.js',
    from: 'if (round.events.length > 0 && !(await this.send(round.events))) {',
    to: 'await this.acknowledge(round.acks);\n            if (round.events.length > 0 && !(await this.send(round.events))) {',
    tests: ['test/kafka/emitter.test.js'],
  },
  {
    name: 'queue-token-used-twice',
    why: 'the hold gate does not check that the admission token is unused (a replay holds again)',
    file: 'src/actors/queue_gate.js',
    from: 'if (queue.entries.used[ticket.seq] !== 0) {',
    to: 'if (false) {',
    tests: ['test/actors/queue.property.test.js', 'test/actors/queue.test.js'],
  },
  {
    name: 'queue-token-any-user',
    why: 'the hold gate accepts another user\'s admission token (the MAC binding is not checked)',
    file: 'src/actors/queue_gate.js',
    from: 'if (!token_mac_ok(queue.keys.token_key, parts, user_id, event_id)) {',
    to: 'if (false) {',
    tests: ['test/actors/queue.property.test.js', 'test/actors/queue.test.js'],
  },
  {
    name: 'queue-token-never-expires',
    why: 'the hold gate accepts an admission token past its admission_ttl_seconds',
    file: 'src/actors/queue_gate.js',
    from: 'if (now_ms >= parts.expires_at_ms) {',
    to: 'if (false) {',
    tests: ['test/actors/queue.property.test.js', 'test/actors/queue.test.js'],
  },
  {
    name: 'queue-banks-admissions',
    why: 'a waiting room that ran dry admits the whole idle time\'s worth in one burst',
    file: 'src/actors/queue.js',
    from: 'if (queue.caught_up)',
    to: 'if (false)',
    tests: ['test/actors/queue.test.js'],
  },
  {
    name: 'queue-draw-ignores-receipts',
    why: 'the draw does not depend on the early receipts\' chain (the node could add entries unseen)',
    file: 'src/actors/queue_records.js',
    from: 'draw_order(queue.keys.seed, head, n)',
    to: 'draw_order(queue.keys.seed, queue.keys.seed.subarray(0, 32), n)',
    tests: ['test/actors/queue_fairness.test.js'],
  },
  {
    name: 'emitter-cursor-kept-across-restart',
    why: 'the emitter thread keeps its cursors when a worker restarts: entries the dead worker had marked delivered but not deleted stay in its outbox forever',
    file: 'src/kafka/cursor_source.js',
    from: 'this.generation[worker]++;\n        this.reset(worker);',
    to: 'this.generation[worker]++;',
    tests: ['test/kafka/cursor_source.test.js'],
  },
  {
    name: 'emitter-cursor-moved-by-stale-round',
    why: 'an acknowledgement of a round read before a worker restart moves the cursors past entries that must be sent again',
    file: 'src/kafka/cursor_source.js',
    from: 'if (this.read_generation[worker] === this.generation[worker]) {',
    to: 'if (true) {',
    tests: ['test/kafka/cursor_source.test.js'],
  },
  {
    name: 'snapshot-install-deletes-uncovered-journal',
    why: 'installing a background snapshot at seq S deletes the journal record after S, which the snapshot does not cover',
    file: 'src/runtime/store.js',
    from: 'end: [p, seq + 1]',
    to: 'end: [p, seq + 2]',
    tests: ['test/runtime/compaction.test.js'],
  },
];

/** A copy of the build that resolves packages from the repository's node_modules. */
function copy_build() {
  const dir = mkdtempSync(join(tmpdir(), 'ticketing-mutant-'));
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), readFileSync(join(root, 'package.json')));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  symlinkSync(join(root, 'proto'), join(dir, 'proto'), 'dir');
  return dir;
}

function apply(dir, mutant) {
  const path = join(dir, 'dist', mutant.file);
  const text = readFileSync(path, 'utf8');
  const count = text.split(mutant.from).length - 1;
  if (count !== 1) throw new Error(`mutant ${mutant.name}: ${mutant.file} has ${count} matches of its text (expected exactly 1); update the mutant`);
  writeFileSync(path, text.replace(mutant.from, mutant.to));
}

/** Runs one test file; resolves { passed, failed_test, output }. */
function run_file(dir, file) {
  return new Promise((resolve_run) => {
    const child = spawn(process.execPath, [join(dir, 'dist', file)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code, signal) => {
      const plain = output.replace(/\x1b\[[0-9;]*m/g, '');
      const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? -1);
      const passed_n = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? -2);
      const fail = /FAIL\s+"([^"]+)"\n\s*(.*)/.exec(plain);
      const failed_test = fail !== null ? `${fail[1]}: ${fail[2].slice(0, 200)}` : (code !== 0 ? `exit ${code ?? signal} (${plain.trim().split('\n').find((l) => /Error/.test(l))?.trim() ?? 'no test named'})` : '');
      resolve_run({ passed: code === 0 && total === passed_n && total > 0, failed_test, output: plain });
    });
  });
}

async function main() {
  const wanted = process.argv.slice(2);
  const chosen = wanted.length === 0 ? mutants : mutants.filter((m) => wanted.includes(m.name));
  if (chosen.length === 0) throw new Error(`no mutant named ${wanted.join(', ')}; known: ${mutants.map((m) => m.name).join(', ')}`);
  const started = Date.now();
  // The listed tests must pass on the unmutated build, or a "kill" would mean nothing.
  const baseline = copy_build();
  try {
    for (const file of new Set(chosen.flatMap((m) => m.tests))) {
      const r = await run_file(baseline, file);
      if (!r.passed) {
        console.error(r.output);
        throw new Error(`${file} fails on the unmutated build: fix it before running mutants`);
      }
    }
  } finally {
    rmSync(baseline, { recursive: true, force: true });
  }
  let survived = 0;
  for (const mutant of chosen) {
    const dir = copy_build();
    const t0 = Date.now();
    try {
      apply(dir, mutant);
      let killer = null;
      for (const file of mutant.tests) {
        const r = await run_file(dir, file);
        if (!r.passed) { killer = { file, test: r.failed_test }; break; }
      }
      const s = ((Date.now() - t0) / 1000).toFixed(1);
      if (killer === null) {
        survived++;
        console.log(`SURVIVED ${mutant.name} (${mutant.why}): ${mutant.tests.join(', ')} all pass  [${s} s]`);
      } else {
        console.log(`killed   ${mutant.name} (${mutant.why}) by ${killer.file}: ${killer.test}  [${s} s]`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`mutants: ${chosen.length - survived} killed, ${survived} survived, ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (survived > 0) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
