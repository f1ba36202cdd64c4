/**
 * The `ip` commands VRRP and the static_* blocks run: addresses, routes, rules and the VMAC
 * macvlan links. One argv per entry, never through a shell; each call reports the commands that
 * failed so that the caller can log them with the entry's file:line.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { IpAddressEntry, RouteEntry, RuleEntry } from '../config/model.js';
import type { ProcessRunner } from '../util/ports.js';
import type { NetlinkAddresses } from './netlink-address.js';

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
  // with a peer, the prefix length belongs to the peer (ip-address(8))
  const local = a.peer ? [a.address, 'peer', `${a.peer}/${a.prefixLen}`] : [`${a.address}/${a.prefixLen}`];
  const argv = ['ip', a.family === 6 ? '-6' : '-4', 'addr', op, ...local, 'dev', dev];
  if (op === 'add') {
    // IPv6 VIPs skip duplicate address detection, so they are usable at once (keepalived: nodad,
    // unless the entry says -nodad)
    if (a.family === 6 && !a.flags.includes('-nodad')) argv.push('nodad');
    if (a.brd) argv.push('brd', a.brd);
    if (a.scope) argv.push('scope', a.scope);
    if (a.label) argv.push('label', a.label);
    argv.push(...a.flags.filter((f) => f !== '-nodad' && f !== 'nodad'));
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

  /** `netlink`: addresses change over rtnetlink (no process per VIP); without it, through `ip` */
  constructor(
    private readonly runner: ProcessRunner,
    private readonly netlink: NetlinkAddresses | null = null,
  ) {}

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
    const failed: string[] = [];
    for (const a of entries) {
      const d = a.dev ?? dev;
      if (!d) failed.push(`${a.address} has no dev (${a.loc.file}:${a.loc.line}); not applied`);
      else {
        const argv = addressArgv(op, a, d);
        const e = this.viaNetlink(op, a, d);
        if (e === null) argvs.push(argv);
        else if (e !== true) failed.push(`${argv.join(' ')} failed (${e})`);
      }
    }
    // `ip addr add` of an address already there exits 2: it is there, which is what was asked;
    // a delete of an absent address is not worth a log line either
    failed.push(...(await this.all(argvs, op === 'add' ? [0, 2] : [0, 1, 2])));
    return op === 'add' ? failed : [];
  }

  /** true when done over rtnetlink, an error text when the kernel refused, null to run `ip` instead */
  private viaNetlink(op: 'add' | 'del', a: IpAddressEntry, dev: string): true | string | null {
    if (!this.netlink) return null;
    // `brd +` / `brd -` are ip's to compute, and peers and flags its words: leave them to it
    if ((a.brd !== undefined && !/^[\d.]+$/.test(a.brd)) || a.peer || a.flags.length > 0) return null;
    const r = this.netlink.change({
      op,
      family: a.family,
      address: a.address,
      prefixLen: a.prefixLen,
      dev,
      ...(op === 'add' && a.brd !== undefined ? { brd: a.brd } : {}),
      ...(op === 'add' && a.scope !== undefined ? { scope: a.scope } : {}),
      ...(op === 'add' && a.label !== undefined ? { label: a.label } : {}),
    });
    if (r.ok) return true;
    // as the `ip` exit codes accepted above: present on add, absent on delete
    if (op === 'add' && r.error === 'EEXIST') return true;
    if (op === 'del') return true;
    if (r.error.startsWith('no reply')) return null;
    return `netlink: ${r.error}`;
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
