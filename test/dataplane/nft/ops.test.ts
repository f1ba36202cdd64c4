/**
 * UDP one-packet scheduling (`ops`, IPVS's IP_VS_SVC_F_ONEPACKET) in the kernel plane's rules: NAT
 * services untrack their datagrams and rewrite them per datagram (and the replies back to VIP:port),
 * DR services pick a slot per packet instead of hashing the flow; full-NAT keeps per-flow scheduling,
 * reported. The lab test (ops-lab.test.ts) sends the datagrams.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { elemBytes } from '../../../src/codec/nftables.js';
import { NftDataPlane } from '../../../src/dataplane/nft/plane.js';
import type { DestParams, ServiceKey, ServiceParams, TableOp } from '../../../src/lb/types.js';
import type { NftResult } from '../../../src/os/libnftables.js';

const UDP4: ServiceKey = { kind: 'addr', protocol: 'udp', family: 4, address: '198.18.0.100', port: 53 };
const UDP6: ServiceKey = { kind: 'addr', protocol: 'udp', family: 6, address: '2001:2::100', port: 53 };
const OPS: ServiceParams = { scheduler: 'rr', schedFlags: [], ops: true };
const dp = (forward: DestParams['forward'], weight = 1): DestParams => ({
  forward,
  weight,
  uThreshold: 0,
  lThreshold: 0,
});

function plane() {
  const runs: string[] = [];
  const nft = {
    run(cmds: string): NftResult {
      // transactions only (not the reads, such as the nodest sets at start)
      if (!cmds.startsWith('list ')) runs.push(cmds);
      return { ok: true, output: '', error: '' };
    },
  };
  const net = {
    deviceOf: async () => 'eth0',
    routeDevice: async () => 'eth1',
    linkMac: async () => '02:18:01:00:00:01',
    neighbourMac: async (a: string) => `02:18:01:00:00:${a.split(/[.:]/).pop()}`,
  };
  const conntrack = { list: async () => [], flushDest: async () => undefined };
  const logger = { log: () => undefined, child: () => logger };
  const p = new NftDataPlane({ nft, net, conntrack, logger, pollMs: 0 });
  return { p, runs };
}

const add = (
  key: ServiceKey,
  params: ServiceParams,
  forward: DestParams['forward'],
  rs: readonly (readonly [string, number])[],
): TableOp[] => [
  { op: 'add-service', key, params },
  ...rs.map(([address, port]): TableOp => ({ op: 'add-dest', key, dest: { address, port }, params: dp(forward) })),
];
const RS4 = [
  ['198.18.1.11', 53],
  ['198.18.1.12', 5353],
] as const;
const RS6 = [
  ['2001:2:0:1::11', 53],
  ['2001:2:0:1::12', 53],
] as const;

test('NAT ops: datagrams untracked and rewritten one by one in raw prerouting; replies back to VIP:port', async () => {
  const { p, runs } = plane();
  await p.apply(add(UDP4, OPS, 'masq', RS4));
  const t = runs.join('\n');
  // before conntrack (priority raw), only while there is an ops service: VIP -> the service chain
  assert.match(
    t,
    /add chain ip keepvs ops_pre \{ type filter hook prerouting priority raw; policy accept; \}\nadd rule ip keepvs ops_pre ip daddr \. ip protocol \. th dport vmap @ops\nadd rule ip keepvs ops_pre ip saddr \. ip protocol \. th sport @ops_rs notrack\n/,
  );
  assert.match(t, /add element ip keepvs ops \{ 198\.18\.0\.100 \. udp \. 53 : goto s_udp_198_18_0_100_53 \}/);
  assert.doesNotMatch(t, /add element ip keepvs svc \{ 198\.18\.0\.100 \. udp \. 53/);
  // per datagram: numgen over the rr period, then address and port by the mark; no dnat (conntrack)
  assert.match(
    t,
    /add rule ip keepvs s_udp_198_18_0_100_53 notrack meta mark set numgen inc mod 2 map @s_udp_198_18_0_100_53_slots ip daddr set meta mark map @s_udp_198_18_0_100_53_dest udp dport set meta mark map @s_udp_198_18_0_100_53_dport accept\n/,
  );
  assert.doesNotMatch(t, /s_udp_198_18_0_100_53 [^\n]*dnat/);
  // IPVS list order: the last added (rs2, mark 2) first
  assert.match(t, /s_udp_198_18_0_100_53_slots \{ typeof numgen inc mod 2 : meta mark; elements = \{ 0 : 2, 1 : 1 \}/);
  assert.match(t, /_dest \{ typeof meta mark : ip daddr; elements = \{ 2 : 198\.18\.1\.12, 1 : 198\.18\.1\.11 \}/);
  assert.match(t, /_dport \{ typeof meta mark : udp dport; elements = \{ 2 : 5353, 1 : 53 \}/);
  // replies: untracked in prerouting, source rewritten after routing (postrouting), only untracked ones
  assert.match(t, /add element ip keepvs ops_rs \{ 198\.18\.1\.12 \. udp \. 5353, 198\.18\.1\.11 \. udp \. 53 \}/);
  assert.match(
    t,
    /add element ip keepvs ops_rev \{ 198\.18\.1\.12 \. udp \. 5353 : goto s_udp_198_18_0_100_53_rev, 198\.18\.1\.11 \. udp \. 53 : goto s_udp_198_18_0_100_53_rev \}/,
  );
  assert.match(t, /add rule ip keepvs s_udp_198_18_0_100_53_rev ip saddr set 198\.18\.0\.100 udp sport set 53 accept/);
  assert.match(
    t,
    /add chain ip keepvs ops_post \{ type filter hook postrouting priority srcnat; policy accept; \}\nadd rule ip keepvs ops_post ct state != untracked accept\n/,
  );
  // --stats: each datagram a connection and a packet in (IPVS's count), each reply a packet out
  assert.match(
    t,
    /add rule ip keepvs ops_post ip daddr \. ip protocol \. th dport @st_new ip daddr \. ip protocol \. th dport @st_in accept\n/,
  );
  assert.match(
    t,
    /add rule ip keepvs ops_post ip saddr \. ip protocol \. th sport @st_out ip saddr \. ip protocol \. th sport vmap @ops_rev\nadd rule ip keepvs ops_post ip saddr \. ip protocol \. th sport vmap @ops_rev\n/,
  );
  // the reverse chain exists before an element names it
  assert.ok(t.indexOf('add chain ip keepvs s_udp_198_18_0_100_53_rev') < t.indexOf('add element ip keepvs ops_rev'));
  // no IPv6 ops service: no IPv6 hook chains (every packet would walk them)
  assert.doesNotMatch(t, /ip6 keepvs ops_pre/);
  assert.equal(p.snapshot().services[0].listener, 'listening');
});

test('the same service without ops: conntrack DNAT per flow, no ops chains', async () => {
  const { p, runs } = plane();
  await p.apply(add(UDP4, { ...OPS, ops: false }, 'masq', RS4));
  const t = runs.join('\n');
  assert.doesNotMatch(t, /ops_pre|ops_post|notrack|_53_rev/);
  assert.match(t, /add element ip keepvs svc \{ 198\.18\.0\.100 \. udp \. 53 : goto s_udp_198_18_0_100_53 \}/);
  assert.match(t, /ip protocol udp dnat ip to numgen inc mod 2 map @s_udp_198_18_0_100_53_slots/);
});

test('NAT ops IPv6; wrr per datagram; sh and persistence keep a client on one server', async () => {
  const { p, runs } = plane();
  await p.apply([
    ...add(UDP6, { ...OPS, scheduler: 'wrr' }, 'masq', RS6),
    ...add({ ...UDP4, port: 54 }, { ...OPS, scheduler: 'sh' }, 'masq', RS4),
    ...add({ ...UDP4, port: 55 }, { ...OPS, persistentTimeout: 30 }, 'masq', RS4),
  ]);
  await p.apply([{ op: 'edit-dest', key: UDP6, dest: { address: '2001:2:0:1::11', port: 53 }, params: dp('masq', 3) }]);
  const t = runs.join('\n');
  assert.match(t, /add chain ip6 keepvs ops_pre \{ type filter hook prerouting priority raw;/);
  assert.match(
    t,
    /s_udp__2001_2__100__53 notrack meta mark set numgen inc mod 2 map @s_udp__2001_2__100__53_slots ip6 daddr set meta mark map @s_udp__2001_2__100__53_dest udp dport set/,
  );
  assert.match(t, /add rule ip6 keepvs s_udp__2001_2__100__53_rev ip6 saddr set 2001:2::100 udp sport set 53 accept/);
  // weight 3:1: a period of 4 slots in IPVS's wrr order, still one rule per datagram
  assert.match(
    runs[1],
    /s_udp__2001_2__100__53_slots \{ typeof numgen inc mod 2 : meta mark; elements = \{ 0 : 1, 1 : 1, 2 : 2, 3 : 1 \}/,
  );
  assert.match(runs[1], /s_udp__2001_2__100__53 notrack meta mark set numgen inc mod 4 map/);
  // the hook chains are not re-added by a weight change
  assert.doesNotMatch(runs[1], /ops_pre/);
  assert.match(
    t,
    /s_udp_198_18_0_100_54 notrack meta mark set jhash ip saddr mod 256 seed \S+ map @s_udp_198_18_0_100_54_slots/,
  );
  assert.match(
    t,
    /s_udp_198_18_0_100_55 notrack meta mark set ip saddr map @s_udp_198_18_0_100_55_persist update @s_udp_198_18_0_100_55_persist \{ ip saddr : meta mark \} ip daddr set/,
  );
});

test('the last NAT ops service gone: its elements, chains and the hook chains leave in one transaction', async () => {
  const { p, runs } = plane();
  await p.apply(add(UDP4, OPS, 'masq', RS4));
  await p.apply([{ op: 'del-service', key: UDP4 }]);
  const t = runs[1];
  assert.match(t, /delete element ip keepvs ops_rev \{ 198\.18\.1\.12 \. udp \. 5353, 198\.18\.1\.11 \. udp \. 53 \}/);
  assert.match(t, /delete element ip keepvs ops_rs \{/);
  assert.match(t, /delete chain ip keepvs ops_pre/);
  assert.match(t, /delete chain ip keepvs ops_post/);
  assert.match(t, /delete chain ip keepvs s_udp_198_18_0_100_53_rev/);
  assert.match(t, /delete map ip keepvs s_udp_198_18_0_100_53_dport/);
  // elements naming the reverse chain go before the chain
  assert.ok(
    t.indexOf('delete element ip keepvs ops_rev') < t.indexOf('delete chain ip keepvs s_udp_198_18_0_100_53_rev'),
  );
  // ops switched off on a live service: back to conntrack DNAT
  await p.apply(add(UDP4, OPS, 'masq', RS4));
  await p.apply([{ op: 'edit-service', key: UDP4, params: { ...OPS, ops: false } }]);
  assert.match(runs[3], /delete element ip keepvs ops \{ 198\.18\.0\.100 \. udp \. 53 \}/);
  assert.match(runs[3], /add element ip keepvs svc \{ 198\.18\.0\.100 \. udp \. 53 : goto/);
  assert.match(runs[3], /dnat ip to/);
});

test('DR ops: a slot per packet (numgen, not the flow hash), no flow map even with flow_pinning', async () => {
  const { p, runs } = plane();
  const DR = { ...UDP4, port: 82 };
  await p.apply([
    ...add(DR, { ...OPS, flowPinTimeout: 600 }, 'route', [
      ['198.18.1.11', 82],
      ['198.18.1.12', 82],
    ]),
    ...add({ ...UDP6, port: 82 }, OPS, 'route', [
      ['2001:2:0:1::11', 82],
      ['2001:2:0:1::12', 82],
    ]),
    ...add({ ...DR, port: 83 }, { ...OPS, ops: false }, 'route', [
      ['198.18.1.11', 83],
      ['198.18.1.12', 83],
    ]),
  ]);
  const t = runs.join('\n');
  assert.match(
    t,
    /add rule netdev keepvs s_udp_198_18_0_100_82 ether saddr set 02:18:01:00:00:01 ether daddr set numgen inc mod 2 map @s_udp_198_18_0_100_82_slots fwd to "eth1"/,
  );
  assert.match(
    t,
    /add rule netdev keepvs s_udp__2001_2__100__82 ether saddr set \S+ ether daddr set numgen inc mod 2 map/,
  );
  assert.doesNotMatch(t, /_flows|_src6/);
  // without ops: the flow hash (a flow stays on its server)
  assert.match(t, /s_udp_198_18_0_100_83 ether saddr set \S+ ether daddr set jhash ip saddr \. th sport mod 4093/);
  // DR rr under ops takes turns as IPVS does: no "runs as a Maglev hash" diagnostic for it
  const diags = p.snapshot().diagnostics;
  assert.ok(!diags.some((d) => d.code === 'DP_DR_HASHED' && d.service.endsWith(':82')), JSON.stringify(diags));
  assert.ok(diags.some((d) => d.code === 'DP_DR_HASHED' && d.service.endsWith(':83')));
});

test('full-NAT ops stays per flow, reported; the port element codec writes 16 bits', async () => {
  const { p, runs } = plane();
  await p.apply(add(UDP4, OPS, 'fullnat', RS4));
  assert.doesNotMatch(runs.join('\n'), /notrack|ops_pre/);
  assert.match(runs.join('\n'), /dnat ip to/);
  const d = p.snapshot().diagnostics.find((x) => x.code === 'DP_OPS_PER_FLOW');
  assert.match(d?.message ?? '', /full-NAT/);
  assert.deepEqual([...elemBytes({ kind: 'port', port: 5353 })], [0x14, 0xe9]);
});

test('a real server in two NAT ops services: its replies follow the first, reported; the second takes over when it leaves', async () => {
  const { p, runs } = plane();
  const B = { ...UDP4, address: '198.18.0.101' };
  await p.apply([...add(UDP4, OPS, 'masq', [['198.18.1.11', 53]]), ...add(B, OPS, 'masq', [['198.18.1.11', 53]])]);
  assert.match(
    runs[0],
    /add element ip keepvs ops_rev \{ 198\.18\.1\.11 \. udp \. 53 : goto s_udp_198_18_0_100_53_rev \}/,
  );
  assert.doesNotMatch(runs[0], /goto s_udp_198_18_0_101_53_rev/);
  const d = p.snapshot().diagnostics.find((x) => x.code === 'DP_OPS_SHARED_RS');
  assert.match(d?.message ?? '', /198\.18\.1\.11 port 53 is also in udp:198\.18\.0\.100:53/);
  await p.apply([{ op: 'del-service', key: UDP4 }]);
  const t = runs[1];
  assert.match(t, /delete element ip keepvs ops_rev \{ 198\.18\.1\.11 \. udp \. 53 \}/);
  assert.match(t, /add element ip keepvs ops_rev \{ 198\.18\.1\.11 \. udp \. 53 : goto s_udp_198_18_0_101_53_rev \}/);
  // the hooks stay: an ops service is left
  assert.doesNotMatch(t, /ops_pre/);
  assert.ok(
    t.indexOf('delete element ip keepvs ops_rev') < t.indexOf('delete chain ip keepvs s_udp_198_18_0_100_53_rev'),
  );
});
