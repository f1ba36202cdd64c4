import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ContentBatch } from '../../../src/codec/nftables.js';
import type { KernelDest, KernelService } from '../../../src/dataplane/nft/model.js';
import { NftDataPlane, type NftPlaneDeps, parseDynamicMap } from '../../../src/dataplane/nft/plane.js';
import { serviceBody, usableDests } from '../../../src/dataplane/nft/render.js';
import { slotTable } from '../../../src/dataplane/nft/slots.js';
import type { DestParams, ServiceKey, ServiceParams, TableOp } from '../../../src/lb/types.js';
import { type CtEntry, type CtWanted, parseConntrackLine } from '../../../src/os/conntrack.js';
import type { CtTimeouts } from '../../../src/os/conntrack-timeouts.js';
import type { NftResult } from '../../../src/os/libnftables.js';
import type { ContentOutcome } from '../../../src/os/nft-netlink.js';

const KEY: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 4, address: '198.18.0.100', port: 80 };
const DR_KEY: ServiceKey = { ...KEY, port: 82 };
const SP: ServiceParams = { scheduler: 'rr', schedFlags: [], ops: false };
const dp = (forward: DestParams['forward'], weight = 1): DestParams => ({
  forward,
  weight,
  uThreshold: 0,
  lThreshold: 0,
});

function plane(
  opts: {
    fail?: (cmds: string) => boolean;
    conns?: CtEntry[];
    setSizes?: { stats: number; dr: number };
    /** expire_nodest_conn off (the IPVS default); these tests default to on */
    keep?: boolean;
    /** conntrack's per-state timeouts (absent: a gone real server's connections are not measured) */
    ctTimeouts?: CtTimeouts;
    /** what a list command answers (JSON) */
    listed?: (cmds: string) => string | undefined;
    /** lookups that differ from the lab's answers */
    net?: { deviceOf?: () => Promise<string | null>; neighbourMac?: (a: string) => Promise<string | null> };
    /** a conntrack of the test's own instead of the one here (which lists `conns`) */
    conntrack?: NftPlaneDeps['conntrack'];
    flowsFromElsewhere?: () => boolean;
  } = {},
) {
  const runs: string[] = [];
  /** list commands (reads, not transactions) */
  const lists: string[] = [];
  const nft = {
    run(cmds: string): NftResult {
      (cmds.startsWith('list ') ? lists : runs).push(cmds);
      const ok = !(opts.fail?.(cmds) ?? false);
      return { ok, output: opts.listed?.(cmds) ?? '', error: ok ? '' : 'Error: No such file or directory' };
    },
  };
  const net = {
    deviceOf: async () => 'eth0',
    routeDevice: async () => 'eth1',
    linkMac: async () => '02:18:01:00:00:01',
    neighbourMac: async (a: string) => (a === '198.18.1.13' ? null : `02:18:01:00:00:${a.split('.')[3]}`),
    ...opts.net,
  };
  const flushed: string[] = [];
  /** how many transactions had run when each flush came */
  const flushedAfter: number[] = [];
  /** every flushDest call's arguments */
  const flushArgs: unknown[][] = [];
  const asked: (CtWanted | undefined)[] = [];
  const conntrack = {
    // as ProcConntrack: only the entries `wanted` accepts
    list: async (wanted?: CtWanted) => {
      asked.push(wanted);
      return (opts.conns ?? []).filter((e) => !wanted || wanted(e.family, e.original.dst));
    },
    flushDest: async (a: string, ...rest: unknown[]) => {
      flushArgs.push([a, ...rest]);
      flushed.push(a);
      flushedAfter.push(runs.length);
    },
  };
  const logs: string[] = [];
  const logger = { log: (_l: string, m: string) => void logs.push(m), child: () => logger };
  const p = new NftDataPlane({
    nft,
    net,
    conntrack: opts.conntrack ?? conntrack,
    logger,
    pollMs: 0,
    expireNodestConn: !opts.keep,
    ...(opts.flowsFromElsewhere ? { flowsFromElsewhere: opts.flowsFromElsewhere } : {}),
    ...(opts.ctTimeouts ? { ctTimeouts: () => opts.ctTimeouts as CtTimeouts } : {}),
    ...(opts.setSizes ? { setSizes: opts.setSizes } : {}),
  });
  return { p, runs, lists, flushed, flushedAfter, flushArgs, logs, asked };
}

const add = (key: ServiceKey, forward: DestParams['forward'], rs: string[]): TableOp[] => [
  { op: 'add-service', key, params: SP },
  ...rs.map(
    (a): TableOp => ({
      op: 'add-dest',
      key,
      dest: { address: a, port: key.kind === 'addr' ? key.port : 0 },
      params: dp(forward),
    }),
  ),
];

test('the first apply rebuilds keepvs tables atomically; ops of one tick are one transaction', async () => {
  const { p, runs } = plane();
  await Promise.all([
    p.apply(add(KEY, 'masq', ['198.18.1.11', '198.18.1.12'])),
    p.apply(add(DR_KEY, 'route', ['198.18.1.11', '198.18.1.12'])),
  ]);
  assert.equal(runs.length, 1);
  const t = runs[0];
  // own tables only: never `flush ruleset`
  assert.doesNotMatch(t, /flush ruleset/);
  assert.match(t, /^add table ip keepvs\ndelete table ip keepvs\n/);
  // a reply from a NAT real server that starts no connection here is dropped, not forwarded un-NATed;
  // in nat prerouting (a conntrack entry's first packet only), before the dispatch, not per packet
  assert.match(
    t,
    /add rule ip keepvs prerouting ip saddr \. ip protocol \. th sport @rs_nat drop\nadd rule ip keepvs prerouting jump dispatch\n/,
  );
  assert.doesNotMatch(t, /add rule ip keepvs stats[^\n]*rs_nat/);
  assert.ok(t.indexOf('add set ip keepvs rs_nat') < t.indexOf('@rs_nat drop'));
  assert.match(t, /add element ip keepvs rs_nat \{ [^}]*198\.18\.1\.11 \. tcp \. 80/);
  assert.match(t, /add element ip keepvs svc \{ 198\.18\.0\.100 \. tcp \. 80 : goto s_tcp_198_18_0_100_80 \}/);
  assert.match(t, /elements = \{ 0 : 198\.18\.1\.12 \. 80, 1 : 198\.18\.1\.11 \. 80 \}/);
  // DR: netdev ingress on the VIP's device, pkttype host, MAC rewrite, fwd to the real servers' device
  assert.match(t, /meta pkttype host ip daddr \. ip protocol \. th dport vmap @svc4/);
  assert.match(t, /add chain netdev keepvs in_eth0 \{ type filter hook ingress device "eth0" priority -500;/);
  // per-packet work: the dispatch sits in the device chain (no jump), DR rules test no protocol again
  assert.match(t, /add rule netdev keepvs in_eth0 meta pkttype host ip daddr \. ip protocol \. th dport vmap @svc4/);
  // only the dispatch rules DR services use: every packet on the device (NAT traffic too) walks them
  assert.equal(t.match(/add rule netdev keepvs in_eth0 /g)?.length, 1);
  assert.doesNotMatch(t, /add rule netdev keepvs \S+ jump/);
  assert.doesNotMatch(t, /add rule netdev keepvs s_\S+ meta l4proto/);
  // NAT/FNAT: one forward chain, each counter ends it; new connections counted in postrouting
  assert.doesNotMatch(t, /rs_guard/);
  assert.match(
    t,
    /add rule ip keepvs stats ct direction original ct status dnat ip daddr \. ip protocol \. th dport @st_in accept/,
  );
  assert.match(
    t,
    /add rule ip keepvs stats ct direction reply ct status dnat ip saddr \. ip protocol \. th sport @st_out\n/,
  );
  // IPv6 keeps meta l4proto (ip6 nexthdr is the first extension header's, not the transport's)
  assert.match(
    t,
    /add rule ip6 keepvs stats ct direction reply ct status dnat ip6 saddr \. meta l4proto \. th sport @st_out\n/,
  );
  // the per-packet sets and maps have a size: the kernel's fixed-size hash, not the resizable rhash
  assert.match(t, /add set ip keepvs st_in \{ type ipv4_addr \. inet_proto \. inet_service; size 65536; counter; \}/);
  assert.match(t, /add set ip6 keepvs st_out \{ type ipv6_addr \. inet_proto \. inet_service; size 65536; counter; \}/);
  assert.match(
    t,
    /add map netdev keepvs svc4 \{ type ipv4_addr \. inet_proto \. inet_service : verdict; size 16384; \}/,
  );
  assert.match(t, /add map netdev keepvs svc6p0 \{ type ipv6_addr \. inet_proto : verdict; size 16384; \}/);
  assert.match(t, /add rule ip keepvs dispatch ip daddr \. ip protocol \. th dport vmap @svc\n/);
  assert.match(t, /add rule ip6 keepvs dispatch ip6 daddr \. meta l4proto \. th dport vmap @svc\n/);
  assert.match(t, /add rule ip keepvs s_tcp_198_18_0_100_80 ip protocol tcp dnat ip to/);
  assert.match(t, /add rule ip keepvs postrouting ct status dnat ip daddr \. ip protocol \. th dport @st_new/);
  assert.match(
    t,
    /ether saddr set 02:18:01:00:00:01 ether daddr set jhash ip saddr \. th sport mod 4093 seed \S+ map @s_tcp_198_18_0_100_82_slots fwd to "eth1"/,
  );
  // DR's slot map, looked up per packet, is declared with its size (the kernel's fixed-size hash, not
  // rhash); NAT's, looked up per new flow, is not (its wrr period changes over netlink)
  assert.match(
    t,
    /add map netdev keepvs s_tcp_198_18_0_100_82_slots \{ typeof numgen inc mod 2 : ether daddr; size 4093; elements/,
  );
  assert.match(
    t,
    /add map ip keepvs s_tcp_198_18_0_100_80_slots \{ typeof numgen inc mod 2 : ip daddr \. th dport; elements/,
  );
  // device chains come last, after the service chains they reach
  assert.ok(t.indexOf('in_eth0') > t.indexOf('goto s_tcp_198_18_0_100_82'));
  assert.equal(p.snapshot().services.filter((s) => s.listener === 'listening').length, 2);
});

test('device chains hold the dispatch rules of the DR services there are, rewritten as that changes', async () => {
  const { p, runs } = plane();
  await p.apply(add(DR_KEY, 'route', ['198.18.1.11']));
  const dev = (r: string) => r.match(/add rule netdev keepvs in_eth0 .*/g) ?? [];
  // one real server: its MAC as a constant, no hash or slot lookup per packet (the map stays filled)
  assert.match(
    runs[0],
    /add rule netdev keepvs s_tcp_198_18_0_100_82 ether saddr set 02:18:01:00:00:01 ether daddr set 02:18:01:00:00:11 fwd to "eth1"\n/,
  );
  assert.match(
    runs[0],
    /add map netdev keepvs s_tcp_198_18_0_100_82_slots \{ [^}]*elements = \{ 0 : 02:18:01:00:00:11/,
  );
  // a second one: the Maglev table again
  await p.apply([{ op: 'add-dest', key: DR_KEY, dest: { address: '198.18.1.12', port: 82 }, params: dp('route') }]);
  assert.match(
    runs[1],
    /ether daddr set jhash ip saddr \. th sport mod 4093 seed \S+ map @s_tcp_198_18_0_100_82_slots/,
  );
  await p.apply([{ op: 'del-dest', key: DR_KEY, dest: { address: '198.18.1.12', port: 82 } }]);
  assert.match(runs[2], /ether daddr set 02:18:01:00:00:11 fwd/);
  assert.deepEqual(dev(runs[0]), [
    'add rule netdev keepvs in_eth0 meta pkttype host ip daddr . ip protocol . th dport vmap @svc4',
  ]);
  // a port-0 service: its rule joins, in dispatch order, in the same transaction as its chain
  const P0: ServiceKey = { ...DR_KEY, port: 0 };
  await p.apply([{ op: 'add-service', key: P0, params: { ...SP, persistentTimeout: 60 } }]);
  await p.apply([{ op: 'add-dest', key: P0, dest: { address: '198.18.1.11', port: 0 }, params: dp('route') }]);
  const last = runs[runs.length - 1];
  assert.match(last, /flush chain netdev keepvs in_eth0\n/);
  assert.ok(last.indexOf('flush chain netdev keepvs in_eth0') > last.indexOf('goto s_tcp_198_18_0_100_0'));
  assert.deepEqual(dev(last), [
    'add rule netdev keepvs in_eth0 meta pkttype host ip daddr . ip protocol . th dport vmap @svc4',
    'add rule netdev keepvs in_eth0 meta pkttype host ip daddr . ip protocol vmap @svc4p0',
  ]);
  // a weight change leaves the device chain alone
  const n = runs.length;
  await p.apply([{ op: 'edit-dest', key: DR_KEY, dest: { address: '198.18.1.11', port: 82 }, params: dp('route', 3) }]);
  for (const r of runs.slice(n)) assert.doesNotMatch(r, /in_eth0/);
  // the port-0 service gone: its rule goes with it
  await p.apply([{ op: 'del-service', key: P0 }]);
  assert.deepEqual(dev(runs[runs.length - 1]), [
    'add rule netdev keepvs in_eth0 meta pkttype host ip daddr . ip protocol . th dport vmap @svc4',
  ]);
});

test('a weight change rewrites only that service; a removal resets its flows (expire_nodest_conn)', async () => {
  const { p, runs, flushed } = plane();
  await p.apply(add(KEY, 'masq', ['198.18.1.11', '198.18.1.12']));
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', 0) }]);
  assert.equal(runs.length, 2);
  assert.match(
    runs[1],
    /^flush chain ip keepvs s_tcp_198_18_0_100_80\ndelete map ip keepvs s_tcp_198_18_0_100_80_slots\n/,
  );
  assert.match(runs[1], /elements = \{ 0 : 198\.18\.1\.12 \. 80 \}/);
  assert.doesNotMatch(runs[1], /delete table/);
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 } }]);
  assert.deepEqual(flushed, ['198.18.1.12']);
  // nothing left: the slot map is emptied, the chain drops (IPVS: no destination)
  assert.match(
    runs[2],
    /^flush map ip keepvs s_tcp_198_18_0_100_80_slots\n(delete element ip keepvs (st_\w+|rs_nat) \{ 198\.18\.1\.12 \. tcp \. 80 \}\n){4}$/,
  );
  await p.apply([{ op: 'del-service', key: KEY }]);
  assert.match(runs[3], /delete element ip keepvs svc \{ 198\.18\.0\.100 \. tcp \. 80 \}/);
});

test("expire_nodest_conn: a removed real server's flows are flushed after the transaction that takes it out of the slot map", async () => {
  // flushed before, a packet of such a flow (a UDP stream's next datagram) finds no conntrack entry,
  // is scheduled through the old slot map, possibly to the removed server again, and stays there
  const { p, runs, flushed, flushedAfter } = plane();
  const UDP: ServiceKey = { ...KEY, protocol: 'udp', port: 55 };
  await p.apply(add(UDP, 'masq', ['198.18.1.11', '198.18.1.12', '198.18.1.13']));
  await p.apply([{ op: 'del-dest', key: UDP, dest: { address: '198.18.1.12', port: 55 } }]);
  assert.deepEqual(flushed, ['198.18.1.12']);
  assert.equal(runs.length, 2);
  assert.match(
    runs[1],
    /_slots \{ [^}]*elements = \{ 0 : 198\.18\.1\.13 \. 55, 1 : 198\.18\.1\.11 \. 55 \} \}/,
    runs[1],
  );
  assert.deepEqual(flushedAfter, [2], 'the flush came before the slot map changed');
});

test('expire_nodest_conn on: the flush names the service, so the same real server in another service keeps its flows', async () => {
  const { p, flushArgs } = plane();
  await p.apply([
    ...add(KEY, 'masq', ['198.18.1.11', '198.18.1.12']),
    ...add({ ...KEY, port: 81 }, 'masq', ['198.18.1.12']),
  ]);
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 } }]);
  assert.deepEqual(flushArgs, [['198.18.1.12', 80, 'tcp', 4, { address: '198.18.0.100', port: 80 }]]);
});

// IPVS ip_vs_in_hook: a packet of a connection whose destination is no longer available is dropped
// while expire_nodest_conn is 0; conntrack's DNAT would go on forwarding it (nodest.ts)
const NODEST_ELEM = '198.18.0.100 . tcp . 80 . 198.18.1.12 . 80';
const NODEST_RULE =
  'ip protocol tcp ct direction original ct status dnat ip daddr . ip protocol . th dport . ct reply ip saddr . ct reply proto-src @nodest counter drop';

test("expire_nodest_conn off: a removed real server's flows are dropped (listed, with IPVS's timeout); a quiesced one's go on", async () => {
  const { p, runs, flushed } = plane({ keep: true });
  await p.apply(add(KEY, 'masq', ['198.18.1.11', '198.18.1.12', '198.18.1.13']));
  // the sets are declared, the drop chains are not there while nothing is listed: no cost per packet
  assert.match(
    runs[0],
    /add set ip keepvs nodest \{ type ipv4_addr \. inet_proto \. inet_service \. ipv4_addr \. inet_service; flags timeout; \}/,
  );
  assert.match(runs[0], /add set ip6 keepvs nodest_p0 /);
  assert.doesNotMatch(runs[0], /nodest_pre/);
  // weight 0: still available (IP_VS_DEST_F_AVAILABLE stays), nothing listed
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', 0) }]);
  assert.doesNotMatch(runs.at(-1) ?? '', /nodest/);
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 } }]);
  const t = runs.at(-1) ?? '';
  assert.deepEqual(flushed, [], 'no conntrack flush: the entries live on, dropped');
  // 900 s (IPVS's TCP ESTABLISHED timeout) + the margin keepvs deletes it within
  assert.match(
    t,
    new RegExp(`add element ip keepvs nodest \\{ ${NODEST_ELEM.replaceAll('.', '\\.')} timeout 96\\ds \\}`),
  );
  assert.match(t, /add chain ip keepvs nodest_pre \{ type filter hook prerouting priority mangle; policy accept; \}/);
  assert.match(t, /add chain ip keepvs nodest_out \{ type filter hook output priority mangle; policy accept; \}/);
  assert.ok(t.includes(`add rule ip keepvs nodest_pre ${NODEST_RULE}`), t);
  assert.ok(t.includes(`add rule ip keepvs nodest_out ${NODEST_RULE}`), t);
  // in the same transaction that takes it out of the slot map
  assert.match(t, /_slots/);
  assert.doesNotMatch(t, /ip6 keepvs nodest/);
  // a second removal: one element more, the rules stay as they are
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.13', port: 80 } }]);
  assert.match(
    runs.at(-1) ?? '',
    /add element ip keepvs nodest \{ 198\.18\.0\.100 \. tcp \. 80 \. 198\.18\.1\.13 \. 80 timeout/,
  );
  assert.doesNotMatch(runs.at(-1) ?? '', /nodest_pre/);
  // back in the service: IPVS restores it from the trash and its flows go on
  await p.apply([{ op: 'add-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 }, params: dp('masq') }]);
  assert.ok((runs.at(-1) ?? '').includes(`delete element ip keepvs nodest { ${NODEST_ELEM} }`));
  await p.apply([{ op: 'add-dest', key: KEY, dest: { address: '198.18.1.13', port: 80 }, params: dp('masq') }]);
  // nothing listed any more: the drop chains go
  assert.match(runs.at(-1) ?? '', /flush chain ip keepvs nodest_pre\ndelete chain ip keepvs nodest_pre\n/);
});

test('expire_nodest_conn off: a rebuild lists the gone real servers again, with what is left of their time', async () => {
  let failNext = false;
  const { p, runs } = plane({ keep: true, fail: (c) => failNext && c.startsWith('flush') });
  await p.apply(add(KEY, 'masq', ['198.18.1.11', '198.18.1.12']));
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 } }]);
  failNext = true;
  await p.apply([{ op: 'add-dest', key: KEY, dest: { address: '198.18.1.13', port: 80 }, params: dp('masq') }]);
  failNext = false;
  const t = runs.at(-1) ?? '';
  assert.match(t, /^add table ip keepvs\ndelete table ip keepvs/);
  assert.ok(
    t.indexOf('add set ip keepvs nodest ') < t.indexOf(`add element ip keepvs nodest { ${NODEST_ELEM} timeout`),
    t,
  );
  assert.ok(t.includes(`add rule ip keepvs nodest_pre ${NODEST_RULE}`));
  assert.doesNotMatch(t, /flush chain ip keepvs nodest_pre/);
});

test('expire_nodest_conn off: when the entries would expire in IPVS, their conntrack entries go, then the drop', async () => {
  const { p, runs, flushArgs, flushedAfter } = plane({ keep: true });
  const UDP: ServiceKey = { ...KEY, protocol: 'udp', port: 53 };
  await p.apply([{ op: 'set-timeouts', tcp: 0, tcpfin: 0, udp: 1 }]);
  await p.apply(add(UDP, 'masq', ['198.18.1.11', '198.18.1.12']));
  await p.apply([{ op: 'del-dest', key: UDP, dest: { address: '198.18.1.12', port: 53 } }]);
  const t = runs.at(-1) ?? '';
  assert.match(
    t,
    /add element ip keepvs nodest \{ 198\.18\.0\.100 \. udp \. 53 \. 198\.18\.1\.12 \. 53 timeout 61s \}/,
  );
  assert.ok(t.includes('add rule ip keepvs nodest_pre ip protocol udp ct direction original'), t);
  const before = runs.length;
  const deadline = Date.now() + 3000;
  while (runs.length === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(flushArgs, [['198.18.1.12', 53, 'udp', 4, { address: '198.18.0.100', port: 53 }]]);
  assert.deepEqual(flushedAfter, [before], 'conntrack flushed before the drop went');
  const last = runs.at(-1) ?? '';
  assert.ok(last.includes('delete element ip keepvs nodest { 198.18.0.100 . udp . 53 . 198.18.1.12 . 53 }'), last);
  assert.match(last, /delete chain ip keepvs nodest_pre/);
  await p.stop(0);
});

// IPVS restarts a connection's timer on each packet it forwards (ip_vs_conn_put), not on the ones it
// drops for a no-dest connection (ip_vs_in returns before ip_vs_set_state): it expires the state's
// timeout after its last forwarded packet, each connection on its own
test("expire_nodest_conn off: each connection of a gone real server is dropped until its last packet + the state's timeout, then its entry goes", async () => {
  const line = (rs: string, cport: number, left: number) =>
    `ipv4     2 tcp      6 ${left} ESTABLISHED src=198.18.0.10 dst=198.18.0.100 sport=${cport} dport=80 src=${rs} dst=198.18.0.10 sport=80 dport=${cport} [ASSURED] mark=0 zone=0 use=2`;
  // conntrack's ESTABLISHED timeout 100 s: 100 left = a packet just now, 99 = one a second ago
  const conns = [line('198.18.1.12', 40001, 100), line('198.18.1.12', 40002, 99), line('198.18.1.11', 40003, 50)].map(
    (l) => parseConntrackLine(l) as CtEntry,
  );
  const tcp = {
    ESTABLISHED: 100,
    SYN_SENT: 120,
    SYN_RECV: 60,
    FIN_WAIT: 120,
    CLOSE_WAIT: 60,
    LAST_ACK: 30,
    TIME_WAIT: 120,
    CLOSE: 10,
  };
  const { p, runs, flushArgs } = plane({
    keep: true,
    conns,
    ctTimeouts: { tcp, tcpUnacked: 300, udp: 30, udpStream: 120 },
  });
  await p.apply([{ op: 'set-timeouts', tcp: 2, tcpfin: 0, udp: 0 }]);
  await p.apply(add(KEY, 'masq', ['198.18.1.11', '198.18.1.12']));
  const t0 = Date.now();
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 } }]);
  const at: number[] = [];
  const deadline = Date.now() + 4000;
  let seen = 0;
  for (;;) {
    if (flushArgs.length > seen) {
      at.push(Date.now() - t0);
      seen = flushArgs.length;
    }
    if ((runs.at(-1) ?? '').includes('delete element ip keepvs nodest') || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const one = (cport: number) => [
    '198.18.1.12',
    80,
    'tcp',
    4,
    { address: '198.18.0.100', port: 80, client: { address: '198.18.0.10', port: cport } },
  ];
  // idle 1 s: 1 s left of its 2; idle 0: 2 s; then what is left of the real server, and its drop
  assert.deepEqual(flushArgs, [
    one(40002),
    one(40001),
    ['198.18.1.12', 80, 'tcp', 4, { address: '198.18.0.100', port: 80 }],
  ]);
  assert.ok(at[0] >= 800 && at[0] < 1700, `the first at 1 s: ${at}`);
  assert.ok(at[1] >= 1800, `the second at 2 s: ${at}`);
  assert.ok(
    (runs.at(-1) ?? '').includes('delete element ip keepvs nodest { 198.18.0.100 . tcp . 80 . 198.18.1.12 . 80 }'),
  );
  await p.stop(0);
});

test('expire_nodest_conn off: a removed real server with no connection left is unlisted at once (nothing to drop)', async () => {
  const tcp = { ESTABLISHED: 100 };
  const { p, runs, flushArgs } = plane({ keep: true, ctTimeouts: { tcp, tcpUnacked: 300, udp: 30, udpStream: 120 } });
  await p.apply(add(KEY, 'masq', ['198.18.1.11', '198.18.1.12']));
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 } }]);
  assert.match(
    runs.at(-1) ?? '',
    /add element ip keepvs nodest \{ 198\.18\.0\.100 \. tcp \. 80 \. 198\.18\.1\.12 \. 80 timeout 960s/,
  );
  const deadline = Date.now() + 2000;
  while (!(runs.at(-1) ?? '').includes('delete element ip keepvs nodest') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 10));
  assert.ok(
    (runs.at(-1) ?? '').includes('delete element ip keepvs nodest { 198.18.0.100 . tcp . 80 . 198.18.1.12 . 80 }'),
  );
  assert.deepEqual(flushArgs, [['198.18.1.12', 80, 'tcp', 4, { address: '198.18.0.100', port: 80 }]]);
  await p.stop(0);
});

test('expire_nodest_conn off: a restarted keepvs keeps dropping what the previous one listed (its nodest sets), unless the real server is in its service again', async () => {
  const elem = (val: unknown[], expires: number) => ({ elem: { val: { concat: val }, timeout: 960, expires } });
  const sets: Record<string, unknown[]> = {
    'list set ip keepvs nodest': [
      elem(['198.18.0.100', 'tcp', 80, '198.18.1.12', 80], 500),
      // in the configuration again: IPVS takes it back from the trash
      elem(['198.18.0.100', 'tcp', 80, '198.18.1.11', 80], 500),
    ],
    'list set ip6 keepvs nodest_rs': ['tcp', 'udp', 'sctp'].map((p) => elem(['2001:2:0:1::12', p, 8080], 200)),
  };
  const listed = (c: string) =>
    sets[c] ? JSON.stringify({ nftables: [{ metainfo: {} }, { set: { elem: sets[c] } }] }) : undefined;
  const { p, runs, lists, logs } = plane({ keep: true, listed });
  const FWM: ServiceKey = { kind: 'fwmark', fwmark: 7, family: 6 };
  await p.apply([
    ...add(KEY, 'masq', ['198.18.1.11']),
    { op: 'add-service', key: FWM, params: SP },
    { op: 'add-dest', key: FWM, dest: { address: '2001:2:0:1::11', port: 8080 }, params: dp('masq') },
  ]);
  // read before the first transaction rebuilds the tables, listed again in it with the time they had left
  assert.ok(lists.includes('list set ip keepvs nodest'));
  const t = runs[0];
  assert.match(t, /^add table ip keepvs\ndelete table ip keepvs/);
  assert.match(
    t,
    /add element ip keepvs nodest \{ 198\.18\.0\.100 \. tcp \. 80 \. 198\.18\.1\.12 \. 80 timeout (499|500)s \}/,
  );
  assert.doesNotMatch(t, /198\.18\.1\.11 \. 80 timeout/);
  for (const proto of ['tcp', 'udp', 'sctp'])
    assert.match(
      t,
      new RegExp(`add element ip6 keepvs nodest_rs \\{ 2001:2:0:1::12 \\. ${proto} \\. 8080 timeout (199|200)s`),
    );
  assert.ok(t.includes(`add rule ip keepvs nodest_pre ${NODEST_RULE}`), t);
  assert.match(t, /add rule ip6 keepvs nodest_pre meta l4proto udp .*@nodest_rs counter drop/);
  assert.ok(
    logs.some((l) => /2 removed real servers/.test(l)),
    logs.join('\n'),
  );
  // back (a check passes): unlisted, by its elements (the fwmark's mark was not kept)
  await p.apply([
    { op: 'add-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 }, params: dp('masq') },
    { op: 'add-dest', key: FWM, dest: { address: '2001:2:0:1::12', port: 8080 }, params: dp('masq') },
  ]);
  const u = runs.at(-1) ?? '';
  assert.ok(u.includes('delete element ip keepvs nodest { 198.18.0.100 . tcp . 80 . 198.18.1.12 . 80 }'), u);
  assert.ok(u.includes('delete element ip6 keepvs nodest_rs { 2001:2:0:1::12 . sctp . 8080 }'), u);
  assert.match(u, /delete chain ip6 keepvs nodest_pre/);
});

test('expire_nodest_conn off: port-0 and fwmark services list the real server by what their flows tell; IPv6 too', async () => {
  const { p, runs } = plane({ keep: true });
  const P0: ServiceKey = { ...KEY, port: 0 };
  const V6: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 6, address: '2001:2::100', port: 80 };
  const FWM: ServiceKey = { kind: 'fwmark', fwmark: 7, family: 4 };
  await p.apply([
    ...add(P0, 'masq', ['198.18.1.11', '198.18.1.12']),
    ...add(V6, 'masq', ['2001:2:0:1::11', '2001:2:0:1::12']),
    { op: 'add-service', key: FWM, params: SP },
    { op: 'add-dest', key: FWM, dest: { address: '198.18.1.11', port: 8080 }, params: dp('masq') },
    { op: 'add-dest', key: FWM, dest: { address: '198.18.1.12', port: 0 }, params: dp('masq') },
  ]);
  await p.apply([
    { op: 'del-dest', key: P0, dest: { address: '198.18.1.12', port: 0 } },
    { op: 'del-dest', key: V6, dest: { address: '2001:2:0:1::12', port: 80 } },
    { op: 'del-dest', key: FWM, dest: { address: '198.18.1.11', port: 8080 } },
    { op: 'del-dest', key: FWM, dest: { address: '198.18.1.12', port: 0 } },
  ]);
  const t = runs.at(-1) ?? '';
  assert.match(t, /add element ip keepvs nodest_p0 \{ 198\.18\.0\.100 \. tcp \. 198\.18\.1\.12 timeout/);
  assert.match(t, /add element ip6 keepvs nodest \{ 2001:2::100 \. tcp \. 80 \. 2001:2:0:1::12 \. 80 timeout/);
  for (const proto of ['tcp', 'udp', 'sctp'])
    assert.ok(t.includes(`add element ip keepvs nodest_rs { 198.18.1.11 . ${proto} . 8080 timeout`), proto);
  assert.ok(
    t.includes(
      'add rule ip keepvs nodest_pre ip protocol tcp ct direction original ct status dnat ip daddr . ip protocol . ct reply ip saddr @nodest_p0 counter drop',
    ),
    t,
  );
  assert.ok(
    t.includes(
      'add rule ip keepvs nodest_pre ip protocol udp ct direction original ct status dnat ct reply ip saddr . ip protocol . ct reply proto-src @nodest_rs counter drop',
    ),
    t,
  );
  assert.ok(
    t.includes(
      'add rule ip6 keepvs nodest_pre meta l4proto tcp ct direction original ct status dnat ip6 daddr . meta l4proto . th dport . ct reply ip6 saddr . ct reply proto-src @nodest counter drop',
    ),
    t,
  );
  // a fwmark real server without a port, its address in no other service now: listed by address alone
  for (const proto of ['tcp', 'udp', 'sctp'])
    assert.ok(t.includes(`add element ip keepvs nodest_rsa { 198.18.1.12 . ${proto} timeout`), proto);
  assert.ok(
    t.includes(
      'add rule ip keepvs nodest_pre ip protocol tcp ct direction original ct status dnat ct reply ip saddr . ip protocol @nodest_rsa counter drop',
    ),
    t,
  );
  assert.ok(!p.snapshot().diagnostics.some((d) => d.code === 'DP_NODEST_UNTOLD'));
});

test('expire_nodest_conn off: a port-less fwmark real server whose address another service has cannot be told apart: said so; one listed by address is unlisted when its address joins a service', async () => {
  const { p, runs } = plane({ keep: true });
  const FWM: ServiceKey = { kind: 'fwmark', fwmark: 7, family: 4 };
  await p.apply([
    ...add(KEY, 'masq', ['198.18.1.11']),
    { op: 'add-service', key: FWM, params: SP },
    { op: 'add-dest', key: FWM, dest: { address: '198.18.1.11', port: 0 }, params: dp('masq') },
    { op: 'add-dest', key: FWM, dest: { address: '198.18.1.12', port: 0 }, params: dp('masq') },
  ]);
  // 198.18.1.11 is in the port-80 service too: any port of it would drop that service's flows
  await p.apply([{ op: 'del-dest', key: FWM, dest: { address: '198.18.1.11', port: 0 } }]);
  assert.doesNotMatch(runs.at(-1) ?? '', /nodest_rsa \{ 198\.18\.1\.11/);
  assert.ok(p.snapshot().diagnostics.some((d) => d.code === 'DP_NODEST_UNTOLD' && d.message.includes('198.18.1.11')));
  await p.apply([{ op: 'del-dest', key: FWM, dest: { address: '198.18.1.12', port: 0 } }]);
  assert.match(runs.at(-1) ?? '', /add element ip keepvs nodest_rsa \{ 198\.18\.1\.12 \. tcp timeout/);
  // 198.18.1.12 joins the port-80 service: the drop by address would take its flows too
  await p.apply([{ op: 'add-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 }, params: dp('masq') }]);
  assert.ok((runs.at(-1) ?? '').includes('delete element ip keepvs nodest_rsa { 198.18.1.12 . tcp }'), runs.at(-1));
  assert.ok(p.snapshot().diagnostics.some((d) => d.code === 'DP_NODEST_UNTOLD' && d.message.includes('198.18.1.12')));
});

// IPVS ip_vs_ctl.c __ip_vs_del_service unlinks every destination (__ip_vs_unlink_dest clears
// IP_VS_DEST_F_AVAILABLE), so a deleted service's connections are no-dest ones in ip_vs_in
test("expire_nodest_conn off: a deleted service's real servers are listed, NAT and full-NAT, IPv4 and IPv6; back, unlisted", async () => {
  const { p, runs, flushed } = plane({ keep: true });
  const V6: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 6, address: '2001:2::100', port: 80 };
  const FN: ServiceKey = { ...KEY, port: 81 };
  await p.apply([
    ...add(KEY, 'masq', ['198.18.1.11', '198.18.1.12']),
    ...add(V6, 'masq', ['2001:2:0:1::11']),
    ...add(FN, 'fullnat', ['198.18.1.11']),
  ]);
  await p.apply([
    { op: 'del-service', key: KEY },
    { op: 'del-service', key: V6 },
    { op: 'del-service', key: FN },
  ]);
  const t = runs.at(-1) ?? '';
  assert.deepEqual(flushed, []);
  for (const e of [
    'ip keepvs nodest { 198.18.0.100 . tcp . 80 . 198.18.1.11 . 80 timeout',
    'ip keepvs nodest { 198.18.0.100 . tcp . 80 . 198.18.1.12 . 80 timeout',
    'ip keepvs nodest { 198.18.0.100 . tcp . 81 . 198.18.1.11 . 81 timeout',
    'ip6 keepvs nodest { 2001:2::100 . tcp . 80 . 2001:2:0:1::11 . 80 timeout',
  ])
    assert.ok(t.includes(`add element ${e}`), `${e}\n${t}`);
  assert.ok(t.includes(`add rule ip keepvs nodest_pre ${NODEST_RULE}`), t);
  assert.match(t, /add rule ip6 keepvs nodest_pre meta l4proto tcp /);
  // the service again, with its real server: IPVS takes it back from the trash, its flows go on
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  assert.ok(
    (runs.at(-1) ?? '').includes('delete element ip keepvs nodest { 198.18.0.100 . tcp . 80 . 198.18.1.11 . 80 }'),
  );
  // ipvsadm -C: every service deleted, the same
  await p.apply([{ op: 'clear' }]);
  assert.ok(
    (runs.at(-1) ?? '').includes('add element ip keepvs nodest { 198.18.0.100 . tcp . 80 . 198.18.1.11 . 80 timeout'),
  );
});

test("expire_nodest_conn on: a deleted service's flows are reset", async () => {
  const { p, flushArgs } = plane();
  await p.apply(add(KEY, 'masq', ['198.18.1.11', '198.18.1.12']));
  flushArgs.length = 0;
  await p.apply([{ op: 'del-service', key: KEY }]);
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(flushArgs.map((a) => a[0]).sort(), ['198.18.1.11', '198.18.1.12']);
});

test('a refused update rebuilds everything in one transaction; TUN is refused with a diagnostic', async () => {
  let failNext = false;
  const { p, runs } = plane({ fail: (c) => failNext && c.startsWith('flush') });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  failNext = true;
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', 0) }]);
  assert.equal(runs.length, 3);
  assert.match(runs[2], /^add table ip keepvs\ndelete table ip keepvs/);
  await p.apply(add({ ...KEY, port: 90 }, 'tunnel', ['198.18.1.11']));
  const diag = p.snapshot().diagnostics.find((d) => d.code === 'DP_UNSUPPORTED_FORWARD');
  assert.match(diag?.message ?? '', /TUN/);
  assert.equal(p.snapshot().services.find((s) => s.id === 'tcp:198.18.0.100:90')?.listener, 'failed');
});

test('DR real servers without a MAC get no slots, and are reported', async () => {
  const { p, runs } = plane();
  await p.apply(add(DR_KEY, 'route', ['198.18.1.12', '198.18.1.13']));
  // rr in DR is a Maglev table on the flow: every slot on the one server with a MAC
  assert.match(runs[0], /elements = \{ 0 : 02:18:01:00:00:12, 1 : 02:18:01:00:00:12, /);
  assert.doesNotMatch(runs[0], /: 02:18:01:00:00:13/);
  // and that it is a hash, not rr order, is said (log, API, dashboard)
  assert.ok(
    p.snapshot().diagnostics.some((d) => d.code === 'DP_DR_HASHED' && /rr runs as a weighted Maglev/.test(d.message)),
  );
  assert.ok(p.snapshot().diagnostics.some((d) => d.code === 'DP_DR_NO_MAC' && /198\.18\.1\.13/.test(d.message)));
});

test('DR: a device or MAC not found yet is looked up again at each poll (a link whose carrier is not back has no route)', async () => {
  let route: string | null = null;
  let mac13: string | null = null;
  const { p, runs } = plane({
    net: {
      deviceOf: async () => route,
      neighbourMac: async (a: string) => (a === '198.18.1.13' ? mac13 : `02:18:01:00:00:${a.split('.')[3]}`),
    },
  });
  await p.apply(add(DR_KEY, 'route', ['198.18.1.12', '198.18.1.13']));
  assert.doesNotMatch(runs.join('\n'), /s_tcp_198_18_0_100_82/, 'not installed without its device');
  assert.ok(p.snapshot().diagnostics.some((d) => d.code === 'DP_DR_NO_ROUTE'));
  await p.poll();
  assert.doesNotMatch(runs.join('\n'), /add chain netdev keepvs s_tcp_198_18_0_100_82/);
  route = 'eth0';
  await p.poll();
  assert.match(runs.at(-1) ?? '', /add chain netdev keepvs s_tcp_198_18_0_100_82/);
  assert.doesNotMatch(runs.at(-1) ?? '', /02:18:01:00:00:13/);
  // rs3's neighbour answers later: its slots come at the next poll
  mac13 = '02:18:01:00:00:13';
  await p.poll();
  assert.match(runs.at(-1) ?? '', /02:18:01:00:00:13/);
  // nothing pending any more: a poll changes nothing
  const n = runs.length;
  await p.poll();
  assert.equal(runs.length, n);
});

test('a DR real server without a MAC keeps its Maglev slots empty: the others keep theirs', () => {
  const dest = (a: string, mac?: string): KernelDest => ({
    address: a,
    port: 82,
    weight: 1,
    lastWeight: 1,
    overloaded: false,
    activeConns: 0,
    inactConns: 0,
    mark: 1,
    ...(mac ? { mac } : {}),
  });
  const svc = (dests: KernelDest[]): KernelService => ({
    id: 'tcp:198.18.0.100:82',
    key: DR_KEY,
    family: 4,
    params: { ...SP, scheduler: 'mh' },
    mode: 'dr',
    dests,
  });
  const all = ['198.18.1.11', '198.18.1.12', '198.18.1.13'];
  const resolved = slotTable('mh', new Set(), usableDests(svc(all.map((a) => dest(a, '02:00:00:00:00:01')))), true);
  const oneMissing = slotTable(
    'mh',
    new Set(),
    usableDests(svc(all.map((a, i) => dest(a, i === 2 ? undefined : '02:00:00:00:00:01')))),
    true,
  );
  assert.deepEqual(
    oneMissing.slots,
    resolved.slots.map((was) => (was === 2 ? -1 : was)),
  );
});

test('conntrack lines: counts per real server in IPVS states, -Lnc entries', async () => {
  const lines = [
    'ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.0.10 dst=198.18.0.100 sport=40000 dport=80 src=198.18.1.11 dst=198.18.0.10 sport=80 dport=40000 [ASSURED] mark=0 zone=0 use=2',
    'ipv4     2 tcp      6 100 TIME_WAIT src=198.18.0.10 dst=198.18.0.100 sport=40001 dport=80 src=198.18.1.11 dst=198.18.0.10 sport=80 dport=40001 [ASSURED] mark=0 zone=0 use=2',
    'ipv4     2 tcp      6 100 ESTABLISHED src=198.18.1.1 dst=198.18.1.11 sport=40001 dport=80 src=198.18.1.11 dst=198.18.1.1 sport=80 dport=40001 [ASSURED] mark=0 zone=0 use=2',
    'ipv6     10 tcp      6 50 SYN_SENT src=2001:0002:0000:0000:0000:0000:0000:0010 dst=2001:0002:0000:0000:0000:0000:0000:0100 sport=1 dport=80 [UNREPLIED] src=2001:0002:0000:0001:0000:0000:0000:0011 dst=2001:0002:0000:0000:0000:0000:0000:0010 sport=80 dport=1 mark=0 zone=0 use=2',
  ];
  const conns = lines.map((l) => parseConntrackLine(l)).filter((e): e is CtEntry => e !== null);
  assert.equal(conns.length, 4);
  assert.equal(conns[3].original.dst, '2001:2::100');
  const { p } = plane({ conns });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  await p.poll();
  const dest = p.snapshot().services[0].dests[0];
  assert.deepEqual([dest.activeConns, dest.inactConns], [1, 1]);
  const c = p.connections();
  assert.deepEqual(
    c.map((x) => `${x.state} ${x.client.address}:${x.client.port} ${x.dest.address}`),
    ['ESTABLISHED 198.18.0.10:40000 198.18.1.11', 'TIME_WAIT 198.18.0.10:40001 198.18.1.11'],
  );
  // the API's connection list names each entry by the table's ids
  assert.deepEqual(
    c.map((x) => [x.service, x.realServer, x.pinned]),
    [
      ['tcp:198.18.0.100:80', '198.18.1.11:80', undefined],
      ['tcp:198.18.0.100:80', '198.18.1.11:80', undefined],
    ],
  );
});

test('a poll over unchanged conntrack entries takes their real servers from the memo; a real-server change derives them again', async () => {
  const line = (sport: number, state: string, rs: string) =>
    `ipv4     2 tcp      6 100 ${state} src=198.18.0.10 dst=198.18.0.100 sport=${sport} dport=80 src=${rs} dst=198.18.0.10 sport=80 dport=${sport} [ASSURED] mark=0 zone=0 use=2`;
  const conns = [
    line(40000, 'ESTABLISHED', '198.18.1.11'),
    line(40001, 'TIME_WAIT', '198.18.1.11'),
    line(40002, 'TIME_WAIT', '198.18.1.12'),
  ]
    .map((l) => parseConntrackLine(l))
    .filter((e): e is CtEntry => e !== null);
  // the same entry objects at every read, as the events table returns an unchanged connection
  const { p } = plane({ conns });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  await p.poll();
  const first = p.keyDerivations;
  assert.equal(first, 3);
  await p.poll();
  await p.poll();
  assert.equal(p.keyDerivations, first, 'unchanged entries: no derivation');
  const counts = () =>
    p
      .snapshot()
      .services[0].dests.map((d) => `${d.address} ${d.activeConns}/${d.inactConns}`)
      .sort();
  assert.deepEqual(counts(), ['198.18.1.11 1/1']);
  // a real server added: the entry it answers counts for it from the next poll on
  await p.apply([{ op: 'add-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 }, params: dp('masq') }]);
  await p.poll();
  assert.equal(p.keyDerivations, first + 3);
  assert.deepEqual(counts(), ['198.18.1.11 1/1', '198.18.1.12 0/1']);
  // and removed: it no longer does
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 } }]);
  await p.poll();
  assert.deepEqual(counts(), ['198.18.1.12 0/1']);
  assert.deepEqual(
    p.connections().map((c) => `${c.client.port} ${c.dest.address}`),
    ['40002 198.18.1.12'],
  );
});

test('the conntrack reader parses only entries to keepvs VIPs (all of them once a fwmark service exists)', async () => {
  const { p, asked: seen } = plane();
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  await p.apply(add({ ...KEY, family: 6, address: '2001:2::100' }, 'masq', ['2001:2:0:1::11']));
  await p.poll();
  const w = seen[0];
  assert.ok(w);
  assert.equal(w(4, '198.18.0.100'), true);
  assert.equal(w(6, '2001:2::100'), true);
  assert.equal(w(4, '198.18.1.11'), false); // a flow to a real server's own address: not parsed
  assert.equal(w(6, '198.18.0.100'), false);
  await p.apply(add({ kind: 'fwmark', fwmark: 7, family: 4 } as ServiceKey, 'masq', ['198.18.1.12']));
  await p.poll();
  assert.equal(seen[1], undefined);
});

test('a change that keeps the slot count only refills the maps (flush map + add element)', async () => {
  const { p, runs } = plane();
  const wrr = (w: number): TableOp[] => [
    { op: 'edit-service', key: KEY, params: { ...SP, scheduler: 'wrr' } },
    { op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', w) },
  ];
  await p.apply([...add(KEY, 'masq', ['198.18.1.11', '198.18.1.12', '198.18.1.13']), ...wrr(2)]);
  // 2:1:1 -> 1:2:1 keeps a period of 4
  await p.apply([
    { op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', 1) },
    { op: 'edit-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 }, params: dp('masq', 2) },
  ]);
  assert.equal(runs.length, 2);
  assert.match(
    runs[1],
    /^flush map ip keepvs s_tcp_198_18_0_100_80_slots\nadd element ip keepvs s_tcp_198_18_0_100_80_slots \{ 0 : /,
  );
  assert.doesNotMatch(runs[1], /flush chain|add rule/);
});

test('sized sets: more real servers or DR services than the sizes hold are declared from the count, growth rebuilds', async () => {
  // the least sizes made small (65,536 and 16,384 in the daemon): the same arithmetic
  const { p, runs, logs } = plane({ setSizes: { stats: 2, dr: 1 } });
  await p.apply(add(KEY, 'masq', ['198.18.1.11', '198.18.1.12', '198.18.1.13']));
  // three real servers: the stats sets declared for four, never left at two (the kernel's ENFILE)
  assert.match(runs[0], /add set ip keepvs st_in \{ [^}]*size 4; counter; \}/);
  assert.match(runs[0], /add set ip6 keepvs st_in \{ [^}]*size 2; counter; \}/);
  assert.match(runs[0], /add map netdev keepvs svc4 \{ [^}]*size 1; \}/);
  // a fourth fits: an element change, no rebuild
  await p.apply([{ op: 'add-dest', key: KEY, dest: { address: '198.18.1.14', port: 80 }, params: dp('masq') }]);
  assert.equal(runs.length, 2);
  assert.doesNotMatch(runs[1], /delete table/);
  // a fifth outgrows four: one transaction rebuilds with eight, holding all five, and says why
  await p.apply([{ op: 'add-dest', key: KEY, dest: { address: '198.18.1.15', port: 80 }, params: dp('masq') }]);
  assert.equal(runs.length, 3);
  assert.match(runs[2], /^add table ip keepvs\ndelete table ip keepvs\n/);
  assert.match(runs[2], /add set ip keepvs st_out \{ [^}]*size 8; counter; \}/);
  assert.match(runs[2], /add element ip keepvs st_out \{ [^}]*198\.18\.1\.15 \. tcp \. 80/);
  assert.ok(logs.some((l) => /5 ip real servers outgrow the declared size 4/.test(l)));
  // DR: a second service in svc4 outgrows its size 1 the same way
  await p.apply(add(DR_KEY, 'route', ['198.18.1.11']));
  await p.apply(add({ ...DR_KEY, port: 83 }, 'route', ['198.18.1.11']));
  const last = runs[runs.length - 1];
  assert.match(last, /add map netdev keepvs svc4 \{ [^}]*size 2; \}/);
  assert.match(last, /add element netdev keepvs svc4 \{ 198\.18\.0\.100 \. tcp \. 83 : goto/);
  assert.ok(logs.some((l) => /2 DR services outgrow the declared size 1/.test(l)));
});

test('counter-set elements follow the real servers, shared ones kept while a service still has them', async () => {
  const { p, runs } = plane();
  const OTHER: ServiceKey = { ...KEY, address: '198.18.0.101' };
  await p.apply([...add(KEY, 'masq', ['198.18.1.11', '198.18.1.12']), ...add(OTHER, 'masq', ['198.18.1.11'])]);
  const first = runs[0].split('\n').filter((l) => l.startsWith('add element ip keepvs st_new'));
  assert.equal(first.length, 1);
  for (const rs of ['198.18.1.11', '198.18.1.12']) assert.equal(first[0].split(`${rs} . tcp . 80`).length, 2);
  // a weight change (to 0: quiesced) touches no counter set
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 }, params: dp('masq', 0) }]);
  assert.doesNotMatch(runs[1], /st_new|st_in|st_out/);
  // 198.18.1.11 is still a real server of OTHER: its counters stay
  await p.apply([{ op: 'del-service', key: KEY }]);
  assert.match(runs[2], /delete element ip keepvs st_in \{ 198\.18\.1\.12 \. tcp \. 80 \}/);
  assert.doesNotMatch(runs[2], /198\.18\.1\.11 \. tcp/);
  await p.apply([{ op: 'del-service', key: OTHER }]);
  assert.match(runs[3], /delete element ip keepvs st_out \{ 198\.18\.1\.11 \. tcp \. 80 \}/);
  // a service added again brings its real server back
  await p.apply(add(KEY, 'masq', ['198.18.1.13']));
  assert.match(runs[4], /add element ip keepvs st_new \{ 198\.18\.1\.13 \. tcp \. 80 \}/);
  assert.doesNotMatch(runs[4], /delete element ip keepvs st_/);
});

test('flow_pinning (DR) IPv6: a client set next to the flow map; -Lnc lists each pinned flow with its client when one client has its low 96 bits', async () => {
  const c = 's_tcp__2001_2__100__82';
  const flows = (k: string) => ({ elem: { val: { concat: [k, (40001 << 16) | 82] }, expires: 500 } });
  const listed = (cmd: string) => {
    if (cmd === `list map netdev keepvs ${c}_flows`)
      return JSON.stringify({
        nftables: [
          {
            map: {
              elem: [
                [flows('0x100000000000000000010'), 1],
                [flows('0x200000000000000000099'), 1],
              ],
            },
          },
        ],
      });
    if (cmd === `list set netdev keepvs ${c}_flows_c6`)
      // the first flow's client; two clients share the second one's low 96 bits: not told apart
      return JSON.stringify({
        nftables: [
          { set: { elem: [{ elem: { val: '2001:2:1::10', expires: 500 } }, '2001:3:2::99', '2001:4:2::99'] } },
        ],
      });
    return undefined;
  };
  const { p, runs } = plane({ listed });
  const key: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 6, address: '2001:2::100', port: 82 };
  await p.apply([
    { op: 'add-service', key, params: { ...SP, scheduler: 'mh', flowPinTimeout: 600 } },
    { op: 'add-dest', key, dest: { address: '2001:2:0:1::11', port: 82 }, params: dp('route') },
  ]);
  assert.match(
    runs[0],
    new RegExp(
      `add set netdev keepvs ${c}_flows_c6 \\{ typeof ip6 saddr; size 262144; flags dynamic,timeout; timeout 600s; \\}`,
    ),
  );
  assert.ok(
    runs[0].includes(`update @${c}_flows { @nh,96,96 . @th,0,32 : meta mark } update @${c}_flows_c6 { ip6 saddr } fwd`),
    runs[0],
  );
  const conns = p.connections().filter((x) => x.pinned);
  assert.deepEqual(
    conns.map((x) => [x.client, x.virtual, x.dest]),
    [
      [
        { address: '2001:2:1::10', port: 40001 },
        { address: '2001:2::100', port: 82 },
        { address: '2001:2:0:1::11', port: 82 },
      ],
    ],
  );
  assert.deepEqual(
    p.unlistedFlows().map((u) => u.count),
    [1],
  );
  // pinning off: the set goes with the flow map
  await p.apply([{ op: 'edit-service', key, params: { ...SP, scheduler: 'mh' } }]);
  assert.ok((runs.at(-1) ?? '').includes(`delete set netdev keepvs ${c}_flows_c6`), runs.at(-1));
});

test('flow_pinning (DR): a flow map looked up first; weight changes refill slots and MACs, never the flows', async () => {
  const { p, runs } = plane();
  const pin: ServiceParams = { ...SP, scheduler: 'mh', flowPinTimeout: 600 };
  const rs = ['198.18.1.11', '198.18.1.12'];
  await p.apply([
    { op: 'add-service', key: DR_KEY, params: pin },
    ...rs.map((a): TableOp => ({ op: 'add-dest', key: DR_KEY, dest: { address: a, port: 82 }, params: dp('route') })),
  ]);
  const c = 's_tcp_198_18_0_100_82';
  assert.match(
    runs[0],
    new RegExp(
      `add map netdev keepvs ${c}_flows \\{ typeof ip saddr \\. th sport \\. th dport : meta mark; size 262144; flags dynamic,timeout; timeout 600s; \\}`,
    ),
  );
  const rules = runs[0].split('\n').filter((l) => l.startsWith(`add rule netdev keepvs ${c} `));
  assert.equal(rules.length, 5);
  // 1: the flow's own entry, refreshed only once its MAC is found; 2: a flow of a removed real server
  // (expire_nodest_conn off) dropped; 3: the slot table, remembered; 4: the slot table when the map is
  // full; 5: drop
  assert.match(
    rules[0],
    new RegExp(
      `meta mark set ip saddr \\. th sport \\. th dport map @${c}_flows ether saddr set \\S+ ether daddr set meta mark map @${c}_dest update @${c}_flows \\{ ip saddr \\. th sport \\. th dport : meta mark \\} fwd`,
    ),
  );
  assert.match(
    rules[1],
    new RegExp(`meta mark set ip saddr \\. th sport \\. th dport map @${c}_flows meta mark @${c}_gone drop$`),
  );
  assert.match(rules[2], new RegExp(`meta mark set jhash .* map @${c}_slots update @${c}_flows `));
  assert.doesNotMatch(rules[3], /update/);
  assert.match(runs[0], new RegExp(`add set netdev keepvs ${c}_gone \\{ typeof meta mark; \\}`));
  // quiesce rs1: its slots go, its MAC stays (pinned flows continue); the flow map is not touched
  await p.apply([{ op: 'edit-dest', key: DR_KEY, dest: { address: rs[1], port: 82 }, params: dp('route', 0) }]);
  assert.match(runs[1], /flush map netdev keepvs \S+_slots/);
  assert.doesNotMatch(runs[1], /_flows|_dest/);
  // removed (health check): its MAC leaves @dest, so its flows no longer find it and follow the slots
  await p.apply([{ op: 'del-dest', key: DR_KEY, dest: { address: rs[1], port: 82 } }]);
  assert.match(
    runs[2],
    new RegExp(`flush map netdev keepvs ${c}_dest\\nadd element netdev keepvs ${c}_dest \\{ 1 : 02:18:01:00:00:11 \\}`),
  );
  assert.doesNotMatch(runs[2], /_flows|_gone/, 'expire_nodest_conn on: its flows are scheduled again');
  // a scheduler change rebuilds the chain but keeps the flows; turning pinning off drops the map
  await p.apply([{ op: 'edit-service', key: DR_KEY, params: { ...pin, scheduler: 'sh' } }]);
  assert.doesNotMatch(runs[3], /delete map \S+_flows|add map \S+_flows/);
  assert.match(runs[3], /flush chain/);
  await p.apply([{ op: 'edit-service', key: DR_KEY, params: { ...SP, scheduler: 'sh' } }]);
  assert.match(runs[4], new RegExp(`delete map netdev keepvs ${c}_flows`));
  assert.match(runs[4], new RegExp(`delete set netdev keepvs ${c}_gone`));
  // IPv6: raw header bits (nft 1.0.6 cannot update a map keyed by ip6 saddr . th sport)
  const k6: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 6, address: '2001:2::100', port: 82 };
  const body6 = serviceBody({
    id: 'tcp:[2001:2::100]:82',
    key: k6,
    family: 6,
    params: pin,
    mode: 'dr',
    dests: [],
    dr: { ingress: 'eth0', egress: 'eth1', egressMac: '02:00:00:00:00:01' },
  }).join('\n');
  assert.match(body6, /typeof @nh,96,96 \. @th,0,32 : meta mark; size 262144/);
});

test('flow_pinning (DR), expire_nodest_conn off: a removed real server keeps its mark in @gone until its pinned flows time out; back, it gets its mark and flows again', async () => {
  const { p, runs } = plane({ keep: true });
  const pin: ServiceParams = { ...SP, scheduler: 'mh', flowPinTimeout: 1 };
  const rs = ['198.18.1.11', '198.18.1.12'];
  await p.apply([
    { op: 'add-service', key: DR_KEY, params: pin },
    ...rs.map((a): TableOp => ({ op: 'add-dest', key: DR_KEY, dest: { address: a, port: 82 }, params: dp('route') })),
  ]);
  const c = 's_tcp_198_18_0_100_82';
  // rs[1] has mark 2 (the second added); removed, its mark goes into @gone, its MAC out of @dest
  await p.apply([{ op: 'del-dest', key: DR_KEY, dest: { address: rs[1], port: 82 } }]);
  let t = runs.at(-1) ?? '';
  assert.match(t, new RegExp(`flush set netdev keepvs ${c}_gone\\nadd element netdev keepvs ${c}_gone \\{ 2 \\}`), t);
  assert.match(t, new RegExp(`add element netdev keepvs ${c}_dest \\{ 1 : 02:18:01:00:00:11 \\}`));
  assert.doesNotMatch(t, /nodest/, 'no conntrack set for DR');
  // back: the same mark (its pinned flows find their MAC again), @gone emptied
  await p.apply([{ op: 'add-dest', key: DR_KEY, dest: { address: rs[1], port: 82 }, params: dp('route') }]);
  t = runs.at(-1) ?? '';
  assert.match(t, /2 : 02:18:01:00:00:12/);
  assert.match(t, new RegExp(`flush set netdev keepvs ${c}_gone\\n`));
  assert.doesNotMatch(t, new RegExp(`add element netdev keepvs ${c}_gone`));
  // removed again: after the flow timeout (1 s here) its flows are gone from the flow map, so is its mark
  await p.apply([{ op: 'del-dest', key: DR_KEY, dest: { address: rs[1], port: 82 } }]);
  assert.match(runs.at(-1) ?? '', new RegExp(`add element netdev keepvs ${c}_gone \\{ 2 \\}`));
  const n = runs.length;
  const deadline = Date.now() + 3000;
  while (runs.length === n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t = runs.at(-1) ?? '';
  assert.match(t, new RegExp(`^flush set netdev keepvs ${c}_gone\\n?$`), t);
  // a real server added later gets a new mark
  await p.apply([{ op: 'add-dest', key: DR_KEY, dest: { address: '198.18.1.14', port: 82 }, params: dp('route') }]);
  assert.match(runs.at(-1) ?? '', /3 : 02:18:01:00:00:14/);
  await p.stop(0);
});

test('content ticks go to the nfnetlink writer; a refusal falls back to libnftables, a lost ack rebuilds', async () => {
  const runs: string[] = [];
  const nft = {
    run(cmds: string): NftResult {
      // transactions only (not the reads, such as the nodest sets at start)
      if (!cmds.startsWith('list ')) runs.push(cmds);
      return { ok: true, output: '', error: '' };
    },
  };
  const batches: ContentBatch[] = [];
  let answer: ContentOutcome | null = { ok: true };
  const elements = {
    apply(b: ContentBatch) {
      batches.push(b);
      return answer;
    },
  };
  const net = {
    deviceOf: async () => null,
    routeDevice: async () => null,
    linkMac: async () => null,
    neighbourMac: async () => null,
  };
  const logs: string[] = [];
  const logger = { log: (_l: string, m: string) => void logs.push(m), child: () => logger };
  const conntrack = { list: async () => [], flushDest: async () => {} };
  const p = new NftDataPlane({ nft, elements, net, conntrack, logger, pollMs: 0 });
  const wrr: ServiceParams = { ...SP, scheduler: 'wrr' };
  await p.apply([
    { op: 'add-service', key: KEY, params: wrr },
    { op: 'add-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', 1) },
    { op: 'add-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 }, params: dp('masq', 1) },
  ]);
  assert.equal(runs.length, 1, 'the load is libnftables');
  assert.equal(batches.length, 0);
  // 1:1 -> 3:1: the period goes from 2 to 4 slots; one batch: the rule modulus and the slot elements
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', 3) }]);
  assert.equal(runs.length, 1);
  assert.equal(batches.length, 1);
  assert.equal(p.netlinkBatches, 1);
  assert.deepEqual(
    batches[0].moduli.map((m) => [m.family, m.chain, m.from, m.to, m.count]),
    [['ip', 's_tcp_198_18_0_100_80', 2, 4, 1]],
  );
  const slots = batches[0].sets.find((s) => s.set.endsWith('_slots'));
  assert.ok(slots);
  const added = slots.add.map((e) => (e.key.kind === 'u32' ? e.key.n : -1));
  assert.ok(added.includes(2) && added.includes(3), `new slots 2 and 3 added: ${added}`);
  assert.ok(
    slots.del.every((e) => e.key.kind === 'u32' && e.key.n < 2),
    'only changed old slots deleted',
  );
  // a removed real server: slot elements and its stats elements in the same batch (expire_nodest_conn
  // on: off, its flows' drop element and chains go through libnftables, nodest.ts)
  p.setOptions({ expireNodestConn: 'close' });
  await p.apply([{ op: 'del-dest', key: KEY, dest: { address: '198.18.1.12', port: 80 } }]);
  assert.equal(batches.length, 2);
  const stats = batches[1].sets.filter((s) => s.set.startsWith('st_') || s.set === 'rs_nat');
  assert.equal(stats.length, 4);
  assert.ok(stats.every((s) => s.del.length === 1 && s.add.length === 0));
  // refused: the same tick through libnftables, logged
  answer = { ok: false, error: 'ENOENT' };
  await p.apply([{ op: 'add-dest', key: KEY, dest: { address: '198.18.1.13', port: 80 }, params: dp('masq', 1) }]);
  assert.equal(runs.length, 2);
  assert.match(
    runs[1],
    /flush map ip keepvs s_tcp_198_18_0_100_80_slots|add map ip keepvs s_tcp_198_18_0_100_80_slots/,
  );
  assert.ok(logs.some((l) => /netlink refused \(ENOENT\); applying it through libnftables/.test(l)));
  // the outcome unknown (acks lost): a full rebuild
  answer = { ok: false, error: '1 acknowledgements missing', unknown: true };
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', 5) }]);
  assert.equal(runs.length, 3);
  assert.match(runs[2], /^add table ip keepvs\ndelete table ip keepvs/);
  // declined (null): libnftables, no log line
  answer = null;
  const n = logs.length;
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq', 1) }]);
  assert.equal(runs.length, 4);
  assert.equal(logs.length, n);
  // a structural change (scheduler with another rule shape) never goes to the writer
  const before = batches.length;
  answer = { ok: true };
  await p.apply([{ op: 'edit-service', key: KEY, params: { ...SP, scheduler: 'sh' } }]);
  assert.equal(batches.length, before);
  assert.equal(runs.length, 5);
});

test('dynamic map listings: key parts, seconds left, the mark; junk is skipped', () => {
  const json = JSON.stringify({
    nftables: [
      { metainfo: {} },
      {
        map: {
          name: 'p',
          elem: [
            [{ elem: { val: '198.18.0.10', expires: 295 } }, 3],
            [{ elem: { val: { concat: ['198.18.0.11', 40000, 86] }, expires: 899 } }, 2],
            [{ elem: { val: { concat: [{ x: 1 }] } } }, 1],
            ['bad'],
          ],
        },
      },
    ],
  });
  assert.deepEqual(parseDynamicMap(json), [
    { key: ['198.18.0.10'], expiresS: 295, mark: 3 },
    { key: ['198.18.0.11', 40000, 86], expiresS: 899, mark: 2 },
  ]);
  assert.deepEqual(parseDynamicMap('not json'), []);
});

test('-Z zeroes the counters as the kernel holds them at that moment, not as of the last poll', async () => {
  let conns = 10;
  const counterSet = (n: number) =>
    JSON.stringify({
      nftables: [
        {
          set: {
            elem: [{ elem: { val: { concat: ['198.18.1.11', 'tcp', 80] }, counter: { packets: n, bytes: n * 60 } } }],
          },
        },
      ],
    });
  const nft = {
    run(cmds: string): NftResult {
      return { ok: true, output: cmds.startsWith('list set ip keepvs st_') ? counterSet(conns) : '', error: '' };
    },
  };
  const net = {
    deviceOf: async () => null,
    routeDevice: async () => null,
    linkMac: async () => null,
    neighbourMac: async () => null,
  };
  const logger = { log: () => {}, child: () => logger };
  const p = new NftDataPlane({
    nft,
    net,
    conntrack: { list: async () => [], flushDest: async () => {} },
    logger,
    pollMs: 0,
  });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  await p.poll();
  const id = 'tcp:198.18.0.100:80';
  assert.equal(p.destCounters(id, { address: '198.18.1.11', port: 80 })?.stats.conns, 10);
  // 30 more connections before the next poll, then ipvsadm -Z, then 5 more
  conns = 40;
  await p.apply([{ op: 'zero', key: KEY }]);
  conns = 45;
  await p.poll();
  assert.equal(p.destCounters(id, { address: '198.18.1.11', port: 80 })?.stats.conns, 5);
});

test('lc: the poll estimates each real server holding time from its counters and splits new connections by it', async () => {
  // rs .11 gets 100 new connections a second and holds 10 open, .12 gets 20 and holds 50
  let tick = 0;
  const counterSet = () =>
    JSON.stringify({
      nftables: [
        {
          set: {
            elem: [
              ['198.18.1.11', 100],
              ['198.18.1.12', 20],
            ].map(([a, rate]) => ({
              elem: { val: { concat: [a, 'tcp', 80] }, counter: { packets: Number(rate) * tick, bytes: 0 } },
            })),
          },
        },
      ],
    });
  const runs: string[] = [];
  const nft = {
    run(cmds: string): NftResult {
      // transactions only (not the reads, such as the nodest sets at start)
      if (!cmds.startsWith('list ')) runs.push(cmds);
      return { ok: true, output: cmds.startsWith('list set ip keepvs st_') ? counterSet() : '', error: '' };
    },
  };
  const ct = (rs: string, n: number): CtEntry[] =>
    Array.from({ length: n }, (_, i) => ({
      family: 4,
      protocol: 'tcp',
      state: 'ESTABLISHED',
      timeout: 100,
      original: { src: '198.18.0.10', dst: '198.18.0.100', sport: 10000 + i, dport: 80 },
      reply: { src: rs, dst: '198.18.0.10', sport: 80, dport: 10000 + i },
    }));
  const conntrack = {
    list: async () => [...ct('198.18.1.11', 10), ...ct('198.18.1.12', 50)],
    flushDest: async () => {},
  };
  const net = {
    deviceOf: async () => null,
    routeDevice: async () => null,
    linkMac: async () => null,
    neighbourMac: async () => null,
  };
  const logger = { log: () => {}, child: () => logger };
  const p = new NftDataPlane({ nft, net, conntrack, logger, pollMs: 0 });
  await p.apply([
    { op: 'add-service', key: KEY, params: { ...SP, scheduler: 'lc' } },
    ...['198.18.1.11', '198.18.1.12'].map(
      (a): TableOp => ({ op: 'add-dest', key: KEY, dest: { address: a, port: 80 }, params: dp('masq') }),
    ),
  ]);
  for (tick = 1; tick <= 3; tick++) {
    await p.poll();
    await new Promise((r) => setTimeout(r, 20));
  }
  // holding times 10.5/100 and 50.5/20 s: .11 gets about 24x the new connections of .12 (counts
  // alone, w / (active + 1), would give 51/11 = 4.6x)
  const slots = runs.filter((r) => r.includes('s_tcp_198_18_0_100_80_slots')).pop() ?? '';
  const n11 = (slots.match(/198\.18\.1\.11 \. 80/g) ?? []).length;
  const n12 = (slots.match(/198\.18\.1\.12 \. 80/g) ?? []).length;
  const want = 50.5 / 20 / (10.5 / 100);
  assert.ok(n12 > 0 && Math.abs(n11 / n12 - want) / want < 0.15, `${n11} / ${n12}`);
});

test('a poll does not start while the last one still reads conntrack (a large table takes longer than the period)', async () => {
  let reads = 0;
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const conntrack = {
    list: async () => {
      reads++;
      await gate;
      return [];
    },
    flushDest: async () => {},
  };
  const nft = { run: (): NftResult => ({ ok: true, output: '', error: '' }) };
  const net = {
    deviceOf: async () => 'eth0',
    routeDevice: async () => 'eth1',
    linkMac: async () => '02:18:01:00:00:01',
    neighbourMac: async () => null,
  };
  const logger = { log: () => {}, child: () => logger };
  const p = new NftDataPlane({ nft, net, conntrack, logger, pollMs: 0 });
  const first = p.poll();
  const second = p.poll();
  release();
  await Promise.all([first, second]);
  assert.equal(reads, 1);
  await p.poll();
  assert.equal(reads, 2, 'the next poll after the slow one reads again');
});

test('--stats packets and bytes from conntrack accounting: live entries plus destroyed ones, each once; no stats chain', async () => {
  // st_new counts connections (nat postrouting); st_in/st_out hold only UDP ops datagrams: 2 in, 1 out
  const counterSet = (set: string) =>
    JSON.stringify({
      nftables: [
        {
          set: {
            elem: [
              {
                elem: {
                  val: { concat: ['198.18.1.11', 'tcp', 80] },
                  counter:
                    set === 'st_new'
                      ? { packets: 4, bytes: 240 }
                      : set === 'st_in'
                        ? { packets: 2, bytes: 100 }
                        : { packets: 1, bytes: 50 },
                },
              },
            ],
          },
        },
      ],
    });
  const runs: string[] = [];
  const nft = {
    run(cmds: string): NftResult {
      // transactions only (not the reads, such as the nodest sets at start)
      if (!cmds.startsWith('list ')) runs.push(cmds);
      const m = /^list set ip keepvs (st_\w+)/.exec(cmds);
      return { ok: true, output: m ? counterSet(m[1] as string) : '', error: '' };
    },
  };
  const net = {
    deviceOf: async () => null,
    routeDevice: async () => null,
    linkMac: async () => null,
    neighbourMac: async () => null,
  };
  const logs: string[] = [];
  const logger = { log: (_l: string, m: string) => void logs.push(m), child: () => logger };
  const conn = (
    sport: number,
    c: [number, number, number, number],
    rs = '198.18.1.11',
    vip = '198.18.0.100',
  ): CtEntry => ({
    family: 4,
    protocol: 'tcp',
    state: 'ESTABLISHED',
    timeout: 100,
    original: { src: '198.18.0.10', dst: vip, sport, dport: 80 },
    reply: { src: rs, dst: '198.18.0.10', sport: 80, dport: sport },
    counters: { origPackets: c[0], origBytes: c[1], replyPackets: c[2], replyBytes: c[3] },
  });
  let table: CtEntry[] = [];
  const queue: CtEntry[][] = [];
  let drains = 0;
  const conntrack = {
    list: async () => {
      const t = table;
      // while the table is read, connection 2 goes (it is in the read and its event comes after)
      queue.push(
        t
          .filter((e) => e.original.sport === 2)
          .map((e) => ({ ...e, counters: { origPackets: 10, origBytes: 1000, replyPackets: 8, replyBytes: 4000 } })),
      );
      table = t.filter((e) => e.original.sport !== 2);
      return t;
    },
    listSync: () => table,
    flushDest: async () => {},
    countConnections: () => null,
    drainDestroyed: () => {
      drains++;
      return queue.shift() ?? [];
    },
  };
  const p = new NftDataPlane({ nft, net, conntrack, logger, pollMs: 0 });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  assert.doesNotMatch(runs.join('\n'), /chain ip keepvs stats|add rule ip keepvs stats/);
  assert.doesNotMatch(runs.join('\n'), /stats \{ type filter hook forward/);
  // connection 1 went before the poll (its event is queued); 2 goes during the read; 3 lives;
  // a non-DNATed flow and another director's VIP count for nothing
  queue.push([conn(1, [3, 300, 2, 200])]);
  table = [
    conn(2, [9, 900, 7, 3500]),
    conn(3, [5, 500, 4, 2000]),
    {
      ...conn(4, [100, 1, 100, 1], '198.18.0.100'),
      reply: { src: '198.18.0.100', dst: '198.18.0.10', sport: 80, dport: 4 },
    },
    conn(5, [100, 1, 100, 1], '198.18.1.11', '198.18.0.99'),
  ];
  await p.poll();
  assert.equal(drains, 2);
  const id = 'tcp:198.18.0.100:80';
  const s = p.destCounters(id, { address: '198.18.1.11', port: 80 })?.stats;
  // in: ops 2 + 3 + 10 (its last counts, not the 9 read) + 5; out: 1 + 2 + 8 + 4
  assert.deepEqual(s, {
    conns: 4,
    inPkts: 20,
    outPkts: 15,
    inBytes: 100 + 300 + 1000 + 500,
    outBytes: 50 + 200 + 4000 + 2000,
  });
  // next poll: 3 still live (grown), 1 and 2 only in the destroyed sum
  table = [conn(3, [6, 600, 5, 2500])];
  await p.poll();
  assert.deepEqual(p.destCounters(id, { address: '198.18.1.11', port: 80 })?.stats, {
    conns: 4,
    inPkts: 21,
    outPkts: 16,
    inBytes: 100 + 300 + 1000 + 600,
    outBytes: 50 + 200 + 4000 + 2500,
  });
  // ipvsadm -Z restarts from the counts at that moment: the table read then, not the last poll's
  table = [conn(3, [7, 700, 6, 3000])];
  await p.apply([{ op: 'zero', key: KEY }]);
  table = [conn(3, [9, 900, 6, 3000])];
  await p.poll();
  assert.deepEqual(p.destCounters(id, { address: '198.18.1.11', port: 80 })?.stats, {
    conns: 0,
    inPkts: 2,
    outPkts: 0,
    inBytes: 200,
    outBytes: 0,
  });
  assert.deepEqual(
    logs.filter((l) => /per-connection counters/.test(l)),
    [],
  );
});

test('without per-connection counters the plane counts with the stats forward chain, and says so', async () => {
  const runs: string[] = [];
  const nft = {
    run(cmds: string): NftResult {
      // transactions only (not the reads, such as the nodest sets at start)
      if (!cmds.startsWith('list ')) runs.push(cmds);
      return { ok: true, output: '', error: '' };
    },
  };
  const net = {
    deviceOf: async () => null,
    routeDevice: async () => null,
    linkMac: async () => null,
    neighbourMac: async () => null,
  };
  const logs: string[] = [];
  const logger = { log: (_l: string, m: string) => void logs.push(m), child: () => logger };
  const conntrack = {
    list: async () => [],
    flushDest: async () => {},
    countConnections: () => 'nf_conntrack_acct stays 0',
  };
  const p = new NftDataPlane({ nft, net, conntrack, logger, pollMs: 0 });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  assert.match(runs.join('\n'), /add rule ip keepvs stats ct direction original ct status dnat/);
  assert.match(logs.join('\n'), /per-connection counters unavailable \(nf_conntrack_acct stays 0\)/);
});

test('a counting scheduler on a table dumped quickly counts from the dumps; events only once a dump is too slow for each second', async () => {
  const asked: boolean[] = [];
  let keepUp = true;
  const conntrack = {
    list: async () => [],
    flushDest: async () => {},
    followEvents: (on: boolean) => {
      asked.push(on);
      return null;
    },
    dumpsKeepUp: () => keepUp,
  };
  const { p, logs } = plane({ conntrack });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  await p.apply([{ op: 'edit-service', key: KEY, params: { ...SP, scheduler: 'wlc' } }]);
  assert.deepEqual(asked, [false, false], 'wlc on a small table: no events');
  assert.match(logs.at(-1) ?? '', /tcp:198\.18\.0\.100:80: wlc counts connections from a conntrack dump each second/);
  await p.poll();
  assert.deepEqual(asked, [false, false], 'nothing changed: not asked again');
  keepUp = false; // the table grew: its dump takes over 5% of a second
  await p.poll();
  assert.deepEqual(asked, [false, false, true]);
  assert.match(logs.at(-1) ?? '', /following conntrack events: tcp:198\.18\.0\.100:80: wlc/);
  await p.poll();
  assert.equal(asked.length, 3);
  keepUp = true;
  await p.poll();
  assert.deepEqual(asked, [false, false, true, false], 'the table shrank: dumps alone again');
  await p.apply([{ op: 'edit-service', key: KEY, params: SP }]);
  assert.match(logs.at(-1) ?? '', /no counting scheduler or threshold/);
});

test('conntrack events are followed only while a counting scheduler or a threshold needs live counts; a refusal is said once', async () => {
  const asked: boolean[] = [];
  let refuse: string | null = null;
  const conntrack = {
    list: async () => [],
    flushDest: async () => {},
    followEvents: (on: boolean) => {
      asked.push(on);
      return on ? refuse : null;
    },
  };
  const { p, logs } = plane({ conntrack });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  assert.deepEqual(asked, [false], 'rr counts nothing live: no events');
  assert.match(logs.join('\n'), /connection counts from conntrack dumps/);
  await p.apply([{ op: 'edit-service', key: KEY, params: { ...SP, scheduler: 'lc' } }]);
  assert.deepEqual(asked, [false, true]);
  assert.match(logs.at(-1) ?? '', /following conntrack events: tcp:198\.18\.0\.100:80: lc/);
  await p.apply([{ op: 'edit-service', key: KEY, params: SP }]);
  assert.deepEqual(asked, [false, true, false]);
  const threshold: DestParams = { ...dp('masq'), uThreshold: 100 };
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: threshold }]);
  assert.deepEqual(asked, [false, true, false, true], 'a threshold counts live too');
  await p.apply([{ op: 'edit-dest', key: KEY, dest: { address: '198.18.1.11', port: 80 }, params: dp('masq') }]);
  refuse = 'off (KEEPVS_CT_EVENTS=0)';
  const before = logs.length;
  await p.apply([{ op: 'edit-service', key: KEY, params: { ...SP, scheduler: 'wlc' } }]);
  await p.apply([{ op: 'edit-service', key: KEY, params: { ...SP, scheduler: 'sed' } }]);
  const said = logs.slice(before).filter((m) => m.includes('conntrack events off (KEEPVS_CT_EVENTS=0)'));
  assert.equal(said.length, 1, 'the refusal is said once, with why and what counts from dumps instead');
  assert.match(said[0] ?? '', /wlc come from dumps/);
});

test('a poll tells the conntrack table when no flow began (st_new unchanged), so a settled table is not read again', async () => {
  let newFlows = 4;
  const counterSet = (set: string) =>
    JSON.stringify({
      nftables: [
        {
          set: {
            elem: [
              {
                elem: {
                  val: { concat: ['198.18.1.11', 'tcp', 80] },
                  counter: { packets: set === 'st_new' ? newFlows : 0, bytes: 0 },
                },
              },
            ],
          },
        },
      ],
    });
  const hints: (boolean | undefined)[] = [];
  const conntrack = {
    list: async (_w?: unknown, hint?: { noNewFlows?: boolean }) => {
      hints.push(hint?.noNewFlows);
      return [];
    },
    flushDest: async () => {},
  };
  let syncing = false;
  const { p } = plane({
    conntrack,
    listed: (cmds) => {
      const m = /^list set ip keepvs (st_\w+)/.exec(cmds);
      return m ? counterSet(m[1] as string) : undefined;
    },
    flowsFromElsewhere: () => syncing,
  });
  await p.apply(add(KEY, 'masq', ['198.18.1.11']));
  await p.poll();
  await p.poll();
  newFlows = 5;
  await p.poll();
  await p.poll();
  assert.deepEqual(hints, [false, true, false, true], 'first poll: no sample to compare; then by st_new');
  syncing = true; // conntrackd commits flows that no rule counted
  await p.poll();
  assert.equal(hints.at(-1), false);
  syncing = false;
  // a port-0 real server's flows are not in st_new: no hint while one is installed
  const PORT0: ServiceKey = { kind: 'addr', family: 4, protocol: 'tcp', address: '198.18.0.101', port: 0 };
  await p.apply(add(PORT0, 'masq', ['198.18.1.12']));
  hints.length = 0;
  await p.poll();
  await p.poll();
  assert.deepEqual(hints, [false, false]);
});
