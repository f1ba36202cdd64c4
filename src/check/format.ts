/** keepalived's FMT_RS / FMT_VS text and keepvs ids for virtual and real servers. */
import type { Family, LvsProtocol, RealServer, VirtualServer } from '../config/model.js';
import { destId, serviceId } from '../lb/types.js';

const proto = (p: LvsProtocol): 'tcp' | 'udp' | 'sctp' => p.toLowerCase() as 'tcp' | 'udp' | 'sctp';

/**
 * Service id (lb/types serviceId); a virtual_server_group VS is `group:<name>:<proto>`, as the lb
 * engine's virtualServerId (src/lb/desired.ts) names it.
 */
export function vsIdOf(vs: VirtualServer): string {
  const k = vs.key;
  if (k.kind === 'address')
    return serviceId({
      kind: 'addr',
      protocol: proto(vs.protocol),
      family: k.family,
      address: k.address,
      port: k.port,
    });
  if (k.kind === 'fwmark') return serviceId({ kind: 'fwmark', family: k.family, fwmark: k.fwmark });
  return `group:${k.group}:${proto(vs.protocol)}`;
}

/** Port a real server is reached on: its own, else the virtual server's (fwmark services keep 0). */
export function rsPort(vs: VirtualServer, rs: RealServer): number {
  if (rs.port !== 0) return rs.port;
  return vs.key.kind === 'address' ? vs.key.port : 0;
}

/** The lb engine's realServerId: the real server as configured (port 0 stays 0). */
export function rsConfiguredIdOf(rs: RealServer): string {
  return destId({ address: rs.address, port: rs.port }, rs.family);
}

export function rsIdOf(vs: VirtualServer, rs: RealServer): string {
  return destId({ address: rs.address, port: rsPort(vs, rs) }, rs.family);
}

/** `[198.18.1.11]:tcp:80`, as keepalived's inet_sockaddrtotrio. */
export function fmtTrio(address: string, protocol: string, port: number): string {
  return `[${address}]:${protocol}:${port}`;
}

export function fmtRs(vs: VirtualServer, rs: RealServer): string {
  return fmtTrio(rs.address, proto(vs.protocol), rsPort(vs, rs));
}

export function fmtVs(vs: VirtualServer): string {
  const k = vs.key;
  if (k.kind === 'address') return fmtTrio(k.address, proto(vs.protocol), k.port);
  if (k.kind === 'fwmark') return `FWM ${k.fwmark}`;
  return `[${k.group}]`;
}

export function fmtEndpoint(address: string, family: Family, protocol: string, port: number): string {
  void family;
  return fmtTrio(address, protocol, port);
}
