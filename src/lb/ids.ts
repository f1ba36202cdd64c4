/**
 * The one place that builds and parses the ids of services and real servers. The table, the
 * checks, notify, the daemon, the API, metrics and keepvsadm all speak these ids:
 * - service: `tcp:198.18.0.100:80`, `udp:[2001:db8::100]:53`, `fwm:7:4` (mark, family), and for a
 *   virtual_server_group block `group:<name>:<proto>` (its health is shared by its services);
 * - real server within a service: `198.18.1.11:80`, `[2001:db8::11]:80`.
 * Addresses are canonical text (ipaddr.js toString, IPv6 without brackets) inside the brackets.
 * Also keepalived's log text for the same objects (check_data.c format_vs / FMT_RS).
 */
import type { Family, LvsProtocol, RealServer, VirtualServer } from '../config/model.js';
import { canonicalAddress, hostText } from '../util/address.js';
import type { Endpoint, Protocol, ServiceKey } from './types.js';

/** Stable text id of a service, e.g. `tcp:198.18.0.100:80`, `udp:[2001:2::100]:53`, `fwm:7:4`. */
export function serviceId(key: ServiceKey): string {
  if (key.kind === 'fwmark') return `fwm:${key.fwmark}:${key.family}`;
  return `${key.protocol}:${hostText(key.address, key.family)}:${key.port}`;
}

/** Stable text id of a destination within a service, e.g. `198.18.1.11:80`, `[2001:db8::11]:80`. */
export function destId(dest: Endpoint, family: Family): string {
  return `${hostText(dest.address, family)}:${dest.port}`;
}

const protocolOf = (p: LvsProtocol): Protocol => p.toLowerCase() as Protocol;

/** Stable id of a virtual_server block: its service id, or `group:<name>:<proto>` for a group. */
export function virtualServerId(vs: VirtualServer): string {
  const k = vs.key;
  const protocol = protocolOf(vs.protocol);
  if (k.kind === 'group') return `group:${k.group}:${protocol}`;
  if (k.kind === 'fwmark') return serviceId({ kind: 'fwmark', family: k.family, fwmark: k.fwmark });
  return serviceId({ kind: 'addr', protocol, family: k.family, address: k.address, port: k.port });
}

/** Port a real server is reached on: its own, else the virtual server's (fwmark and groups keep 0). */
export function rsPort(vs: VirtualServer, rs: Pick<RealServer, 'port'>): number {
  if (rs.port !== 0) return rs.port;
  return vs.key.kind === 'address' ? vs.key.port : 0;
}

/**
 * Id of a real server within its virtual_server block, as configured (port 0 stays 0): how health
 * is keyed, so that one real_server of a group has one health for all the group's services.
 */
export function realServerId(rs: Pick<RealServer, 'address' | 'port' | 'family'>): string {
  return destId({ address: rs.address, port: rs.port }, rs.family);
}

/** Id of a real server as the table's destination of an address virtual_server (port filled in). */
export function realServerDestId(vs: VirtualServer, rs: Pick<RealServer, 'address' | 'port' | 'family'>): string {
  return destId({ address: rs.address, port: rsPort(vs, rs) }, rs.family);
}

export type ParsedServiceId =
  | {
      readonly kind: 'addr';
      readonly protocol: string;
      readonly family: Family;
      readonly address: string;
      readonly port: number;
    }
  | { readonly kind: 'fwmark'; readonly fwmark: number; readonly family: Family }
  | { readonly kind: 'group'; readonly group: string; readonly protocol: string };

/** Parses serviceId / virtualServerId text; null when it is neither. */
export function parseServiceId(id: string): ParsedServiceId | null {
  const fw = /^fwm:(\d+):([46])$/.exec(id);
  if (fw) return { kind: 'fwmark', fwmark: Number(fw[1]), family: Number(fw[2]) as Family };
  const grp = /^group:(.+):([a-z]+)$/.exec(id);
  if (grp) return { kind: 'group', group: grp[1], protocol: grp[2] };
  const m = /^(tcp|udp|sctp):(.+)$/.exec(id);
  const ep = m ? parseDestId(m[2]) : null;
  if (!m || !ep) return null;
  return { kind: 'addr', protocol: m[1], ...ep };
}

/** Parses destId text (`198.18.1.11:80`, `[2001:db8::11]:80`); null when it is not one. */
export function parseDestId(id: string): { address: string; port: number; family: Family } | null {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(id);
  const port = m ? Number(m[3]) : -1;
  if (!m || port > 65535) return null;
  const [address, family]: [string, Family] = m[1] !== undefined ? [m[1], 6] : [m[2], 4];
  return canonicalAddress(address, family) === null ? null : { address, port, family };
}

/** `[198.18.1.11]:tcp:80`, as keepalived's inet_sockaddrtotrio (both families in brackets). */
export function formatTrio(address: string, protocol: string, port: number): string {
  return `[${address}]:${protocol}:${port}`;
}

/** check_data.c format_rs (FMT_RS): the real server with the virtual server's protocol. */
export function formatRealServer(vs: VirtualServer, rs: Pick<RealServer, 'address' | 'port'>): string {
  return formatTrio(rs.address, protocolOf(vs.protocol), rsPort(vs, rs));
}

/** check_data.c format_vs (FMT_VS): `[ADDR]:proto:PORT`, `FWM N`, or `[GROUP]:0` for a group. */
export function formatVirtualServer(vs: VirtualServer): string {
  const k = vs.key;
  if (k.kind === 'fwmark') return `FWM ${k.fwmark}`;
  if (k.kind === 'group') return `[${k.group}]:0`;
  return formatTrio(k.address, protocolOf(vs.protocol), k.port);
}
