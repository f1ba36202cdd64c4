import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  commandsFor,
  daemonLine,
  type SyncCommand,
  SyncRoleController,
  syncedConnections,
  syncSpecOf,
} from '../../src/lb/conn-sync.js';
import { renderConntrackdConf, unsupportedSpec } from '../../src/lb/conntrackd-conf.js';
import type { TableSnapshot } from '../../src/lb/types.js';
import { parseSyncedLine } from '../../src/os/conntrackd.js';
import { cfg } from '../config/helpers.js';

const VI = (name: string, vrid: number, extra = '') =>
  `vrrp_instance ${name} {\n interface eth0\n virtual_router_id ${vrid}\n priority 100\n${extra} virtual_ipaddress {\n  198.18.0.100\n }\n}\n`;

test('lvs_sync_daemon: defaults as ipvsadm and keepalived (id = the instance VRID, group 224.0.0.81, port 8848, ttl 1)', () => {
  const spec = syncSpecOf(cfg(`global_defs {\n lvs_sync_daemon eth1 VI_1\n}\n${VI('VI_1', 51)}`));
  assert.deepEqual(spec, { interface: 'eth1', syncId: 51, group: '224.0.0.81', port: 8848, ttl: 1, instance: 'VI_1' });
  const explicit = syncSpecOf(
    cfg(`global_defs {\n lvs_sync_daemon eth1 inst VI_1 id 7 port 9000 group 198.18.1.2\n}\n${VI('VI_1', 51)}`),
  );
  assert.equal(explicit?.syncId, 7);
  assert.equal(explicit?.port, 9000);
  assert.equal(explicit?.group, '198.18.1.2');
  // without an instance: id 0 (keepalived.conf(5)), both daemons run
  const bare = syncSpecOf(cfg('global_defs {\n lvs_sync_daemon eth1\n}\n'));
  assert.equal(bare?.syncId, 0);
  assert.equal(bare?.instance, undefined);
  assert.equal(syncSpecOf(cfg(VI('VI_1', 3))), undefined);
});

test('lvs_sync_daemon_interface in a vrrp_instance: the sync follows that instance, id its VRID', () => {
  const spec = syncSpecOf(cfg(VI('VI_2', 12, ' lvs_sync_daemon_interface eth1\n')));
  assert.deepEqual(spec, { interface: 'eth1', syncId: 12, group: '224.0.0.81', port: 8848, ttl: 1, instance: 'VI_2' });
});

test('a named instance that does not exist clears the setting (KV319), as keepalived', () => {
  const c = cfg(`global_defs {\n lvs_sync_daemon eth1 NOPE\n}\n${VI('VI_1', 1)}`);
  assert.equal(syncSpecOf(c), undefined);
});

test('role changes run primary-backup.sh in its order; MASTER lets the VIPs go after the commit', async () => {
  assert.deepEqual(commandsFor('MASTER'), ['commit', 'flush', 'resync-kernel', 'bulk-send']);
  assert.deepEqual(commandsFor('BACKUP'), ['shorten-timers', 'request-resync']);
  assert.deepEqual(commandsFor('FAULT'), ['shorten-timers']);
  const ran: string[] = [];
  const gates = new Map<SyncCommand, () => void>();
  const c = new SyncRoleController({
    run: (cmd) => {
      ran.push(cmd);
      if (cmd !== 'flush') return Promise.resolve(true);
      return new Promise((res) => gates.set(cmd, () => res(true)));
    },
  });
  let proceeded = false;
  const p = c.changed('MASTER').then(() => (proceeded = true));
  await p;
  // the commit ran, the flush has not finished: the VIPs may already be added
  assert.equal(proceeded, true);
  assert.deepEqual(ran, ['commit', 'flush']);
  // a BACKUP asked meanwhile waits for the MASTER's remaining commands
  const b = c.changed('BACKUP');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(ran, ['commit', 'flush']);
  gates.get('flush')?.();
  await b;
  assert.deepEqual(ran, ['commit', 'flush', 'resync-kernel', 'bulk-send', 'shorten-timers', 'request-resync']);
  // a repeated state does nothing; after forget() it runs again
  await c.changed('BACKUP');
  assert.equal(ran.length, 6);
  c.forget();
  await c.changed('BACKUP');
  await c.settled();
  assert.equal(ran.length, 8);
});

test('a command that throws ends its own transition, never the next one', async () => {
  const ran: string[] = [];
  const c = new SyncRoleController({
    run: async (cmd) => {
      ran.push(cmd);
      if (cmd === 'commit') throw new Error('boom');
      return true;
    },
  });
  await c.changed('MASTER');
  await c.changed('FAULT');
  await c.settled();
  assert.deepEqual(ran, ['commit', 'shorten-timers']);
});

test('-L --daemon lines as ipvsadm.c list_daemon prints them', () => {
  assert.equal(daemonLine('master', { interface: 'eth0', syncId: 1 }), 'master sync daemon (mcast=eth0, syncid=1)');
  assert.equal(daemonLine('backup', { interface: 'eth1', syncId: 0 }), 'backup sync daemon (mcast=eth1, syncid=0)');
});

test('conntrackd.conf: FTFW with the external cache, multicast or UDP, filtered to the real servers', () => {
  const base = {
    localAddress: '198.18.1.1',
    controlSocket: '/run/keepvs/conntrackd/conntrackd.ctl',
    lockFile: '/run/keepvs/conntrackd/conntrackd.lock',
    realServers: ['198.18.1.11', '198.18.1.12', '198.18.1.11', '2001:2:0:1::11'],
    protocols: ['tcp', 'udp', 'tcp'] as ('tcp' | 'udp')[],
  };
  const spec = { interface: 'eth1', syncId: 1, group: '224.0.0.81', port: 8848, ttl: 1, instance: 'VI_1' };
  const m = renderConntrackdConf({ ...base, spec });
  assert.match(m, /Mode FTFW \{\n {4}DisableExternalCache off\n/);
  assert.match(
    m,
    /Multicast Default \{\n {4}IPv4_address 224\.0\.0\.81\n {4}Group 8848\n {4}IPv4_interface 198\.18\.1\.1\n {4}Interface eth1\n/,
  );
  assert.match(m, /LockFile \/run\/keepvs\/conntrackd\/conntrackd\.lock/);
  assert.match(m, /Path \/run\/keepvs\/conntrackd\/conntrackd\.ctl/);
  assert.match(m, /Filter From Userspace \{\n {4}Protocol Accept \{\n {6}TCP\n {6}UDP\n {4}\}/);
  assert.match(
    m,
    /Address Accept \{\n {6}IPv4_address 198\.18\.1\.11\n {6}IPv4_address 198\.18\.1\.12\n {6}IPv6_address 2001:2:0:1::11\n {4}\}/,
  );
  // a unicast "group" is the peer director: conntrackd's UDP transport
  const u = renderConntrackdConf({ ...base, spec: { ...spec, group: '198.18.1.2', port: 3780 } });
  assert.match(
    u,
    /UDP Default \{\n {4}IPv4_address 198\.18\.1\.1\n {4}IPv4_Destination_Address 198\.18\.1\.2\n {4}Port 3780\n {4}Interface eth1\n/,
  );
  assert.doesNotMatch(u, /Multicast/);
  // no instance to follow: flows go straight into the kernel (IPVS's backup daemon)
  assert.match(renderConntrackdConf({ ...base, spec, injectDirectly: true }), /DisableExternalCache on/);
  // no real server yet: an Accept list that matches nothing, never an empty one (which accepts all)
  assert.match(
    renderConntrackdConf({ ...base, realServers: [], spec }),
    /Address Accept \{\n {6}IPv4_address 0\.0\.0\.0\/32\n/,
  );
  assert.equal(unsupportedSpec(spec), undefined);
  assert.match(unsupportedSpec({ ...spec, group: 'ff02::81' }) ?? '', /IPv4/);
});

test('conntrackd -e ct lines parse; -Lnc on the backup lists them for the table services only', () => {
  const lines = [
    'tcp      6 ESTABLISHED src=198.18.0.10 dst=198.18.0.100 sport=35450 dport=80 [ASSURED] [active since 2s]',
    'tcp      6 TIME_WAIT src=198.18.0.10 dst=198.18.0.100 sport=35434 dport=80 [ASSURED] mark=0 [active since 2s]',
    'udp      17 src=198.18.0.10 dst=198.18.0.100 sport=5353 dport=53 [active since 1s]',
    'tcp      6 ESTABLISHED src=198.18.0.10 dst=198.18.0.99 sport=1 dport=80 [ASSURED]',
    'garbage',
    '',
  ];
  const flows = lines.map(parseSyncedLine).filter((f) => f !== null);
  assert.equal(flows.length, 4);
  assert.deepEqual(flows[0], {
    family: 4,
    protocol: 'tcp',
    state: 'ESTABLISHED',
    src: '198.18.0.10',
    dst: '198.18.0.100',
    sport: 35450,
    dport: 80,
  });
  assert.equal(flows[2].state, '');
  const table = {
    services: [
      { key: { kind: 'addr', protocol: 'tcp', address: '198.18.0.100', port: 80, family: 4 } },
      { key: { kind: 'addr', protocol: 'udp', address: '198.18.0.100', port: 53, family: 4 } },
    ],
    timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
    connTableSize: 4096,
    syncDaemons: [],
  } as unknown as TableSnapshot;
  const conns = syncedConnections(flows, table);
  assert.deepEqual(
    conns.map((c) => `${c.protocol} ${c.state} ${c.client.port} ${c.dest.address}:${c.dest.port} ${c.expiresInMs}`),
    ['tcp ESTABLISHED 35450 0.0.0.0:0 900000', 'tcp TIME_WAIT 35434 0.0.0.0:0 120000', 'udp UDP 5353 0.0.0.0:0 300000'],
  );
  // the API names the service; the real server is unknown until the takeover
  assert.deepEqual(
    conns.map((c) => [c.service, c.realServer]),
    [
      ['tcp:198.18.0.100:80', undefined],
      ['tcp:198.18.0.100:80', undefined],
      ['udp:198.18.0.100:53', undefined],
    ],
  );
});
