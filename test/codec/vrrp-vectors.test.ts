import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { AH_PROTOCOL, decodeAh, encodeAhPacket, verifyIcv } from '../../src/codec/ah.js';
import { decodeIpv4, encodeIpv4 } from '../../src/codec/ipv4.js';
import { AUTH_PASS, decodeVrrp, encodeVrrp, encodingLength, passAuthData } from '../../src/codec/vrrp.js';

/** Real packets captured from keepalived 2.2.7 (../shared/vectors/vrrp, see its README). */
const dir = join(process.cwd(), '..', 'shared', 'vectors', 'vrrp');
const vectors: Record<string, unknown>[] = existsSync(join(dir, 'vectors.json'))
  ? JSON.parse(readFileSync(join(dir, 'vectors.json'), 'utf8'))
  : [];
const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('the vectors are present', {
  skip: vectors.length === 0 && 'shared/vectors not found beside the checkout',
}, () => {
  assert.ok(vectors.filter((v) => v.proto === 112 || v.proto === 51).length >= 11);
});

for (const v of vectors.filter((x) => x.proto === 112 || x.proto === 51)) {
  test(`vector ${v.name}: decodes to the captured fields and re-encodes byte for byte`, () => {
    const pkt = hex(v.hex as string);
    let vrrpBytes: Uint8Array;
    let src: string;
    let dst: string;
    const family = v.family === 'ipv6' ? 6 : 4;
    if (family === 4) {
      const ip = decodeIpv4(pkt);
      assert.ok(ip.ok);
      const h = ip.value.header;
      assert.equal(h.ttl, v.ttl);
      assert.equal(h.tos, v.tos);
      assert.equal(h.id, v.ip_id);
      assert.equal(toHex(encodeIpv4(h)), toHex(pkt.subarray(0, 20)), 'IPv4 header re-encodes (checksum included)');
      src = h.src;
      dst = h.dst;
      vrrpBytes = ip.value.payload;
      if (h.protocol === AH_PROTOCOL) {
        const ah = decodeAh(vrrpBytes);
        assert.ok(ah.ok);
        const exp = v.ah as { seq: number; icv: string; spi: string };
        assert.equal(ah.value.ah.seq, exp.seq);
        assert.equal(`0x${ah.value.ah.spi.toString(16)}`, exp.spi);
        assert.equal(toHex(ah.value.ah.icv), exp.icv);
        assert.ok(verifyIcv(h, ah.value.ah, ah.value.payload, 's3cr3t', false), 'keepalived ICV verifies');
        assert.ok(!verifyIcv(h, ah.value.ah, ah.value.payload, 'wrong', false));
        vrrpBytes = ah.value.payload;
        const rebuilt = encodeAhPacket(
          { tos: h.tos, id: h.id, ttl: h.ttl, src, dst },
          exp.seq,
          vrrpBytes,
          's3cr3t',
          false,
        );
        assert.equal(toHex(rebuilt), v.hex);
      }
    } else {
      // IPv6 header: next header at 6, hop limit at 7, addresses at 8..40
      assert.equal(pkt[7], v.hop_limit);
      src = v.ip_src as string;
      dst = v.ip_dst as string;
      vrrpBytes = pkt.subarray(40);
    }
    const d = decodeVrrp(vrrpBytes, family, { src, dst });
    assert.ok(d.ok, JSON.stringify(d));
    const a = d.value;
    assert.equal(a.version, v.vrrp_version);
    assert.equal(a.vrid, v.vrid);
    assert.equal(a.priority, v.priority);
    assert.deepEqual(a.addresses, v.addresses);
    assert.equal(`0x${a.checksum.toString(16).padStart(4, '0')}`, v.checksum);
    if (a.version === 2) {
      assert.equal(a.authType, v.auth_type);
      assert.equal(a.advertInt, v.advert_int_s);
      if (v.auth_pass) assert.deepEqual([...a.authData!], [...passAuthData(v.auth_pass as string)]);
    } else assert.equal(a.maxAdvertIntCs, v.max_adver_int_cs);
    assert.equal(encodingLength(a), v.vrrp_length);
    assert.equal(toHex(encodeVrrp(a, { src, dst })), toHex(vrrpBytes.subarray(0, v.vrrp_length as number)));
  });
}

test('v3 checksums cover the pseudo-header: the unicast destination changes them', () => {
  const adv = {
    version: 3 as const,
    vrid: 51,
    priority: 100,
    family: 4 as const,
    addresses: ['198.18.0.100'],
    maxAdvertIntCs: 100,
  };
  const m = encodeVrrp(adv, { src: '198.18.0.1', dst: '224.0.0.18' });
  const u = encodeVrrp(adv, { src: '198.18.0.1', dst: '198.18.0.2' });
  assert.notEqual(toHex(m), toHex(u));
  assert.equal(decodeVrrp(u, 4, { src: '198.18.0.1', dst: '224.0.0.18' }).ok, false);
  assert.equal(decodeVrrp(u, 4, { src: '198.18.0.1', dst: '198.18.0.2' }).ok, true);
});

test('malformed packets are errors named after RFC 5798 statistics, never exceptions', () => {
  const good = encodeVrrp({
    version: 2,
    vrid: 1,
    priority: 100,
    family: 4,
    addresses: ['10.0.0.1'],
    authType: AUTH_PASS,
    advertInt: 1,
    authData: passAuthData('x'),
  });
  const cases: [Uint8Array, string][] = [
    [good.subarray(0, 7), 'vrrpStatsPacketLengthErrors'],
    [Uint8Array.from([0x41, ...good.subarray(1)]), 'vrrpStatsVersionErrors'],
    [Uint8Array.from([0x22, ...good.subarray(1)]), 'vrrpStatsInvalidTypePktsRcvd'],
    [Uint8Array.from([good[0], 0, ...good.subarray(2)]), 'vrrpStatsVrIdErrors'],
    [Uint8Array.from([...good.subarray(0, 3), 9, ...good.subarray(4)]), 'vrrpStatsPacketLengthErrors'],
    [Uint8Array.from([...good.subarray(0, 6), good[6] ^ 1, ...good.subarray(7)]), 'vrrpStatsChecksumErrors'],
  ];
  for (const [buf, code] of cases) {
    const r = decodeVrrp(buf, 4);
    assert.ok(!r.ok && r.error.code === code, `${toHex(buf)}: ${JSON.stringify(r)}`);
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 80 }), fc.boolean(), (b, six) => {
      decodeVrrp(b, six ? 6 : 4, { src: six ? 'fe80::1' : '10.0.0.1', dst: six ? 'ff02::12' : '224.0.0.18' });
      decodeIpv4(b);
      decodeAh(b);
    }),
  );
});

test('encode/decode round trip (property)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 255 }),
      fc.integer({ min: 0, max: 255 }),
      fc.array(fc.ipV4(), { minLength: 1, maxLength: 20 }),
      fc.integer({ min: 1, max: 4095 }),
      (vrid, priority, addresses, cs) => {
        const a = { version: 3 as const, vrid, priority, family: 4 as const, addresses, maxAdvertIntCs: cs };
        const ip = { src: '198.18.0.1', dst: '224.0.0.18' };
        const d = decodeVrrp(encodeVrrp(a, ip), 4, ip);
        assert.ok(d.ok);
        assert.deepEqual(
          [d.value.vrid, d.value.priority, d.value.addresses, d.value.maxAdvertIntCs],
          [vrid, priority, addresses.map((x) => x.replace(/\b0+(\d)/g, '$1')), cs],
        );
      },
    ),
  );
});
