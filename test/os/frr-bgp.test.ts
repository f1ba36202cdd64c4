import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BgpAnnounce } from '../../src/config/model.js';
import { announceCommands, parseAnnounced, parseNeighbors, renderFrrConfig, vipPrefix } from '../../src/os/frr-bgp.js';

const loc = { file: 'k.conf', line: 1, col: 1 };
const BGP: BgpAnnounce = {
  localAs: 65001,
  neighbors: [
    { address: '198.18.2.1', family: 4, remoteAs: 65000, bfd: false, loc },
    { address: '2001:2:0:2::1', family: 6, remoteAs: 65000, bfd: false, loc },
  ],
  keepaliveS: 1,
  holdTimeS: 3,
  bfdIntervalMs: 100,
  bfdMultiplier: 3,
  holdDownS: 5,
  holdDownMaxS: 60,
  loc,
};

test('bgpd configuration: one session per neighbor with its timers, each family activated on its own neighbors', () => {
  const f = renderFrrConfig(BGP, '198.18.2.11');
  assert.equal(f.zebra, undefined, 'no BFD: bgpd alone, without zebra');
  const lines = f.bgpd.split('\n');
  for (const l of [
    'router bgp 65001',
    ' bgp router-id 198.18.2.11',
    ' neighbor 198.18.2.1 remote-as 65000',
    ' neighbor 198.18.2.1 timers 1 3',
    ' neighbor 2001:2:0:2::1 remote-as 65000',
    ' address-family ipv4 unicast',
    '  neighbor 198.18.2.1 activate',
    ' address-family ipv6 unicast',
    '  neighbor 2001:2:0:2::1 activate',
    'route-map keepvs-deny-all deny 10',
  ])
    assert.ok(lines.includes(l), `missing '${l}' in\n${f.bgpd}`);
  // announcements are made at run time only: a restarted bgpd announces nothing by itself
  assert.ok(!/^ *network /m.test(f.bgpd));
  const v4 = lines.indexOf(' address-family ipv4 unicast');
  assert.ok(!lines.slice(v4, lines.indexOf(' exit-address-family', v4)).some((l) => l.includes('2001:')));
});

test('with BFD: zebra and bfdd too, the profile carrying bfd_timers', () => {
  const f = renderFrrConfig({ ...BGP, neighbors: [{ ...BGP.neighbors[0], bfd: true }] }, '198.18.2.11');
  assert.ok(f.zebra && f.bfdd);
  assert.match(f.bgpd, /neighbor 198\.18\.2\.1 bfd profile keepvs/);
  assert.match(f.bfdd, /profile keepvs\n {2}detect-multiplier 3\n {2}receive-interval 100\n {2}transmit-interval 100/);
});

test('announce commands: only the difference, withdrawals first, per address family', () => {
  assert.deepEqual(announceCommands(65001, new Set(['198.18.0.100/32']), new Set(['198.18.0.100/32'])), []);
  assert.deepEqual(announceCommands(65001, new Set(['198.18.0.100/32']), new Set(['2001:2::100/128'])), [
    'configure terminal',
    'router bgp 65001',
    'address-family ipv4 unicast',
    'no network 198.18.0.100/32',
    'exit-address-family',
    'exit',
    'router bgp 65001',
    'address-family ipv6 unicast',
    'network 2001:2::100/128',
    'exit-address-family',
    'exit',
    'end',
  ]);
});

test('what bgpd announces is read back from its running configuration', () => {
  const running = `router bgp 65001
 bgp router-id 198.18.0.1
 neighbor 198.18.0.10 remote-as 65000
 !
 address-family ipv4 unicast
  network 198.18.0.100/32
  network 198.18.0.101/32
 exit-address-family
 !
 address-family ipv6 unicast
  network 2001:2::100/128
 exit-address-family
exit
`;
  assert.deepEqual([...parseAnnounced(running)].sort(), ['198.18.0.100/32', '198.18.0.101/32', '2001:2::100/128']);
  assert.deepEqual([...parseAnnounced('network 10.0.0.1/32\n')], [], 'outside an address family: not ours');
});

test('neighbor states from show bgp neighbors json; garbage gives none', () => {
  assert.deepEqual(
    parseNeighbors(
      JSON.stringify({
        '198.18.0.10': { bgpState: 'Established', peerBfdInfo: { status: 'Up' } },
        '198.18.0.11': { bgpState: 'Active' },
      }),
    ),
    [
      { address: '198.18.0.10', state: 'Established', bfd: 'Up' },
      { address: '198.18.0.11', state: 'Active' },
    ],
  );
  assert.deepEqual(parseNeighbors('% No such neighbor'), []);
  assert.equal(vipPrefix('2001:2:0:0::100'), '2001:2::100/128');
  assert.equal(vipPrefix('198.18.0.100'), '198.18.0.100/32');
});
