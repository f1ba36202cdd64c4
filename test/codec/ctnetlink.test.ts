import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CtnlDestroyed, decodeDestroyed, encodeDestroyed, IPS_DST_NAT } from '../../src/codec/ctnetlink.js';
import { destroyedEntry } from '../../src/os/conntrack.js';

const fnat: CtnlDestroyed = {
  family: 4,
  status: IPS_DST_NAT | 0x8,
  original: { src: '198.18.0.10', dst: '198.18.0.100', proto: 6, sport: 40000, dport: 81 },
  reply: { src: '198.18.1.11', dst: '198.18.1.250', proto: 6, sport: 80, dport: 40000 },
  origCounters: { packets: 6, bytes: 412 },
  replyCounters: { packets: 5, bytes: 2_000_000_000_123 },
};

test('ctnetlink: destroy events decode with both tuples, the status and each direction counters', () => {
  const v6: CtnlDestroyed = {
    family: 6,
    status: 0,
    original: {
      src: '2001:0002:0000:0000:0000:0000:0000:0010',
      dst: '2001:0002:0000:0000:0000:0000:0000:0100',
      proto: 17,
      sport: 5353,
      dport: 53,
    },
    reply: {
      src: '2001:0002:0000:0001:0000:0000:0000:0011',
      dst: '2001:0002:0000:0000:0000:0000:0000:0010',
      proto: 17,
      sport: 53,
      dport: 5353,
    },
  };
  // two messages in one datagram, as recv() may return them
  assert.deepEqual(decodeDestroyed(Buffer.concat([encodeDestroyed(fnat), encodeDestroyed(v6)])), [fnat, v6]);
  // a truncated datagram yields what is whole, never garbage
  const one = encodeDestroyed(fnat);
  assert.deepEqual(decodeDestroyed(Buffer.concat([one, one.subarray(0, 30)])), [fnat]);
});

test('ctnetlink: a destroy event becomes an entry as /proc/net/nf_conntrack gives them', () => {
  const e = destroyedEntry(fnat);
  assert.equal(e.protocol, 'tcp');
  assert.deepEqual(e.original, { src: '198.18.0.10', dst: '198.18.0.100', sport: 40000, dport: 81 });
  assert.deepEqual(e.counters, { origPackets: 6, origBytes: 412, replyPackets: 5, replyBytes: 2_000_000_000_123 });
  // no accounting extension (the entry predates nf_conntrack_acct=1): no counters, not zeros
  const { origCounters: _o, replyCounters: _r, ...bare } = fnat;
  assert.equal(destroyedEntry(bare).counters, undefined);
  // IPv6 in the canonical form the /proc reader gives
  const six = destroyedEntry({
    ...bare,
    family: 6,
    original: { ...fnat.original, src: '2001:0002:0000:0000:0000:0000:0000:0010' },
  });
  assert.equal(six.original.src, '2001:2::10');
});
