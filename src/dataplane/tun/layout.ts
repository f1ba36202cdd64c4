/**
 * Byte layout of the TUN BPF maps (src/dataplane/bpf/tun_common.h): encoders for keys and values.
 * Pure; little-endian host words as the BPF program reads them (x86-64, arm64).
 */
import ipaddr from 'ipaddr.js';
import type { Family } from '../../config/model.js';

export const KV_HASH_SADDR = 1;
export const KV_HASH_SPORT = 2;
export const KV_HASH_DADDR = 4;
export const KV_NO_REAL = 0xffffffff;

export const SVC_KEY_SIZE = 20;
export const SVC_VAL_SIZE = 16;
export const SLOT_SIZE = 8;
export const REAL_SIZE = 48;
export const REAL_STATS_SIZE = 24;
export const VIP_KEY_SIZE = 20;

/** Capacities as compiled into tun_encap.bpf.c / tun_decap.bpf.c. */
export const MAX_SERVICES = 4096;
export const SLOT_CAPACITY = 1 << 20;
export const MAX_REALS = 16384;
export const MAX_VIPS = 1024;

/** kv_stats indexes */
export const ST = { encap: 0, noReal: 1, tooBig: 2, error: 3, decap: 4, notVip: 5, noDest: 6 } as const;
export const ST_COUNT = 8;

export const IPPROTO = { tcp: 6, udp: 17 } as const;

/** 16 bytes, network order; IPv4 in the first four. */
export function addressBytes(address: string): Uint8Array {
  const out = new Uint8Array(16);
  out.set(ipaddr.parse(address).toByteArray(), 0);
  return out;
}

export function familyOf(address: string): Family {
  return ipaddr.parse(address).kind() === 'ipv6' ? 6 : 4;
}

export function svcKey(family: Family, proto: number, port: number, address: string): Uint8Array {
  const b = new Uint8Array(SVC_KEY_SIZE);
  const v = new DataView(b.buffer);
  b[0] = family;
  b[1] = proto;
  v.setUint16(2, port, false);
  b.set(addressBytes(address), 4);
  return b;
}

export interface SvcVal {
  readonly base: number;
  readonly nslots: number;
  readonly flags: number;
  readonly prefix: number;
}

export function svcVal(s: SvcVal): Uint8Array {
  const b = new Uint8Array(SVC_VAL_SIZE);
  const v = new DataView(b.buffer);
  v.setUint32(0, s.base, true);
  v.setUint32(4, s.nslots, true);
  v.setUint32(8, s.flags, true);
  v.setUint32(12, s.prefix, true);
  return b;
}

/** kv_real.encap: keepalived's tun_type */
export const ENCAP = { ipip: 0, gue: 1, gre: 2 } as const;
export type TunType = keyof typeof ENCAP;

export interface RealVal {
  readonly daddr: string;
  readonly saddr: string;
  readonly ifindex: number;
  readonly family: Family;
  /** default ipip */
  readonly encap?: TunType;
  /** GUE destination port (tun_port) */
  readonly port?: number;
  /** changes whenever the index is given to another real server (pinned flows then reschedule) */
  readonly gen?: number;
  /** removed, expire_nodest_conn off: its pinned flows are dropped (KV_REAL_GONE) */
  readonly gone?: boolean;
}

export function realVal(r: RealVal): Uint8Array {
  const b = new Uint8Array(REAL_SIZE);
  const v = new DataView(b.buffer);
  b.set(addressBytes(r.daddr), 0);
  b.set(addressBytes(r.saddr), 16);
  v.setUint32(32, r.ifindex, true);
  b[36] = r.family;
  b[37] = ENCAP[r.encap ?? 'ipip'];
  v.setUint16(38, r.port ?? 0, false);
  v.setUint32(40, (r.gen ?? 0) >>> 0, true);
  v.setUint32(44, r.gone ? 1 : 0, true);
  return b;
}

export function u32Key(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/** kv_gue_ports key: a UDP port in network order */
export function portKey(port: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, port, false);
  return b;
}

export function vipKey(address: string): Uint8Array {
  const b = new Uint8Array(VIP_KEY_SIZE);
  new DataView(b.buffer).setUint32(0, familyOf(address), true);
  b.set(addressBytes(address), 4);
  return b;
}

/** Keys (u32 indexes) and kv_slot values for a run of slots, ready for a batch update. */
export function slotBatch(
  base: number,
  real: ArrayLike<number>,
  realSyn: ArrayLike<number>,
  indexes: readonly number[],
) {
  const keys = new Uint8Array(indexes.length * 4);
  const values = new Uint8Array(indexes.length * SLOT_SIZE);
  const kv = new DataView(keys.buffer);
  const vv = new DataView(values.buffer);
  indexes.forEach((i, n) => {
    kv.setUint32(n * 4, base + i, true);
    vv.setUint32(n * SLOT_SIZE, real[i] >>> 0, true);
    vv.setUint32(n * SLOT_SIZE + 4, realSyn[i] >>> 0, true);
  });
  return { keys, values, count: indexes.length };
}
