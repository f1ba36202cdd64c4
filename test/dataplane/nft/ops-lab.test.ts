/**
 * UDP one-packet scheduling (`ops`) through the kernel plane in the network lab: keepvs on lb1 with
 * UDP rr services, NAT and DR, IPv4 and IPv6, each once with `ops` and once without. A client sends
 * datagrams from ONE socket: with ops they are scheduled one by one (replies from more than one real
 * server, every reply from VIP:port), without ops conntrack (NAT) or the flow hash (DR) keeps them all
 * on one real server. keepvsadm lists the ops services with `ops`, as ipvsadm does.
 * Needs root, nftables and the lab; skipped otherwise. Only lab addresses are used.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { canRunLab as canRun, sleep, udpLab } from './udp-lab-kit.js';

const V4 = '198.18.0.100';
const V6 = '2001:2::100';
const DATAGRAMS = 12;

const rs = (port: number, six: boolean) =>
  [1, 2, 3].map((i) => `  real_server ${six ? `2001:2:0:1::1${i}` : `198.18.1.1${i}`} ${port} {\n  }`).join('\n');
const vs = (vip: string, port: number, method: string, ops: boolean) =>
  `virtual_server ${vip} ${port} {\n  lvs_sched rr\n  lvs_method ${method}\n  protocol UDP\n${ops ? '  ops\n' : ''}${rs(port, vip.includes(':'))}\n}\n`;
const CONFIG = `global_defs {\n  router_id lb1\n}\n${[V4, V6]
  .flatMap((v) => [vs(v, 53, 'NAT', true), vs(v, 54, 'NAT', false), vs(v, 82, 'DR', true), vs(v, 83, 'DR', false)])
  .join('')}`;

const lab = udpLab({
  prefix: `ko${process.pid % 100000}`,
  vip4: V4,
  vip6: V6,
  config: CONFIG,
  rsPorts: ['53', '54', '82@', '83@'],
});
const { adm, until } = lab;
const send = (vip: string, port: number, n = DATAGRAMS) => lab.send(vip, port, n);

before(async () => {
  if (!canRun) return;
  // every real server in the DR services with its MAC (the slot maps filled), then datagrams answered
  await lab.up(async () => {
    await until(
      'three real servers in each of the 8 services',
      () => (adm('-Ln').match(/ -> (198\.|\[2001)/g) ?? []).length === 24,
    );
    await until('the DR services forwarding', () =>
      [V4, V6].every((v) => send(v, 82, 3).lost === 0 && send(v, 83, 3).lost === 0),
    );
  });
});

after(() => {
  if (canRun) lab.down();
});

for (const [mode, port] of [
  ['NAT', 53],
  ['DR', 82],
] as const)
  for (const vip of [V4, V6])
    test(`${mode} ${vip.includes(':') ? 'IPv6' : 'IPv4'} ops: datagrams of one socket reach several real servers, replies from VIP:port; without ops one`, {
      skip: !canRun,
      timeout: 30000,
    }, () => {
      const ops = send(vip, port);
      assert.equal(ops.lost, 0, JSON.stringify(ops));
      // rr per datagram: every server in turn (IPVS's rr order), each reply from the VIP's own address and port
      assert.deepEqual(new Set(ops.names), new Set(['rs1', 'rs2', 'rs3']), JSON.stringify(ops));
      for (let i = 3; i < ops.names.length; i++) assert.equal(ops.names[i], ops.names[i - 3], JSON.stringify(ops));
      assert.deepEqual(ops.from, [`${vip} ${port}`]);
      const flow = send(vip, port + 1);
      assert.equal(flow.lost, 0, JSON.stringify(flow));
      assert.equal(new Set(flow.names).size, 1, `without ops one real server: ${JSON.stringify(flow)}`);
      assert.deepEqual(flow.from, [`${vip} ${port + 1}`]);
    });

test('NAT ops: --stats counts each datagram as a connection and its packets in and out', {
  skip: !canRun,
}, async () => {
  adm('-Z', '-u', `${V4}:53`);
  await sleep(1200);
  send(V4, 53);
  await until(
    'counters read',
    () => {
      // UDP  198.18.0.100:53   Conns InPkts OutPkts InBytes OutBytes (service line first)
      const m = /UDP {2}198\.18\.0\.100:53\s+(\d+)\s+(\d+)\s+(\d+)/.exec(adm('-Ln', '--stats', '-u', `${V4}:53`));
      return Number(m?.[1]) === DATAGRAMS && Number(m?.[2]) === DATAGRAMS && Number(m?.[3]) === DATAGRAMS;
    },
    5000,
  );
});

test('NAT ops keeps no conntrack entry; keepvsadm lists ops as ipvsadm does', { skip: !canRun }, () => {
  send(V4, 53, 3);
  send(V4, 54, 3);
  const ct = lab.inNs('lb1', 'conntrack', '-L', '-p', 'udp');
  assert.doesNotMatch(ct, /dport=53 /, ct);
  assert.match(ct, /dport=54 /, ct);
  const out = adm('-Ln');
  assert.match(out, /UDP {2}198\.18\.0\.100:53 rr ops\n/);
  assert.match(out, /UDP {2}\[2001:2::100\]:82 rr ops\n/);
  assert.match(out, /UDP {2}198\.18\.0\.100:54 rr\n/);
  assert.match(adm('-Sn'), /-A -u 198\.18\.0\.100:53 -s rr -o/);
});

test('live edits: a quiesced real server gets no datagram; ops switched off (-E without -o) pins the socket again', {
  skip: !canRun,
  timeout: 30000,
}, async () => {
  adm('-e', '-u', `${V4}:53`, '-r', '198.18.1.11:53', '-m', '-w', '0');
  await until('rs1 out of the ops rotation', () => !send(V4, 53, 6).names.includes('rs1'));
  const two = send(V4, 53);
  assert.deepEqual(new Set(two.names), new Set(['rs2', 'rs3']), JSON.stringify(two));
  // a weight change is an element update (nfnetlink), never a refused batch or a rebuild
  assert.doesNotMatch(lab.log(), /refused|rebuilding/, lab.log().slice(-2000));
  adm('-e', '-u', `${V4}:53`, '-r', '198.18.1.11:53', '-m', '-w', '1');
  adm('-E', '-u', `${V4}:53`, '-s', 'rr');
  await until('-Ln without ops', () => /UDP {2}198\.18\.0\.100:53 rr\n/.test(adm('-Ln')));
  await sleep(300);
  const flow = send(V4, 53);
  assert.equal(flow.lost, 0, JSON.stringify(flow));
  assert.equal(new Set(flow.names).size, 1, JSON.stringify(flow));
  adm('-E', '-u', `${V4}:53`, '-s', 'rr', '-o');
  await until('ops again', () => new Set(send(V4, 53, 6).names).size === 3);
});
