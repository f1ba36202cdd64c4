import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import type { VirtualServer } from '../../src/config/model.js';
import {
  destId,
  formatRealServer,
  formatVirtualServer,
  parseDestId,
  parseServiceId,
  realServerDestId,
  realServerId,
  serviceId,
  virtualServerId,
} from '../../src/lb/ids.js';

const loc = { file: 't.conf', line: 1, col: 1 };
const vs = (key: VirtualServer['key'], protocol: VirtualServer['protocol'] = 'TCP'): VirtualServer =>
  ({ key, protocol, realServers: [], loc }) as unknown as VirtualServer;

test('service ids: IPv4, IPv6 in brackets, fwmark with family, virtual_server_group; each parses back', () => {
  const cases: [ReturnType<typeof parseServiceId>, string][] = [
    [{ kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.0.100', port: 80 }, 'tcp:198.18.0.100:80'],
    [{ kind: 'addr', protocol: 'udp', family: 6, address: '2001:db8::100', port: 53 }, 'udp:[2001:db8::100]:53'],
    [{ kind: 'fwmark', fwmark: 7, family: 4 }, 'fwm:7:4'],
    [{ kind: 'fwmark', fwmark: 9, family: 6 }, 'fwm:9:6'],
  ];
  for (const [key, id] of cases) {
    const k = key!;
    if (k.kind === 'group') continue;
    assert.equal(
      serviceId(
        k.kind === 'fwmark'
          ? { kind: 'fwmark', fwmark: k.fwmark, family: k.family }
          : { kind: 'addr', protocol: k.protocol as 'tcp', family: k.family, address: k.address, port: k.port },
      ),
      id,
    );
    assert.deepEqual(parseServiceId(id), key);
  }
  assert.equal(virtualServerId(vs({ kind: 'group', group: 'web' })), 'group:web:tcp');
  assert.deepEqual(parseServiceId('group:web:tcp'), { kind: 'group', group: 'web', protocol: 'tcp' });
  assert.equal(
    virtualServerId(vs({ kind: 'address', address: '2001:db8::1', family: 6, port: 443 })),
    'tcp:[2001:db8::1]:443',
  );
  for (const bad of ['', 'tcp:', 'tcp:1.2.3.4', 'fwm:x:4', 'tcp:[::1:80', 'tcp:::1:80'])
    assert.equal(parseServiceId(bad), null, bad);
});

test('real server ids: configured (port 0 kept) and as the table holds them; keepalived text', () => {
  const v = vs({ kind: 'address', address: '198.18.0.100', family: 4, port: 80 });
  const rs6 = { address: '2001:db8::11', port: 0, family: 6 as const };
  assert.equal(realServerId(rs6), '[2001:db8::11]:0');
  assert.equal(realServerDestId(v, rs6), '[2001:db8::11]:80');
  assert.equal(formatRealServer(v, rs6), '[2001:db8::11]:tcp:80');
  assert.equal(formatVirtualServer(v), '[198.18.0.100]:tcp:80');
  assert.equal(formatVirtualServer(vs({ kind: 'group', group: 'G' })), '[G]:0');
  assert.equal(formatVirtualServer(vs({ kind: 'fwmark', fwmark: 3, family: 4 })), 'FWM 3');
});

test('destId and parseDestId round-trip every IPv4 and IPv6 endpoint', () => {
  fc.assert(
    fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), fc.integer({ min: 0, max: 65535 }), (address, port) => {
      const family = address.includes(':') ? 6 : 4;
      const id = destId({ address, port }, family);
      assert.deepEqual(parseDestId(id), { address, port, family });
      if (family === 6) assert.ok(id.startsWith('['), id);
    }),
  );
});
