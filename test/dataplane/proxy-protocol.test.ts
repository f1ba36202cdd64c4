import assert from 'node:assert/strict';
import { test } from 'node:test';
import { proxyV1, proxyV2 } from '../../src/dataplane/proxy/proxy-protocol.js';

test('PROXY v1 TCP4/TCP6/UNKNOWN lines are byte-exact', () => {
  assert.equal(
    proxyV1('192.0.2.1', 56324, '198.18.0.100', 443).toString('latin1'),
    'PROXY TCP4 192.0.2.1 198.18.0.100 56324 443\r\n',
  );
  assert.equal(
    proxyV1('2001:db8::1', 1, '2001:db8::100', 80).toString('latin1'),
    'PROXY TCP6 2001:db8::1 2001:db8::100 1 80\r\n',
  );
  assert.equal(proxyV1('::ffff:10.0.0.1', 7, '10.0.0.2', 8).toString('latin1'), 'PROXY TCP4 10.0.0.1 10.0.0.2 7 8\r\n');
  assert.equal(proxyV1('2001:db8::1', 1, '10.0.0.2', 80).toString('latin1'), 'PROXY UNKNOWN\r\n');
});

test('PROXY v2 TCP4 header is byte-exact (proxy-protocol.txt 2.2)', () => {
  const h = proxyV2('tcp', '192.0.2.1', 0x1234, '198.18.0.100', 443);
  assert.equal(
    h.toString('hex'),
    `0d0a0d0a000d0a515549540a` + `21` + `11` + `000c` + `c0000201` + `c6120064` + `1234` + `01bb`,
  );
});

test('PROXY v2 TCP6 and UDP4 headers are byte-exact', () => {
  const h = proxyV2('tcp', '2001:db8::1', 1, '2001:db8::100', 80);
  assert.equal(
    h.toString('hex'),
    `0d0a0d0a000d0a515549540a21210024` +
      `20010db8000000000000000000000001` +
      `20010db8000000000000000000000100` +
      `00010050`,
  );
  const u = proxyV2('udp', '10.0.0.1', 53, '10.0.0.2', 53);
  assert.equal(u[13], 0x12);
  assert.equal(u.length, 28);
});
