/**
 * Plain (per-flow, no `ops`) UDP through the kernel plane in the network lab: keepvs on lb1 with UDP
 * rr services, NAT, full-NAT (local_address_group) and DR, IPv4 and IPv6. Several client sockets one
 * after the other get every real server in rr order (DR: the Maglev hash rr becomes without
 * conntrack); the datagrams of one socket stay on one real
 * server (conntrack for NAT/full-NAT, the flow for DR, as an IPVS UDP connection); the real server
 * sees the client (NAT, DR) or the local address (full-NAT); every reply comes from VIP:port. A real
 * server whose UDP_CHECK fails leaves the slot map. keepvsadm -Ln lists `UDP  VIP:port rr`.
 * Needs root, nftables and the lab; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { serviceObjects } from '../../../src/dataplane/nft/model.js';
import { canRunLab as canRun, sleep, udpLab } from './udp-lab-kit.js';

const V4 = '198.18.0.100';
const V6 = '2001:2::100';
const LADDR4 = '198.18.1.250';
const LADDR6 = '2001:2:0:1::fa';
/** sockets per run, datagrams per socket */
const SOCKETS = 6;
const PER = 4;

const rsAddr = (i: number, six: boolean) => (six ? `2001:2:0:1::1${i}` : `198.18.1.1${i}`);
// UDP_CHECK (check_udp.c): the servers answer "rsN <client>", so require_reply 7273 ("rs"); a
// silent server fails at connect_timeout, retry 0 takes it out at the first failure
const CHECK =
  '    UDP_CHECK {\n      connect_timeout 1\n      retry 0\n      payload 71\n      require_reply 7273\n    }\n';
const rs = (port: number, six: boolean, check: boolean) =>
  [1, 2, 3].map((i) => `  real_server ${rsAddr(i, six)} ${port} {\n${check ? CHECK : ''}  }`).join('\n');
const vs = (vip: string, port: number, method: string, check: boolean, extra = '') =>
  `virtual_server ${vip} ${port} {\n  delay_loop 1\n  lvs_sched rr\n  lvs_method ${method}\n  protocol UDP\n${extra}${rs(port, vip.includes(':'), check)}\n}\n`;
// expire_nodest_conn (IPVS sysctl, a keepvs keyword): a removed real server's flows are flushed
const CONFIG = `global_defs {\n  router_id lb1\n  expire_nodest_conn\n}
local_address_group L4 {\n  ${LADDR4}\n}
local_address_group L6 {\n  ${LADDR6}\n}
${[V4, V6]
  .flatMap((v) => [
    vs(v, 55, 'NAT', true),
    vs(v, 56, 'FNAT', true, `  laddr_group_name ${v === V4 ? 'L4' : 'L6'}\n`),
    vs(v, 57, 'DR', false),
  ])
  .join('')}`;

const lab = udpLab({
  prefix: `ku${process.pid % 100000}`,
  vip4: V4,
  vip6: V6,
  config: CONFIG,
  rsPorts: ['55', '56', '57@'],
  lb1Addresses: [
    [`${LADDR4}/24`, 'eth1'],
    [`${LADDR6}/64`, 'eth1'],
  ],
});
const { adm, until } = lab;

const CASES = [
  { name: 'NAT IPv4', vip: V4, port: 55, sees: '198.18.0.10', fwd: 'Masq' },
  { name: 'NAT IPv6', vip: V6, port: 55, sees: '2001:2::10', fwd: 'Masq' },
  { name: 'FNAT IPv4', vip: V4, port: 56, sees: LADDR4, fwd: 'FullNat' },
  { name: 'FNAT IPv6', vip: V6, port: 56, sees: LADDR6, fwd: 'FullNat' },
  { name: 'DR IPv4', vip: V4, port: 57, sees: '198.18.0.10', fwd: 'Route' },
  { name: 'DR IPv6', vip: V6, port: 57, sees: '2001:2::10', fwd: 'Route' },
];

/** `UDP  198.18.0.100:55` / `UDP  [2001:2::100]:55` as ipvsadm prints the service */
const svcText = (vip: string, port: number) => (vip.includes(':') ? `[${vip}]:${port}` : `${vip}:${port}`);
const re = (s: string) => s.replace(/[.[\]]/g, '\\$&');

before(async () => {
  if (!canRun) return;
  await lab.up(async () => {
    await until(
      'three real servers in each of the 6 services',
      () => (adm('-Ln').match(/ -> (198\.|\[2001)/g) ?? []).length === 18,
    );
    await until('every service answering', () => CASES.every((c) => lab.send(c.vip, c.port, 1).lost === 0));
  });
});

after(() => {
  if (canRun) lab.down();
});

for (const c of CASES) {
  const dr = c.fwd === 'Route';
  test(`${c.name} UDP: ${dr ? 'sockets hashed' : 'sockets in rr order'} over every real server, one socket on one; it sees ${c.sees}; replies from VIP:port`, {
    skip: !canRun,
    timeout: 30000,
  }, () => {
    // DR keeps no conntrack: rr becomes a Maglev table on source address and port (docs/kernel-plane.md),
    // so 40 sockets (random source ports) to see all three (a miss of one: 3 * (2/3)^40, about 3e-7)
    const r = dr ? lab.send(c.vip, c.port, 2, 40) : lab.send(c.vip, c.port, PER, SOCKETS);
    assert.equal(r.lost, 0, JSON.stringify(r));
    // per flow: every datagram of a socket on the real server its first one got (an IPVS UDP connection)
    for (const s of r.sockets) assert.equal(new Set(s).size, 1, `one socket, one real server: ${JSON.stringify(r)}`);
    const first = r.sockets.map((s) => s[0]);
    assert.deepEqual(new Set(first), new Set(['rs1', 'rs2', 'rs3']), JSON.stringify(r));
    // rr over flows (conntrack keeps each): three sockets in a row reach the three real servers, then the order repeats
    if (!dr) {
      assert.deepEqual(new Set(first.slice(0, 3)), new Set(['rs1', 'rs2', 'rs3']), JSON.stringify(r));
      for (let k = 3; k < first.length; k++) assert.equal(first[k], first[k - 3], JSON.stringify(r));
    }
    assert.deepEqual(r.seen, [c.sees], JSON.stringify(r));
    assert.deepEqual(r.from, [`${c.vip} ${c.port}`], JSON.stringify(r));
  });
}

test('keepvsadm -Ln lists the UDP services as ipvsadm does', { skip: !canRun }, () => {
  const out = adm('-Ln');
  for (const c of CASES) {
    const six = c.vip.includes(':');
    const dest = (i: number) => re(svcText(rsAddr(i, six), c.port));
    assert.match(
      out,
      new RegExp(
        `UDP {2}${re(svcText(c.vip, c.port))} rr\\n(\\s+-> (${dest(1)}|${dest(2)}|${dest(3)})\\s+${c.fwd}\\s+1 .*\\n){3}`,
      ),
      out,
    );
  }
  assert.match(adm('-Sn'), /-A -u 198\.18\.0\.100:55 -s rr\n/);
});

test('a real server whose UDP_CHECK fails leaves the slot maps (NAT, full-NAT, IPv4, IPv6); back when it answers', {
  skip: !canRun,
  timeout: 40000,
}, async () => {
  const checked = CASES.filter((c) => c.port !== 57);
  // the service's slot map (model.ts serviceObjects): its real servers while they are up
  const mapOf = (c: (typeof CASES)[number]) =>
    lab.inNs(
      'lb1',
      'nft',
      'list',
      'map',
      c.vip.includes(':') ? 'ip6' : 'ip',
      'keepvs',
      serviceObjects(`udp:${svcText(c.vip, c.port)}`).slots,
    );
  for (const c of checked) assert.match(mapOf(c), c.vip.includes(':') ? /2001:2:0:1::12/ : /198\.18\.1\.12/);
  lab.silence(2, 55, true);
  lab.silence(2, 56, true);
  try {
    await until(
      'rs2 out of the four checked services',
      () => !/(198\.18\.1\.12|2001:2:0:1::12)\]?:5[56] /.test(adm('-Ln')),
      15000,
    );
    for (const c of checked) {
      assert.doesNotMatch(mapOf(c), /198\.18\.1\.12|2001:2:0:1::12/, c.name);
      const r = lab.send(c.vip, c.port, 2, SOCKETS);
      assert.equal(r.lost, 0, `${c.name}: ${JSON.stringify(r)}`);
      assert.deepEqual(new Set(r.names), new Set(['rs1', 'rs3']), `${c.name}: ${JSON.stringify(r)}`);
    }
    // DR has no checker: rs2 stays
    assert.match(adm('-Ln'), /198\.18\.1\.12:57 /);
  } finally {
    lab.silence(2, 55, false);
    lab.silence(2, 56, false);
  }
  await until(
    'rs2 back in the four checked services',
    () => (adm('-Ln').match(/(198\.18\.1\.12|2001:2:0:1::12)\]?:5[56] /g) ?? []).length === 4,
    15000,
  );
  for (const c of checked) assert.match(mapOf(c), c.vip.includes(':') ? /2001:2:0:1::12/ : /198\.18\.1\.12/);
});

test('-Lnc lists the UDP flows in state UDP, -Ln counts them as InActConn; --stats counts flows and datagrams', {
  skip: !canRun,
  timeout: 30000,
}, async () => {
  for (const c of CASES.filter((x) => x.fwd !== 'Route')) {
    const svc = svcText(c.vip, c.port);
    adm('-Z', '-u', svc);
    await sleep(1200);
    const r = lab.send(c.vip, c.port, PER, SOCKETS);
    assert.equal(r.lost, 0, `${c.name}: ${JSON.stringify(r)}`);
    // ipvsadm -Lnc: pro expire state source virtual destination (the client as the director got it)
    const client = c.vip === V4 ? '198.18.0.10' : '2001:2::10';
    const lines = () => adm('-Lnc').split('\n');
    // each of this run's sockets (by its port), to the service, in state UDP
    await until(`${c.name}: the ${SOCKETS} sockets in -Lnc`, () =>
      r.ports.every((port) =>
        lines().some((l) =>
          new RegExp(`^UDP \\d\\d:\\d\\d {2}UDP\\s+${re(svcText(client, port))}\\s+${re(svc)}\\s+`).test(l),
        ),
      ),
    );
    // UDP "connections" are inactive ones in IPVS (never ESTABLISHED): ActiveConn 0, InActConn >= 2 each
    // (rr: two of the six sockets each; flows of earlier tests may still count)
    let listed = '';
    await until(
      `${c.name}: InActConn`,
      () => {
        listed = adm('-Ln', '-u', svc);
        const dests = [...listed.matchAll(/-> \S+\s+\w+\s+1\s+(\d+)\s+(\d+)/g)];
        return dests.length === 3 && dests.every((m) => m[1] === '0' && Number(m[2]) >= 2);
      },
      5000,
    ).catch((e) => assert.fail(`${e}\n${listed}`));
    let line = '';
    await until(
      `${c.name} counters`,
      () => {
        line = adm('-Ln', '--stats', '-u', svc);
        // UDP  VIP:port   Conns InPkts OutPkts InBytes OutBytes (service line first)
        const m = new RegExp(`UDP {2}${re(svc)}\\s+(\\d+)\\s+(\\d+)\\s+(\\d+)`).exec(line);
        return Number(m?.[1]) === SOCKETS && Number(m?.[2]) === SOCKETS * PER && Number(m?.[3]) === SOCKETS * PER;
      },
      5000,
    ).catch((e) => assert.fail(`${e}\n${line}`));
  }
});

test('expire_nodest_conn: a long-lived UDP flow on a real server that fails its check moves to another one (NAT IPv4, FNAT IPv6)', {
  skip: !canRun,
  timeout: 60000,
}, async () => {
  for (const c of [CASES[0], CASES[3]]) {
    const six = c.vip.includes(':');
    const svc = svcText(c.vip, c.port);
    // one socket, a datagram every 20 ms: conntrack keeps it on one real server
    const st = lab.stream(c.vip, c.port, 20);
    try {
      await until(`${c.name}: the stream answered`, () => st.replies().length >= 10, 5000);
      const on = st.replies()[0][1];
      const i = Number(on.slice(2));
      assert.ok(
        st.replies().every(([, n]) => n === on),
        `${c.name}: one socket, one real server: ${JSON.stringify(st.replies())}`,
      );
      lab.silence(i, c.port, true);
      await until(
        `${on} out of ${svc}`,
        () => !adm('-Ln', '-u', svc).includes(`${svcText(rsAddr(i, six), c.port)} `),
        15000,
      );
      const n0 = st.replies().length;
      // the flow is flushed with its real server (conntrack -D) and the next datagram scheduled again
      await until(
        `${c.name}: the stream answered by another real server`,
        () =>
          st
            .replies()
            .slice(n0)
            .some(([, n]) => n !== on),
        5000,
      ).catch((e) => assert.fail(`${e}: ${JSON.stringify(st.replies().slice(-20))}`));
      await sleep(500);
      const n1 = st.replies().length;
      await sleep(1000);
      const after1 = st.replies().slice(n1);
      // about 50 datagrams a second; a loaded machine answers fewer, none lost to the silent server
      assert.ok(after1.length >= 20, `${c.name}: ${after1.length} replies in 1 s`);
      assert.equal(new Set(after1.map(([, n]) => n)).size, 1, JSON.stringify(after1));
      assert.notEqual(after1[0][1], on);
    } finally {
      lab.silence(1, c.port, false);
      lab.silence(2, c.port, false);
      lab.silence(3, c.port, false);
      await st.stop();
    }
    await until(
      `${c.name}: three real servers again`,
      () => (adm('-Ln', '-u', svc).match(/ -> /g) ?? []).length === 3,
      15000,
    );
  }
});
