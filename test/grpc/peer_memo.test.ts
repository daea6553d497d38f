// ip_of_peer_memo answers what ip_of_peer answers, and never holds more than peer_ips_max peers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ip_of_peer, ip_of_peer_memo, peer_ips_max, peer_memo_size } from '../../src/grpc/unary.js';

test('the memo answers as ip_of_peer, first time and again', () => {
  const peers = ['127.0.0.1:50123', '::1:50123', '[2001:db8::7]:443', '::ffff:10.1.2.3:8080',
    '10.1.2.3', 'unknown'];
  for (let round = 0; round < 2; round++) {
    for (const peer of peers) assert.is(ip_of_peer_memo(peer), ip_of_peer(peer));
  }
});

test('bounded: past peer_ips_max peers it starts afresh, and still answers right', () => {
  for (let i = 0; i < peer_ips_max * 3; i++) {
    const peer = `10.0.${(i >> 8) & 255}.${i & 255}:${1000 + (i % 50000)}`;
    assert.is(ip_of_peer_memo(peer), `10.0.${(i >> 8) & 255}.${i & 255}`);
    assert.ok(peer_memo_size() <= peer_ips_max);
  }
});

test.run();
