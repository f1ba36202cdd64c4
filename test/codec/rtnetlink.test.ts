import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeAck, encodeAddressRequest } from '../../src/codec/rtnetlink.js';

// iproute2 6.1's requests, captured with `strace -e trace=sendmsg -e write=all ip ...` (ifindex 3,
// sequence 0x6b0f1bdb): keepvs must send the kernel what `ip addr` sends.
const SEQ = 0x6b0f1bdb;
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const IP = {
  add32: hex('28000000 14000506 db1b0f6b 00000000 02200000 03000000 08000200 c6120064 08000100 c6120064'),
  addFull: hex(
    '3c000000 14000506 db1b0f6b 00000000 021800fd 03000000 08000200 c6120065 08000400 c61200ff 0b000300 64303a76 69700000 08000100 c6120065',
  ),
  add6: hex(
    '40000000 14000506 db1b0f6b 00000000 0a400200 03000000 14000200 20010002 00000000 00000000 00000100 14000100 20010002 00000000 00000000 00000100',
  ),
  del32: hex('28000000 15000500 db1b0f6b 00000000 02200000 03000000 08000200 c6120064 08000100 c6120064'),
};

test('address requests are byte for byte what `ip addr add/del` sends', () => {
  const base = { ifindex: 3, seq: SEQ } as const;
  // ip -4 addr add 198.18.0.100/32 dev d0
  assert.deepEqual(
    encodeAddressRequest({ ...base, op: 'add', family: 4, address: '198.18.0.100', prefixLen: 32 }),
    IP.add32,
  );
  // ip -4 addr add 198.18.0.101/24 dev d0 brd 198.18.0.255 scope link label d0:vip
  assert.deepEqual(
    encodeAddressRequest({
      ...base,
      op: 'add',
      family: 4,
      address: '198.18.0.101',
      prefixLen: 24,
      brd: '198.18.0.255',
      scope: 'link',
      label: 'd0:vip',
    }),
    IP.addFull,
  );
  // ip -6 addr add 2001:2::100/64 dev d0 nodad
  assert.deepEqual(
    encodeAddressRequest({ ...base, op: 'add', family: 6, address: '2001:2::100', prefixLen: 64 }),
    IP.add6,
  );
  // ip -4 addr del 198.18.0.100/32 dev d0
  assert.deepEqual(
    encodeAddressRequest({ ...base, op: 'del', family: 4, address: '198.18.0.100', prefixLen: 32 }),
    IP.del32,
  );
});

test('requests the kernel would refuse are not built', () => {
  const r = { op: 'add', ifindex: 3, seq: 1, prefixLen: 32 } as const;
  assert.throws(() => encodeAddressRequest({ ...r, family: 4, address: '2001:2::1' }), /not an IPv4 address/);
  assert.throws(() => encodeAddressRequest({ ...r, family: 4, address: '198.18.0.1', prefixLen: 33 }), /prefix length/);
  assert.throws(() => encodeAddressRequest({ ...r, family: 4, address: '198.18.0.1', label: 'x'.repeat(16) }), /label/);
  assert.throws(
    () => encodeAddressRequest({ ...r, family: 6, address: '2001:2::1', prefixLen: 64, brd: '198.18.0.255' }),
    /broadcast/,
  );
  // loopback addresses get host scope, as ip gives them
  assert.equal(encodeAddressRequest({ ...r, family: 4, address: '127.0.0.5', prefixLen: 8 })[19], 254);
});

test('acknowledgements: 0 when done, the errno when refused, null for other messages or bad bytes', () => {
  const ack = (seq: number, err: number) => {
    const b = Buffer.alloc(36);
    b.writeUInt32LE(36, 0);
    b.writeUInt16LE(2, 4); // NLMSG_ERROR
    b.writeUInt32LE(seq, 8);
    b.writeInt32LE(err, 16);
    return b;
  };
  assert.equal(decodeAck(ack(7, 0), 7), 0);
  assert.equal(decodeAck(ack(7, -17), 7), 17); // EEXIST
  assert.equal(decodeAck(ack(6, 0), 7), null);
  assert.equal(decodeAck(Buffer.concat([ack(6, -1), ack(7, -19)]), 7), 19);
  const truncated = ack(7, 0);
  truncated.writeUInt32LE(400, 0);
  assert.equal(decodeAck(truncated, 7), null);
  assert.equal(decodeAck(Buffer.alloc(3), 7), null);
});
