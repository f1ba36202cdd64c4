/**
 * The SIGUSR1/SIGUSR2 dumps in keepalived 2.2.7's layouts (vrrp_print.c vrrp_print_stats, vrrp_data.c
 * dump_vrrp/dump_vscript, check_data.c dump_vs/dump_rs, vrrp_json.c), which the keepalived exporters parse.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DaemonStatus } from '../../src/api/types.js';
import { dumpFiles, formatCheckData, formatJson, formatStats, formatVrrpData } from '../../src/daemon/dump.js';

const at = new Date(2023, 0, 14, 6, 41, 32, 348).getTime();
const status: DaemonStatus = {
  version: 'test',
  routerId: 'LVS_DEVEL',
  configFile: '/etc/keepalived/keepalived.conf',
  startedAt: 0,
  workers: [],
  vrrp: [
    {
      name: 'VI_1',
      state: 'MASTER',
      vrid: 52,
      interface: 'ens3',
      priority: 50,
      effectivePriority: 150,
      vips: [],
      addresses: [
        { address: '10.1.0.1', prefixLen: 24, dev: 'ens3', excluded: false },
        { address: '10.1.0.2', prefixLen: 32, dev: 'ens3', excluded: false },
        { address: '10.10.0.1', prefixLen: 32, dev: 'ens3', excluded: true },
      ],
      lastTransitions: [{ from: 'BACKUP', to: 'MASTER', reason: 'x', at }],
      stats: { advert_rcvd: 11, advert_sent: 12, become_master: 2, release_master: 1, ip_ttl_err: 1, auth_failure: 2 },
    },
  ],
  vrrpScripts: [{ name: 'chk', status: 'OK', result: 0, running: false }],
  lvs: {
    table: {
      services: [
        {
          key: { kind: 'addr', protocol: 'tcp', family: 4, address: '192.0.2.1', port: 80 },
          id: 'tcp:192.0.2.1:80',
          scheduler: 'wlc',
          schedFlags: [],
          ops: false,
          persistentTimeout: 300,
          stats: { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 },
          rates: { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 },
          dests: [
            {
              id: '10.0.0.1:80',
              address: '10.0.0.1',
              port: 80,
              family: 4,
              forward: 'masq',
              weight: 3,
              uThreshold: 100,
              lThreshold: 10,
              activeConns: 0,
              inactConns: 0,
              persistConns: 0,
              overloaded: false,
              stats: { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 },
              rates: { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 },
            },
          ],
        },
      ],
      timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
      connTableSize: 4096,
      syncDaemons: [],
    },
    checks: {
      servers: [
        {
          service: 'tcp:192.0.2.1:80',
          dest: '10.0.0.1:80',
          up: true,
          weight: 3,
          checkers: [{ up: true }] as never,
          since: 0,
        },
      ],
      detail: {} as never,
    },
    dataplane: {} as never,
  },
  maintenance: false,
};

test('keepalived.stats: vrrp_print_stats layout, every counter', () => {
  assert.equal(
    formatStats(status),
    `VRRP Instance: VI_1
  Advertisements:
    Received: 11
    Sent: 12
  Became master: 2
  Released master: 1
  Packet Errors:
    Length: 0
    TTL: 1
    Invalid Type: 0
    Advertisement Interval: 0
    Address List: 0
  Authentication Errors:
    Invalid Type: 0
    Type Mismatch: 0
    Failure: 2
  Priority Zero:
    Received: 0
    Sent: 0
`,
  );
});

test('keepalived.data: the VRRP topology and scripts as dump_vrrp / dump_vscript write them', () => {
  const text = formatVrrpData(status);
  const day = new Date(at).toString().slice(0, 3);
  assert.ok(
    text.includes(`------< VRRP Topology >------
 VRRP Instance = VI_1
   State = MASTER
   Wantstate = MASTER
   Last transition = ${Math.floor(at / 1000)}.348000 (${day} Jan 14 06:41:32.348000 2023)
   Interface = ens3
   Virtual Router ID = 52
   Priority = 50
   Effective priority = 150
   Virtual IP (2):
     10.1.0.1/24 dev ens3 scope global set
     10.1.0.2 dev ens3 scope global set
   Virtual IP Excluded :
     10.10.0.1 dev ens3 scope global set
------< VRRP Scripts >------
 VRRP Script = chk
   Result = 0
   Status = GOOD
   State = idle
`),
    text,
  );
  assert.match(text, /^------< Global definitions >------\n Router ID = LVS_DEVEL\n/);
});

test('keepalived_check.data: virtual and real servers as dump_vs / dump_rs write them', () => {
  assert.equal(
    formatCheckData(status),
    `------< LVS Topology >------
 ------< Virtual server >------
 VS VIP = 192.0.2.1, VPORT = 80
   Address family = inet
   lvs_sched = wlc
   One packet scheduling = disabled
   persistence timeout = 300
   protocol = TCP
   ------< Real server >------
   RIP = 10.0.0.1, RPORT = 80, WEIGHT = 3 EFF WEIGHT = 3
   NAT
   connection limit range = 10 -> 100
   alive = 1
   num failed checkers = 0
`,
  );
});

test('keepalived.json: an array of {data, stats} with vrrp_json.c field names; SIGUSR1 and SIGUSR2 file names', () => {
  const j = JSON.parse(formatJson(status));
  assert.equal(j.length, 1);
  assert.deepEqual(
    { ...j[0].data, last_transition: undefined },
    {
      iname: 'VI_1',
      ifp_ifname: 'ens3',
      last_transition: undefined,
      vrid: 52,
      base_priority: 50,
      effective_priority: 150,
      vipset: true,
      state: 2,
      wantstate: 2,
      vips: ['10.1.0.1/24 dev ens3 scope global', '10.1.0.2 dev ens3 scope global'],
      evips: ['10.10.0.1 dev ens3 scope global'],
    },
  );
  assert.equal(j[0].data.last_transition, at / 1000);
  assert.equal(j[0].stats.advert_rcvd, 11);
  assert.equal(j[0].stats.become_master, 2);
  assert.deepEqual(Object.keys(j[0].stats), [
    'advert_rcvd',
    'advert_sent',
    'become_master',
    'release_master',
    'packet_len_err',
    'advert_interval_err',
    'ip_ttl_err',
    'invalid_type_rcvd',
    'addr_list_err',
    'invalid_authtype',
    'authtype_mismatch',
    'auth_failure',
    'pri_zero_rcvd',
    'pri_zero_sent',
  ]);
  assert.deepEqual(
    dumpFiles(status, 'data').map(([n]) => n),
    ['keepalived.data', 'keepalived_check.data', 'keepalived.json', 'keepvs.json'],
  );
  assert.deepEqual(
    dumpFiles(status, 'stats').map(([n]) => n),
    ['keepalived.stats'],
  );
});
