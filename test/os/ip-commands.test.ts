import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { IpAddressEntry } from '../../src/config/model.js';
import { addressArgv, IpCommands } from '../../src/os/ip-commands.js';
import type { AddressChange, NetlinkAddresses, NetlinkOutcome } from '../../src/os/netlink-address.js';
import type { ProcessRunner } from '../../src/util/ports.js';

const loc = { file: 'k.conf', line: 7, col: 1 };
const entry = (address: string, more: Partial<IpAddressEntry> = {}): IpAddressEntry => ({
  address,
  family: address.includes(':') ? 6 : 4,
  prefixLen: address.includes(':') ? 128 : 32,
  noTrack: false,
  flags: [],
  loc,
  ...more,
});

test('virtual_ipaddress words reach `ip addr add`: peer, flags, preferred_lft; -nodad keeps DAD', () => {
  assert.deepEqual(addressArgv('add', entry('198.18.0.100', { peer: '198.18.0.200' }), 'eth0'), [
    'ip',
    '-4',
    'addr',
    'add',
    '198.18.0.100',
    'peer',
    '198.18.0.200/32',
    'dev',
    'eth0',
  ]);
  assert.deepEqual(
    addressArgv(
      'add',
      entry('2001:2::100', { prefixLen: 64, flags: ['home', 'noprefixroute', 'preferred_lft', '0'] }),
      'eth0',
    ),
    [
      'ip',
      '-6',
      'addr',
      'add',
      '2001:2::100/64',
      'dev',
      'eth0',
      'nodad',
      'home',
      'noprefixroute',
      'preferred_lft',
      '0',
    ],
  );
  // keepalived adds IPv6 VIPs with nodad unless the entry says -nodad
  assert.deepEqual(addressArgv('add', entry('2001:2::100', { flags: ['-nodad'] }), 'eth0'), [
    'ip',
    '-6',
    'addr',
    'add',
    '2001:2::100/128',
    'dev',
    'eth0',
  ]);
  // a delete names the address only
  assert.deepEqual(addressArgv('del', entry('198.18.0.100', { peer: '198.18.0.200', flags: ['home'] }), 'eth0'), [
    'ip',
    '-4',
    'addr',
    'del',
    '198.18.0.100',
    'peer',
    '198.18.0.200/32',
    'dev',
    'eth0',
  ]);
});

function fakes(answer: (c: AddressChange) => NetlinkOutcome) {
  const spawned: string[] = [];
  const changes: AddressChange[] = [];
  const runner: ProcessRunner = {
    run: async (argv) => {
      spawned.push(argv.join(' '));
      return { exitCode: 0, signal: null, timedOut: false, stdout: '', stderr: '' } as never;
    },
  };
  const netlink = {
    change: (c: AddressChange) => {
      changes.push(c);
      return answer(c);
    },
  } as unknown as NetlinkAddresses;
  return { ip: new IpCommands(runner, netlink), spawned, changes };
}

test('VIPs go over rtnetlink without a process; what netlink cannot say goes to `ip`', async () => {
  const { ip, spawned, changes } = fakes((c) =>
    c.address.endsWith('.101') ? { ok: false, error: 'EEXIST' } : { ok: true },
  );
  const failed = await ip.addresses(
    'add',
    [
      entry('198.18.0.100', { brd: '198.18.0.255', scope: 'link', label: 'eth0:v' }),
      entry('198.18.0.101'),
      entry('198.18.0.102', { brd: '+' }),
      entry('198.18.0.103', { peer: '198.18.0.200' }),
      entry('2001:2::100', { flags: ['home'] }),
    ],
    'eth0',
  );
  assert.deepEqual(failed, []); // EEXIST: the address is there, as asked
  assert.deepEqual(
    changes.map((c) => [c.address, c.dev, c.brd, c.scope, c.label]),
    [
      ['198.18.0.100', 'eth0', '198.18.0.255', 'link', 'eth0:v'],
      ['198.18.0.101', 'eth0', undefined, undefined, undefined],
    ],
  );
  assert.deepEqual(spawned, [
    'ip -4 addr add 198.18.0.102/32 dev eth0 brd +',
    'ip -4 addr add 198.18.0.103 peer 198.18.0.200/32 dev eth0',
    'ip -6 addr add 2001:2::100/128 dev eth0 nodad home',
  ]);
});

test('a refusal from the kernel is reported with the entry; a delete of what is gone is quiet', async () => {
  const { ip, spawned } = fakes(() => ({ ok: false, error: 'ENODEV' }));
  assert.deepEqual(await ip.addresses('add', [entry('198.18.0.100')], 'nope0'), [
    'ip -4 addr add 198.18.0.100/32 dev nope0 failed (netlink: ENODEV)',
  ]);
  assert.deepEqual(await ip.addresses('del', [entry('198.18.0.100')], 'nope0'), []);
  assert.deepEqual(spawned, []);
});
