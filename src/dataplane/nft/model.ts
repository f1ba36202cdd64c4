/**
 * What the kernel plane installs: one entry per service with its destinations in IPVS list order
 * (head first) and what the edge found out (DR MACs and devices). Plain data, built by plane.ts from
 * TableOps, rendered by render.ts.
 */
import type { Family } from '../../config/model.js';
import type { ServiceKey, ServiceParams } from '../../lb/types.js';

/** keepvs's own tables; nothing else in the ruleset is touched (facts §9, kube-proxy's rule). */
export const TABLE = 'keepvs';

export type KernelMode = 'nat' | 'fullnat' | 'dr';

export interface KernelDest {
  readonly address: string;
  /** 0 = keep the client's destination port (fwmark and port-0 services) */
  readonly port: number;
  readonly weight: number;
  readonly lastWeight: number;
  readonly overloaded: boolean;
  readonly activeConns: number;
  readonly inactConns: number;
  /** lc, wlc: estimated seconds a connection to it lasts, when the counters tell (slots.ts) */
  readonly holdS?: number;
  /** persistence id (meta mark value while the rule runs), unique within the service, >= 1 */
  readonly mark: number;
  /** DR: the real server's MAC, once resolved */
  readonly mac?: string;
}

export interface KernelService {
  readonly id: string;
  readonly key: ServiceKey;
  readonly family: Family;
  readonly params: ServiceParams;
  readonly mode: KernelMode;
  readonly dests: readonly KernelDest[];
  /** FNAT: source addresses (local_address_group) */
  readonly localAddresses?: readonly string[];
  /** DR flow pinning, expire_nodest_conn off: the marks of removed real servers whose pinned flows are dropped */
  readonly goneMarks?: readonly number[];
  /** DR: where client packets arrive, where they leave towards the real servers, and that device's MAC */
  readonly dr?: { readonly ingress: string; readonly egress: string; readonly egressMac: string };
}

/** nft identifiers from service ids: `tcp:[2001:2::100]:80` -> `s_tcp__2001_2__100__80`. */
export function chainName(serviceId: string): string {
  return `s_${serviceId.replace(/[^A-Za-z0-9]/g, '_')}`;
}

/** Every name one service owns, so plane.ts can delete exactly those. */
export function serviceObjects(serviceId: string): {
  chain: string;
  slots: string;
  dest: string;
  persist: string;
  flows: string;
  dport: string;
  rev: string;
  gone: string;
} {
  const c = chainName(serviceId);
  return {
    chain: c,
    slots: `${c}_slots`,
    dest: `${c}_dest`,
    persist: `${c}_persist`,
    flows: `${c}_flows`,
    // UDP ops under NAT (render.ts opsKind): mark -> real server port, and the replies' rewrite chain
    dport: `${c}_dport`,
    rev: `${c}_rev`,
    // DR flow pinning: marks of removed real servers (their pinned flows dropped)
    gone: `${c}_gone`,
  };
}
