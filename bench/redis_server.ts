// Baseline for section "ghz" (issue 13): what a user would build instead of us. The same grpc-js
// front as the no-op server and src/grpc/edge.ts, whose ReserveTickets is ONE Redis Lua script
// (EVALSHA) that holds every seat of the request all-or-nothing: a key per seat, set only when
// none of them exists (SET NX semantics, checked inside the script, so atomic), each with the
// hold's TTL, and a per-user, per-event count of seats and holds like ours. ReleaseHold is a
// second script that deletes them. Redis runs with `appendfsync always`, so a hold is on disk
// before the reply, as ours is. No auth, logs or metrics: the baseline is the storage path only.
// Own process. Prints one JSON line {"msg":"serving","grpc":"127.0.0.1:PORT"} once bound.
// Usage: node dist/bench/redis_server.js REDIS_PORT MAX_SEATS_PER_USER [HOST:PORT]
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { randomBytes } from 'node:crypto';
import { inventory_proto, load_protos, service_def } from './common.js';

// Ours' limits (src/actors/limits.ts), copied: the bench imports nothing from src/.
const seats_per_hold_max = 10;
const holds_per_user_max = 10;
const ttl_default_s = 600;
const ttl_min_s = 30;
const ttl_max_s = 3600;
const id_pattern = /^[A-Za-z0-9._:-]{1,128}$/;
// SECTION-ROW-NUMBER; the baseline knows no catalog, so a seat's existence is not checked.
const seat_pattern = /^[A-Za-z0-9]{1,16}-[A-Za-z0-9]{1,8}-[0-9]{1,4}$/;

// KEYS: the n seat keys, the user's count hash, the hold key. ARGV: hold id, TTL ms, seat count,
// max seats per user, max holds per user. Checks everything before it writes anything, so a
// refusal leaves no trace; Redis runs a script alone, so nobody writes in between.
const reserve_lua = `
local n = tonumber(ARGV[3])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    return redis.error_reply('SEATS_UNAVAILABLE seat ' .. KEYS[i] .. ' is held')
  end
end
local user = KEYS[n + 1]
local counts = redis.call('HMGET', user, 'seats', 'holds')
local seats = tonumber(counts[1] or '0')
local holds = tonumber(counts[2] or '0')
if seats + n > tonumber(ARGV[4]) then
  return redis.error_reply('SEATS_PER_USER would hold ' .. (seats + n) .. ' seats')
end
if holds + 1 > tonumber(ARGV[5]) then
  return redis.error_reply('HOLDS_PER_USER already ' .. holds .. ' holds')
end
for i = 1, n do
  redis.call('SET', KEYS[i], ARGV[1], 'PX', ARGV[2])
end
redis.call('HINCRBY', user, 'seats', n)
redis.call('HINCRBY', user, 'holds', 1)
-- The counts outlive no hold: they lapse with the newest one (conservative until then).
redis.call('PEXPIRE', user, ARGV[2])
redis.call('SET', KEYS[n + 2], table.concat(KEYS, '\\n', 1, n + 1), 'PX', ARGV[2])
return 1
`;

// KEYS: the hold key. ARGV: the hold id. The hold key names the user hash and the seats (one
// Redis instance, so keys not declared in KEYS are fine); a seat is deleted only while it is
// still this hold's. Returns 1 when it released, 0 when the hold was gone already.
const release_lua = `
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local parts = {}
for part in string.gmatch(v, '[^\\n]+') do parts[#parts + 1] = part end
local user = parts[#parts]
local freed = 0
for i = 1, #parts - 1 do
  if redis.call('GET', parts[i]) == ARGV[1] then
    redis.call('DEL', parts[i])
    freed = freed + 1
  end
end
if redis.call('EXISTS', user) == 1 then
  redis.call('HINCRBY', user, 'seats', -freed)
  redis.call('HINCRBY', user, 'holds', -1)
end
redis.call('DEL', KEYS[1])
return 1
`;

const redis_port = Number(process.argv[2]);
const max_seats_per_user = Number(process.argv[3]);
// Auto-pipelining: the calls of one event-loop turn go out in one write, as a user tuning a
// Redis front for throughput would set it.
const redis = new Redis({ host: '127.0.0.1', port: redis_port, enableAutoPipelining: true });
const sha = { reserve: '', release: '' };

async function load_scripts(): Promise<void> {
  sha.reserve = String(await redis.script('LOAD', reserve_lua));
  sha.release = String(await redis.script('LOAD', release_lua));
}

/** EVALSHA; a Redis that lost its script cache (a restart) gets the scripts again, once. */
async function evalsha(
  which: 'reserve' | 'release', keys: string[], args: string[],
): Promise<unknown> {
  try {
    return await redis.evalsha(sha[which], keys.length, ...keys, ...args);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    await load_scripts();
    return redis.evalsha(sha[which], keys.length, ...keys, ...args);
  }
}

class Refusal extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}

interface ReserveIn {
  event_id: string; seat_ids: string[]; hold_ttl_seconds: string; user_id: string;
}

/** The same request checks as ours' edge, minus the catalog: ids, seat list, TTL range. */
function checked(req: ReserveIn): { ttl_s: number } {
  if (!id_pattern.test(req.event_id)) throw new Refusal(grpc.status.INVALID_ARGUMENT, 'event_id');
  if (!id_pattern.test(req.user_id)) throw new Refusal(grpc.status.INVALID_ARGUMENT, 'user_id');
  const seats = req.seat_ids;
  if (seats.length === 0 || seats.length > seats_per_hold_max) {
    throw new Refusal(grpc.status.INVALID_ARGUMENT, `1..${seats_per_hold_max} seats`);
  }
  if (new Set(seats).size !== seats.length || !seats.every((s) => seat_pattern.test(s))) {
    throw new Refusal(grpc.status.INVALID_ARGUMENT, 'seat_ids');
  }
  const asked = Number(req.hold_ttl_seconds);
  const ttl_s = asked === 0 ? ttl_default_s : asked;
  if (!Number.isSafeInteger(ttl_s) || ttl_s < ttl_min_s || ttl_s > ttl_max_s) {
    throw new Refusal(grpc.status.INVALID_ARGUMENT, 'hold_ttl_seconds');
  }
  return { ttl_s };
}

/** A Lua error_reply's first word -> its status; anything else is Redis failing. */
function refusal_of(error: unknown): Refusal {
  const message = error instanceof Error ? error.message : String(error);
  if (message.startsWith('SEATS_UNAVAILABLE')) {
    return new Refusal(grpc.status.FAILED_PRECONDITION, message);
  }
  if (message.startsWith('SEATS_PER_USER') || message.startsWith('HOLDS_PER_USER')) {
    return new Refusal(grpc.status.RESOURCE_EXHAUSTED, message);
  }
  return error instanceof Refusal ? error : new Refusal(grpc.status.UNAVAILABLE, message);
}

async function reserve(req: ReserveIn): Promise<{ hold_id: string; expires_at_unix: string }> {
  const { ttl_s } = checked(req);
  // As long as ours: 16 random bytes, base64url.
  const hold_id = `hold-${randomBytes(16).toString('base64url')}`;
  const keys = req.seat_ids.map((s) => `s:${req.event_id}:${s}`);
  keys.push(`u:${req.event_id}:${req.user_id}`, `h:${hold_id}`);
  const args = [hold_id, String(ttl_s * 1000), String(req.seat_ids.length),
    String(max_seats_per_user), String(holds_per_user_max)];
  await evalsha('reserve', keys, args);
  return { hold_id, expires_at_unix: String(Math.floor(Date.now() / 1000) + ttl_s) };
}

type Call<Req> = grpc.ServerUnaryCall<Req, unknown>;
const answer = <Req>(work: (req: Req) => Promise<unknown>) =>
  (call: Call<Req>, callback: grpc.sendUnaryData<unknown>): void => {
    work(call.request).then(
      (reply) => callback(null, reply),
      (error: unknown) => {
        const refusal = refusal_of(error);
        callback({ code: refusal.code, details: refusal.message });
      },
    );
  };

const root = load_protos([inventory_proto]);
// Same transport limits as the real server (src/grpc/edge.ts) and the no-op server.
const server = new grpc.Server({
  'grpc.max_receive_message_length': 256 * 1024,
  'grpc.max_send_message_length': 4 * 1024 * 1024,
});
server.addService(service_def(root, 'ticketing.inventory.v1.InventoryService'), {
  ReserveTickets: answer(reserve),
  ReleaseHold: answer(async (req: { hold_id: string }) => {
    if (!id_pattern.test(req.hold_id)) throw new Refusal(grpc.status.INVALID_ARGUMENT, 'hold_id');
    const released = await evalsha('release', [`h:${req.hold_id}`], [req.hold_id]);
    return { released: released === 1 };
  }),
});

function fail(message: string): never {
  process.stderr.write(`redis_server: ${message}\n`);
  process.exit(1);
}

load_scripts().then(() => {
  const addr = process.argv[4] ?? '127.0.0.1:0';
  server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error) fail(error.message);
    process.stdout.write(JSON.stringify({ msg: 'serving', grpc: `127.0.0.1:${port}` }) + '\n');
  });
}, (error: unknown) => fail(`loading the scripts: ${String(error)}`));
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.once(signal, () => {
    server.forceShutdown();
    redis.disconnect();
    process.exit(0);
  });
}
