/**
 * Route lookups through iproute2 (`ip -j route get ADDR`): which interface and source address the
 * kernel would use towards an address, and interface MTUs from sysfs.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import ipaddr from 'ipaddr.js';

export interface RouteInfo {
  readonly ifname: string;
  readonly ifindex: number;
  readonly mtu: number;
  readonly source: string;
}

export function interfaceMtu(ifname: string): number {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(ifname)) throw new Error(`bad interface name '${ifname}'`);
  return Number(readFileSync(`/sys/class/net/${ifname}/mtu`, 'utf8'));
}

export function routeGet(address: string): Promise<RouteInfo> {
  if (!ipaddr.isValid(address)) return Promise.reject(new Error(`not an address: ${address}`));
  const v6 = ipaddr.parse(address).kind() === 'ipv6';
  return new Promise((resolve, reject) => {
    execFile('ip', ['-j', v6 ? '-6' : '-4', 'route', 'get', address], { timeout: 5000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error((stderr || err.message).trim()));
        return;
      }
      try {
        const r = (JSON.parse(stdout) as { dev?: string; prefsrc?: string; type?: string }[])[0];
        if (!r?.dev || !r.prefsrc) throw new Error(`no usable route (${stdout.trim()})`);
        if (r.type === 'local' || r.dev === 'lo') throw new Error('the address is local to this host');
        const ifindex = Number(readFileSync(`/sys/class/net/${r.dev}/ifindex`, 'utf8'));
        resolve({ ifname: r.dev, ifindex, mtu: interfaceMtu(r.dev), source: r.prefsrc });
      } catch (e) {
        reject(e instanceof Error ? e : new Error(String(e)));
      }
    });
  });
}
