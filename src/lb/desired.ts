/**
 * Desired table state from the configuration plus health (keepalived's ipwrapper.c semantics):
 * a real server that is down is removed, or kept with weight 0 under inhibit_on_failure; when a
 * service loses quorum and has a sorry server, the real servers are pulled and the sorry server
 * installed (sorry_server_inhibit keeps them at weight 0 instead).
 */
import ipaddr from 'ipaddr.js';
import type { Config, LvsMethod, RealServer, VirtualServer } from '../config/model.js';
import type { DestParams, Endpoint, ForwardMethod, ServiceKey, ServiceParams } from './types.js';
import { destId, serviceId } from './types.js';

export interface DestHealth {
  readonly up: boolean;
  /** dynamic weight from MISC_CHECK misc_dynamic / FILE_CHECK, replacing the configured one */
  readonly weight?: number;
}

/** Health as the checkers see it; missing entries count as up (no checker = always up). */
export interface HealthView {
  /** key: `${serviceId}|${destId}` */
  readonly dests: ReadonlyMap<string, DestHealth>;
  /** key: serviceId; missing = quorum up */
  readonly quorumUp: ReadonlyMap<string, boolean>;
}

export const EMPTY_HEALTH: HealthView = { dests: new Map(), quorumUp: new Map() };

export const healthKey = (service: string, dest: string): string => `${service}|${dest}`;

export interface DesiredDest {
  readonly dest: Endpoint;
  readonly params: DestParams;
}

export interface DesiredService {
  readonly key: ServiceKey;
  readonly params: ServiceParams;
  /** by destId */
  readonly dests: ReadonlyMap<string, DesiredDest>;
}

/** by serviceId */
export type DesiredTable = ReadonlyMap<string, DesiredService>;

const METHOD: Record<LvsMethod, ForwardMethod> = { NAT: 'masq', DR: 'route', TUN: 'tunnel' };
/** Cap on addresses one group range may expand to. */
const MAX_RANGE = 65536;

export function maskToPrefix(mask: string, family: 4 | 6): number | undefined {
  if (/^\d+$/.test(mask)) return Number(mask);
  if (family !== 4 || !ipaddr.IPv4.isValidFourPartDecimal(mask)) return undefined;
  return ipaddr.IPv4.parse(mask).prefixLengthFromSubnetMask() ?? undefined;
}

function serviceParams(vs: VirtualServer, family: 4 | 6): ServiceParams {
  const prefix = vs.persistenceGranularity !== undefined ? maskToPrefix(vs.persistenceGranularity, family) : undefined;
  return {
    scheduler: vs.scheduler,
    schedFlags: vs.schedFlags,
    ...(vs.persistenceTimeout !== undefined ? { persistentTimeout: vs.persistenceTimeout } : {}),
    ...(vs.persistenceTimeout !== undefined && prefix !== undefined ? { persistentPrefixLen: prefix } : {}),
    ops: vs.ops,
    ...(vs.persistenceEngine ? { pe: vs.persistenceEngine } : {}),
  };
}

function* rangeAddresses(first: string, last: string): Generator<string> {
  const a = ipaddr.parse(first).toByteArray();
  const b = ipaddr.parse(last).toByteArray();
  const toBig = (x: number[]) => x.reduce((acc, v) => (acc << 8n) | BigInt(v), 0n);
  const lo = toBig(a);
  const hi = toBig(b);
  for (let v = lo, n = 0; v <= hi && n < MAX_RANGE; v++, n++) {
    const bytes: number[] = [];
    let x = v;
    for (let i = 0; i < a.length; i++) {
      bytes.unshift(Number(x & 0xffn));
      x >>= 8n;
    }
    yield ipaddr.fromByteArray(bytes).toString();
  }
}

/** The IPVS service keys one virtual_server stands for (a group expands to all its entries). */
export function serviceKeysOf(vs: VirtualServer, config: Config): ServiceKey[] {
  const protocol = vs.protocol === 'UDP' ? 'udp' : 'tcp';
  const k = vs.key;
  if (k.kind === 'address') return [{ kind: 'addr', protocol, family: k.family, address: k.address, port: k.port }];
  if (k.kind === 'fwmark') return [{ kind: 'fwmark', family: k.family, fwmark: k.fwmark }];
  const group = config.virtualServerGroups.find((g) => g.name === k.group);
  const out: ServiceKey[] = [];
  for (const e of group?.entries ?? []) {
    if (e.kind === 'fwmark') out.push({ kind: 'fwmark', family: e.family, fwmark: e.fwmark });
    else
      for (const a of rangeAddresses(e.address, e.lastAddress))
        out.push({ kind: 'addr', protocol, family: e.family, address: a, port: e.port });
  }
  return out;
}

function destParams(rs: RealServer, weight: number): DestParams {
  return {
    forward: METHOD[rs.method],
    weight,
    uThreshold: rs.uthreshold,
    lThreshold: rs.lthreshold,
    ...(rs.tunnel ? { tunType: rs.tunnel.type } : {}),
    ...(rs.tunnel?.port !== undefined ? { tunPort: rs.tunnel.port } : {}),
    ...(rs.tunnel?.csum ? { tunFlags: [rs.tunnel.csum] } : {}),
  };
}

export function desiredTable(config: Config, health: HealthView = EMPTY_HEALTH): DesiredTable {
  const out = new Map<string, DesiredService>();
  for (const vs of config.virtualServers) {
    for (const key of serviceKeysOf(vs, config)) {
      const sid = serviceId(key);
      const dests = new Map<string, DesiredDest>();
      const quorumUp = health.quorumUp.get(sid) ?? true;
      const useSorry = !quorumUp && vs.sorryServer !== undefined;
      for (const rs of vs.realServers) {
        const port = rs.port || (key.kind === 'addr' ? key.port : 0);
        const dest = { address: rs.address, port };
        const did = destId(dest, rs.family);
        const h = health.dests.get(healthKey(sid, did)) ?? { up: !rs.alpha };
        const weight = h.weight ?? rs.weight;
        if (useSorry) {
          if (vs.sorryServerInhibit) dests.set(did, { dest, params: destParams(rs, 0) });
          continue;
        }
        if (h.up) dests.set(did, { dest, params: destParams(rs, weight) });
        else if (rs.inhibitOnFailure) dests.set(did, { dest, params: destParams(rs, 0) });
      }
      if (useSorry && vs.sorryServer) {
        const s = vs.sorryServer;
        const dest = { address: s.address, port: s.port || (key.kind === 'addr' ? key.port : 0) };
        dests.set(destId(dest, s.family), {
          dest,
          params: { forward: METHOD[s.method ?? vs.method], weight: 1, uThreshold: 0, lThreshold: 0 },
        });
      }
      out.set(sid, { key, params: serviceParams(vs, key.family), dests });
    }
  }
  return out;
}
