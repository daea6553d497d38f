// The waiting room end to end (issue 16 "Tests that must exist"), against a spawned
// `ticketing serve --test-clock`, with clients generated from the protos: 10,000 buyers join
// before the start; at the start they are drawn, and admitted at the rate as the test clock
// steps; each admitted buyer holds a seat with its token; a buyer without a token, with
// another's, with a used one or an expired one is refused; the sale ends sold out, and nothing
// is sold to a buyer who was not admitted. Fairness from the outside: a client recomputes every
// early position from the revealed seed and the receipts, and a changed receipt is detected.
// kill -9 and restart: the queue, the draw and the used tokens survive.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { load_secret, sign_token } from '../../src/auth/token.js';
import { guarded_after } from '../guard.js';
import {
  bin, cleanup, code_of, grpc, guarded_setup, kill9, start_server, stop, temp_dir, token,
  type Guarded, type Server,
} from './harness.js';
import {
  check_receipts, each, early_positions, queue_clients, type QueueClients, type Reply,
  type WireReceipt,
} from './queue_clients.js';

const S = grpc.status;
const event_id = 'evt-onsale';
const buyers = 10_000;
/** 2,400 seats for 10,000 buyers: the sale sells out after the first 2,400 positions. */
const rows = { sections: 4, rows: 20, seats: 30 };
const seat_count = rows.sections * rows.rows * rows.seats;
const admit_per_minute = 2_000;
const ttl_s = 900;
const concurrency = 64;
/** Bounded waits for what a partition timer does after the clock moved (each poll 100 ms). */
const polls_max = 300;

interface Buyer { user: string; bearer: string; ticket: string; receipt: WireReceipt; seq: number; position: number }

interface Ctx extends Guarded {
  dir: string; server: Server; q: QueueClients; admin: string; svc: string;
  start_ms: number; buyers: Buyer[]; commitment: string; fairness: Reply;
  /** Buyers that hold a seat, by user, with their token (used). */
  held: Map<string, { hold_id: string; token: string; position: number }>;
}

const t = suite<Ctx>('waiting room e2e');

function event_wire() {
  const sections = Array.from({ length: rows.sections }, (_, s) => ({
    name: `S${s + 1}`,
    rows: Array.from({ length: rows.rows }, (_, r) => ({ name: `R${r + 1}`, seats: rows.seats, tier: 'A' })),
  }));
  return {
    event_id, name: 'On-sale', starts_at_unix: '1900000000', currency: 'EUR',
    price_tiers: { A: '50000000' }, sections, max_seats_per_user: 4, promo_codes: [],
  };
}

function seat_of(i: number): string {
  const per_section = rows.rows * rows.seats;
  const s = Math.floor(i / per_section);
  const r = Math.floor((i % per_section) / rows.seats);
  return `S${s + 1}-R${r + 1}-${(i % rows.seats) + 1}`;
}

async function clock_ms(ctx: Ctx): Promise<number> {
  return Number((await ctx.q.advance({ millis: '0' }, ctx.admin))['now_unix_ms']);
}

async function wait_for(what: string, probe: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < polls_max; i++) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${what}: not reached after ${polls_max} polls`);
}

guarded_setup(t, async (ctx) => {
  ctx.dir = temp_dir('queue');
  ctx.server = await start_server(ctx.dir, ['--test-clock', '--workers', '2', '--partitions', '4', '--rate-ip', '0']);
  ctx.q = queue_clients(ctx.server.grpc_port);
  ctx.admin = token(ctx.dir, 'ops', 'admin');
  ctx.svc = token(ctx.dir, 'orders', 'service');
  ctx.held = new Map();
  await ctx.q.create_event({ event: event_wire() }, ctx.admin);
});

guarded_after(t, async (ctx) => {
  if (ctx.server === undefined) return;
  ctx.q?.close();
  if (ctx.server.process.exitCode === null) assert.is(await stop(ctx.server), 0, 'SIGTERM exits 0');
  cleanup(ctx.dir);
});

t('configure: the seed is committed before anyone joins; 10,000 buyers join before the start', async (ctx) => {
  const now_s = Math.floor((await clock_ms(ctx)) / 1000);
  ctx.start_ms = (now_s + 3600) * 1000;
  const settings = {
    event_id, opens_at_unix: String(now_s), sale_starts_at_unix: String(now_s + 3600),
    admit_per_minute, admission_ttl_seconds: ttl_s, service_bypass: false,
  };
  const configured = await ctx.q.configure(settings, ctx.admin);
  assert.is(configured['created'], true);
  ctx.commitment = String(configured['seed_commitment']);
  assert.match(ctx.commitment, /^[0-9a-f]{64}$/);
  assert.is((await ctx.q.configure(settings, ctx.admin))['created'], false, 'the same settings: idempotent');
  const before = await ctx.q.fairness({ event_id }, ctx.svc);
  assert.equal([before['seed'], before['drawn'], before['seed_commitment']], ['', false, ctx.commitment]);

  const secret = load_secret(ctx.dir, process.env, false);
  const users = Array.from({ length: buyers }, (_, i) => `b${String(i).padStart(5, '0')}`);
  ctx.buyers = await each(buyers, concurrency, async (i) => {
    const bearer = sign_token(secret, { user_id: users[i]!, role: 'customer' }, 3600);
    const r = await ctx.q.join({ event_id, user_id: users[i], device_id: `phone-${i}` }, bearer);
    assert.is(r['created'], true);
    const receipt = r['receipt'] as WireReceipt;
    return { user: users[i]!, bearer, ticket: String(r['ticket_id']), receipt, seq: Number(receipt.seq), position: 0 };
  });
  const seqs = ctx.buyers.map((b) => b.seq).sort((a, b) => a - b);
  assert.ok(seqs.every((s, i) => s === i + 1), 'seqs are 1..10,000, each once');
  // A repeat returns the same entry and a byte-identical receipt.
  const b0 = ctx.buyers[0]!;
  const again = await ctx.q.join({ event_id, user_id: b0.user, device_id: 'phone-0' }, b0.bearer);
  assert.equal([again['created'], again['ticket_id']], [false, b0.ticket]);
  assert.equal((again['receipt'] as WireReceipt).signature, b0.receipt.signature);
  assert.is((again['receipt'] as WireReceipt).body, b0.receipt.body);
  const p = await ctx.q.position({ ticket_id: b0.ticket }, b0.bearer);
  assert.equal([p['position'], p['drawn'], p['admitted'], p['admission_token']], ['0', false, false, '']);
  // Before the start nobody holds: the event sells through its queue.
  const refused = await code_of(ctx.q.reserve({ event_id, seat_ids: [seat_of(0)], user_id: b0.user, hold_ttl_seconds: '600' }, b0.bearer));
  assert.is(refused.code, S.FAILED_PRECONDITION);
  assert.match(refused.details, /join it \(ticketing\.queue\.v1\.QueueService\/Join\)/);
});

t('the start: the draw, and fairness recomputed from the outside', async (ctx) => {
  await ctx.q.advance({ millis: String(ctx.start_ms - (await clock_ms(ctx))) }, ctx.admin);
  await wait_for('the draw', async () => (await ctx.q.fairness({ event_id }, ctx.svc))['drawn'] === true);
  const f = await ctx.q.fairness({ event_id }, ctx.svc);
  ctx.fairness = f;
  assert.is(createHash('sha256').update(Buffer.from(String(f['seed']), 'hex')).digest('hex'), ctx.commitment,
    'the revealed seed is the one committed to before the queue opened');
  assert.is(f['early_count'], String(buyers));
  assert.is(f['early_chain_head'], ctx.buyers.find((b) => b.seq === buyers)!.receipt.chain);
  const receipts = ctx.buyers.map((b) => b.receipt);
  assert.is(check_receipts(f, receipts), '', 'every receipt verifies and chains');
  const expected = early_positions(f);
  // Every buyer reads its own position: it is the one recomputed from the seed and receipts.
  const served = await each(buyers, concurrency, async (i) => {
    const b = ctx.buyers[i]!;
    return ctx.q.position({ ticket_id: b.ticket }, b.bearer);
  });
  served.forEach((p, i) => {
    const b = ctx.buyers[i]!;
    b.position = Number(p['position']);
    assert.is(p['drawn'], true);
    assert.is(b.position, expected.get(b.seq), `${b.user}'s served position is the recomputed one`);
  });
  const positions = ctx.buyers.map((b) => b.position).sort((a, b) => a - b);
  assert.ok(positions.every((x, i) => x === i + 1), 'positions are a permutation of 1..10,000');
});

t('a changed receipt is detected, by its signature and by the chain', (ctx) => {
  const receipts = ctx.buyers.map((b) => ({ ...b.receipt }));
  const victim = receipts.find((r) => r.seq === '5000')!;
  const tamper = (change: (r: WireReceipt) => void): string => {
    const copy = receipts.map((r) => ({ ...r }));
    change(copy.find((r) => r.seq === victim.seq)!);
    return check_receipts(ctx.fairness, copy);
  };
  const other_hash = createHash('sha256').update(`${event_id}|mallory|x`).digest('hex');
  // A changed field without a new signature: the body no longer repeats it, or the signature fails.
  assert.match(tamper((r) => { r.user_hash = other_hash; }), /seq 5000/);
  assert.match(tamper((r) => { r.body = r.body.replace(r.user_hash, other_hash); r.user_hash = other_hash; }), /bad signature/);
  const sig = Buffer.from(victim.signature);
  sig[0] = sig[0]! ^ 1;
  assert.match(tamper((r) => { r.signature = sig; }), /bad signature/);
  // Dropping an entry breaks the sequence; the seed recomputation then cannot be trusted.
  assert.match(check_receipts(ctx.fairness, receipts.filter((r) => r !== victim)), /seq 5001 where 5000 was due/);
  // A different seed (a node that moved someone) gives other positions than those served.
  const forged = early_positions({ ...ctx.fairness, seed: '00'.repeat(32) });
  const b = ctx.buyers[0]!;
  assert.is.not(forged.get(b.seq) === b.position && forged.get(ctx.buyers[1]!.seq) === ctx.buyers[1]!.position, true);
});

/** Admitted so far, read from the position of the buyer last in line. */
async function admitted_count(ctx: Ctx): Promise<number> {
  const last = ctx.buyers.find((b) => b.position === buyers)!;
  return Number((await ctx.q.position({ ticket_id: last.ticket }, last.bearer))['admitted_count']);
}

/** Steps the clock a minute and waits for the tick: admitted grows by the rate, never more
 *  than the rate allows for the server clock's elapsed time since the start. */
async function step_minute(ctx: Ctx, minutes: number): Promise<number> {
  await ctx.q.advance({ millis: '60000' }, ctx.admin);
  await wait_for(`${minutes} min of admission`, async () => (await admitted_count(ctx)) >= admit_per_minute * minutes);
  const admitted = await admitted_count(ctx);
  const elapsed_ms = (await clock_ms(ctx)) - ctx.start_ms;
  assert.ok(admitted >= admit_per_minute * minutes, `${admitted} admitted after ${minutes} min`);
  assert.ok(admitted <= Math.floor(admit_per_minute * elapsed_ms / 60_000),
    `${admitted} admitted is within the rate for ${elapsed_ms} ms of server time`);
  return admitted;
}

/** The positions of the buyers `within` the first n positions (all: every buyer), each
 *  admitted exactly when its position is within the admitted count. Indexed like ctx.buyers
 *  (undefined where not read). */
async function check_order(ctx: Ctx, within = buyers): Promise<Reply[]> {
  const chosen = ctx.buyers.map((b, i) => ({ b, i })).filter(({ b }) => b.position <= within || b.position % 97 === 0);
  const read = new Array<Reply>(buyers);
  await each(chosen.length, concurrency, async (k) => {
    const { b, i } = chosen[k]!;
    read[i] = await ctx.q.position({ ticket_id: b.ticket }, b.bearer);
  });
  for (const p of read) {
    if (p === undefined) continue;
    const admitted = Number(p['position']) <= Number(p['admitted_count']);
    assert.is(p['admitted'], admitted, `position ${p['position']} of ${p['admitted_count']}`);
    assert.is(p['admission_token'] !== '', admitted && p['used'] === false);
  }
  return read;
}

/** Each admitted buyer without a seat yet holds the next free one with its token. */
async function hold_admitted(ctx: Ctx, read: Reply[]): Promise<void> {
  const due = ctx.buyers.map((b, i) => ({ b, p: read[i]! }))
    .filter(({ b, p }) => p !== undefined && p['admitted'] === true && p['used'] === false && !ctx.held.has(b.user))
    .sort((x, y) => x.b.position - y.b.position)
    .filter(({ b }) => b.position <= seat_count);
  await each(due.length, concurrency, async (i) => {
    const { b, p } = due[i]!;
    const token = String(p['admission_token']);
    const hold = await ctx.q.reserve({ event_id, seat_ids: [seat_of(b.position - 1)], user_id: b.user, hold_ttl_seconds: '600' },
      b.bearer, { 'admission-token': token });
    ctx.held.set(b.user, { hold_id: String(hold['hold_id']), token, position: b.position });
    await ctx.q.confirm({ hold_id: hold['hold_id'], order_id: `ord-${b.user}` }, ctx.svc);
  });
}

t('admission at the rate, in position order; admitted buyers hold with their tokens; refusals', async (ctx) => {
  const first = await step_minute(ctx, 1);
  // The admitted ones (and a sample of those waiting); every buyer at the second step.
  let read = await check_order(ctx, first + 100);
  const waiting = ctx.buyers.find((b) => b.position === buyers)!;
  const hold = (b: Buyer, extra: Record<string, string>) => ctx.q.reserve(
    { event_id, seat_ids: [seat_of(seat_count - 1)], user_id: b.user, hold_ttl_seconds: '600' }, b.bearer, extra);
  // An admitted buyer lends its token to one still waiting: refused, and it uses nothing (the
  // lender holds with it below).
  const lender = ctx.buyers.find((b) => b.position === 1)!;
  const lent = String((await ctx.q.position({ ticket_id: lender.ticket }, lender.bearer))['admission_token']);
  assert.ok(lent.length > 0);
  const borrowed = await code_of(hold(waiting, { 'admission-token': lent }));
  assert.is(borrowed.code, S.PERMISSION_DENIED);
  assert.match(borrowed.details, /join the queue/);
  await hold_admitted(ctx, read);
  assert.is(ctx.held.size, Math.min(first, seat_count));
  assert.is(ctx.held.get(lender.user)?.token, lent, 'the lent token still made its own buyer\'s hold');
  const used = [...ctx.held.entries()][0]!;
  const used_by = ctx.buyers.find((b) => b.user === used[0])!;
  const none = await code_of(hold(waiting, {}));
  assert.is(none.code, S.FAILED_PRECONDITION);
  assert.match(none.details, /waiting room: join it/);
  const others = await code_of(hold(waiting, { 'admission-token': used[1].token }));
  assert.is(others.code, S.PERMISSION_DENIED);
  assert.match(others.details, /join the queue/);
  const replay = await code_of(hold(used_by, { 'admission-token': used[1].token }));
  assert.is(replay.code, S.FAILED_PRECONDITION);
  assert.match(replay.details, /join the queue .*again/);
  // The same refusals through the other hold-making RPCs.
  const draft = await code_of(ctx.q.create_draft({ event_id, seat_ids: [seat_of(seat_count - 1)], user_id: waiting.user, idempotency_key: 'k-w' }, waiting.bearer));
  assert.is(draft.code, S.FAILED_PRECONDITION);
  const best = await code_of(ctx.q.best({ event_id, user_id: waiting.user, quantity: 1, hold_ttl_seconds: '600' }, waiting.bearer));
  assert.is(best.code, S.FAILED_PRECONDITION);
  // A service without the admin's bypass needs a token too.
  assert.is((await code_of(ctx.q.reserve({ event_id, seat_ids: [seat_of(seat_count - 1)], user_id: waiting.user, hold_ttl_seconds: '600' }, ctx.svc))).code, S.FAILED_PRECONDITION);

  const second = await step_minute(ctx, 2);
  read = await check_order(ctx);
  await hold_admitted(ctx, read);
  assert.ok(second >= seat_count, 'by now more buyers are admitted than there are seats');
  assert.is(ctx.held.size, seat_count);
  const a = await ctx.q.availability({ event_id }, ctx.svc);
  assert.equal([a['sold'], a['free'], a['held']], [String(seat_count), '0', '0'], 'sold out');
  // Nothing sold to a buyer who was not admitted: every seat went to a position within the count.
  for (const [user, h] of ctx.held) {
    assert.ok(h.position <= second, `${user} at ${h.position} was admitted`);
  }
});

t('kill -9 and restart: the queue, the draw and the used tokens survive', async (ctx) => {
  const before = await ctx.q.fairness({ event_id }, ctx.svc);
  const sample = ctx.buyers.filter((_, i) => i % 97 === 0);
  const positions = await each(sample.length, 16, (i) => ctx.q.position({ ticket_id: sample[i]!.ticket }, sample[i]!.bearer));
  // The restarted node's test clock resumes where this one's was (its offset is not durable).
  const offset_ms = (await clock_ms(ctx)) - Date.now() + 1000;
  ctx.q.close();
  await kill9(ctx.server);
  ctx.server = await start_server(ctx.dir, ['--test-clock', '--clock-offset-ms', String(offset_ms), '--workers', '2', '--partitions', '4', '--rate-ip', '0']);
  ctx.q = queue_clients(ctx.server.grpc_port);
  const after = await ctx.q.fairness({ event_id }, ctx.svc);
  for (const k of ['seed_commitment', 'seed', 'drawn', 'early_count', 'early_chain_head', 'receipt_public_key', 'joined']) {
    assert.equal(after[k], before[k], k);
  }
  // Admission goes on at the rate while the node was down and after: never backwards.
  assert.ok(Number(after['admitted']) >= Number(before['admitted']));
  const again = await each(sample.length, 16, (i) => ctx.q.position({ ticket_id: sample[i]!.ticket }, sample[i]!.bearer));
  again.forEach((p, i) => {
    const was = positions[i]!;
    assert.equal([p['position'], p['used']], [was['position'], was['used']]);
    if (was['admitted'] === true) assert.is(p['admitted'], true);
  });
  const [user, h] = [...ctx.held.entries()][1]!;
  const b = ctx.buyers.find((x) => x.user === user)!;
  await ctx.q.advance({ millis: '0' }, ctx.admin);
  const replay = await code_of(ctx.q.reserve({ event_id, seat_ids: [seat_of(0)], user_id: user, hold_ttl_seconds: '600' },
    b.bearer, { 'admission-token': h.token }));
  assert.is(replay.code, S.FAILED_PRECONDITION, 'a used token stays used across kill -9');
  assert.match(replay.details, /used/);
});

t('an admission expires unused: its token is refused, the buyer may join again at the back', async (ctx) => {
  const read = await check_order(ctx, seat_count + 100);
  const i = read.findIndex((p) => p !== undefined && p['admitted'] === true && p['used'] === false);
  assert.ok(i >= 0, 'an admitted buyer without a seat');
  const b = ctx.buyers[i]!;
  const token_before = String(read[i]!['admission_token']);
  await ctx.q.set_rate({ event_id, admit_per_minute: 0 }, ctx.admin);
  await ctx.q.advance({ millis: String((ttl_s + 120) * 1000) }, ctx.admin);
  const expired = await code_of(ctx.q.reserve({ event_id, seat_ids: [seat_of(0)], user_id: b.user, hold_ttl_seconds: '600' },
    b.bearer, { 'admission-token': token_before }));
  assert.is(expired.code, S.FAILED_PRECONDITION);
  assert.match(expired.details, /join the queue .*again/);
  const p = await ctx.q.position({ ticket_id: b.ticket }, b.bearer);
  assert.is(p['admission_token'], '', 'no token past its expiry');
  const rejoined = await ctx.q.join({ event_id, user_id: b.user, device_id: 'phone-again' }, b.bearer);
  assert.is(rejoined['created'], true);
  assert.ok(Number((rejoined['receipt'] as WireReceipt).seq) > buyers, 'at the back');
});

t('QueueAdmitted events follow the rate on the server clock, in order', (ctx) => {
  // Beside the running node (the outbox is readable while it serves); 10,000 lines need more
  // than spawnSync's default 1 MB of output.
  const tail = spawnSync(process.execPath, [bin, 'outbox', 'tail', '--data', ctx.dir, '--limit', '100000'],
    { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  assert.is(tail.status, 0, tail.stderr);
  const lines = tail.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; key: string; message: Reply });
  const admitted = lines.filter((l) => l.type === 'QueueAdmitted').map((l) => l.message);
  const joined = lines.filter((l) => l.type === 'QueueJoined');
  assert.is(joined.length, buyers + 1, 'one QueueJoined per entry');
  assert.ok(joined.every((l) => l.key === event_id));
  assert.ok(admitted.length >= 2);
  const start_s = ctx.start_ms / 1000;
  let previous = 0;
  for (const m of admitted.sort((a, b) => Number(a['to_position']) - Number(b['to_position']))) {
    assert.is(Number(m['from_position']), previous + 1, 'admissions follow one another');
    previous = Number(m['to_position']);
    const elapsed_s = Number(m['admitted_at_unix']) + 1 - start_s;
    assert.ok(previous <= Math.floor(admit_per_minute * elapsed_s / 60), `${previous} admitted within the rate at ${elapsed_s} s`);
  }
});

t('metrics: the queue length and the wait histogram follow the partitions', async (ctx) => {
  const f = await ctx.q.fairness({ event_id }, ctx.svc);
  const waiting = Number(f['joined']) - Number(f['admitted']);
  const scrape = async () => (await fetch(`http://127.0.0.1:${ctx.server.http_port}/metrics`)).text();
  const expected = [
    `ticketing_queue_length ${waiting}\n`, `ticketing_queue_wait_seconds_count ${f['admitted']}\n`,
    `ticketing_queue_wait_seconds_bucket{le="+Inf"} ${f['admitted']}\n`,
  ];
  // Workers report once a second: poll until the report after the last change is in.
  await wait_for('metrics', async () => {
    const text = await scrape();
    return expected.every((line) => text.includes(line));
  });
  const text = await scrape();
  const bucket = (le: string): number => {
    const prefix = `ticketing_queue_wait_seconds_bucket{le="${le}"} `;
    const line = text.split('\n').find((l) => l.startsWith(prefix));
    assert.ok(line !== undefined, prefix);
    return Number(line.slice(prefix.length));
  };
  assert.ok(bucket('60') <= bucket('120') && bucket('120') <= bucket('+Inf'), 'cumulative buckets');
  assert.is(bucket('1800'), 0, 'everyone joined about an hour before the start: nobody waited 30 min or less');
});

t.run();
