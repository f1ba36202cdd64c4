import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gratuitousArpFrame, unsolicitedNaMessage } from '../../src/codec/announce.js';

const mac = Uint8Array.from([0x02, 0x00, 0x5e, 0x10, 0x20, 0x30]);

test('gratuitous ARP: broadcast request with sender and target protocol address = the VIP (RFC 5227 §3)', () => {
  const f = gratuitousArpFrame(mac, '198.18.0.100');
  assert.equal(f.length, 42);
  assert.deepEqual([...f.subarray(0, 6)], [255, 255, 255, 255, 255, 255]);
  assert.deepEqual([...f.subarray(6, 12)], [...mac]);
  assert.equal(f.readUInt16BE(12), 0x0806);
  assert.equal(f.readUInt16BE(14), 1); // Ethernet
  assert.equal(f.readUInt16BE(16), 0x0800); // IPv4
  assert.deepEqual([f[18], f[19]], [6, 4]);
  assert.equal(f.readUInt16BE(20), 1); // request
  assert.deepEqual([...f.subarray(22, 28)], [...mac]);
  assert.deepEqual([...f.subarray(28, 32)], [198, 18, 0, 100]);
  assert.deepEqual([...f.subarray(32, 38)], [255, 255, 255, 255, 255, 255]);
  assert.deepEqual([...f.subarray(38, 42)], [198, 18, 0, 100]);
});

test('unsolicited NA: type 136, R and O set, S clear, target = VIP, target link-layer option (RFC 4861 §4.4, §7.2.6)', () => {
  const na = unsolicitedNaMessage(mac, '2001:db8::100');
  assert.equal(na.length, 32);
  assert.equal(na[0], 136);
  assert.equal(na[1], 0);
  assert.equal(na[4] & 0x80, 0x80, 'R');
  assert.equal(na[4] & 0x40, 0, 'not S');
  assert.equal(na[4] & 0x20, 0x20, 'O');
  assert.deepEqual([...na.subarray(8, 24)], [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00]);
  assert.deepEqual([na[24], na[25]], [2, 1]);
  assert.deepEqual([...na.subarray(26, 32)], [...mac]);
});
