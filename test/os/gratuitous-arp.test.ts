/**
 * Gratuitous ARP on a takeover: one packet socket serves every VIP and every burst. Closing an
 * AF_PACKET socket waits for an RCU grace period (5-25 ms measured here), which blocked the VRRP
 * worker between one VIP's burst and the next: in the director-pair lab the back gateway's
 * announcement left 20 ms after the VIP's, and the real servers' answers in between went to the
 * dead master. Uses `lo`'s sysfs entries (MAC and ifindex) and a recording libc: nothing is sent.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AF_PACKET } from '../../src/os/libc.js';
import { GratuitousArpSender, type PacketLibc } from '../../src/os/vrrp-socket.js';

function recorder() {
  const calls: string[] = [];
  let next = 40;
  const libc: PacketLibc = {
    socket: (domain: number) => {
      calls.push(`socket ${domain === AF_PACKET ? 'packet' : domain}`);
      return next++;
    },
    sendto: (fd: number, _buf: Buffer, len: number, _f: number, addr: Buffer) => {
      calls.push(`sendto ${fd} ifindex ${addr.readInt32LE(4)}`);
      return len;
    },
    close: (fd: number) => {
      calls.push(`close ${fd}`);
      return 0;
    },
  };
  return { libc, calls };
}

test('gratuitous ARP: one packet socket for every VIP and burst, closed only with the sender', () => {
  const { libc, calls } = recorder();
  const garp = new GratuitousArpSender(libc);
  assert.equal(garp.send('lo', '198.18.0.100', 3), 3);
  assert.equal(garp.send('lo', '198.18.1.254', 2), 2);
  assert.equal(garp.send('lo', '198.18.1.250', 1), 1);
  assert.deepEqual(
    calls.filter((c) => !c.startsWith('sendto')),
    ['socket packet'],
    'no socket closed (an RCU wait each) between announcements',
  );
  assert.equal(calls.filter((c) => c === 'sendto 40 ifindex 1').length, 6);
  garp.close();
  assert.equal(calls.at(-1), 'close 40');
});

test('gratuitous ARP: a socket that cannot be opened is tried again at the next burst', () => {
  const { libc, calls } = recorder();
  let fail = true;
  const socket = libc.socket;
  libc.socket = (d: number, t: number, p: number) => (fail ? -1 : socket(d, t, p));
  const garp = new GratuitousArpSender(libc);
  assert.equal(garp.send('lo', '198.18.0.100', 3), 0);
  fail = false;
  assert.equal(garp.send('lo', '198.18.0.100', 3), 3);
  garp.close();
  assert.deepEqual(calls.at(-1), 'close 40');
});
