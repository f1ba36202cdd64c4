import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DataplaneCapabilities } from '../../src/config/model.js';
import { codes, FILE, parse, show } from './helpers.js';

const PROXY: DataplaneCapabilities = { name: 'proxy', kernel: false, tun: false };
const NFT: DataplaneCapabilities = { name: 'nft', kernel: true, tun: false };
const NFT_TUN: DataplaneCapabilities = { name: 'nft', kernel: true, tun: true };

const FNAT = `local_address_group laddr_g1 {
  198.18.1.250-252 eth1
  198.18.1.250
  2001:2:0:1::fa
}
virtual_server 198.18.0.100 80 {
  protocol TCP
  lvs_method FNAT
  laddr_group_name laddr_g1
  real_server 198.18.1.11 8080 {
  }
}
`;

test('FNAT with a local_address_group (Alibaba LVS / DPVS keywords): ranges expanded, ports kept', () => {
  const r = parse(FNAT);
  assert.deepEqual(codes(r), [], r.diagnostics.map(show).join('\n'));
  const g = r.config?.localAddressGroups?.[0];
  assert.equal(g?.name, 'laddr_g1');
  assert.deepEqual(
    g?.addresses.map((a) => `${a.address}${a.ifname ? `%${a.ifname}` : ''}`),
    ['198.18.1.250%eth1', '198.18.1.251%eth1', '198.18.1.252%eth1', '2001:2:0:1::fa'],
  );
  const vs = r.config?.virtualServers[0];
  assert.equal(vs?.method, 'FNAT');
  assert.equal(vs?.laddrGroup, 'laddr_g1');
  // full-NAT translates ports like NAT (DR/TUN would force the service's port)
  assert.equal(vs?.realServers[0].port, 8080);
});

test('FNAT without laddr_group_name, or naming an undefined group: KV316', () => {
  assert.deepEqual(codes(parse(FNAT.replace(' laddr_group_name laddr_g1\n', ''))), ['KV316']);
  assert.deepEqual(codes(parse(FNAT.replace('laddr_group_name laddr_g1', 'laddr_group_name nope'))), ['KV316']);
});

test('bad local_address_group entries: KV204', () => {
  const r = parse(FNAT.replace('198.18.1.250-252 eth1', '198.18.1.250-20\n  nonsense'));
  assert.deepEqual(codes(r), ['KV204', 'KV204']);
});

const DR = 'virtual_server 198.18.0.100 80 {\n protocol TCP\n lb_kind DR\n real_server 198.18.1.11 80 {\n }\n}\n';
const FWM = 'virtual_server fwmark 7 {\n real_server 198.18.1.11 80 {\n }\n}\n';
const TUN = 'virtual_server 198.18.0.100 80 {\n protocol TCP\n lvs_method TUN\n real_server 198.18.1.11 80 {\n }\n}\n';
const NAT = 'virtual_server 198.18.0.100 80 {\n protocol TCP\n lvs_method NAT\n real_server 198.18.1.11 80 {\n }\n}\n';

test('KV315: DR, TUN and fwmark services need the kernel plane; never downgraded to the proxy', () => {
  for (const text of [DR, FWM, TUN]) {
    const r = parse(text, { dataplane: PROXY });
    assert.ok(codes(r).includes('KV315'), `${text}: ${codes(r)}`);
    assert.equal(r.usable, false);
    assert.match(r.diagnostics.find((d) => d.code === 'KV315')?.message ?? '', /--dataplane proxy/);
  }
  // a real server of a NAT service switched to DR counts too
  const mixed = parse(
    NAT.replace(' real_server 198.18.1.11 80 {\n }', ' real_server 198.18.1.11 80 {\n  lvs_method DR\n }'),
    {
      dataplane: PROXY,
    },
  );
  assert.ok(codes(mixed).includes('KV315'));
});

test('KV315: the kernel plane takes DR and fwmark; TUN only with the tc-BPF program', () => {
  for (const text of [DR, FWM, NAT, FNAT]) assert.ok(!codes(parse(text, { dataplane: NFT })).includes('KV315'));
  const tun = parse(TUN, { dataplane: NFT });
  assert.ok(codes(tun).includes('KV315'));
  assert.match(tun.diagnostics.find((d) => d.code === 'KV315')?.message ?? '', /tc-BPF/);
  assert.ok(!codes(parse(TUN, { dataplane: NFT_TUN })).includes('KV315'));
  // NAT and FNAT run on either plane; without a dataplane given nothing is checked
  for (const text of [NAT, FNAT]) assert.ok(!codes(parse(text, { dataplane: PROXY })).includes('KV315'));
  assert.ok(!codes(parse(DR)).includes('KV315'));
});

test('KV318: proxy_protocol is reported under the kernel plane (it would silently drop it)', () => {
  const PP = NAT.replace(' protocol TCP\n', ' protocol TCP\n proxy_protocol v2\n');
  const kernel = parse(PP, { dataplane: NFT });
  const d = kernel.diagnostics.find((x) => x.code === 'KV318');
  assert.ok(d, codes(kernel).join());
  assert.equal(d.severity, 'warning');
  assert.match(d.message, /--dataplane proxy/);
  assert.equal(kernel.usable, true);
  // the userspace proxy does it
  assert.ok(!codes(parse(PP, { dataplane: PROXY })).includes('KV318'));
  assert.ok(!codes(parse(NAT, { dataplane: NFT })).includes('KV318'));
});

const UDP_OPS =
  'virtual_server 198.18.0.100 53 {\n protocol UDP\n lvs_sched rr\n ops\n real_server 198.18.1.11 53 {\n }\n}\n';

test('KV318: UDP ops runs per datagram in the kernel plane under NAT and DR; full-NAT, fwmark and port 0 are reported', () => {
  // NAT (the default method) and DR: scheduled per datagram, nothing to report (DR rr is not a flow hash either)
  for (const text of [UDP_OPS, UDP_OPS.replace(' ops\n', ' ops\n lvs_method DR\n')])
    assert.deepEqual(codes(parse(text, { dataplane: NFT })), [], text);
  const cases: [string, RegExp][] = [
    [UDP_OPS.replace(' ops\n', ' ops\n lvs_method FNAT\n laddr_group_name g\n'), /full-NAT/],
    [UDP_OPS.replace('198.18.0.100 53', 'fwmark 5').replace(' protocol UDP\n', ''), /fwmark/],
    [
      UDP_OPS.replace('198.18.0.100 53', '198.18.0.100 0').replace(' ops\n', ' ops\n persistence_timeout 60\n'),
      /port 0/,
    ],
  ];
  for (const [text, why] of cases) {
    const conf = `local_address_group g {\n 198.18.1.250\n}\n${text}`;
    const d = parse(conf, { dataplane: NFT }).diagnostics.find((x) => x.code === 'KV318' && /ops/.test(x.message));
    assert.ok(d, conf);
    assert.match(d.message, /schedules each UDP flow, not each datagram/);
    assert.match(d.message, why);
    // where `keepvs -t` points: the virtual_server line
    assert.equal(d.line, 4, show(d));
    assert.equal(d.file, FILE);
    assert.ok(!codes(parse(conf, { dataplane: PROXY })).includes('KV318'));
  }
  // flow_pinning has nothing to pin under ops
  const pin = parse(UDP_OPS.replace(' ops\n', ' ops\n lvs_method DR\n flow_pinning 600\n'), { dataplane: NFT });
  assert.match(pin.diagnostics.find((x) => x.code === 'KV333')?.message ?? '', /ops schedules each datagram/);
});

test('KV318: a DR service with a counting scheduler (wlc, the default) is said to run as a per-flow hash', () => {
  const d = parse(DR, { dataplane: NFT }).diagnostics.find((x) => x.code === 'KV318');
  assert.match(d?.message ?? '', /wlc .*weighted Maglev hash of source address and port/);
  for (const sched of ['mh', 'sh', 'dh', 'fo'])
    assert.ok(
      !codes(parse(DR.replace(' lb_kind DR\n', ` lb_kind DR\n lvs_sched ${sched}\n`), { dataplane: NFT })).includes(
        'KV318',
      ),
      sched,
    );
  assert.ok(!codes(parse(DR, { dataplane: PROXY })).includes('KV318'));
});
