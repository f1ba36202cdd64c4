/**
 * The frames a new MASTER sends so neighbours learn where a VIP lives (pure: bytes only).
 * IPv4: a gratuitous ARP, sent as keepalived does (RFC 5227 §3 ARP announcement: a request with
 * sender and target protocol address = the VIP, to the broadcast address).
 * IPv6: an unsolicited Neighbor Advertisement (RFC 4861 §7.2.6) with the target link-layer
 * address option; the kernel adds the IPv6 header and checksum (raw ICMPv6 socket).
 */
import { addressBytes } from '../util/address.js';

export const ETH_P_ARP = 0x0806;
const ETH_P_IP = 0x0800;

/** The 42-byte Ethernet frame of a gratuitous ARP request for `vip` from `mac`. */
export function gratuitousArpFrame(mac: Uint8Array, vip: string): Buffer {
  const frame = Buffer.alloc(42);
  frame.fill(0xff, 0, 6); // broadcast destination
  Buffer.from(mac).copy(frame, 6);
  frame.writeUInt16BE(ETH_P_ARP, 12);
  frame.writeUInt16BE(1, 14); // hardware type Ethernet
  frame.writeUInt16BE(ETH_P_IP, 16);
  frame[18] = 6;
  frame[19] = 4;
  frame.writeUInt16BE(1, 20); // request
  Buffer.from(mac).copy(frame, 22);
  const ip = Buffer.from(addressBytes(vip));
  ip.copy(frame, 28); // sender protocol address
  frame.fill(0xff, 32, 38); // target hardware address (keepalived sends ff:ff:ff:ff:ff:ff)
  ip.copy(frame, 38); // target protocol address
  return frame;
}

/** The 32-byte ICMPv6 Neighbor Advertisement for `vip` with `mac` as target link-layer address. */
export function unsolicitedNaMessage(mac: Uint8Array, vip: string): Buffer {
  const na = Buffer.alloc(32);
  na[0] = 136; // Neighbor Advertisement
  na[4] = 0xa0; // R (a director forwards) and O (override), not S (unsolicited)
  Buffer.from(addressBytes(vip)).copy(na, 8);
  na[24] = 2; // target link-layer address option, 1 unit of 8 bytes
  na[25] = 1;
  Buffer.from(mac).copy(na, 26);
  return na;
}
