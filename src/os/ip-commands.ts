/**
 * The `ip` commands VRRP and the static_* blocks run: addresses, routes, rules and the VMAC
 * macvlan links. One argv per entry, never through a shell; each call reports the commands that
 * failed so that the caller can log them with the entry's file:line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { IpAddressEntry, RouteEntry, RuleEntry } from '../config/model.js';
import type { ProcessRunner } from '../util/ports.js';

/** What src/vrrp/ needs from the host's address and routing tables. */
export interface IpPort {
  /** `dev` is used for entries that name none (virtual_ipaddress defaults to the instance's interface) */
  addresses(op: 'add' | 'del', entries: readonly IpAddressEntry[], dev?: string): Promise<string[]>;
  routes(op: 'add' | 'del', entries: readonly RouteEntry[]): Promise<string[]>;
  rules(op: 'add' | 'del', entries: readonly RuleEntry[]): Promise<string[]>;
  /** use_vmac: a macvlan (bridge mode) with the VRRP virtual MAC on `parent` */
  vmac(op: 'add' | 'del', name: string, parent: string, mac: string): Promise<string[]>;
}

export function addressArgv(op: 'add' | 'del', a: IpAddressEntry, dev: string): string[] {
  const argv = ['ip', a.family === 6 ? '-6' : '-4', 'addr', op, `${a.address}/${a.prefixLen}`, 'dev', dev];
  if (op === 'add') {
    // IPv6 VIPs skip duplicate address detection, so they are usable at once (keepalived: nodad)
    if (a.family === 6) argv.push('nodad');
    if (a.brd) argv.push('brd', a.brd);
    if (a.scope) argv.push('scope', a.scope);
    if (a.label) argv.push('label', a.label);
  }
  return argv;
}

/** /proc/sys/net/ipv4/conf/IF/NAME: the old value, or undefined when it cannot be read or written */
function setSysctl(ifname: string, name: string, value: string): string | undefined {
  if (!/^[\w.-]+$/.test(ifname)) return undefined;
  const path = `/proc/sys/net/ipv4/conf/${ifname}/${name}`;
  try {
    const old = readFileSync(path, 'utf8').trim();
    writeFileSync(path, value);
    return old;
  } catch {
    return undefined;
  }
}

export class IpCommands implements IpPort {
  /** parent interface sysctls changed for VMACs, to restore when the last VMAC on it goes */
  private readonly saved = new Map<string, { users: Set<string>; values: [string, string][] }>();

  constructor(private readonly runner: ProcessRunner) {}

  private async run(argv: string[], okCodes: readonly number[] = [0]): Promise<string | undefined> {
    const res = await this.runner.run(argv, { timeoutMs: 5000, captureBytes: 0 });
    if (res.exitCode !== null && okCodes.includes(res.exitCode)) return undefined;
    return `${argv.join(' ')} failed (${res.spawnError ?? (res.timedOut ? 'timed out' : `status ${res.exitCode ?? res.signal}`)})`;
  }

  /** the entries run concurrently: 50 VIPs must not cost 50 process round trips in a row */
  private async all(argvs: string[][], okCodes?: readonly number[]): Promise<string[]> {
    const res = await Promise.all(argvs.map((a) => this.run(a, okCodes)));
    return res.filter((r): r is string => r !== undefined);
  }

  async addresses(op: 'add' | 'del', entries: readonly IpAddressEntry[], dev?: string): Promise<string[]> {
    const argvs: string[][] = [];
    const missing: string[] = [];
    for (const a of entries) {
      const d = a.dev ?? dev;
      if (!d) missing.push(`${a.address} has no dev (${a.loc.file}:${a.loc.line}); not applied`);
      else argvs.push(addressArgv(op, a, d));
    }
    // `ip addr add` of an address already there exits 2: it is there, which is what was asked;
    // a delete of an absent address is not worth a log line either
    const failed = await this.all(argvs, op === 'add' ? [0, 2] : [0, 1, 2]);
    return op === 'add' ? [...missing, ...failed] : [];
  }

  async routes(op: 'add' | 'del', entries: readonly RouteEntry[]): Promise<string[]> {
    const failed = await this.all(
      entries.map((e) => ['ip', e.family === 6 ? '-6' : '-4', 'route', op === 'add' ? 'replace' : 'del', ...e.args]),
      op === 'add' ? [0] : [0, 1, 2],
    );
    return op === 'add' ? failed : [];
  }

  async rules(op: 'add' | 'del', entries: readonly RuleEntry[]): Promise<string[]> {
    const failed = await this.all(
      entries.map((e) => ['ip', e.family === 6 ? '-6' : '-4', 'rule', op, ...e.args]),
      op === 'add' ? [0] : [0, 1, 2],
    );
    return op === 'add' ? failed : [];
  }

  async vmac(op: 'add' | 'del', name: string, parent: string, mac: string): Promise<string[]> {
    if (op === 'del') {
      await this.run(['ip', 'link', 'del', name], [0, 1, 2]);
      const sv = this.saved.get(parent);
      if (sv?.users.delete(name) && sv.users.size === 0) {
        for (const [k, v] of sv.values) setSysctl(parent, k, v);
        this.saved.delete(parent);
      }
      return [];
    }
    // as keepalived: the parent stops answering ARP for addresses that live on the VMAC, so that
    // hosts learn the virtual MAC (arp_ignore 1: only for addresses on the receiving interface)
    let sv = this.saved.get(parent);
    if (!sv) {
      const values: [string, string][] = [];
      for (const [k, v] of [
        ['arp_ignore', '1'],
        ['arp_filter', '1'],
      ] as const) {
        const old = setSysctl(parent, k, v);
        if (old !== undefined) values.push([k, old]);
      }
      sv = { users: new Set(), values };
      this.saved.set(parent, sv);
    }
    sv.users.add(name);
    // keepalived's VMAC: a macvlan in bridge mode carrying 00-00-5E-00-01-VRID; addrgenmode must be
    // set after creation (given in `ip link add` the kernel refuses it)
    const steps = [
      ['ip', 'link', 'add', 'link', parent, 'name', name, 'address', mac, 'type', 'macvlan', 'mode', 'bridge'],
      ['ip', 'link', 'set', 'dev', name, 'addrgenmode', 'random'],
      ['ip', 'link', 'set', 'dev', name, 'up'],
    ];
    const out: string[] = [];
    for (const [k, argv] of steps.entries()) {
      // an existing link (a crash left it) is reused
      const e = await this.run(argv, k === 0 ? [0, 2] : [0]);
      if (e) out.push(e);
    }
    return out;
  }
}
