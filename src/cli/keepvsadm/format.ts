/**
 * ipvsadm's output formats, byte for byte (ipvsadm.c print_service_entry, print_title,
 * print_largenum, list_conn). Pure: snapshots and a name resolver in, text out.
 */

import type { ConnSnapshot, DestSnapshot, ServiceSnapshot, TableSnapshot } from '../../lb/types.js';
import { AF_INET, AF_INET6, addressBytes, hostText, prefixToNetmask } from '../../util/address.js';

/** keepvs reports the IPVS version its table follows (the kernel's IP_VS_VERSION_CODE). */
export const IPVS_VERSION = '1.2.1';

export type ListFormat = 'default' | 'stats' | 'rate' | 'thresholds' | 'persistent-conn';

export interface FormatOptions {
  readonly numeric: boolean;
  readonly exact: boolean;
  readonly format: ListFormat;
  /** name resolution for addresses and ports when not numeric */
  readonly names?: { host(address: string): string | undefined; port(port: number, proto: string): string | undefined };
}

const FORWARD: Record<string, string> = {
  masq: 'Masq',
  route: 'Route',
  tunnel: 'Tunnel',
  local: 'Local',
  fullnat: 'FullNat',
};
const pad = (s: string, n: number) => s.padEnd(n);
const rpad = (s: string | number, n: number) => String(s).padStart(n);

/** print_largenum: 8 significant columns with K/M/G/T suffixes above 10^8 (or exact). */
export function largeNum(n: number, exact: boolean): string {
  if (exact) return ` ${rpad(n, Math.max(8, String(n).length))}`;
  if (n < 1e8) return rpad(n, 9);
  if (n < 1e9) return `${rpad(Math.floor(n / 1e3), 8)}K`;
  if (n < 1e11) return `${rpad(Math.floor(n / 1e6), 8)}M`;
  if (n < 1e14) return `${rpad(Math.floor(n / 1e9), 8)}G`;
  return `${rpad(Math.floor(n / 1e12), 8)}T`;
}

function endpoint(address: string, port: number, family: number, proto: string, o: FormatOptions): string {
  const host = (!o.numeric && o.names?.host(address)) || hostText(address, family as 4 | 6);
  const p = (!o.numeric && o.names?.port(port, proto)) || String(port);
  return `${host}:${p}`;
}

export function serviceName(s: ServiceSnapshot, o: FormatOptions): string {
  if (s.key.kind === 'fwmark') return `FWM  ${s.key.fwmark}${s.key.family === 6 ? ' IPv6' : ''}`;
  const proto = s.key.protocol.toUpperCase();
  // ipvsadm truncates IPv4 service names to 33 columns when resolved
  const name = endpoint(s.key.address, s.key.port, s.key.family, s.key.protocol, o);
  return `${pad(proto, 4)} ${s.key.family === 4 ? name.slice(0, 33) : name}`;
}

function destName(s: ServiceSnapshot, d: DestSnapshot, o: FormatOptions): string {
  const proto = s.key.kind === 'addr' ? s.key.protocol : 'tcp';
  const name = endpoint(d.address, d.port, d.family, proto, o);
  return d.family === 4 ? name.slice(0, 28) : name;
}

function serviceFlags(s: ServiceSnapshot): string {
  let out = '';
  if (s.schedFlags.length) out += ` (${s.schedFlags.join(',')})`;
  if (s.persistentTimeout !== undefined) {
    out += ` persistent ${s.persistentTimeout}`;
    const len = s.persistentPrefixLen;
    if (s.key.family === 4 && len !== undefined && len !== 32) out += ` mask ${prefixToNetmask(len)}`;
    if (s.key.family === 6 && len !== undefined && len !== 128) out += ` mask ${len}`;
    if (s.pe) out += ` pe ${s.pe}`;
  }
  if (s.ops) out += ' ops';
  return out;
}

export function formatList(t: TableSnapshot, o: FormatOptions, only?: ServiceSnapshot): string {
  const lines: string[] = [`IP Virtual Server version ${IPVS_VERSION} (size=${t.connTableSize})`];
  switch (o.format) {
    case 'stats':
      lines.push(
        `${pad('Prot LocalAddress:Port', 33)} ${rpad('Conns', 8)} ${rpad('InPkts', 8)} ${rpad('OutPkts', 8)} ${rpad('InBytes', 8)} ${rpad('OutBytes', 8)}`,
      );
      lines.push('  -> RemoteAddress:Port');
      break;
    case 'rate':
      lines.push(
        `${pad('Prot LocalAddress:Port', 33)} ${rpad('CPS', 8)} ${rpad('InPPS', 8)} ${rpad('OutPPS', 8)} ${rpad('InBPS', 8)} ${rpad('OutBPS', 8)}`,
      );
      lines.push('  -> RemoteAddress:Port');
      break;
    case 'thresholds':
      lines.push('Prot LocalAddress:Port');
      lines.push('  -> RemoteAddress:Port           Uthreshold Lthreshold ActiveConn InActConn');
      break;
    case 'persistent-conn':
      lines.push('Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn');
      lines.push('  -> RemoteAddress:Port');
      break;
    default:
      lines.push('Prot LocalAddress:Port Scheduler Flags');
      lines.push('  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn');
  }
  for (const s of only ? [only] : t.services) {
    const name = serviceName(s, o);
    const st = s.stats;
    if (o.format === 'stats') {
      lines.push(
        pad(name, 33) +
          [st.conns, st.inPkts, st.outPkts, st.inBytes, st.outBytes].map((n) => largeNum(n, o.exact)).join(''),
      );
    } else if (o.format === 'rate') {
      const r = s.rates;
      lines.push(
        `${pad(name, 33)} ${rpad(r.cps, 8)} ${rpad(r.inPps, 8)} ${rpad(r.outPps, 8)}${largeNum(r.inBps, o.exact)}${largeNum(r.outBps, o.exact)}`,
      );
    } else lines.push(`${name} ${s.scheduler}${serviceFlags(s)}`);
    for (const d of s.dests) {
      const dn = destName(s, d, o);
      if (o.format === 'stats') {
        const ds = d.stats;
        lines.push(
          `  -> ${pad(dn, 28)}${[ds.conns, ds.inPkts, ds.outPkts, ds.inBytes, ds.outBytes].map((n) => largeNum(n, o.exact)).join('')}`,
        );
      } else if (o.format === 'rate') {
        const r = d.rates;
        lines.push(
          `  -> ${pad(dn, 28)} ${rpad(r.cps, 8)} ${rpad(r.inPps, 8)} ${rpad(r.outPps, 8)}${largeNum(r.inBps, o.exact)}${largeNum(r.outBps, o.exact)}`,
        );
      } else if (o.format === 'thresholds') {
        lines.push(
          `  -> ${pad(dn, 28)} ${pad(String(d.uThreshold), 10)} ${pad(String(d.lThreshold), 10)} ${pad(String(d.activeConns), 10)} ${pad(String(d.inactConns), 10)}`,
        );
      } else if (o.format === 'persistent-conn') {
        lines.push(
          `  -> ${pad(dn, 28)} ${pad(String(d.weight), 6)} ${pad(String(d.persistConns), 11)} ${pad(String(d.activeConns), 10)} ${pad(String(d.inactConns), 10)}`,
        );
      } else {
        lines.push(
          `  -> ${pad(dn, 28)} ${pad(FORWARD[d.forward], 7)} ${pad(String(d.weight), 6)} ${pad(String(d.activeConns), 10)} ${pad(String(d.inactConns), 10)}`,
        );
      }
    }
  }
  return `${lines.join('\n')}\n`;
}

/** ipvsadm -Lc: `/proc/net/ip_vs_conn` rendered with expire as MM:SS. */
export function formatConnections(conns: readonly ConnSnapshot[], o: FormatOptions): string {
  const lines = [
    'IPVS connection entries',
    `pro expire ${pad('state', 11)} ${pad('source', 18)} ${pad('virtual', 18)} destination`,
  ];
  for (const c of conns) {
    const secs = Math.ceil(c.expiresInMs / 1000);
    const expire = `${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
    const ep = (e: { address: string; port: number }) => endpoint(e.address, e.port, c.family, c.protocol, o);
    lines.push(
      `${pad(c.protocol.toUpperCase(), 3)} ${pad(expire, 6)} ${pad(c.state, 11)} ${pad(ep(c.client), 18)} ${pad(ep(c.virtual), 18)} ${ep(c.dest)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function formatTimeouts(t: TableSnapshot): string {
  return `Timeout (tcp tcpfin udp): ${t.timeouts.tcp} ${t.timeouts.tcpfin} ${t.timeouts.udp}\n`;
}

export function formatDaemons(t: TableSnapshot): string {
  return t.syncDaemons
    .map(
      (d) =>
        `${d.role} sync daemon (mcast=${d.mcastInterface}, syncid=${d.syncId}${d.maxlen ? `, maxlen=${d.maxlen}` : ''}${d.group ? `, group=${d.group}` : ''}${d.port ? `, port=${d.port}` : ''}${d.ttl ? `, ttl=${d.ttl}` : ''})\n`,
    )
    .join('');
}

/** ipvsadm -S: lines `-R` reads back. */
export function formatSave(t: TableSnapshot, o: FormatOptions): string {
  const out: string[] = [];
  for (const s of t.services) {
    let sel: string;
    if (s.key.kind === 'fwmark') sel = `-f ${s.key.fwmark}${s.key.family === 6 ? ' -6' : ''}`;
    else
      sel = `${s.key.protocol === 'udp' ? '-u' : '-t'} ${endpoint(s.key.address, s.key.port, s.key.family, s.key.protocol, o)}`;
    let line = `-A ${sel} -s ${s.scheduler}`;
    if (s.schedFlags.length) line += ` -b ${s.schedFlags.join(',')}`;
    if (s.persistentTimeout !== undefined) {
      line += ` -p ${s.persistentTimeout}`;
      const len = s.persistentPrefixLen;
      if (s.key.family === 4 && len !== undefined && len !== 32) line += ` -M ${prefixToNetmask(len)}`;
      if (s.key.family === 6 && len !== undefined && len !== 128) line += ` -M ${len}`;
      if (s.pe) line += ` --pe ${s.pe}`;
    }
    if (s.ops) line += ' -o';
    out.push(line);
    for (const d of s.dests) {
      const fwd =
        d.forward === 'masq' ? '-m' : d.forward === 'tunnel' ? '-i' : d.forward === 'fullnat' ? '--fullnat' : '-g';
      out.push(`-a ${sel} -r ${destName(s, d, o)} ${fwd} -w ${d.weight}`);
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

// --- ipvsadm's default order (libipvs ipvs_cmp_services / ipvs_cmp_dests, used unless --nosort) ---
// The comparators subtract unsigned 32-bit values into an int, so addresses more than 2^31 apart
// compare "backwards" (192.168.0.1 sorts before 10.0.0.1); ToInt32 (`| 0`) reproduces that.

const PROTO_NUMBER: Record<string, number> = { tcp: 6, udp: 17, sctp: 132 };

/** The address as unsigned 32-bit words in network order (one for IPv4, four for IPv6). */
function addressWords(address: string): number[] {
  const b = addressBytes(address);
  const out: number[] = [];
  for (let i = 0; i + 3 < b.length; i += 4)
    out.push(((b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3]) >>> 0);
  return out;
}

function cmpAddress(a: string, b: string): number {
  const wa = addressWords(a);
  const wb = addressWords(b);
  for (let i = 0; i < wa.length; i++) {
    const r = (wa[i] - wb[i]) | 0;
    if (r !== 0) return r;
  }
  return 0;
}

export function compareServices(a: ServiceSnapshot, b: ServiceSnapshot): number {
  const fw = (s: ServiceSnapshot) => (s.key.kind === 'fwmark' ? s.key.fwmark : 0);
  let r = (fw(a) - fw(b)) | 0;
  if (r !== 0) return r;
  r = (a.key.family === 6 ? AF_INET6 : AF_INET) - (b.key.family === 6 ? AF_INET6 : AF_INET);
  if (r !== 0 || a.key.kind !== 'addr' || b.key.kind !== 'addr') return r;
  r = (PROTO_NUMBER[a.key.protocol] ?? 0) - (PROTO_NUMBER[b.key.protocol] ?? 0);
  if (r !== 0) return r;
  r = cmpAddress(a.key.address, b.key.address);
  return r !== 0 ? r : a.key.port - b.key.port;
}

export function compareDests(a: DestSnapshot, b: DestSnapshot): number {
  const r = a.family === b.family ? cmpAddress(a.address, b.address) : a.family - b.family;
  return r !== 0 ? r : a.port - b.port;
}

/** The table in ipvsadm's listing order: services, and the real servers of each, sorted. */
export function sortedTable(t: TableSnapshot): TableSnapshot {
  return {
    ...t,
    services: [...t.services].sort(compareServices).map((s) => ({ ...s, dests: [...s.dests].sort(compareDests) })),
  };
}
