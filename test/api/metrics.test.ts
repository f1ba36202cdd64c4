/** Values of the exporter-compatible series (docs/metrics.md) from a status snapshot. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from '../../src/api/metrics.js';
import type { DaemonStatus, StatusSource } from '../../src/api/types.js';
import type { ServiceSnapshot } from '../../src/lb/types.js';
import { EventBus } from '../../src/util/events.js';

const zeroRates = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
const dest = (address: string, port: number, weight: number, activeConns: number, conns: number) => ({
  id: `${address}:${port}`,
  address,
  port,
  family: address.includes(':') ? (6 as const) : (4 as const),
  forward: 'masq' as const,
  weight,
  uThreshold: 0,
  lThreshold: 0,
  activeConns,
  inactConns: 1,
  persistConns: 0,
  overloaded: false,
  stats: { conns, inPkts: 10, outPkts: 20, inBytes: 300, outBytes: 400 },
  rates: zeroRates,
});
const service = (key: ServiceSnapshot['key'], id: string, dests: ServiceSnapshot['dests']): ServiceSnapshot => ({
  key,
  id,
  scheduler: 'rr',
  schedFlags: [],
  ops: false,
  stats: { conns: 5, inPkts: 1, outPkts: 2, inBytes: 3, outBytes: 4 },
  rates: zeroRates,
  dests,
});

const status: DaemonStatus = {
  version: 'test',
  configFile: '/etc/keepalived/keepalived.conf',
  startedAt: 0,
  workers: [],
  vrrp: [
    {
      name: 'VI_1',
      state: 'MASTER',
      vrid: 51,
      interface: 'eth0',
      priority: 100,
      effectivePriority: 100,
      vips: [],
      addresses: [
        { address: '192.0.2.10', prefixLen: 32, dev: 'eth0', excluded: false },
        { address: '192.0.2.11', prefixLen: 24, dev: 'eth1', excluded: false },
        { address: '2001:db8::10', prefixLen: 64, dev: 'eth0', excluded: true },
      ],
      lastTransitions: [],
      stats: { advert_sent: 7, advert_rcvd: 3, become_master: 2, release_master: 1, auth_failure: 4 },
    },
    {
      name: 'VI_2',
      state: 'STOP',
      vrid: 52,
      interface: 'eth0',
      priority: 90,
      effectivePriority: 90,
      vips: [],
      addresses: [],
      lastTransitions: [],
      stats: {},
    },
  ],
  vrrpScripts: [
    { name: 'chk_ok', status: 'OK', result: 0, running: true },
    { name: 'chk_bad', status: 'FAILED', result: 1, running: false },
    { name: 'chk_new', status: 'INIT', result: 0, running: false },
  ],
  lvs: {
    table: {
      services: [
        service({ kind: 'addr', protocol: 'tcp', family: 4, address: '192.0.2.10', port: 80 }, 'tcp:192.0.2.10:80', [
          dest('10.0.0.1', 80, 3, 4, 6),
        ]),
        service(
          { kind: 'addr', protocol: 'udp', family: 6, address: '2001:db8::10', port: 53 },
          'udp:[2001:db8::10]:53',
          [dest('2001:db8::1', 53, 1, 0, 2)],
        ),
        service({ kind: 'fwmark', family: 4, fwmark: 100 }, 'fwm:100', [dest('10.0.0.1', 80, 2, 1, 1)]),
      ],
      timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
      connTableSize: 4096,
      syncDaemons: [],
    },
    checks: { servers: [], detail: { checkers: [] } as never },
    dataplane: { kind: 'proxy', workers: 1, services: [] } as never,
  },
  maintenance: false,
};

const source: StatusSource = {
  status: () => status,
  events: () => [],
  subscribe: (l) => new EventBus().subscribe(l),
  act: async () => ({ ok: true }),
};

test('keepalived exporter series: per-VIP state, advert counters, scripts; gen2brain LVS; node_exporter ipvs', async () => {
  const m = await createMetrics(source).metrics();
  const has = (line: string) => assert.ok(m.split('\n').includes(line), `missing: ${line}`);
  const lacks = (re: RegExp) => assert.doesNotMatch(m, re);
  has('keepalived_up 1');
  has('keepalived_vrrp_state{iname="VI_1",intf="eth0",vrid="51",ip_address="192.0.2.10"} 2');
  has('keepalived_vrrp_state{iname="VI_1",intf="eth1",vrid="51",ip_address="192.0.2.11/24"} 2');
  has('keepalived_vrrp_excluded_state{iname="VI_1",intf="eth0",vrid="51",ip_address="2001:db8::10/64"} 2');
  has('keepalived_vrrp_state{iname="VI_2",intf="eth0",vrid="52",ip_address=""} 98');
  has('keepalived_advertisements_sent_total{iname="VI_1",intf="eth0",vrid="51"} 7');
  has('keepalived_advertisements_received_total{iname="VI_1",intf="eth0",vrid="51"} 3');
  has('keepalived_become_master_total{iname="VI_1",intf="eth0",vrid="51"} 2');
  has('keepalived_release_master_total{iname="VI_1",intf="eth0",vrid="51"} 1');
  has('keepalived_authentication_failure_total{iname="VI_1",intf="eth0",vrid="51"} 4');
  has('keepalived_ip_ttl_errors_total{iname="VI_2",intf="eth0",vrid="52"} 0');
  has('keepalived_script_status{name="chk_ok"} 1');
  has('keepalived_script_status{name="chk_bad"} 0');
  lacks(/keepalived_script_status\{name="chk_new"\}/);
  has('keepalived_script_state{name="chk_ok"} 1');
  has('keepalived_lvs_vip_conn{addr="192.0.2.10:80",proto="6"} 5');
  has('keepalived_lvs_vip_in_bytes{addr="2001:db8::10:53",proto="17"} 3');
  has('keepalived_lvs_vip_conn{addr="FWM:100",proto="0"} 5');
  // the same real server in two services of the same protocol number adds up (6 + 1)
  has('keepalived_lvs_rs_conn{addr="10.0.0.1:80",proto="6"} 6');
  has('keepalived_lvs_rs_conn{addr="10.0.0.1:80",proto="0"} 1');
  has('node_ipvs_connections_total 15');
  has('node_ipvs_outgoing_bytes_total 12');
  has(
    'node_ipvs_backend_connections_active{local_address="192.0.2.10",local_port="80",remote_address="10.0.0.1",remote_port="80",proto="TCP",local_mark=""} 4',
  );
  has(
    'node_ipvs_backend_weight{local_address="",local_port="0",remote_address="10.0.0.1",remote_port="80",proto="FWM",local_mark="00000064"} 2',
  );
  has(
    'node_ipvs_backend_weight{local_address="2001:db8::10",local_port="53",remote_address="2001:db8::1",remote_port="53",proto="UDP",local_mark=""} 1',
  );
  has('keepvs_vrrp_packets_total{vrrp_instance="VI_1",kind="become_master"} 2');
  has('keepvs_service_connections_total{service="tcp:192.0.2.10:80"} 5');
  has('keepvs_real_server_packets_total{service="tcp:192.0.2.10:80",real_server="10.0.0.1:80",direction="out"} 20');
  lacks(/[{,]instance="/);
});

test('BGP series: speaker, each VIP announced or withdrawn with its hold-down left, each neighbor session and BFD', async () => {
  const bgp: NonNullable<DaemonStatus['bgp']> = {
    speaker: 'frr-bgpd',
    dir: '/run/keepvs/frr',
    running: true,
    neighbors: [
      { address: '198.18.2.1', state: 'Established', bfd: 'Up' },
      { address: '198.18.3.1', state: 'Active', bfd: 'Down' },
      { address: '2001:2:0:2::1', state: 'Established' },
    ],
    vips: [
      {
        prefix: '198.18.0.100/32',
        announced: true,
        reason: 'healthy',
        holdDownMs: 5000,
        holdDownRemainingMs: 0,
        withdrawals: 2,
      },
      {
        prefix: '198.18.0.101/32',
        announced: false,
        reason: 'held down: healthy for 3 of 10 s after 1 withdrawal(s)',
        holdDownMs: 10000,
        holdDownRemainingMs: 7000,
        withdrawals: 1,
      },
    ],
  };
  const m = await createMetrics({ ...source, status: () => ({ ...status, bgp }) }).metrics();
  const has = (line: string) => assert.ok(m.split('\n').includes(line), `missing: ${line}`);
  has('keepvs_bgp_speaker_up{speaker="frr-bgpd"} 1');
  has('keepvs_bgp_vip_announced{prefix="198.18.0.100/32"} 1');
  has('keepvs_bgp_vip_announced{prefix="198.18.0.101/32"} 0');
  has('keepvs_bgp_vip_hold_down_seconds{prefix="198.18.0.101/32"} 7');
  has('keepvs_bgp_vip_hold_down_seconds{prefix="198.18.0.100/32"} 0');
  has('keepvs_bgp_vip_withdrawals_total{prefix="198.18.0.100/32"} 2');
  has('keepvs_bgp_neighbor_established{neighbor="198.18.2.1"} 1');
  has('keepvs_bgp_neighbor_established{neighbor="198.18.3.1"} 0');
  has('keepvs_bgp_neighbor_bfd_up{neighbor="198.18.2.1"} 1');
  has('keepvs_bgp_neighbor_bfd_up{neighbor="198.18.3.1"} 0');
  assert.doesNotMatch(m, /keepvs_bgp_neighbor_bfd_up\{neighbor="2001/);
  const off = await createMetrics({
    ...source,
    status: () => ({ ...status, bgp: { ...bgp, error: 'BGP: bgpd failed' } }),
  }).metrics();
  assert.ok(off.split('\n').includes('keepvs_bgp_speaker_up{speaker="frr-bgpd"} 0'));
  // without bgp_announce: no BGP samples at all
  assert.doesNotMatch(await createMetrics(source).metrics(), /^keepvs_bgp_\w+(\{.*\})? /m);
});
