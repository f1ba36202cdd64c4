/**
 * Sends crafted VRRP packets from inside a lab namespace (run by lab-crafted.test.ts through
 * `ip netns exec`). Reads JSON lines on stdin:
 *   {"family":4,"dev":"eth0","dst":"224.0.0.18","hex":"<whole IPv4 packet>","count":3}
 *   {"family":6,"dev":"eth0","dst":"ff02::12","hex":"<VRRP message>","hopLimit":64,"count":3}
 *   {"flood":{...one of the above...},"pps":50000,"ms":1000}
 * and prints how many were sent.
 */
import { createInterface } from 'node:readline';
import { AF_INET, encodeSockaddr, requireLibc, SOCK_RAW } from '../../src/os/libc.js';
import { Vrrp4Socket, Vrrp6Socket } from '../../src/os/vrrp-socket.js';

interface Send {
  family: 4 | 6;
  dev: string;
  dst: string;
  hex: string;
  count?: number;
  hopLimit?: number;
  protocol?: number;
}

const v4 = new Map<string, Vrrp4Socket>();
const v6 = new Map<string, Vrrp6Socket>();
function sender(s: Send): (b: Uint8Array) => boolean {
  if (s.family === 4) {
    const key = `${s.dev}/${s.protocol ?? 112}`;
    let sock = v4.get(key);
    if (!sock) {
      sock = new Vrrp4Socket(s.dev, s.protocol ?? 112, () => {});
      v4.set(key, sock);
    }
    const so = sock;
    return (b) => so.send(b, s.dst);
  }
  const key = `${s.dev}/${s.hopLimit ?? 255}`;
  let sock = v6.get(key);
  if (!sock) {
    sock = new Vrrp6Socket(s.dev, () => {}, 'ff02::12', s.hopLimit ?? 255);
    v6.set(key, sock);
  }
  const so = sock;
  return (b) => so.send(b, s.dst);
}

const IPPROTO_RAW = 255; // the packet carries its own IPv4 header (raw(7): IP_HDRINCL implied)
const SO_BINDTODEVICE = 25;

/** An IPv4 flood sender without per-packet allocation: one raw socket, one buffer, one address. */
function floodSender4(s: Send): (b: Buffer) => boolean {
  const c = requireLibc();
  const fd = c.socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
  if (fd < 0) throw new Error('raw socket: needs root');
  const dev = Buffer.from(`${s.dev}\0`);
  c.setsockopt(fd, 1, SO_BINDTODEVICE, dev, dev.length);
  const sa = encodeSockaddr(s.dst, 0);
  return (b) => c.sendto(fd, b, b.length, 0, sa, sa.length) === b.length;
}

const rl = createInterface({ input: process.stdin });
let pending = Promise.resolve();
rl.on('line', (line) => {
  if (!line.trim()) return;
  pending = pending.then(async () => {
    const m = JSON.parse(line) as Send & { flood?: Send; pps?: number; ms?: number };
    if (m.flood) {
      const send = m.flood.family === 4 ? floodSender4(m.flood) : sender(m.flood);
      const b = Buffer.from(m.flood.hex, 'hex');
      // paced by the clock, not by the timer: a late tick sends what the rate owes by then
      const pps = m.pps ?? 50000;
      const ms = m.ms ?? 1000;
      const t0 = performance.now();
      let n = 0;
      let tried = 0;
      for (;;) {
        const now = performance.now() - t0;
        if (now >= ms) break;
        const owed = Math.min(Math.round((pps * (now + 10)) / 1000), Math.round((pps * ms) / 1000));
        for (; tried < owed; tried++) if (send(b)) n++;
        await new Promise((r) => setTimeout(r, 1));
      }
      console.log(`sent ${n} in ${Math.round(performance.now() - t0)} ms`);
      return;
    }
    const send = sender(m);
    const b = Buffer.from(m.hex, 'hex');
    let n = 0;
    for (let k = 0; k < (m.count ?? 1); k++) if (send(b)) n++;
    console.log(`sent ${n}`);
  });
});
rl.on('close', () => {
  void pending.then(() => {
    for (const s of v4.values()) s.close();
    for (const s of v6.values()) s.close();
    process.exit(0);
  });
});
