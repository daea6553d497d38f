// TLS and mutual TLS on the gRPC listener, end to end: the setup makes a throwaway PKI with the
// openssl CLI (a CA, a server certificate for 127.0.0.1/localhost, a client certificate signed by
// the CA, a self-signed "rogue" client certificate), spawns real servers and talks to them with
// clients holding each kind of credentials. A missing openssl fails every test here, never skips.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { bin, cleanup, clients, code_of, grpc, guarded_setup, run_cli, start_server, stop, temp_dir, token, type Clients, type Guarded, type Server } from './harness.js';
import { guarded_after } from '../guard.js';

const S = grpc.status;

interface Pki {
  dir: string;
  ca: string;
  server_cert: string;
  server_key: string;
  client_cert: string;
  client_key: string;
  rogue_cert: string;
  rogue_key: string;
}

function openssl(cwd: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer };
    if (e.code === 'ENOENT') throw new Error('the openssl CLI is required by the TLS end-to-end tests and is not on PATH');
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() ?? e.message}`);
  }
}

let pki_made: Pki | undefined;
/** Builds the PKI once per run (P-256 keys: fast), in a temp dir removed at exit. */
function pki(): Pki {
  if (pki_made !== undefined) return pki_made;
  const dir = temp_dir('tls-pki');
  process.once('exit', () => cleanup(dir));
  openssl(dir, ['version']);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(dir, ['req', '-x509', ...key, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ticketing-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  const signed = (name: string, cn: string, serial: string, extensions: string): void => {
    writeFileSync(join(dir, `${name}.ext`), extensions);
    openssl(dir, ['req', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', serial, '-days', '2',
      '-out', `${name}.pem`, '-extfile', `${name}.ext`]);
  };
  signed('server', 'localhost', '2', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
  signed('client', 'orders-service', '3', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n');
  openssl(dir, ['req', '-x509', ...key, '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '2', '-subj', '/CN=orders-service',
    '-addext', 'extendedKeyUsage=clientAuth']);
  const p = (f: string) => join(dir, f);
  pki_made = {
    dir, ca: p('ca.pem'), server_cert: p('server.pem'), server_key: p('server.key'),
    client_cert: p('client.pem'), client_key: p('client.key'), rogue_cert: p('rogue.pem'), rogue_key: p('rogue.key'),
  };
  return pki_made;
}

const read = (file: string) => readFileSync(file);
const ssl = (ca: string | null, pair?: { cert: string; key: string }) =>
  grpc.credentials.createSsl(ca === null ? null : read(ca), pair === undefined ? null : read(pair.key), pair === undefined ? null : read(pair.cert));

/** Every base64 line of every private key: none may appear in any output of the node. */
function assert_no_key_material(text: string): void {
  const p = pki();
  assert.not.match(text, 'PRIVATE KEY');
  for (const file of [p.server_key, p.client_key, p.rogue_key, join(p.dir, 'ca.key')]) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line !== '' && !line.startsWith('-----')) assert.not.ok(text.includes(line), `key material of ${file} in the output`);
    }
  }
}

function log_entry(server: Server, field: string): Record<string, unknown> | undefined {
  for (const line of server.log) {
    try {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (entry[field] !== undefined) return entry;
    } catch {
      // stderr chunk
    }
  }
  return undefined;
}

const event = {
  event_id: 'evt-tls', name: 'TLS test', starts_at_unix: '1811836800', currency: 'EUR', price_tiers: { A: '1000000' },
  sections: [{ name: '1', rows: [{ name: 'A', seats: 20, tier: 'A' }] }],
  max_seats_per_user: 4,
};

async function counts(c: Clients, bearer: string) {
  const a = await c.availability({ event_id: event.event_id }, bearer);
  return { free: Number(a.free), held: Number(a.held), sold: Number(a.sold) };
}

// (a) TLS only -------------------------------------------------------------------------------

const tls = suite<Guarded & { dir: string; server: Server; c: Clients; plain: Clients; admin: string; alice: string }>('tls e2e: TLS only');

guarded_setup(tls, async (ctx) => {
  const p = pki();
  ctx.dir = temp_dir('tls');
  ctx.server = await start_server(ctx.dir, ['--workers', '1', '--partitions', '4', '--tls-cert', p.server_cert, '--tls-key', p.server_key]);
  ctx.c = clients(ctx.server.grpc_port, ssl(p.ca));
  ctx.plain = clients(ctx.server.grpc_port);
  ctx.admin = token(ctx.dir, 'ops', 'admin');
  ctx.alice = token(ctx.dir, 'alice', 'customer');
});

guarded_after(tls, async (ctx) => {
  ctx.c?.close();
  ctx.plain?.close();
  if (ctx.server !== undefined) assert.is(await stop(ctx.server), 0, 'SIGTERM exits 0');
  if (ctx.dir !== undefined) cleanup(ctx.dir);
});

tls('startup log says TLS is on, names the files, and carries no key material', async (ctx) => {
  const on = log_entry(ctx.server, 'grpc_tls');
  assert.ok(on, 'a grpc_tls log line');
  assert.is(on!['grpc_tls'], 'tls');
  assert.is(on!['tls_cert_file'], pki().server_cert);
  assert.match(String(on!['tls_cert_subject']), 'CN=localhost');
  assert.is(on!['tls_client_ca_file'], undefined);
  assert_no_key_material(ctx.server.log.join('\n'));
});

tls('a TLS client trusting the CA creates an event and reserves a seat', async (ctx) => {
  assert.equal((await ctx.c.create_event({ event }, ctx.admin)).created, true);
  const before = await counts(ctx.c, ctx.alice);
  assert.equal(before, { free: 20, held: 0, sold: 0 });
  const hold = await ctx.c.reserve({ event_id: event.event_id, seat_ids: ['1-A-1'], hold_ttl_seconds: 60, user_id: 'alice' }, ctx.alice);
  assert.match(hold.hold_id, /^hold_/);
  assert.equal(await counts(ctx.c, ctx.alice), { free: 19, held: 1, sold: 0 });
  assert.equal(await ctx.c.release({ hold_id: hold.hold_id }, ctx.alice), { released: true });
});

tls('a plaintext client is refused (UNAVAILABLE) and changes nothing', async (ctx) => {
  const before = await counts(ctx.c, ctx.alice);
  const refused = await code_of(ctx.plain.reserve({ event_id: event.event_id, seat_ids: ['1-A-2'], hold_ttl_seconds: 60, user_id: 'alice' }, ctx.alice));
  assert.is(refused.code, S.UNAVAILABLE, refused.details);
  assert.is((await code_of(ctx.plain.create_event({ event: { ...event, event_id: 'evt-plain' } }, ctx.admin))).code, S.UNAVAILABLE);
  assert.equal(await counts(ctx.c, ctx.alice), before);
  assert.is((await code_of(ctx.c.get_event({ event_id: 'evt-plain' }, ctx.alice))).code, S.NOT_FOUND, 'the plaintext CreateEvent never arrived');
});

tls('a TLS client that does not trust the CA refuses the server (UNAVAILABLE)', async (ctx) => {
  const stranger = clients(ctx.server.grpc_port, ssl(null));
  try {
    assert.is((await code_of(stranger.availability({ event_id: event.event_id }, ctx.alice))).code, S.UNAVAILABLE);
  } finally {
    stranger.close();
  }
});

tls.run();

// (b) mutual TLS -----------------------------------------------------------------------------

const mtls = suite<Guarded & { dir: string; server: Server; c: Clients; admin: string; svc: string }>('tls e2e: mutual TLS');

guarded_setup(mtls, async (ctx) => {
  const p = pki();
  ctx.dir = temp_dir('mtls');
  // Certificate and key from the environment; the client CA from a flag, which wins over the
  // (unreadable) environment value.
  ctx.server = await start_server(ctx.dir, ['--workers', '1', '--partitions', '4', '--tls-client-ca', p.ca], {
    TICKETING_TLS_CERT: p.server_cert,
    TICKETING_TLS_KEY: p.server_key,
    TICKETING_TLS_CLIENT_CA: join(p.dir, 'no-such-ca.pem'),
  });
  ctx.c = clients(ctx.server.grpc_port, ssl(p.ca, { cert: p.client_cert, key: p.client_key }));
  ctx.admin = token(ctx.dir, 'ops', 'admin');
  ctx.svc = token(ctx.dir, 'orders', 'service');
});

guarded_after(mtls, async (ctx) => {
  ctx.c?.close();
  if (ctx.server !== undefined) assert.is(await stop(ctx.server), 0, 'SIGTERM exits 0');
  if (ctx.dir !== undefined) cleanup(ctx.dir);
});

mtls('startup log says mutual TLS is on (environment cert and key, flag client CA), no key material', async (ctx) => {
  const on = log_entry(ctx.server, 'grpc_tls');
  assert.ok(on, 'a grpc_tls log line');
  assert.is(on!['grpc_tls'], 'mtls');
  assert.is(on!['tls_cert_file'], pki().server_cert);
  assert.is(on!['tls_client_ca_file'], pki().ca);
  assert_no_key_material(ctx.server.log.join('\n'));
});

mtls('a client with a CA-signed certificate creates an event, reserves and confirms', async (ctx) => {
  assert.equal((await ctx.c.create_event({ event }, ctx.admin)).created, true);
  const hold = await ctx.c.reserve({ event_id: event.event_id, seat_ids: ['1-A-1', '1-A-2'], hold_ttl_seconds: 60, user_id: 'bob' }, ctx.svc);
  assert.equal(await counts(ctx.c, ctx.svc), { free: 18, held: 2, sold: 0 });
  assert.equal(await ctx.c.confirm({ order_id: 'order-tls-1', hold_id: hold.hold_id }, ctx.svc), { confirmed: true });
  assert.equal(await counts(ctx.c, ctx.svc), { free: 18, held: 0, sold: 2 });
});

mtls('clients without a valid certificate are refused (UNAVAILABLE), whatever their token, and change nothing', async (ctx) => {
  const p = pki();
  const before = await counts(ctx.c, ctx.svc);
  const refused: [string, grpc.ChannelCredentials][] = [
    ['no client certificate', ssl(p.ca)],
    ['self-signed rogue certificate', ssl(p.ca, { cert: p.rogue_cert, key: p.rogue_key })],
    ['plaintext', grpc.credentials.createInsecure()],
  ];
  for (const [what, creds] of refused) {
    const c = clients(ctx.server.grpc_port, creds);
    try {
      const reserve = await code_of(c.reserve({ event_id: event.event_id, seat_ids: ['1-A-3'], hold_ttl_seconds: 60, user_id: 'bob' }, ctx.svc));
      assert.is(reserve.code, S.UNAVAILABLE, `${what}: ${reserve.details}`);
      const create = await code_of(c.create_event({ event: { ...event, event_id: 'evt-rogue' } }, ctx.admin));
      assert.is(create.code, S.UNAVAILABLE, `${what}: ${create.details}`);
    } finally {
      c.close();
    }
  }
  assert.equal(await counts(ctx.c, ctx.svc), before, 'refused attempts changed nothing');
  assert.is((await code_of(ctx.c.get_event({ event_id: 'evt-rogue' }, ctx.svc))).code, S.NOT_FOUND);
  // The seat the refused clients asked for is still free for a certified client.
  const hold = await ctx.c.reserve({ event_id: event.event_id, seat_ids: ['1-A-3'], hold_ttl_seconds: 60, user_id: 'bob' }, ctx.svc);
  assert.equal(await ctx.c.release({ hold_id: hold.hold_id }, ctx.svc), { released: true });
});

mtls('ticketing events import speaks TLS and mutual TLS with --tls-ca / --tls-cert / --tls-key', async (ctx) => {
  const p = pki();
  const file = join(ctx.dir, 'events.json');
  writeFileSync(file, JSON.stringify({ ...event, event_id: 'evt-cli-mtls', price_tiers: { A: 1000000 }, starts_at_unix: 1900000000 }));
  const server = ['--server', `127.0.0.1:${ctx.server.grpc_port}`, '--data', ctx.dir];
  const plain = run_cli(['events', 'import', file, ...server]);
  assert.is(plain.status, 1, 'plaintext is refused by an mTLS listener');
  const no_cert = run_cli(['events', 'import', file, ...server, '--tls-ca', p.ca]);
  assert.is(no_cert.status, 1, 'TLS without a client certificate is refused');
  const half = run_cli(['events', 'import', file, ...server, '--tls-ca', p.ca, '--tls-cert', p.client_cert]);
  assert.is(half.status, 2);
  assert.match(half.stderr, '--tls-cert and --tls-key go together');
  const ok = run_cli(['events', 'import', file, ...server, '--tls-ca', p.ca, '--tls-cert', p.client_cert, '--tls-key', p.client_key]);
  assert.is(ok.status, 0, ok.stderr);
  assert.match(ok.stdout, 'evt-cli-mtls: created');
  assert_no_key_material(ok.stdout + ok.stderr + no_cert.stderr + half.stderr);
});

mtls.run();

// (c) refused configurations ----------------------------------------------------------------

const bad = suite<Guarded & { dir: string }>('tls e2e: bad TLS configuration');

guarded_setup(bad, async (ctx) => {
  pki();
  ctx.dir = temp_dir('tls-bad');
});
guarded_after(bad, (ctx) => {
  if (ctx.dir !== undefined) cleanup(ctx.dir);
});

/** `ticketing serve` with these flags and TLS environment, in a fresh (not yet existing) data dir. */
function serve_once(dir: string, name: string, args: string[], env: Record<string, string> = {}): Promise<{ status: number | null; stderr: string; stdout: string; data_dir: string }> {
  const data_dir = join(dir, name);
  const base = { ...process.env };
  for (const k of ['TICKETING_TLS_CERT', 'TICKETING_TLS_KEY', 'TICKETING_TLS_CLIENT_CA']) delete base[k];
  const child = spawn(process.execPath, [bin, 'serve', '--data', data_dir, '--grpc', '127.0.0.1:0', '--http', '127.0.0.1:0', '--workers', '1', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...base, ...env },
  });
  let stdout = '';
  let stderr = '';
  // A configuration that is wrongly accepted would serve forever: stop it once it logs that it
  // serves (its exit status is then null, and the test fails on it). Not a wall-clock bound:
  // twelve of these starting at once on a loaded 2-core machine took over 20 s (CI, stop 21).
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
    if (stdout.includes('"msg":"serving"')) child.kill('SIGKILL');
  });
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => child.once('close', (status) => {
    resolve({ status, stderr, stdout, data_dir });
  }));
}

bad('incomplete or unreadable TLS configurations exit 2 with a clear message, before touching the data dir', async (ctx) => {
  const p = pki();
  const missing = join(p.dir, 'missing.key');
  const cases: [string, string[], Record<string, string>, RegExp][] = [
    ['cert-only', ['--tls-cert', p.server_cert], {}, /--tls-cert \(TICKETING_TLS_CERT\) needs --tls-key/],
    ['key-only', ['--tls-key', p.server_key], {}, /--tls-key \(TICKETING_TLS_KEY\) needs --tls-cert/],
    ['ca-only', ['--tls-client-ca', p.ca], {}, /--tls-client-ca \(TICKETING_TLS_CLIENT_CA\) \(mutual TLS\) needs --tls-cert/],
    ['ca-and-cert', ['--tls-client-ca', p.ca, '--tls-cert', p.server_cert], {}, /needs --tls-key/],
    ['env-cert-only', [], { TICKETING_TLS_CERT: p.server_cert }, /TICKETING_TLS_CERT\) needs --tls-key/],
    ['empty-cert', ['--tls-cert', '', '--tls-key', p.server_key], {}, /--tls-cert .* needs a file path/],
    ['missing-key', ['--tls-cert', p.server_cert, '--tls-key', missing], {}, /--tls-key \(TICKETING_TLS_KEY\): cannot read .*missing\.key \(ENOENT\)/],
    ['missing-ca', ['--tls-cert', p.server_cert, '--tls-key', p.server_key, '--tls-client-ca', missing], {}, /--tls-client-ca \(TICKETING_TLS_CLIENT_CA\): cannot read/],
    ['key-as-cert', ['--tls-cert', p.server_key, '--tls-key', p.server_key], {}, /--tls-cert \(TICKETING_TLS_CERT\): .* holds no PEM certificate/],
    ['cert-as-key', ['--tls-cert', p.server_cert, '--tls-key', p.server_cert], {}, /--tls-key \(TICKETING_TLS_KEY\): .* holds no valid unencrypted PEM private key/],
    ['mismatched-key', ['--tls-cert', p.server_cert, '--tls-key', p.rogue_key], {}, /--tls-key \(TICKETING_TLS_KEY\): .*rogue\.key is not the private key of the certificate/],
    ['key-as-ca', ['--tls-cert', p.server_cert, '--tls-key', p.server_key, '--tls-client-ca', p.client_key], {}, /--tls-client-ca .* holds no PEM certificate/],
  ];
  const results = await Promise.all(cases.map(([name, args, env]) => serve_once(ctx.dir, name, args, env)));
  cases.forEach(([name, , , message], i) => {
    const r = results[i]!;
    assert.is(r.status, 2, `${name}: exit code (stderr: ${r.stderr})`);
    assert.match(r.stderr, /^ticketing: /, name);
    assert.match(r.stderr, message, name);
    assert_no_key_material(r.stderr + r.stdout);
    assert.not.ok(existsSync(r.data_dir), `${name}: refused before the data dir was created`);
  });
});

bad('the usage text lists the TLS flags', () => {
  const out = execFileSync(process.execPath, [bin, 'help'], { encoding: 'utf8' });
  assert.match(out, '[--tls-cert FILE --tls-key FILE [--tls-client-ca FILE]]');
});

bad.run();
