/**
 * Desired table from the config model plus health (keepalived's check_api/ipwrapper
 * semantics):
 * - one service per virtual_server, or per virtual_server_group entry (address ranges
 *   and CIDRs expanded to one service per address; fwmark entries);
 * - a real server that is down is removed, or kept with weight 0 when
 *   inhibit_on_failure is set; a dynamic weight (misc_dynamic, FILE_CHECK) replaces the
 *   configured one;
 * - quorum lost and a sorry_server configured: the live real servers are pulled and the
 *   sorry server installed (weight 1); quorum held: no sorry server (or weight 0 with
 *   sorry_server_inhibit).
 * Health is keyed by `virtualServerId(vs)` and `realServerId(rs)`, so a reload that keeps
 * a real server keeps its health.
 */
import ipaddr from 'ipaddr.js';
import type { Config, Family, LvsMethod, VirtualServer, VsgEntry } from '../config/model.js';
import { canonicalAddress, netmaskToPrefix } from '../util/address.js';
import { realServerDestId, realServerId, virtualServerId } from './ids.js';
import { DEFAULT_SCHEDULER, SCHED_FLAGS } from './sched/index.js';

export { realServerId, virtualServerId };

import {
  type DestParams,
  destId,
  type Endpoint,
  type ForwardMethod,
  type Protocol,
  type ServiceKey,
  type ServiceParams,
  type TableOp,
} from './types.js';

export interface RsHealth {
  readonly up: boolean;
  /** dynamic weight from a checker; replaces the configured weight */
  readonly weight?: number;
}

/**
 * The health policy's verdict for one virtual_server (check/policy.ts decides: retry, alpha,
 * quorum with hysteresis, sorry server, inhibit_on_failure). The table programs exactly this.
 */
export interface PoolVerdict {
  /** realServerDestId -> in the pool with this weight (0: inhibited); absent or not inPool: left out */
  readonly dests: Readonly<Record<string, { readonly inPool: boolean; readonly weight: number }>>;
  readonly sorry?: { readonly inPool: boolean; readonly weight: number };
}

export interface HealthInput {
  /**
   * virtualServerId -> the health policy's verdict. When present it is used as it is and the
   * fields below are not consulted: the policy alone decides.
   */
  readonly pool?: Readonly<Record<string, PoolVerdict>>;
  /**
   * Without a verdict (no health checking running: tests, `keepvs -t`), the configured defaults:
   * virtualServerId -> realServerId -> health. Absent: up, unless the RS or VS has `alpha`.
   */
  readonly realServers?: Readonly<Record<string, Readonly<Record<string, RsHealth>>>>;
  /** virtualServerId -> quorum held. Absent: sum of live weights >= quorum. */
  readonly quorum?: Readonly<Record<string, boolean>>;
}

export interface DesiredDest {
  readonly dest: Endpoint;
  readonly params: DestParams;
}

export interface DesiredService {
  readonly key: ServiceKey;
  readonly params: ServiceParams;
  readonly dests: readonly DesiredDest[];
  /** the virtual_server this service comes from */
  readonly virtualServer: string;
}

export interface DesiredTable {
  readonly services: readonly DesiredService[];
  /** problems found (e.g. an oversized range); never fatal */
  readonly diagnostics: readonly string[];
}

/** Largest address range expanded from one virtual_server_group entry. */
export const MAX_RANGE_EXPANSION = 65536;

export const FORWARD_OF: Readonly<Record<LvsMethod, ForwardMethod>> = {
  NAT: 'masq',
  DR: 'route',
  TUN: 'tunnel',
  FNAT: 'fullnat',
};

/** `persistence_granularity`: IPv4 netmask or IPv6 prefix length, as a prefix length. */
export function granularityToPrefix(text: string, family: Family): number | null {
  if (family === 4) return netmaskToPrefix(text);
  const n = Number(text.startsWith('/') ? text.slice(1) : text);
  return Number.isInteger(n) && n >= 1 && n <= 128 ? n : null;
}

interface ExpandedKey {
  readonly key: ServiceKey;
  /** port used for real servers configured with port 0 */
  readonly port: number;
}

function expandRange(e: Extract<VsgEntry, { kind: 'address' }>, diags: string[]): string[] {
  const first = canonicalAddress(e.address, e.family);
  const last = canonicalAddress(e.lastAddress, e.family);
  if (!first || !last) {
    diags.push(`virtual_server_group entry ${e.address}-${e.lastAddress}: invalid address`);
    return [];
  }
  const toBig = (a: string): bigint =>
    ipaddr
      .parse(a)
      .toByteArray()
      .reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
  const lo = toBig(first);
  const hi = toBig(last);
  if (hi < lo) {
    diags.push(`virtual_server_group entry ${first}-${last}: range ends before it starts`);
    return [];
  }
  if (hi - lo + 1n > BigInt(MAX_RANGE_EXPANSION)) {
    diags.push(`virtual_server_group entry ${first}-${last}: more than ${MAX_RANGE_EXPANSION} addresses, not expanded`);
    return [];
  }
  const bytes = e.family === 4 ? 4 : 16;
  const out: string[] = [];
  for (let v = lo; v <= hi; v++) {
    const arr: number[] = [];
    let x = v;
    for (let i = 0; i < bytes; i++) {
      arr.unshift(Number(x & 255n));
      x >>= 8n;
    }
    out.push(ipaddr.fromByteArray(arr).toString());
  }
  return out;
}

function serviceKeys(vs: VirtualServer, config: Pick<Config, 'virtualServerGroups'>, diags: string[]): ExpandedKey[] {
  const protocol = vs.protocol.toLowerCase() as Protocol;
  if (vs.key.kind === 'fwmark')
    return [{ key: { kind: 'fwmark', family: vs.key.family, fwmark: vs.key.fwmark }, port: 0 }];
  if (vs.key.kind === 'address') {
    const address = canonicalAddress(vs.key.address, vs.key.family);
    if (!address) {
      diags.push(`virtual_server ${vs.key.address}: invalid address`);
      return [];
    }
    return [{ key: { kind: 'addr', protocol, family: vs.key.family, address, port: vs.key.port }, port: vs.key.port }];
  }
  const name = vs.key.group;
  const group = config.virtualServerGroups.find((g) => g.name === name);
  if (!group) {
    diags.push(`virtual_server group ${name}: no such virtual_server_group`);
    return [];
  }
  const out: ExpandedKey[] = [];
  for (const e of group.entries) {
    if (e.kind === 'fwmark') out.push({ key: { kind: 'fwmark', family: e.family, fwmark: e.fwmark }, port: 0 });
    else
      for (const address of expandRange(e, diags))
        out.push({ key: { kind: 'addr', protocol, family: e.family, address, port: e.port }, port: e.port });
  }
  return out;
}

function serviceParams(vs: VirtualServer, family: Family, diags: string[]): ServiceParams {
  let persistentPrefixLen: number | undefined;
  if (vs.persistenceGranularity !== undefined) {
    const p = granularityToPrefix(vs.persistenceGranularity, family);
    if (p === null) diags.push(`${virtualServerId(vs)}: invalid persistence_granularity ${vs.persistenceGranularity}`);
    else persistentPrefixLen = p;
  }
  const schedFlags = vs.schedFlags.filter((f) => SCHED_FLAGS.includes(f));
  return {
    scheduler: vs.scheduler || DEFAULT_SCHEDULER,
    schedFlags,
    ops: vs.ops,
    ...(vs.persistenceTimeout !== undefined ? { persistentTimeout: vs.persistenceTimeout } : {}),
    ...(persistentPrefixLen !== undefined ? { persistentPrefixLen } : {}),
    ...(vs.persistenceEngine !== undefined ? { pe: vs.persistenceEngine } : {}),
    ...(vs.proxyProtocol ? { proxyProtocol: vs.proxyProtocol } : {}),
    ...(vs.flowPinning ? { flowPinTimeout: vs.flowPinning.timeoutS } : {}),
  };
}

function destParams(
  method: LvsMethod,
  tunnel: VirtualServer['tunnel'],
  weight: number,
  uThreshold = 0,
  lThreshold = 0,
): DestParams {
  const forward = FORWARD_OF[method];
  return {
    forward,
    weight,
    uThreshold,
    lThreshold,
    ...(forward === 'tunnel' && tunnel
      ? {
          tunType: tunnel.type,
          ...(tunnel.port !== undefined ? { tunPort: tunnel.port } : {}),
          ...(tunnel.csum !== undefined ? { tunFlags: [tunnel.csum] } : {}),
        }
      : {}),
  };
}

/**
 * keepalived's quorum decision (check/ipwrapper.c update_quorum_state): with the quorum
 * held it is lost when the live weight is 0 or below quorum - hysteresis; without it, it
 * is gained when the live weight is non-zero and at least quorum + hysteresis. With no
 * previous state the plain comparison applies.
 */
export function quorumHeld(
  vs: Pick<VirtualServer, 'quorum' | 'hysteresis'>,
  liveWeight: number,
  previous?: boolean,
): boolean {
  if (previous === undefined) return liveWeight > 0 && liveWeight >= vs.quorum;
  if (previous) return !(liveWeight === 0 || liveWeight < vs.quorum - vs.hysteresis);
  return liveWeight > 0 && liveWeight >= vs.quorum + vs.hysteresis;
}

/** Sum of the effective weights of the live real servers of `vs` under `health`. */
export function liveWeight(vs: VirtualServer, health: HealthInput = {}): number {
  const rsHealth = health.realServers?.[virtualServerId(vs)] ?? {};
  let sum = 0;
  for (const rs of vs.realServers) {
    const h = rsHealth[realServerId(rs)];
    const up = h ? h.up : !(rs.alpha || vs.alpha);
    if (up) sum += h?.weight ?? rs.weight;
  }
  return sum;
}

/** `lvs_timeouts` from global_defs as a set-timeouts op (0 = keep), or null when unset. */
export function timeoutsOp(globalDefs: Pick<Config['globalDefs'], 'lvsTimeouts'>): TableOp | null {
  const t = globalDefs.lvsTimeouts;
  if (!t || (t.tcp === undefined && t.tcpfin === undefined && t.udp === undefined)) return null;
  return { op: 'set-timeouts', tcp: t.tcp ?? 0, tcpfin: t.tcpfin ?? 0, udp: t.udp ?? 0 };
}

/** Computes the desired services and destinations. */
export function desiredTable(
  config: Pick<Config, 'virtualServers' | 'virtualServerGroups'>,
  health: HealthInput = {},
): DesiredTable {
  const diags: string[] = [];
  const services: DesiredService[] = [];
  const seen = new Set<string>();
  for (const vs of config.virtualServers) {
    const vsId = virtualServerId(vs);
    const verdict = health.pool?.[vsId];
    const rsHealth = health.realServers?.[vsId] ?? {};
    // live real servers and their effective weights
    const rsState = vs.realServers.map((rs) => {
      const h = rsHealth[realServerId(rs)];
      const up = h ? h.up : !(rs.alpha || vs.alpha);
      const weight = h?.weight ?? rs.weight;
      return { rs, up, weight };
    });
    const live = rsState.reduce((sum, s) => sum + (s.up ? s.weight : 0), 0);
    const held = health.quorum?.[vsId] ?? quorumHeld(vs, live);
    const useSorry = !held && vs.sorryServer !== undefined;
    for (const { key, port } of serviceKeys(vs, config, diags)) {
      const sid = JSON.stringify(key);
      if (seen.has(sid)) {
        diags.push(`${vsId}: service ${sid} defined more than once; first definition kept`);
        continue;
      }
      seen.add(sid);
      const dests = new Map<string, DesiredDest>();
      const put = (address: string, family: Family, rsPort: number, params: DestParams): void => {
        const canon = canonicalAddress(address, family);
        if (!canon) {
          diags.push(`${vsId}: invalid real server address ${address}`);
          return;
        }
        const dest = { address: canon, port: rsPort === 0 ? port : rsPort };
        dests.set(destId(dest, family), { dest, params });
      };
      if (verdict) {
        // the policy's verdict, programmed as it is
        for (const rs of vs.realServers) {
          const v = verdict.dests[realServerDestId(vs, rs)];
          if (v?.inPool)
            put(
              rs.address,
              rs.family,
              rs.port,
              destParams(rs.method, rs.tunnel ?? vs.tunnel, v.weight, rs.uthreshold, rs.lthreshold),
            );
        }
        const s = vs.sorryServer;
        if (s && verdict.sorry?.inPool)
          put(s.address, s.family, s.port, destParams(s.method ?? vs.method, vs.tunnel, verdict.sorry.weight));
      } else {
        for (const { rs, up, weight } of rsState) {
          const params = destParams(rs.method, rs.tunnel ?? vs.tunnel, weight, rs.uthreshold, rs.lthreshold);
          if (up) {
            if (!useSorry) put(rs.address, rs.family, rs.port, params);
          } else if (rs.inhibitOnFailure) put(rs.address, rs.family, rs.port, { ...params, weight: 0 });
        }
        if (vs.sorryServer && (useSorry || vs.sorryServerInhibit)) {
          const s = vs.sorryServer;
          put(s.address, s.family, s.port, destParams(s.method ?? vs.method, vs.tunnel, useSorry ? 1 : 0));
        }
      }
      services.push({
        key,
        params: serviceParams(vs, key.family, diags),
        dests: [...dests.values()],
        virtualServer: vsId,
      });
    }
  }
  return { services, diagnostics: diags };
}
