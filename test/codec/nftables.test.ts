import assert from 'node:assert/strict';
import { test } from 'node:test';
import { netlinkAttr } from '../../src/codec/netlink-attr.js';
import {
  batch,
  decodeReplies,
  elemBytes,
  elementList,
  patchModulus,
  replaceRuleMessage,
  setElemMessages,
  statKeyText,
} from '../../src/codec/nftables.js';

// nft 1.0.6's element lists, captured with `strace -e trace=sendmsg -xx nft add|delete element ...`
// on x86-64 (the NFTA_SET_ELEM_LIST_ELEMENTS attribute of its NFT_MSG_NEWSETELEM / DELSETELEM):
// keepvs must send the kernel the bytes `nft` sends for the same element.
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const NFT = {
  // add element ip keepvs m { 0 : 172.16.0.1 . 8080 }   (typeof numgen inc mod 2 : ip daddr . tcp dport)
  natSlot: hex('24000380 20000180 0c000180 08000100 00000000 10000280 0c000100 ac100001 1f900000'),
  // add element ip6 keepvs m6 { 3 : 2001:db8:1::2 . 8080 }
  nat6Slot: hex(
    '30000380 2c000180 0c000180 08000100 03000000 1c000280 18000100 20010db8 00010000 00000000 00000002 1f900000',
  ),
  // add element netdev keepvs d { 258 : 02:00:00:00:00:0b }   (typeof meta mark : ether daddr)
  drMac: hex('24000380 20000180 0c000180 08000100 02010000 10000280 0a000100 02000000 000b0000'),
  // add element ip keepvs st { 172.16.0.1 . tcp . 8080 }   (ipv4_addr . inet_proto . inet_service)
  stat: hex('1c000380 18000180 14000180 10000100 ac100001 06000000 1f900000'),
  // delete element ip keepvs m { 7 }
  delSlot: hex('14000380 10000180 0c000180 08000100 07000000'),
};

test('set elements are byte for byte what `nft add element` sends', () => {
  assert.deepEqual(
    elementList([{ key: { kind: 'u32', n: 0 }, value: { kind: 'addr-port', address: '172.16.0.1', port: 8080 } }]),
    NFT.natSlot,
  );
  assert.deepEqual(
    elementList([{ key: { kind: 'u32', n: 3 }, value: { kind: 'addr-port', address: '2001:db8:1::2', port: 8080 } }]),
    NFT.nat6Slot,
  );
  assert.deepEqual(
    elementList([{ key: { kind: 'u32', n: 258 }, value: { kind: 'mac', mac: '02:00:00:00:00:0b' } }]),
    NFT.drMac,
  );
  assert.deepEqual(
    elementList([{ key: { kind: 'addr-proto-port', address: '172.16.0.1', protocol: 'tcp', port: 8080 } }]),
    NFT.stat,
  );
});

test('a delete names keys only; messages ask for an ack and split at 1,024 elements', () => {
  const c = { family: 'ip', table: 'keepvs', set: 'm' } as const;
  const [del] = setElemMessages('del', c, [{ key: { kind: 'u32', n: 7 }, value: { kind: 'u32', n: 1 } }], 100);
  // nlmsghdr: NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_DELSETELEM, REQUEST|ACK, seq 100; nfgenmsg AF_INET
  assert.equal(del.readUInt16LE(4), (10 << 8) | 14);
  assert.equal(del.readUInt16LE(6), 0x1 | 0x4);
  assert.equal(del.readUInt32LE(8), 100);
  assert.equal(del.readUInt8(16), 2);
  assert.ok(del.subarray(20).includes(Buffer.from('keepvs\0')));
  assert.deepEqual(del.subarray(del.length - NFT.delSlot.length), NFT.delSlot);
  const many = Array.from({ length: 2500 }, (_, n) => ({ key: { kind: 'u32', n } as const }));
  const adds = setElemMessages('add', c, many, 7);
  assert.equal(adds.length, 3);
  assert.deepEqual(
    adds.map((m) => m.readUInt32LE(8)),
    [7, 8, 9],
  );
  // an add is CREATE (no EXCL): re-adding an identical element is no error, as with nft
  assert.equal(adds[0].readUInt16LE(6), 0x1 | 0x4 | 0x400);
  assert.deepEqual(setElemMessages('add', c, [], 1), []);
  assert.throws(() => elementList([{ key: { kind: 'addr', address: '300.1.1.1' } }]), /not an address/);
  assert.throws(() => elementList([{ key: { kind: 'mac', mac: '02:00' } }]), /not a MAC/);
  assert.throws(() => elementList([{ key: { kind: 'u32', n: -1 } }]), /32-bit/);
});

test('a batch is BATCH_BEGIN (res_id NFTABLES, optional genid), the messages, BATCH_END', () => {
  const m = setElemMessages('add', { family: 'ip', table: 'keepvs', set: 'm' }, [{ key: { kind: 'u32', n: 1 } }], 12);
  const b = batch(m, 10, 0x01020304);
  assert.equal(b.readUInt16LE(4), 16); // NFNL_MSG_BATCH_BEGIN
  assert.equal(b.readUInt32LE(8), 10);
  assert.equal(b.readUInt16BE(18), 10); // res_id = NFNL_SUBSYS_NFTABLES
  assert.deepEqual(b.subarray(20, 28), hex('08000100 01020304')); // NFNL_BATCH_GENID, big-endian
  const beginLen = b.readUInt32LE(0);
  assert.deepEqual(b.subarray(beginLen, beginLen + m[0].length), m[0]);
  const end = b.subarray(beginLen + m[0].length);
  assert.equal(end.readUInt16LE(4), 17);
  assert.equal(end.readUInt32LE(8), 11);
  assert.equal(end.length, 20);
  assert.equal(batch([], 1).readUInt32LE(0), 20, 'no genid: a bare header');
});

/** nla helpers for hand-built rule dumps */
const nla = netlinkAttr;
const be32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const expr = (name: string, data: Buffer[]) =>
  nla(0x8001, Buffer.concat([nla(1, Buffer.from(`${name}\0`)), nla(0x8002, Buffer.concat(data))]));

test('patchModulus rewrites the numgen and jhash moduli that match, nothing else', () => {
  const exprs = Buffer.concat([
    expr('meta', [nla(1, be32(16)), nla(2, be32(1))]),
    expr('numgen', [nla(1, be32(1)), nla(2, be32(6)), nla(3, be32(0))]),
    expr('lookup', [nla(1, Buffer.from('s_slots\0')), nla(2, be32(1)), nla(3, be32(1))]),
    // a hash of another modulus stays, the one of modulus 6 changes; a cmp holding 6 stays
    expr('hash', [nla(1, be32(1)), nla(2, be32(1)), nla(3, be32(4)), nla(4, be32(4093)), nla(5, be32(7))]),
    expr('hash', [nla(1, be32(1)), nla(2, be32(1)), nla(3, be32(4)), nla(4, be32(6)), nla(5, be32(7))]),
    expr('cmp', [nla(1, be32(1)), nla(2, be32(0)), nla(0x8003, nla(1, be32(6)))]),
  ]);
  const p = patchModulus(exprs, 6, 10);
  assert.equal(p.count, 2);
  const diff = [...exprs].flatMap((b, i) => (b === p.expressions[i] ? [] : [i]));
  assert.equal(diff.length, 2, 'two bytes change (6 -> 10 in two big-endian u32s)');
  assert.ok(diff.every((i) => exprs[i] === 6 && p.expressions[i] === 10));
  assert.equal(patchModulus(exprs, 5, 10).count, 0);
  assert.throws(() => patchModulus(Buffer.from([0x40, 0, 1, 0]), 1, 2), /truncated/);
});

test('replies: acks and errors by sequence, dumped rules, generation, done', () => {
  const msg = (type: number, seq: number, body: Buffer) => {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(16 + body.length, 0);
    h.writeUInt16LE(type, 4);
    h.writeUInt32LE(seq, 8);
    return Buffer.concat([h, body]);
  };
  const err = (seq: number, e: number) => {
    const b = Buffer.alloc(20);
    b.writeInt32LE(-e, 0);
    return msg(2, seq, b);
  };
  const handle = Buffer.alloc(8);
  handle.writeBigUInt64BE(42n);
  const exprs = expr('numgen', [nla(2, be32(6))]);
  const rule = msg(
    (10 << 8) | 6,
    9,
    Buffer.concat([
      Buffer.from([2, 0, 0, 0]),
      nla(1, Buffer.from('keepvs\0')),
      nla(2, Buffer.from('s_x\0')),
      nla(3, handle),
      nla(0x8004, exprs),
    ]),
  );
  const gen = msg((10 << 8) | 15, 8, Buffer.concat([Buffer.from([0, 0, 0, 0]), nla(1, be32(77))]));
  const r = decodeReplies(Buffer.concat([err(5, 0), err(6, 2), rule, gen, msg(3, 9, Buffer.alloc(4))]));
  assert.deepEqual(r.slice(0, 2), [
    { seq: 5, error: 0 },
    { seq: 6, error: 2 },
  ]);
  assert.equal(r[2].rule?.handle, 42n);
  assert.equal(r[2].rule?.chain, 's_x');
  assert.deepEqual(r[2].rule?.expressions, exprs);
  assert.deepEqual(r[3], { seq: 8, genid: 77 });
  assert.deepEqual(r[4], { seq: 9, done: true });
  assert.throws(() => decodeReplies(Buffer.concat([err(5, 0)]).subarray(0, 30)), /truncated/);
  // the replace message carries the handle and the (patched) expressions back
  const m = replaceRuleMessage('ip', 'keepvs', 's_x', { handle: 42n, expressions: exprs }, 3);
  assert.equal(m.readUInt16LE(4), (10 << 8) | 6);
  assert.equal(m.readUInt16LE(6), 0x1 | 0x4 | 0x100);
  assert.ok(m.includes(handle));
  assert.ok(m.includes(exprs));
});

test('set dumps: keys, counters (one expression or a list), expiry; stats keys back to nft text', () => {
  const be64 = (n: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(n));
    return b;
  };
  const key = elemBytes({ kind: 'addr-proto-port', address: '198.18.1.11', protocol: 'udp', port: 53 });
  const counter = expr('counter', [nla(1, be64(300)), nla(2, be64(5))]);
  const el = (extra: Buffer[]) => nla(0x8001, Buffer.concat([nla(0x8001, nla(1, key)), ...extra]));
  const body = Buffer.concat([
    Buffer.from([2, 0, 0, 0]),
    nla(
      0x8003,
      Buffer.concat([el([nla(0x8007, counter.subarray(4))]), el([nla(0x800b, counter)]), el([nla(5, be64(1500))])]),
    ),
  ]);
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + body.length, 0);
  h.writeUInt16LE((10 << 8) | 12, 4);
  h.writeUInt32LE(4, 8);
  const [r] = decodeReplies(Buffer.concat([h, body]));
  assert.equal(r.elements?.length, 3);
  assert.deepEqual(r.elements?.[0].counter, { packets: 5, bytes: 300 });
  assert.deepEqual(r.elements?.[1].counter, { packets: 5, bytes: 300 });
  assert.equal(r.elements?.[2].expiresMs, 1500);
  assert.equal(statKeyText(r.elements?.[0].key as Buffer, 4), '198.18.1.11 . udp . 53');
  const six = elemBytes({ kind: 'addr-proto-port', address: '2001:db8::7', protocol: 'tcp', port: 8080 });
  assert.equal(statKeyText(six, 6), '2001:db8::7 . tcp . 8080');
  assert.equal(statKeyText(six, 4), null);
  assert.equal(statKeyText(Buffer.alloc(12), 4), null, 'protocol 0 is no stats key');
});
