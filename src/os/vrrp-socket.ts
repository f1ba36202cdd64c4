/**
 * Raw VRRP sockets through libc (src/os/libc.ts): IP protocol 112 (51 for AH), bound to the
 * interface, joined to the VRRP group.
 *
 * IPv4: the driver builds the IP header (IP_HDRINCL): the source is exactly the address the v3
 * checksum was computed with (a secondary unicast_src_ip included), TTL 255, TOS 0xc0 as
 * keepalived sends them. Reads return the whole IP packet, so TTL and destination are checked.
 * IPv6: recvmsg's control data gives the hop limit and the destination (IPV6_RECVHOPLIMIT,
 * IPV6_RECVPKTINFO); sends carry IPV6_PKTINFO so that adverts leave from unicast_src_ip (or the
 * link-local address), never from a VIP the kernel would pick; the kernel computes and verifies
 * the checksum against the real addresses (IPV6_CHECKSUM 6).
 */
import { readFileSync } from 'node:fs';
import { ETH_P_ARP, gratuitousArpFrame, unsolicitedNaMessage } from '../codec/announce.js';
import { addressBytes, addressFromBytes, sockaddrBytes } from '../util/address.js';
import {
  AF_INET,
  AF_INET6,
  AF_PACKET,
  errno,
  intOption as int,
  type Libc,
  type NativeBuffer,
  NONBLOCK_CLOEXEC,
  nativeBuffer,
  requireLibc,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_SOCKET,
  watchReadable,
} from './libc.js';

const SO_BINDTODEVICE = 25;
const IPPROTO_IP = 0;
const IP_HDRINCL = 3;
const IP_MULTICAST_IF = 32;
const IP_MULTICAST_LOOP = 34;
const IP_ADD_MEMBERSHIP = 35;
/** a flood must not starve the timers: at most this many packets per wake-up (the poll fires again) */
const READS_PER_WAKEUP = 64;

function setOptions(fd: number, ifname: string, opts: [number, number, Buffer][]): void {
  const c = requireLibc();
  for (const [level, name, value] of opts) {
    if (c.setsockopt(fd, level, name, value, value.length) < 0) {
      const e = errno();
      c.close(fd);
      throw new Error(`setsockopt ${name} on ${ifname}: errno ${e}`);
    }
  }
}

export function ifindexOf(ifname: string): number {
  return Number(readFileSync(`/sys/class/net/${ifname}/ifindex`, 'utf8'));
}

export function macOf(ifname: string): Uint8Array {
  return Uint8Array.from(
    readFileSync(`/sys/class/net/${ifname}/address`, 'utf8')
      .trim()
      .split(':')
      .map((h) => Number.parseInt(h, 16)),
  );
}

const sockaddrIn = (address: string): Buffer => sockaddrBytes(address, 0);

export class Vrrp4Socket {
  private readonly fd: number;
  private readonly handle: { close(): void };
  private readonly buf = Buffer.alloc(4096);

  constructor(
    readonly ifname: string,
    protocol: number,
    onPacket: (packet: Uint8Array) => void,
    multicastGroup = '224.0.0.18',
  ) {
    const c = requireLibc();
    const fd = c.socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, protocol);
    if (fd < 0) throw new Error(`raw socket: errno ${errno()} (VRRP needs root or CAP_NET_RAW)`);
    this.fd = fd;
    const mreqn = Buffer.alloc(12);
    Buffer.from(addressBytes(multicastGroup)).copy(mreqn, 0);
    mreqn.writeInt32LE(ifindexOf(ifname), 8);
    setOptions(fd, ifname, [
      [SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`)],
      [IPPROTO_IP, IP_HDRINCL, int(1)],
      [IPPROTO_IP, IP_MULTICAST_LOOP, int(0)],
      [IPPROTO_IP, IP_MULTICAST_IF, mreqn],
      [IPPROTO_IP, IP_ADD_MEMBERSHIP, mreqn],
    ]);
    // no bind(): a raw IPv4 socket bound to an address receives only packets sent to it
    this.handle = watchReadable(fd, () => {
      for (let k = 0; k < READS_PER_WAKEUP; k++) {
        const n = Number(c.read(fd, this.buf, this.buf.length));
        if (n <= 0) break;
        onPacket(Uint8Array.from(this.buf.subarray(0, n)));
      }
    });
  }

  /** `packet` is a whole IPv4 packet; the kernel fills in the header checksum. */
  send(packet: Uint8Array, destination: string): boolean {
    const sa = sockaddrIn(destination);
    return requireLibc().sendto(this.fd, Buffer.from(packet), packet.length, 0, sa, sa.length) === packet.length;
  }

  close(): void {
    this.handle.close();
    requireLibc().close(this.fd);
  }
}

/** What the ARP announcements need from libc (a test passes a recorder). */
export type PacketLibc = Pick<Libc, 'socket' | 'sendto' | 'close'>;

/**
 * Gratuitous ARP (RFC 5227 §3 ARP announcement as keepalived sends it: a request with spa = tpa =
 * VIP), `count` frames per call. One packet socket serves every interface (the ifindex is in each
 * frame's address) for the sender's life, as keepalived opens its garp socket once
 * (vrrp_arp.c gratuitous_arp_init): closing a packet socket waits for an RCU grace period
 * (packet_release, synchronize_net; 5-25 ms here), during which the VRRP worker's loop stood
 * still and the next VIP's announcement waited.
 */
export class GratuitousArpSender {
  private fd = -1;

  /** libc is looked up at the first burst (none is needed until a takeover) */
  constructor(private readonly libc?: PacketLibc) {}

  send(ifname: string, vip: string, count: number): number {
    const c = this.libc ?? requireLibc();
    // kept open: not inherited by the scripts keepvs runs, and never blocking the worker
    if (this.fd < 0)
      this.fd = c.socket(AF_PACKET, SOCK_RAW | NONBLOCK_CLOEXEC, ((ETH_P_ARP & 0xff) << 8) | (ETH_P_ARP >> 8));
    if (this.fd < 0) return 0;
    const frame = gratuitousArpFrame(macOf(ifname), vip);
    // struct sockaddr_ll
    const sll = Buffer.alloc(20);
    sll.writeUInt16LE(AF_PACKET, 0);
    sll.writeUInt16BE(ETH_P_ARP, 2);
    sll.writeInt32LE(ifindexOf(ifname), 4);
    sll[11] = 6;
    sll.fill(0xff, 12, 18);
    let sent = 0;
    for (let i = 0; i < count; i++)
      if (c.sendto(this.fd, frame, frame.length, 0, sll, sll.length) === frame.length) sent++;
    return sent;
  }

  close(): void {
    if (this.fd < 0) return;
    (this.libc ?? requireLibc()).close(this.fd);
    this.fd = -1;
  }
}

const IPPROTO_IPV6 = 41;
const IPV6_CHECKSUM = 7;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const IPV6_JOIN_GROUP = 20;
const IPV6_RECVPKTINFO = 49;
const IPV6_PKTINFO = 50;
const IPV6_RECVHOPLIMIT = 51;
const IPV6_HOPLIMIT = 52;
const IPV6_TCLASS = 67;
const MSG_DONTWAIT = 0x40;

/** sockaddr_in6; the scope id only for link-scoped addresses (fe80::/10 unicast, ff02:: multicast). */
function sockaddrIn6(address: string, scopeId: number): Buffer {
  const a = address.toLowerCase();
  return sockaddrBytes(address, 0, a.startsWith('fe80') || a.startsWith('ff02') ? scopeId : 0);
}

/** struct msghdr with one iovec (LP64 layout), its buffers outside the JS heap (stable pointers). */
class MsgBuffers {
  readonly data: NativeBuffer;
  readonly ctrl: NativeBuffer;
  readonly name = nativeBuffer(28);
  private readonly iov = nativeBuffer(16);
  readonly msg = Buffer.alloc(56);

  constructor(dataSize: number, ctrlSize: number) {
    this.data = nativeBuffer(dataSize);
    this.ctrl = nativeBuffer(ctrlSize);
  }

  prepare(dataLen: number, ctrlLen: number): Buffer {
    const iov = Buffer.from(this.iov.bytes.buffer, this.iov.bytes.byteOffset, 16);
    iov.writeBigUInt64LE(this.data.address, 0);
    iov.writeBigUInt64LE(BigInt(dataLen), 8);
    const m = this.msg;
    m.fill(0);
    m.writeBigUInt64LE(this.name.address, 0);
    m.writeUInt32LE(28, 8);
    m.writeBigUInt64LE(this.iov.address, 16);
    m.writeBigUInt64LE(1n, 24);
    if (ctrlLen) m.writeBigUInt64LE(this.ctrl.address, 32);
    m.writeBigUInt64LE(BigInt(ctrlLen), 40);
    return m;
  }

  free(): void {
    for (const b of [this.data, this.ctrl, this.name, this.iov]) b.free();
  }
}

/**
 * VRRPv3 over IPv6 (RFC 5798 §5.1.2): raw socket, protocol 112, joined to ff02::12, hop limit 255,
 * traffic class 0xc0, and the kernel computing and verifying the checksum (IPV6_CHECKSUM = 6).
 */
export class Vrrp6Socket {
  private readonly fd: number;
  private readonly handle: { close(): void };
  private readonly ifindex: number;
  private readonly rx = new MsgBuffers(4096, 256);
  private readonly tx = new MsgBuffers(4096, 64);

  constructor(
    readonly ifname: string,
    onPacket: (payload: Uint8Array, src: string, dst: string, hopLimit: number) => void,
    group = 'ff02::12',
    /** 255 (RFC 5798 §5.1.2.3); tests send other values to check that receivers drop them */
    hopLimit = 255,
  ) {
    const c = requireLibc();
    const fd = c.socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK, 112);
    if (fd < 0) throw new Error(`raw IPv6 socket: errno ${errno()} (VRRP needs root or CAP_NET_RAW)`);
    this.fd = fd;
    this.ifindex = ifindexOf(ifname);
    const mreq = Buffer.alloc(20);
    Buffer.from(addressBytes(group)).copy(mreq, 0);
    mreq.writeUInt32LE(this.ifindex, 16);
    setOptions(fd, ifname, [
      [SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`)],
      [IPPROTO_IPV6, IPV6_CHECKSUM, int(6)],
      [IPPROTO_IPV6, IPV6_MULTICAST_HOPS, int(hopLimit)],
      [IPPROTO_IPV6, IPV6_UNICAST_HOPS, int(hopLimit)],
      [IPPROTO_IPV6, IPV6_MULTICAST_IF, int(this.ifindex)],
      [IPPROTO_IPV6, IPV6_MULTICAST_LOOP, int(0)],
      [IPPROTO_IPV6, IPV6_TCLASS, int(0xc0)],
      [IPPROTO_IPV6, IPV6_RECVHOPLIMIT, int(1)],
      [IPPROTO_IPV6, IPV6_RECVPKTINFO, int(1)],
      [IPPROTO_IPV6, IPV6_JOIN_GROUP, mreq],
    ]);
    const rx = this.rx;
    this.handle = watchReadable(fd, () => {
      for (let k = 0; k < READS_PER_WAKEUP; k++) {
        const msg = rx.prepare(rx.data.bytes.length, rx.ctrl.bytes.length);
        const n = Number(c.recvmsg(fd, msg, MSG_DONTWAIT));
        if (n < 0) break;
        const payload = Uint8Array.from(rx.data.bytes.subarray(0, n));
        const src = addressFromBytes(rx.name.bytes.subarray(8, 24));
        const ctl = Buffer.from(rx.ctrl.bytes.buffer, rx.ctrl.bytes.byteOffset, Number(msg.readBigUInt64LE(40)));
        let hop = -1;
        let dst: string | undefined;
        // struct cmsghdr { size_t len; int level; int type; } then the data, 8-byte aligned
        for (let o = 0; o + 16 <= ctl.length; ) {
          const len = Number(ctl.readBigUInt64LE(o));
          if (len < 16) break;
          const level = ctl.readInt32LE(o + 8);
          const type = ctl.readInt32LE(o + 12);
          if (level === IPPROTO_IPV6 && type === IPV6_HOPLIMIT) hop = ctl.readInt32LE(o + 16);
          if (level === IPPROTO_IPV6 && type === IPV6_PKTINFO) dst = addressFromBytes(ctl.subarray(o + 16, o + 32));
          o += (len + 7) & ~7;
        }
        // without the control data nothing can be checked: such a packet is not taken
        if (hop < 0 || !dst) continue;
        onPacket(payload, src, dst, hop);
      }
    });
  }

  /** `src` goes in IPV6_PKTINFO: the advert's source, and the checksum's (the kernel computes it) */
  send(payload: Uint8Array, destination: string, src?: string): boolean {
    const tx = this.tx;
    const n = payload.length;
    if (n > tx.data.bytes.length) return false;
    tx.data.bytes.set(payload);
    // the kernel fills the checksum (IPV6_CHECKSUM)
    tx.data.bytes[6] = 0;
    tx.data.bytes[7] = 0;
    tx.name.bytes.set(sockaddrIn6(destination, this.ifindex));
    let ctrlLen = 0;
    if (src) {
      // cmsghdr (16) + in6_pktinfo { in6_addr; int ifindex } (20), padded to 40
      const c = Buffer.alloc(40);
      c.writeBigUInt64LE(36n, 0);
      c.writeInt32LE(IPPROTO_IPV6, 8);
      c.writeInt32LE(IPV6_PKTINFO, 12);
      Buffer.from(addressBytes(src)).copy(c, 16);
      c.writeUInt32LE(this.ifindex, 32);
      tx.ctrl.bytes.set(c);
      ctrlLen = 40;
    }
    return requireLibc().sendmsg(this.fd, tx.prepare(n, ctrlLen), 0) === n;
  }

  close(): void {
    this.handle.close();
    requireLibc().close(this.fd);
    this.rx.free();
    this.tx.free();
  }
}

/** Unsolicited neighbour advertisements for an IPv6 VIP (RFC 4861 §7.2.6), from the VIP to ff02::1. */
export function sendUnsolicitedNa(ifname: string, vip: string, count: number): number {
  const c = requireLibc();
  const fd = c.socket(AF_INET6, SOCK_RAW, 58);
  if (fd < 0) return 0;
  const ifindex = ifindexOf(ifname);
  c.setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`), ifname.length + 1);
  c.setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, int(255), 4);
  c.setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, int(ifindex), 4);
  // the VIP as source address
  const src = sockaddrIn6(vip, ifindex);
  c.bind(fd, src, src.length);
  const na = unsolicitedNaMessage(macOf(ifname), vip);
  const dst = sockaddrIn6('ff02::1', ifindex);
  let sent = 0;
  for (let i = 0; i < count; i++) if (c.sendto(fd, na, na.length, 0, dst, dst.length) === na.length) sent++;
  c.close(fd);
  return sent;
}
