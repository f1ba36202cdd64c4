import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DataplaneCapabilities } from '../../src/config/model.js';
import { codes, parse } from './helpers.js';

const NFT_TUN: DataplaneCapabilities = { name: 'nft', kernel: true, tun: true };
const vs = (vip: string, method: string, rs: string) =>
  `virtual_server ${vip} 80 {\n protocol TCP\n lvs_method ${method}\n real_server ${rs} 80 {\n }\n}\n`;

test('KV317: TUN variants the tc-BPF plane does not build are refused at -t, each on its real server', () => {
  for (const [text, why] of [
    [vs('198.18.0.100', 'TUN type gue port 6080 csum', '198.18.1.11'), /tun_flags csum/],
    [vs('2001:2::100', 'TUN type gue port 6080', '2001:2:0:1::11'), /GUE over IPv6/],
    ['virtual_server fwmark 7 {\n lvs_method TUN\n real_server 198.18.1.11 80 {\n }\n}\n', /fwmark/],
  ] as const) {
    const r = parse(text, { dataplane: NFT_TUN });
    assert.deepEqual(
      codes(r).filter((c) => c !== 'KV211'),
      ['KV317'],
      text,
    );
    const d = r.diagnostics.find((x) => x.code === 'KV317');
    assert.match(d?.message ?? '', why);
    assert.match(d?.message ?? '', /real_server .* it would get no traffic/);
    assert.equal(r.usable, false);
  }
});

test('what the tc-BPF plane builds passes: ipip, gre (v4 and v6), gue over IPv4, nocsum', () => {
  for (const text of [
    vs('198.18.0.100', 'TUN', '198.18.1.11'),
    vs('198.18.0.100', 'TUN type gre', '198.18.1.11'),
    vs('2001:2::100', 'TUN type gre nocsum', '2001:2:0:1::11'),
    vs('198.18.0.100', 'TUN type gue port 6080 nocsum', '198.18.1.11'),
    vs('2001:2::100', 'TUN', '2001:2:0:1::11'),
  ])
    assert.deepEqual(codes(parse(text, { dataplane: NFT_TUN })), [], text);
});

test('KV315 names why the TUN plane is unavailable', () => {
  const r = parse(vs('198.18.0.100', 'TUN', '198.18.1.11'), {
    dataplane: { name: 'nft', kernel: true, tun: false, tunUnavailable: 'BPF object x.o is missing' },
  });
  assert.match(
    r.diagnostics.find((d) => d.code === 'KV315')?.message ?? '',
    /not available here \(BPF object x\.o is missing\)/,
  );
});
