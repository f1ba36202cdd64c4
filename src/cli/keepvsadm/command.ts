/** Turns a parsed keepvsadm command into table operations (address and name resolution included). */
import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';
import type { Family } from '../../config/model.js';
import type { DestParams, Endpoint, ServiceKey, ServiceParams, TableOp } from '../../lb/types.js';
import { maskTextToPrefix } from '../../util/address.js';
import type { Command } from './parse.js';

let services: Map<string, number> | undefined;

/** /etc/services lookups for port names (ipvsadm uses getservbyname). */
export function portByName(name: string, proto: string): number | undefined {
  if (!services) {
    services = new Map();
    try {
      for (const line of readFileSync('/etc/services', 'utf8').split('\n')) {
        const m = /^([\w-]+)\s+(\d+)\/(\w+)(.*)$/.exec(line.replace(/#.*/, ''));
        if (!m) continue;
        for (const n of [m[1], ...m[4].trim().split(/\s+/).filter(Boolean)]) services.set(`${n}/${m[3]}`, Number(m[2]));
      }
    } catch {
      // no services database: numeric ports only
    }
  }
  return services.get(`${name}/${proto}`);
}

/** `host[:port]`, `[v6]:port`; host names and service names are resolved. */
export async function parseEndpoint(
  text: string,
  proto: string,
  defaultPort: number,
): Promise<{ address: string; port: number; family: Family } | string> {
  let host = text;
  let port: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(.+))?$/.exec(text);
  if (v6) {
    host = v6[1];
    port = v6[2];
  } else if ((text.match(/:/g) ?? []).length === 1) {
    [host, port] = text.split(':');
  }
  let portNum = defaultPort;
  if (port !== undefined) {
    const n = /^\d+$/.test(port) ? Number(port) : portByName(port, proto);
    if (n === undefined || n > 65535) return 'illegal port number specified';
    portNum = n;
  }
  let address = host;
  if (!ipaddr.isValid(host)) {
    try {
      address = (await lookup(host)).address;
    } catch {
      return 'illegal virtual server address[:port] specified';
    }
  }
  const parsed = ipaddr.process(address);
  return { address: parsed.toString(), port: portNum, family: parsed.kind() === 'ipv6' ? 6 : 4 };
}

export async function serviceKeyOf(c: Command): Promise<ServiceKey | string> {
  const s = c.service!;
  if (s.kind === 'fwmark') return { kind: 'fwmark', fwmark: Number(s.value), family: c.ipv6 ? 6 : 4 };
  const e = await parseEndpoint(s.value, s.kind, 0);
  if (typeof e === 'string') return e;
  return { kind: 'addr', protocol: s.kind, family: e.family, address: e.address, port: e.port };
}

export async function opsFor(c: Command): Promise<TableOp[] | string> {
  if (c.cmd === 'clear') return [{ op: 'clear' }];
  if (c.cmd === 'set')
    return [{ op: 'set-timeouts', tcp: c.timeouts![0], tcpfin: c.timeouts![1], udp: c.timeouts![2] }];
  if (c.cmd === 'zero') {
    if (!c.service) return [{ op: 'zero' }];
    const key = await serviceKeyOf(c);
    return typeof key === 'string' ? key : [{ op: 'zero', key }];
  }
  const key = await serviceKeyOf(c);
  if (typeof key === 'string') return key;
  if (c.cmd === 'add-service' || c.cmd === 'edit-service') {
    let prefix: number | undefined;
    if (c.netmask !== undefined) {
      prefix = maskTextToPrefix(c.netmask, key.family) ?? undefined;
      if (prefix === undefined) return 'illegal netmask specified';
    }
    const params: ServiceParams = {
      scheduler: c.scheduler ?? 'wlc',
      schedFlags: c.schedFlags ?? [],
      ...(c.persistent !== undefined ? { persistentTimeout: c.persistent } : {}),
      ...(c.persistent !== undefined && prefix !== undefined ? { persistentPrefixLen: prefix } : {}),
      ops: c.ops,
      ...(c.pe ? { pe: c.pe } : {}),
    };
    return [{ op: c.cmd, key, params }];
  }
  if (c.cmd === 'del-service') return [{ op: 'del-service', key }];
  const proto = key.kind === 'addr' ? key.protocol : 'tcp';
  const rs = await parseEndpoint(c.realServer!, proto, key.kind === 'addr' ? key.port : 0);
  if (typeof rs === 'string') return rs.replace('virtual server', 'real server');
  const dest: Endpoint = { address: rs.address, port: rs.port };
  if (c.cmd === 'del-server') return [{ op: 'del-dest', key, dest }];
  const params: DestParams = {
    forward: c.forward ?? 'route',
    weight: c.weight ?? 1,
    uThreshold: c.uThreshold ?? 0,
    lThreshold: c.lThreshold ?? 0,
  };
  return [{ op: c.cmd === 'add-server' ? 'add-dest' : 'edit-dest', key, dest, params }];
}
