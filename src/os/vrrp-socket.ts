/**
 * Raw IPv4 VRRP sockets through koffi (libc socket/setsockopt/bind/sendto/read): IP protocol 112,
 * bound to the interface, joined to 224.0.0.18, TTL 255 and TOS 0xc0 as keepalived sends them
 * (RFC 5798 §5.1.1.3: TTL 255; the lab README lists the options this kernel needs). The kernel
 * builds the IP header on send; reads return the whole IP packet, so TTL checks are possible.
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
  requireLibc,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_SOCKET,
  watchReadable,
} from './libc.js';

const SO_BINDTODEVICE = 25;
const IPPROTO_IP = 0;
const IP_TOS = 1;
const IP_TTL = 2;
const IP_MULTICAST_IF = 32;
const IP_MULTICAST_TTL = 33;
const IP_MULTICAST_LOOP = 34;
const IP_ADD_MEMBERSHIP = 35;

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
    readonly sourceAddress: string,
    protocol: number,
    onPacket: (packet: Uint8Array) => void,
    multicastGroup = '224.0.0.18',
    /** send whole IP packets (AH: the ICV covers our own IP header) */
    headerIncluded = false,
  ) {
    const c = requireLibc();
    const fd = c.socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, protocol);
    if (fd < 0) throw new Error(`raw socket: errno ${errno()} (VRRP needs root or CAP_NET_RAW)`);
    this.fd = fd;
    const mreqn = Buffer.alloc(12);
    Buffer.from(addressBytes(multicastGroup)).copy(mreqn, 0);
    Buffer.from(addressBytes(sourceAddress)).copy(mreqn, 4);
    mreqn.writeInt32LE(ifindexOf(ifname), 8);
    const opts: [number, number, Buffer][] = [
      [SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`)],
      [IPPROTO_IP, IP_TOS, int(0xc0)],
      [IPPROTO_IP, IP_TTL, int(255)],
      [IPPROTO_IP, IP_MULTICAST_TTL, int(255)],
      [IPPROTO_IP, IP_MULTICAST_LOOP, int(0)],
      [IPPROTO_IP, IP_MULTICAST_IF, mreqn],
      [IPPROTO_IP, IP_ADD_MEMBERSHIP, mreqn],
      ...(headerIncluded ? ([[IPPROTO_IP, 3 /* IP_HDRINCL */, int(1)]] as [number, number, Buffer][]) : []),
    ];
    for (const [level, name, value] of opts) {
      if (c.setsockopt(fd, level, name, value, value.length) < 0) {
        c.close(fd);
        throw new Error(`setsockopt ${name} on ${ifname}: errno ${errno()}`);
      }
    }
    // no bind(): a raw socket bound to an address only receives packets sent to it, and adverts go
    // to 224.0.0.18. IP_MULTICAST_IF above (with the address) sets the multicast source address.
    this.handle = watchReadable(fd, () => {
      for (;;) {
        const n = Number(c.read(fd, this.buf, this.buf.length));
        if (n <= 0) break;
        onPacket(Uint8Array.from(this.buf.subarray(0, n)));
      }
    });
  }

  send(payload: Uint8Array, destination: string): boolean {
    const sa = sockaddrIn(destination);
    return requireLibc().sendto(this.fd, Buffer.from(payload), payload.length, 0, sa, sa.length) === payload.length;
  }

  close(): void {
    this.handle.close();
    requireLibc().close(this.fd);
  }
}

/** Gratuitous ARP (RFC 5227 §3 ARP announcement as keepalived sends it: a request with spa = tpa = VIP). */
export function sendGratuitousArp(ifname: string, vip: string, count: number): number {
  const c = requireLibc();
  const fd = c.socket(AF_PACKET, SOCK_RAW, ((ETH_P_ARP & 0xff) << 8) | (ETH_P_ARP >> 8));
  if (fd < 0) return 0;
  const frame = gratuitousArpFrame(macOf(ifname), vip);
  // struct sockaddr_ll
  const sll = Buffer.alloc(20);
  sll.writeUInt16LE(AF_PACKET, 0);
  sll.writeUInt16BE(ETH_P_ARP, 2);
  sll.writeInt32LE(ifindexOf(ifname), 4);
  sll[11] = 6;
  sll.fill(0xff, 12, 18);
  let sent = 0;
  for (let i = 0; i < count; i++) if (c.sendto(fd, frame, frame.length, 0, sll, sll.length) === frame.length) sent++;
  c.close(fd);
  return sent;
}

const IPPROTO_IPV6 = 41;
const IPV6_CHECKSUM = 7;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MULTICAST_IF = 17;
const IPV6_MULTICAST_HOPS = 18;
const IPV6_MULTICAST_LOOP = 19;
const IPV6_JOIN_GROUP = 20;
const IPV6_TCLASS = 67;

/** sockaddr_in6; the scope id only for link-scoped addresses (fe80::/10 unicast, ff02:: multicast). */
function sockaddrIn6(address: string, scopeId: number): Buffer {
  const a = address.toLowerCase();
  return sockaddrBytes(address, 0, a.startsWith('fe80') || a.startsWith('ff02') ? scopeId : 0);
}

/**
 * VRRPv3 over IPv6 (RFC 5798 §5.1.2): raw socket, protocol 112, joined to ff02::12, hop limit 255,
 * traffic class 0xc0, and the kernel computing and verifying the checksum (IPV6_CHECKSUM = 6).
 * recvfrom gives the payload and the source address; the hop limit is not checked here.
 */
export class Vrrp6Socket {
  private readonly fd: number;
  private readonly handle: { close(): void };
  private readonly buf = Buffer.alloc(4096);
  private readonly ifindex: number;

  constructor(
    readonly ifname: string,
    onPacket: (payload: Uint8Array, src: string) => void,
    group = 'ff02::12',
  ) {
    const c = requireLibc();
    const fd = c.socket(AF_INET6, SOCK_RAW | SOCK_NONBLOCK, 112);
    if (fd < 0) throw new Error(`raw IPv6 socket: errno ${errno()} (VRRP needs root or CAP_NET_RAW)`);
    this.fd = fd;
    this.ifindex = ifindexOf(ifname);
    const mreq = Buffer.alloc(20);
    Buffer.from(addressBytes(group)).copy(mreq, 0);
    mreq.writeUInt32LE(this.ifindex, 16);
    const opts: [number, number, Buffer][] = [
      [SOL_SOCKET, SO_BINDTODEVICE, Buffer.from(`${ifname}\0`)],
      [IPPROTO_IPV6, IPV6_CHECKSUM, int(6)],
      [IPPROTO_IPV6, IPV6_MULTICAST_HOPS, int(255)],
      [IPPROTO_IPV6, IPV6_UNICAST_HOPS, int(255)],
      [IPPROTO_IPV6, IPV6_MULTICAST_IF, int(this.ifindex)],
      [IPPROTO_IPV6, IPV6_MULTICAST_LOOP, int(0)],
      [IPPROTO_IPV6, IPV6_TCLASS, int(0xc0)],
      [IPPROTO_IPV6, IPV6_JOIN_GROUP, mreq],
    ];
    for (const [level, name, value] of opts) {
      if (c.setsockopt(fd, level, name, value, value.length) < 0) {
        c.close(fd);
        throw new Error(`setsockopt ${name} on ${ifname}: errno ${errno()}`);
      }
    }
    const from = Buffer.alloc(28);
    const fromLen = Buffer.alloc(4);
    this.handle = watchReadable(fd, () => {
      for (;;) {
        fromLen.writeUInt32LE(28);
        const n = Number(c.recvfrom(fd, this.buf, this.buf.length, 0, from, fromLen));
        if (n <= 0) break;
        onPacket(Uint8Array.from(this.buf.subarray(0, n)), addressFromBytes(from.subarray(8, 24)));
      }
    });
  }

  send(payload: Uint8Array, destination: string): boolean {
    const sa = sockaddrIn6(destination, this.ifindex);
    const b = Buffer.from(payload);
    // the kernel fills the checksum (IPV6_CHECKSUM)
    b[6] = 0;
    b[7] = 0;
    return requireLibc().sendto(this.fd, b, b.length, 0, sa, sa.length) === b.length;
  }

  close(): void {
    this.handle.close();
    requireLibc().close(this.fd);
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
