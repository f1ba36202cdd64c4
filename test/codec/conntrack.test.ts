/**
 * The ctnetlink dump codec on messages built here as nf_conntrack_netlink.c's ctnetlink_fill_info
 * lays them out (nests flagged NLA_F_NESTED, ports and timeout big-endian). The same reader against
 * the kernel itself: test/os/ctnetlink-lab.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type CtEntry,
  conntrackDumpRequest,
  decodeConntrackDump,
  decodeConntrackEvents,
} from '../../src/codec/conntrack.js';
import { netlinkAttr as attr } from '../../src/codec/netlink-attr.js';

const NESTED = 0x8000;
const nest = (type: number, ...children: Buffer[]) => attr(type | NESTED, Buffer.concat(children));
const u8 = (type: number, v: number) => attr(type, Buffer.from([v]));
const be16 = (type: number, v: number) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return attr(type, b);
};
const be32 = (type: number, v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v);
  return attr(type, b);
};
const ip = (a: string) =>
  a.includes(':')
    ? Buffer.from(
        a
          .split(':')
          .flatMap((g) => (g === '' ? [] : [g.padStart(4, '0')]))
          .join(''),
        'hex',
      )
    : Buffer.from(a.split('.').map(Number));
/** CTA_TUPLE_*: CTA_TUPLE_IP { src, dst }, CTA_TUPLE_PROTO { num, ports } */
function tuple(type: number, src: string, dst: string, proto: number, sport?: number, dport?: number): Buffer {
  const six = src.includes(':');
  return nest(
    type,
    nest(1, attr(six ? 3 : 1, ip(src)), attr(six ? 4 : 2, ip(dst))),
    nest(2, u8(1, proto), ...(sport === undefined ? [] : [be16(2, sport), be16(3, dport ?? 0)])),
  );
}
function message(seq: number, type: number, body: Buffer): Buffer {
  const m = Buffer.alloc(20);
  m.writeUInt32LE(20 + body.length, 0);
  m.writeUInt16LE(type, 4);
  m.writeUInt32LE(seq, 8);
  m.writeUInt8(2, 16);
  return Buffer.concat([m, body]);
}
const NEW = (1 << 8) | 0;
const ct = (seq: number, ...attrs: Buffer[]) => message(seq, NEW, Buffer.concat(attrs));
const done = (seq: number) => message(seq, 3, Buffer.alloc(4));
const error = (seq: number, errno: number) => {
  const m = Buffer.alloc(20);
  m.writeUInt32LE(20, 0);
  m.writeUInt16LE(2, 4);
  m.writeUInt32LE(seq, 8);
  m.writeInt32LE(-errno, 16);
  return m;
};
const tcpState = (s: number) => nest(4, nest(1, u8(1, s), u8(2, 7)));

const NAT_TCP = ct(
  7,
  tuple(1, '198.18.0.10', '198.18.0.100', 6, 40000, 81),
  tuple(2, '198.18.1.11', '198.18.1.250', 6, 80, 40000),
  be32(3, 0x18e), // CTA_STATUS, skipped
  be32(7, 431999),
  tcpState(3),
  be32(8, 0), // CTA_MARK, skipped
);
const V6_UDP = ct(
  7,
  tuple(1, '2001:0002:0000:0000:0000:0000:0000:0010', '2001:0002:0000:0000:0000:0000:0000:0100', 17, 5353, 53),
  tuple(2, '2001:0002:0000:0001:0000:0000:0000:0011', '2001:0002:0000:0000:0000:0000:0000:0010', 17, 53, 5353),
  be32(7, 29),
);

test('a dump request: CT_GET with NLM_F_DUMP, every family unless one is asked', () => {
  const r = conntrackDumpRequest(42);
  assert.equal(r.length, 20);
  assert.equal(r.readUInt16LE(4), (1 << 8) | 1);
  assert.equal(r.readUInt16LE(6), 0x301);
  assert.equal(r.readUInt32LE(8), 42);
  assert.equal(r[16], 0);
  assert.equal(conntrackDumpRequest(1, 6)[16], 10);
});

test('entries: both tuples, TCP state, timeout; IPv6 canonical; UDP without state; then done', () => {
  const out: CtEntry[] = [];
  const p = decodeConntrackDump(Buffer.concat([NAT_TCP, V6_UDP, done(7)]), 7, out);
  assert.deepEqual(p, { done: true, error: 0 });
  assert.deepEqual(out, [
    {
      family: 4,
      protocol: 'tcp',
      state: 'ESTABLISHED',
      timeout: 431999,
      original: { src: '198.18.0.10', dst: '198.18.0.100', sport: 40000, dport: 81 },
      reply: { src: '198.18.1.11', dst: '198.18.1.250', sport: 80, dport: 40000 },
    },
    {
      family: 6,
      protocol: 'udp',
      state: '',
      timeout: 29,
      original: { src: '2001:2::10', dst: '2001:2::100', sport: 5353, dport: 53 },
      reply: { src: '2001:2:0:1::11', dst: '2001:2::10', sport: 53, dport: 5353 },
    },
  ]);
});

test('other protocols: SCTP state names, ICMP without ports, an unknown protocol', () => {
  const out: CtEntry[] = [];
  decodeConntrackDump(
    Buffer.concat([
      ct(
        1,
        tuple(1, '10.0.0.1', '10.0.0.2', 132, 1, 2),
        tuple(2, '10.0.0.2', '10.0.0.1', 132, 2, 1),
        nest(4, nest(3, u8(1, 4))),
      ),
      ct(1, tuple(1, '10.0.0.1', '10.0.0.2', 1), tuple(2, '10.0.0.2', '10.0.0.1', 1)),
      ct(1, tuple(1, '10.0.0.1', '10.0.0.2', 99), tuple(2, '10.0.0.2', '10.0.0.1', 99)),
    ]),
    1,
    out,
  );
  assert.deepEqual(
    out.map((e) => [e.protocol, e.state, e.original.sport, e.reply.dport]),
    [
      ['sctp', 'ESTABLISHED', 1, 1],
      ['icmp', '', 0, 0],
      ['unknown', '', 0, 0],
    ],
  );
});

test('`wanted` by family and original destination; another sequence skipped; not done yet', () => {
  const out: CtEntry[] = [];
  const wanted = (family: 4 | 6, dst: string) => family === 6 && dst === '2001:2::100';
  const p = decodeConntrackDump(Buffer.concat([NAT_TCP, V6_UDP, done(6)]), 7, out, wanted);
  assert.deepEqual(p, { done: false, error: 0 });
  assert.deepEqual(
    out.map((e) => e.original.src),
    ['2001:2::10'],
  );
  const none: CtEntry[] = [];
  decodeConntrackDump(Buffer.concat([NAT_TCP, V6_UDP]), 8, none);
  assert.equal(none.length, 0);
});

test('a refused dump reports its errno; truncated or malformed input never throws', () => {
  assert.deepEqual(decodeConntrackDump(error(3, 16), 3, []), { done: true, error: 16 });
  // an ack (error 0) is not a failure
  assert.deepEqual(decodeConntrackDump(error(3, 0), 3, []), { done: false, error: 0 });
  const out: CtEntry[] = [];
  const whole = Buffer.concat([NAT_TCP, V6_UDP]);
  for (let cut = 0; cut < whole.length; cut++) decodeConntrackDump(whole.subarray(0, cut), 7, out);
  // a message whose attribute lengths lie: skipped, not read past its end
  const liar = Buffer.from(NAT_TCP);
  liar.writeUInt16LE(0xfff0, 20);
  const got: CtEntry[] = [];
  decodeConntrackDump(Buffer.concat([liar, V6_UDP]), 7, got);
  assert.deepEqual(
    got.map((e) => e.family),
    [6],
  );
  // a message without a reply tuple is no entry
  const half: CtEntry[] = [];
  decodeConntrackDump(ct(7, tuple(1, '10.0.0.1', '10.0.0.2', 6, 1, 2)), 7, half);
  assert.equal(half.length, 0);
});

test('counters each way (nf_conntrack_acct), 64-bit; absent without CTA_COUNTERS_*', () => {
  const be64 = (type: number, v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return attr(type, b);
  };
  const out: CtEntry[] = [];
  decodeConntrackDump(
    Buffer.concat([
      ct(
        5,
        tuple(1, '10.0.0.1', '10.0.0.2', 6, 1, 2),
        tuple(2, '10.0.0.2', '10.0.0.1', 6, 2, 1),
        nest(9, be64(1, 12n), be64(2, 5_000_000_000n)),
        nest(10, be64(1, 10n), be64(2, 900n)),
      ),
      NAT_TCP,
    ]),
    5,
    out,
  );
  assert.deepEqual(out[0]?.counters, { origPackets: 12, origBytes: 5_000_000_000, replyPackets: 10, replyBytes: 900 });
  const plain: CtEntry[] = [];
  decodeConntrackDump(NAT_TCP, 7, plain);
  assert.equal(plain[0]?.counters, undefined);
});

test('events: new and updated entries are upserts, a destroy event carries the last counters; truncation safe', () => {
  const be64 = (type: number, v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    return attr(type, b);
  };
  const body = [
    tuple(1, '198.18.0.10', '198.18.0.100', 6, 40000, 81),
    tuple(2, '198.18.1.11', '198.18.1.250', 6, 80, 40000),
  ];
  const destroy = message(
    0,
    (1 << 8) | 2,
    Buffer.concat([...body, nest(9, be64(1, 6n), be64(2, 412n)), nest(10, be64(1, 5n), be64(2, 2_000_000_000_123n))]),
  );
  const update = message(0, (1 << 8) | 0, Buffer.concat([...body, be32(7, 120)]));
  const out: import('../../src/codec/conntrack.js').CtEvent[] = [];
  decodeConntrackEvents(Buffer.concat([update, destroy, destroy.subarray(0, 30)]), out);
  assert.deepEqual(
    out.map((e) => [e.kind, e.hasState, e.entry.timeout]),
    [
      ['upsert', false, 120],
      ['destroy', false, 0],
    ],
  );
  assert.deepEqual(out[1]?.entry.counters, {
    origPackets: 6,
    origBytes: 412,
    replyPackets: 5,
    replyBytes: 2_000_000_000_123,
  });
  assert.equal(out[0]?.entry.counters, undefined);
});

test('events in one slot of a larger area: only `[from, to)` is read, a message past `to` is not', () => {
  const one = ct(
    0,
    tuple(1, '198.18.0.10', '198.18.0.100', 6, 40001, 80),
    tuple(2, '198.18.1.11', '198.18.0.10', 6, 80, 40001),
    be32(7, 60),
    tcpState(3),
  );
  const other = ct(
    0,
    tuple(1, '198.18.0.20', '198.18.0.100', 6, 40002, 80),
    tuple(2, '198.18.1.12', '198.18.0.20', 6, 80, 40002),
  );
  const slot = 512;
  const area = Buffer.alloc(slot * 3, 0xff); // 0xff: a length no message has, read only if the bounds leak
  one.copy(area, slot);
  other.copy(area, slot + one.length);
  const out: import('../../src/codec/conntrack.js').CtEvent[] = [];
  decodeConntrackEvents(area, out, slot, slot + one.length);
  assert.deepEqual(
    out.map((e) => [e.entry.original.sport, e.entry.state, e.entry.timeout]),
    [[40001, 'ESTABLISHED', 60]],
  );
  out.length = 0;
  // `to` inside the second message: the first is read, the cut one ends the reading
  decodeConntrackEvents(area, out, slot, slot + one.length + 30);
  assert.equal(out.length, 1);
  out.length = 0;
  decodeConntrackEvents(area, out, slot, area.length + 100);
  assert.deepEqual(
    out.map((e) => e.entry.original.sport),
    [40001, 40002],
  );
});
