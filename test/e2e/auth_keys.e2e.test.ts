// --auth-public-keys: a node that trusts an identity provider's keys accepts its ES256 tokens
// (roles and all) next to its own HS256 ones, and refuses tokens signed by anyone else.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sign_asymmetric } from '../auth/sign.js';
import { cleanup, clients, code_of, grpc, stop, temp_dir, token, with_server } from './harness.js';

test('ES256 tokens from a configured key act with their role; a stranger\'s are UNAUTHENTICATED', async () => {
  const idp = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keys_dir = temp_dir('keys');
  const file = join(keys_dir, 'idp.json');
  writeFileSync(file, JSON.stringify({ 'idp-1': idp.publicKey.export({ type: 'spki', format: 'pem' }) }));
  await with_server('auth-keys', ['--auth-public-keys', file, '--workers', '1', '--partitions', '2'], async (server, dir) => {
    const c = clients(server.grpc_port);
    try {
      const t = Math.floor(Date.now() / 1000);
      const admin = sign_asymmetric('ES256', 'idp-1', idp.privateKey, { sub: 'ops@idp', role: 'admin', iat: t, exp: t + 600 });
      const event = {
        event_id: 'evt-idp', name: 'IdP night', starts_at_unix: '1900000000', currency: 'EUR', price_tiers: { A: '1000000' },
        sections: [{ name: '1', rows: [{ name: 'A', seats: 5, tier: 'A' }] }], max_seats_per_user: 2, promo_codes: [],
      };
      assert.is((await c.create_event({ event }, admin)).created, true);
      const customer = sign_asymmetric('ES256', 'idp-1', idp.privateKey, { sub: 'dana', role: 'customer', iat: t, exp: t + 600 });
      assert.ok((await c.reserve({ event_id: 'evt-idp', seat_ids: ['1-A-1'], hold_ttl_seconds: 0, user_id: 'dana' }, customer)).hold_id);
      assert.is((await code_of(c.create_event({ event }, customer))).code, grpc.status.PERMISSION_DENIED, 'the token\'s role counts');
      const stranger = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      const forged = sign_asymmetric('ES256', 'idp-1', stranger.privateKey, { sub: 'ops@idp', role: 'admin', iat: t, exp: t + 600 });
      assert.is((await code_of(c.create_event({ event }, forged))).code, grpc.status.UNAUTHENTICATED);
      // The node's own tokens keep working.
      assert.is((await c.get_event({ event_id: 'evt-idp' }, token(dir, 'eve', 'customer'))).event_id, 'evt-idp');
    } finally {
      c.close();
    }
    assert.is(await stop(server), 0);
  }).finally(() => cleanup(keys_dir));
});

test.run();
