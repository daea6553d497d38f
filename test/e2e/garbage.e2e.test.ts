// Raw garbage and truncated HTTP/2 on the gRPC port must not disturb other clients' calls.
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { arena_file, arena_id, cleanup, clients, run_cli, start_server, stop, temp_dir, token, type Server } from './harness.js';

const preface = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

function frame(type: number, flags: number, stream: number, payload: Buffer, claimed_length = payload.length): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(claimed_length, 0, 3);
  header.writeUInt8(type, 3);
  header.writeUInt8(flags, 4);
  header.writeUInt32BE(stream, 5);
  return Buffer.concat([header, payload]);
}

/** Writes `bytes`, then (unless held open) drops the connection once the write has flushed. */
function send(port: number, bytes: Buffer, hold_open = false): Promise<Socket> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => resolve(socket));
    socket.on('close', () => resolve(socket));
    socket.resume();
    socket.once('connect', () => {
      socket.write(bytes, () => {
        if (hold_open) resolve(socket);
        // The server may keep a half-open HTTP/2 connection waiting for more: hang up ourselves.
        else setTimeout(() => socket.destroy(), 2);
      });
    });
  });
}

test('garbage bytes and truncated HTTP/2 frames do not disturb other clients', async () => {
  const dir = temp_dir('garbage');
  let server: Server | undefined;
  const held: Socket[] = [];
  try {
    server = await start_server(dir, ['--workers', '1', '--partitions', '4']);
    const c = clients(server.grpc_port);
    assert.is(run_cli(['events', 'import', arena_file, '--server', `127.0.0.1:${server.grpc_port}`, '--data', dir]).status, 0);
    const svc = token(dir, 'svc', 'service');
    const port = server.grpc_port;

    // A well-behaved client keeps reserving and releasing while the port is abused.
    let stop_good = false;
    let good_calls = 0;
    let good_ended = false;
    const good = (async () => {
      while (!stop_good) {
        const hold = await c.reserve({ event_id: arena_id, seat_ids: ['101-A-5'], hold_ttl_seconds: 60, user_id: 'good' }, svc);
        assert.equal(await c.release({ hold_id: hold.hold_id }, svc), { released: true });
        good_calls++;
      }
    })().finally(() => { good_ended = true; });

    const attacks: Buffer[] = [
      randomBytes(1),
      randomBytes(4096),
      Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'),
      preface.subarray(0, 10),
      preface,
      Buffer.concat([preface, frame(4, 0, 0, Buffer.alloc(0))]), // SETTINGS, then nothing
      Buffer.concat([preface, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 4, 1, randomBytes(20), 500)]), // HEADERS claiming more than sent
      Buffer.concat([preface, frame(4, 0, 0, Buffer.alloc(0)), frame(0, 0, 1, randomBytes(100))]), // DATA on an unopened stream
      Buffer.concat([preface, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 4, 1, randomBytes(64))]), // garbage HPACK
      Buffer.concat([preface, frame(4, 0, 0, randomBytes(7))]), // malformed SETTINGS length
      Buffer.concat([preface, frame(7, 0, 0, randomBytes(3))]), // short GOAWAY
      Buffer.concat([preface, frame(4, 0, 0, Buffer.alloc(0)), Buffer.from([0, 0])]), // truncated frame header
    ];
    for (let round = 0; round < 5; round++) {
      for (const bytes of attacks) await send(port, bytes);
      // Connections that send a partial frame and then just hang.
      held.push(await send(port, Buffer.concat([preface, frame(4, 0, 0, Buffer.alloc(0)), frame(1, 4, 1, randomBytes(10), 4000)]), true));
      for (let i = 0; i < 20; i++) await send(port, randomBytes(1 + Math.floor(Math.random() * 2048)));
    }
    const before = good_calls;
    // The good client keeps making progress after the abuse too.
    while (good_calls < before + 20 && !good_ended) await new Promise((r) => setTimeout(r, 5));
    stop_good = true;
    await good;
    assert.ok(good_calls >= 20, `the well-behaved client completed ${good_calls} round trips`);
    const a = await c.availability({ event_id: arena_id }, svc);
    assert.is(a.held, '0', 'no stray holds');
    assert.is(server.process.exitCode, null, 'server alive');
    for (const s of held) s.destroy();
    c.close();
    assert.is(await stop(server), 0, 'still shuts down cleanly (half-open connections included)');
    server = undefined;
  } finally {
    for (const s of held) s.destroy();
    if (server !== undefined && server.process.exitCode === null) server.process.kill('SIGKILL');
    cleanup(dir);
  }
});

test.run();
