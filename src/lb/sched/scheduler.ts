/**
 * The scheduler contract. A scheduler sees the service's destinations in list order (IPVS keeps
 * them in insertion order) and picks one for a new connection, or null: "no destination" is a
 * result, not an exception.
 */
import type { Endpoint } from '../types.js';

/** The per-destination state schedulers read (IPVS struct ip_vs_dest, reduced). */
export interface SchedDest {
  readonly id: string;
  readonly address: string;
  readonly port: number;
  weight: number;
  /** last non-zero weight (mh keeps slots of quiesced servers) */
  lastWeight: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  overloaded: boolean;
  /** false once deleted (a scheduler may still hold it in a lookup table) */
  available: boolean;
}

export interface PickInput {
  readonly client: Endpoint;
  /** the virtual address the client connected to (dh hashes it) */
  readonly vip: Endpoint;
}

export interface Scheduler {
  readonly name: string;
  /** Called after destinations were added, removed or re-weighted. */
  update(dests: readonly SchedDest[]): void;
  pick(dests: readonly SchedDest[], input: PickInput): SchedDest | null;
}

export interface SchedulerOptions {
  readonly flags: readonly string[];
  /** deterministic randomness for twos in tests */
  readonly random?: () => number;
}

export type SchedulerFactory = (options: SchedulerOptions) => Scheduler;

/** ip_vs_dest_conn_overhead(): active connections weigh 256 times inactive ones (include/net/ip_vs.h). */
export function overhead(d: SchedDest): number {
  return d.activeConns * 256 + d.inactConns;
}

/** Eligible for a new connection: has weight and is not over its upper threshold. */
export function eligible(d: SchedDest): boolean {
  return d.available && d.weight > 0 && !d.overloaded;
}

/** 32-bit multiplicative hash of an address (ip_vs_sh/dh use hash_32 of the address). */
export function hashAddress(address: string, port = 0): number {
  let h = 2166136261;
  for (let i = 0; i < address.length; i++) {
    h ^= address.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  h ^= port;
  h = Math.imul(h, 0x9e3779b1);
  return h >>> 0;
}

export function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}
