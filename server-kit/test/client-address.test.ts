import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { clientAddress, clientKey, LOOPBACK_NETWORKS, parseNetworks, rangeKey, readTrustedProxies } from '../client-address.ts';
import { ConfigError, envReader } from '../config.ts';

const loopback = parseNetworks(LOOPBACK_NETWORKS).list;
// Minikube's pod network, as the Knative manifests trust it.
const knative = parseNetworks(`${LOOPBACK_NETWORKS},10.244.0.0/16`).list;

const walk = suite('server-kit: client address through trusted proxies');

walk('a peer that is not trusted is the client, whatever X-Forwarded-For claims', () => {
  assert.is(clientAddress('198.51.100.7', '203.0.113.1', loopback), '198.51.100.7');
  assert.is(clientAddress('10.244.0.12', '203.0.113.1', loopback), '10.244.0.12', 'a pod is not trusted unless listed');
  assert.is(clientAddress('127.0.0.1', undefined, loopback), '127.0.0.1');
  assert.is(clientAddress(undefined, '203.0.113.1', loopback), 'unknown');
});

walk('from a trusted peer, the rightmost untrusted entry is the client; entries left of it are ignored', () => {
  assert.is(clientAddress('127.0.0.1', '203.0.113.9', loopback), '203.0.113.9');
  assert.is(clientAddress('127.0.0.1', 'spoof, 203.0.113.9', loopback), '203.0.113.9');
  assert.is(clientAddress('127.0.0.1', ['1.1.1.1', '203.0.113.9'], loopback), '203.0.113.9', 'several headers are one list');
  assert.is(clientAddress('::ffff:127.0.0.1', '203.0.113.9', loopback), '203.0.113.9', 'IPv4-mapped peer');
  assert.is(clientAddress('::1', '2001:db8::5', loopback), '2001:db8::5');
});

walk('Knative, with and without the activator: the same setting finds the same client', () => {
  // Envoy appends the client; the activator appends Envoy; queue-proxy appends the activator.
  const viaActivator = '198.51.100.7, 10.244.0.20, 10.244.0.31';
  const direct = '198.51.100.7, 10.244.0.20';
  assert.is(clientAddress('127.0.0.1', viaActivator, knative), '198.51.100.7');
  assert.is(clientAddress('127.0.0.1', direct, knative), '198.51.100.7');
  assert.is(clientAddress('127.0.0.1', `6.6.6.6, ${viaActivator}`, knative), '198.51.100.7', 'the client cannot prepend');
  // The UI's proxy to the function appends its own peer (queue-proxy, 127.0.0.1) and the
  // UI pod's outbound hops follow.
  assert.is(clientAddress('127.0.0.1', `${viaActivator}, 127.0.0.1, 10.244.0.40, 10.244.0.20`, knative), '198.51.100.7');
  // Every hop trusted: the leftmost is the client (a pod calling from inside the cluster).
  assert.is(clientAddress('127.0.0.1', '10.244.0.50, 10.244.0.20', knative), '10.244.0.50');
});

walk('malformed entries are neither trusted nor taken as the client, and never throw', () => {
  const hostile = ['garbage', '', ' ', '999.1.1.1', '1.2.3', '::g', 'unknown', '1.2.3.4/8', '%00', '[::1', 'a'.repeat(10_000), '1.2.3.4:99999', '0x7f.1.1.1'];
  for (const entry of hostile) {
    const got = clientAddress('127.0.0.1', entry, loopback);
    assert.is(got, '127.0.0.1', JSON.stringify(entry.slice(0, 20)));
    assert.is(clientAddress('127.0.0.1', `203.0.113.9, ${entry}`, loopback), entry.trim() === '' ? '203.0.113.9' : '127.0.0.1', JSON.stringify(entry.slice(0, 20)));
  }
  // A malformed entry left of the client is never read.
  assert.is(clientAddress('127.0.0.1', 'garbage, 203.0.113.9', loopback), '203.0.113.9');
  // Ports and brackets, as some proxies write them.
  assert.is(clientAddress('127.0.0.1', '203.0.113.9:51234', loopback), '203.0.113.9');
  assert.is(clientAddress('127.0.0.1', '[2001:db8::7]:443', loopback), '2001:db8::7');
  assert.is(clientAddress('127.0.0.1', 'fe80::1%eth0', loopback), 'fe80::1');
  // A header of thousands of trusted entries ends the walk after a bounded number of hops.
  const long = Array.from({ length: 5000 }, () => '127.0.0.1').join(',');
  assert.is(clientAddress('127.0.0.1', `203.0.113.9,${long}`, loopback), '127.0.0.1');
});

walk('keys: IPv6 by /64 per client and /48 per range, IPv4 by address and /24', () => {
  assert.is(clientKey('198.51.100.7'), '198.51.100.7');
  assert.is(clientKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  assert.is(clientKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'), '2001:db8:1:2::/64');
  assert.is(clientKey('::1'), '0:0:0:0::/64');
  assert.is(rangeKey('198.51.100.7'), '198.51.100.0/24');
  assert.is(rangeKey('2001:db8:1:2::1'), '2001:db8:1::/48');
  assert.is(rangeKey('2001:db8:1:ffff::1'), '2001:db8:1::/48');
  assert.is(clientKey('unknown'), 'unknown');
  // IPv4-mapped addresses are IPv4 by the time they are keyed.
  assert.is(clientKey(clientAddress('::ffff:198.51.100.7', undefined, loopback)), '198.51.100.7');
  assert.is(clientKey(clientAddress('::ffff:c633:6407', undefined, loopback)), '198.51.100.7');
});
walk.run();

const config = suite('server-kit: the trusted-proxy setting');

config('default loopback; networks and addresses, comma or space separated', () => {
  const r = envReader({ A: '10.244.0.0/16, ::1 fd00::/8,192.0.2.1' });
  const list = readTrustedProxies(r, 'A');
  const dflt = readTrustedProxies(r, 'UNSET');
  r.done();
  assert.ok(list.check('10.244.255.1', 'ipv4'));
  assert.ok(list.check('192.0.2.1', 'ipv4'));
  assert.not.ok(list.check('192.0.2.2', 'ipv4'));
  assert.ok(list.check('fd12::1', 'ipv6'));
  assert.not.ok(list.check('127.0.0.1', 'ipv4'), 'a setting replaces the default');
  assert.ok(dflt.check('127.0.0.9', 'ipv4'));
  assert.ok(dflt.check('::1', 'ipv6'));
  assert.not.ok(dflt.check('10.0.0.1', 'ipv4'));
});

config('an invalid entry fails start-up with the variable named; "/" alone never means /0', () => {
  for (const value of ['10.0.0.0/', '10.0.0.0/33', '::1/129', 'example.com', '10.0.0.0/8/1', '10.0.0.0/-1', '10.0.0.0/0x8']) {
    const r = envReader({ T: value });
    readTrustedProxies(r, 'T');
    assert.throws(() => r.done(), (err: ConfigError) => /^T="/.test(err.problems[0]) && /networks/.test(err.problems[0]), value);
  }
});
config.run();
