/**
 * `keepvs realserver start|stop|status`: what an LVS-DR/TUN real server needs, as the classic
 * realserver.sh did it: each VIP on `lo` (/32, /128), ARP kept off the VIPs (arp_ignore=1,
 * arp_announce=2 on all and lo), and with --tun the decapsulation of tunnelled packets (the tc-BPF
 * stand-in for tunl0) with reverse-path filtering loosened where it would drop them.
 * `start` is idempotent and records each change it made (and the value it replaced) in a state
 * file; `stop` undoes exactly those, leaving alone what was already there or was changed since;
 * `status` lists what is in place and what is missing.
 *
 * IPv6 needs no neighbour-discovery setting: Linux answers solicitations only for addresses on the
 * receiving interface (ndisc_recv_ns looks the target up strictly on that device), so a VIP on lo
 * is never announced. IPv6 has no rp_filter sysctl (reverse-path checks there are nftables rules).
 */
import ipaddr from 'ipaddr.js';
import type { RealserverSystem } from '../os/realserver-system.js';

export const DEFAULT_REALSERVER_STATE = '/run/keepvs/realserver.json';
const MSS_TABLE = 'keepvs_realserver';

export interface RealserverArgs {
  readonly action: 'start' | 'stop' | 'status';
  readonly vips: readonly string[];
  readonly tun: boolean;
  readonly devs: readonly string[];
  /** UDP ports carrying GUE (tun_type gue, tun_port) */
  readonly guePorts: readonly number[];
  readonly mss?: number;
  readonly statePath: string;
}

export const REALSERVER_HELP = `Usage: keepvs realserver start|stop|status [--vip ADDR]... [--tun [--dev IFACE]...] [--mss N]
Prepare this host as an LVS-DR / LVS-TUN real server (the realserver.sh of LVS setups).

  --vip ADDR     a virtual address served here (repeatable; IPv4 or IPv6): put on lo as /32 or /128
  --tun          also decapsulate IPIP / IPv6-in-IPv6 packets for those VIPs (tc-BPF on --dev)
  --dev IFACE    interface(s) tunnelled packets arrive on (default: every interface that is up)
  --gue-port N   also accept GUE on UDP port N (tun_type gue, tun_port; IPIP and GRE always)
  --mss N        clamp the TCP MSS this host advertises from the VIPs to N for IPv4, N-40 for IPv6
                 (room for the tunnel header: N = back MTU - 60)
  --state FILE   where start records its changes (default ${DEFAULT_REALSERVER_STATE})

start is idempotent; stop undoes exactly what start changed; status exits 1 when something is missing.
`;

export function parseRealserverArgs(argv: readonly string[]): RealserverArgs | string {
  const [action, ...rest] = argv;
  if (action !== 'start' && action !== 'stop' && action !== 'status') return 'expected start, stop or status';
  const vips: string[] = [];
  const devs: string[] = [];
  const guePorts: number[] = [];
  let tun = false;
  let mss: number | undefined;
  let statePath = DEFAULT_REALSERVER_STATE;
  for (let i = 0; i < rest.length; i++) {
    const [flag, inline] =
      rest[i].startsWith('--') && rest[i].includes('=') ? rest[i].split(/=(.*)/s) : [rest[i], undefined];
    const value = (): string | undefined => inline ?? rest[++i];
    switch (flag) {
      case '--vip': {
        const v = value();
        if (!v) return '--vip needs an address';
        for (const a of v.split(',')) {
          if (!ipaddr.isValid(a) || (!ipaddr.IPv4.isValidFourPartDecimal(a) && ipaddr.parse(a).kind() === 'ipv4'))
            return `--vip: '${a}' is not an IP address`;
          const c = ipaddr.parse(a).toString();
          if (!vips.includes(c)) vips.push(c);
        }
        break;
      }
      case '--tun':
        tun = true;
        break;
      case '--dev': {
        const v = value();
        if (!v || !/^[A-Za-z0-9_.:@-]{1,15}$/.test(v) || v === 'lo') return `--dev: bad interface name '${v ?? ''}'`;
        if (!devs.includes(v)) devs.push(v);
        break;
      }
      case '--gue-port': {
        const v = Number(value());
        if (!Number.isInteger(v) || v < 1 || v > 65535) return '--gue-port needs a UDP port';
        if (!guePorts.includes(v)) guePorts.push(v);
        break;
      }
      case '--mss': {
        const v = Number(value());
        if (!Number.isInteger(v) || v < 536 || v > 65495) return '--mss needs a size between 536 and 65495';
        mss = v;
        break;
      }
      case '--state': {
        const v = value();
        if (!v?.startsWith('/')) return '--state needs an absolute path';
        statePath = v;
        break;
      }
      default:
        return `unexpected argument '${rest[i]}'`;
    }
  }
  if (action === 'start' && vips.length === 0) return 'start needs at least one --vip';
  if ((devs.length || guePorts.length) && !tun) return '--dev and --gue-port only apply with --tun';
  return { action, vips, tun, devs, guePorts, ...(mss !== undefined ? { mss } : {}), statePath };
}

interface SysctlChange {
  readonly key: string;
  readonly old: string;
  readonly set: string;
}

interface RealserverState {
  readonly version: 1;
  /** every VIP start was given */
  vips: string[];
  /** addresses start added to lo (cidr) */
  addedAddresses: string[];
  sysctls: SysctlChange[];
  decap?: {
    vips: string[];
    guePorts?: number[];
    ifaces: { ifname: string; progId: number; createdQdisc: boolean }[];
  };
  mss?: number;
}

const isV6 = (a: string): boolean => a.includes(':');
const cidrOf = (a: string): string => `${a}/${isV6(a) ? 128 : 32}`;
const ARP_SYSCTLS: readonly [string, number][] = [
  ['net.ipv4.conf.all.arp_ignore', 1],
  ['net.ipv4.conf.all.arp_announce', 2],
  ['net.ipv4.conf.lo.arp_ignore', 1],
  ['net.ipv4.conf.lo.arp_announce', 2],
];

function parseState(text: string | undefined): RealserverState | undefined {
  if (text === undefined) return undefined;
  const s = JSON.parse(text) as RealserverState;
  if (s?.version !== 1 || !Array.isArray(s.vips) || !Array.isArray(s.addedAddresses) || !Array.isArray(s.sysctls)) {
    throw new Error('the state file is not one keepvs realserver wrote');
  }
  return s;
}

export async function runRealserver(
  args: RealserverArgs,
  sys: RealserverSystem,
  out: (line: string) => void,
): Promise<number> {
  const state = parseState(sys.readState());
  if (args.action === 'start') return start(args, sys, state, out);
  if (args.action === 'stop') return stop(sys, state, out);
  return status(args, sys, state, out);
}

async function start(
  args: RealserverArgs,
  sys: RealserverSystem,
  prev: RealserverState | undefined,
  out: (line: string) => void,
): Promise<number> {
  const st: RealserverState = prev ?? { version: 1, vips: [], addedAddresses: [], sysctls: [] };
  const save = () => sys.writeState(`${JSON.stringify(st, null, 2)}\n`);
  for (const v of args.vips) if (!st.vips.includes(v)) st.vips.push(v);

  const onLo = await sys.addresses('lo');
  for (const v of args.vips) {
    if (onLo.includes(v)) continue;
    await sys.addAddress('lo', cidrOf(v));
    st.addedAddresses.push(cidrOf(v));
    out(`added ${cidrOf(v)} to lo`);
    save();
  }

  const raise = (key: string, want: number) => {
    const cur = sys.readSysctl(key);
    if (cur === undefined) throw new Error(`sysctl ${key} is missing`);
    if (Number(cur) >= want) return;
    sys.writeSysctl(key, String(want));
    if (!st.sysctls.some((c) => c.key === key)) st.sysctls.push({ key, old: cur, set: String(want) });
    out(`set ${key} = ${want} (was ${cur})`);
    save();
  };
  if (st.vips.some((v) => !isV6(v))) for (const [k, v] of ARP_SYSCTLS) raise(k, v);

  if (args.tun) {
    const ifaces = [
      ...new Set([
        ...(st.decap?.ifaces.map((i) => i.ifname) ?? []),
        ...(args.devs.length ? args.devs : sys.upInterfaces()),
      ]),
    ];
    if (ifaces.length === 0) throw new Error('--tun: no interface is up to receive tunnelled packets (use --dev)');
    // decapsulated packets arrive with the client's source on the tunnel interface: strict
    // reverse-path filtering (1) drops them when the client is routed elsewhere; loose (2) is enough
    for (const dev of ifaces) {
      for (const key of ['net.ipv4.conf.all.rp_filter', `net.ipv4.conf.${dev}.rp_filter`]) {
        const cur = sys.readSysctl(key);
        if (cur !== '1') continue;
        sys.writeSysctl(key, '2');
        if (!st.sysctls.some((c) => c.key === key)) st.sysctls.push({ key, old: cur, set: '2' });
        out(`set ${key} = 2 (was 1: strict reverse-path filtering drops decapsulated packets)`);
        save();
      }
    }
    const vips = st.vips;
    const guePorts = [...new Set([...(st.decap?.guePorts ?? []), ...args.guePorts])];
    const upToDate =
      st.decap &&
      vips.every((v) => st.decap?.vips.includes(v)) &&
      guePorts.every((p) => st.decap?.guePorts?.includes(p)) &&
      ifaces.every((i) => {
        const rec = st.decap?.ifaces.find((x) => x.ifname === i);
        return rec && sys.decapProgId(i) === rec.progId;
      });
    if (!upToDate) {
      const attached = sys.attachDecap(vips, ifaces, guePorts);
      const prevIfaces = st.decap?.ifaces ?? [];
      st.decap = {
        vips: [...vips],
        guePorts,
        ifaces: attached.map((a) => ({
          ifname: a.ifname,
          progId: a.progId,
          createdQdisc: a.createdQdisc || (prevIfaces.find((p) => p.ifname === a.ifname)?.createdQdisc ?? false),
        })),
      };
      const gue = guePorts.length ? `, GUE on UDP ${guePorts.join(', ')}` : '';
      out(
        `decapsulating tunnelled packets (IPIP, GRE${gue}) for ${vips.join(', ')} on ${ifaces.join(', ')} (tc-BPF kv_tun_decap)`,
      );
      save();
    }
  }

  if (args.mss !== undefined && st.mss !== args.mss) {
    await sys.nft(mssScript(st.vips, args.mss));
    st.mss = args.mss;
    out(`clamping the TCP MSS sent from the VIPs to ${args.mss} (nft table inet ${MSS_TABLE})`);
  }
  save();
  out('realserver: started');
  return 0;
}

function mssScript(vips: readonly string[], mss: number): string {
  const v4 = vips.filter((v) => !isV6(v));
  const v6 = vips.filter(isV6);
  // the IPv6 header, and its tunnel header, are 20 B larger each: IPv6 gets 40 B less
  const rule = (fam: 'ip' | 'ip6', set: string[], m: number) =>
    set.length
      ? `    ${fam} saddr { ${set.join(', ')} } tcp flags & (syn | ack) == syn | ack tcp option maxseg size > ${m} tcp option maxseg size set ${m}\n`
      : '';
  return `table inet ${MSS_TABLE} {}\nflush table inet ${MSS_TABLE}\ntable inet ${MSS_TABLE} {\n  chain mss {\n    type filter hook output priority mangle; policy accept;\n${rule('ip', v4, mss)}${rule('ip6', v6, mss - 40)}  }\n}\n`;
}

async function stop(
  sys: RealserverSystem,
  st: RealserverState | undefined,
  out: (line: string) => void,
): Promise<number> {
  if (!st) {
    out('realserver: nothing to undo (no state file)');
    return 0;
  }
  if (st.mss !== undefined) {
    if (await sys.nftTableExists('inet', MSS_TABLE)) await sys.nft(`delete table inet ${MSS_TABLE}\n`);
    out(`removed nft table inet ${MSS_TABLE}`);
  }
  for (const i of st.decap?.ifaces ?? []) {
    if (sys.decapProgId(i.ifname) !== undefined) {
      sys.detachDecap(i.ifname);
      out(`removed the decapsulation program from ${i.ifname}`);
    }
    if (i.createdQdisc) {
      if (await sys.removeQdiscIfEmpty(i.ifname)) out(`removed the clsact qdisc of ${i.ifname}`);
      else out(`left the clsact qdisc of ${i.ifname}: other filters use it`);
    }
  }
  for (const c of [...st.sysctls].reverse()) {
    const cur = sys.readSysctl(c.key);
    if (cur === c.set) {
      sys.writeSysctl(c.key, c.old);
      out(`restored ${c.key} = ${c.old}`);
    } else if (cur !== undefined) {
      out(`left ${c.key} = ${cur}: changed since start set ${c.set}`);
    }
  }
  const onLo = await sys.addresses('lo');
  for (const cidr of [...st.addedAddresses].reverse()) {
    if (onLo.includes(cidr.split('/')[0])) {
      await sys.delAddress('lo', cidr);
      out(`removed ${cidr} from lo`);
    }
  }
  sys.removeState();
  out('realserver: stopped');
  return 0;
}

async function status(
  args: RealserverArgs,
  sys: RealserverSystem,
  st: RealserverState | undefined,
  out: (line: string) => void,
): Promise<number> {
  const vips = args.vips.length ? args.vips : (st?.vips ?? []);
  if (vips.length === 0) {
    out('realserver: not started (no state file) and no --vip given');
    return 1;
  }
  let missing = 0;
  const line = (okay: boolean, what: string) => {
    if (!okay) missing++;
    out(`${okay ? 'ok     ' : 'MISSING'} ${what}`);
  };
  const onLo = await sys.addresses('lo');
  for (const v of vips) line(onLo.includes(v), `${cidrOf(v)} on lo`);
  if (vips.some((v) => !isV6(v))) {
    for (const [k, want] of ARP_SYSCTLS) {
      const cur = sys.readSysctl(k);
      line(Number(cur) >= want, `${k} = ${cur ?? '?'} (needs >= ${want})`);
    }
  }
  const tun = args.tun || st?.decap !== undefined;
  if (tun) {
    const ifaces = args.devs.length ? args.devs : (st?.decap?.ifaces.map((i) => i.ifname) ?? sys.upInterfaces());
    const covered = st?.decap?.vips ?? [];
    for (const i of ifaces) {
      const id = sys.decapProgId(i);
      line(
        id !== undefined && vips.every((v) => covered.includes(v)),
        `decapsulation on ${i}${id !== undefined ? ` (program ${id})` : ''}`,
      );
      const eff = Math.max(
        Number(sys.readSysctl('net.ipv4.conf.all.rp_filter') ?? 0),
        Number(sys.readSysctl(`net.ipv4.conf.${i}.rp_filter`) ?? 0),
      );
      line(eff !== 1, `reverse-path filtering on ${i} is ${eff === 1 ? 'strict' : eff === 2 ? 'loose' : 'off'}`);
    }
  }
  const mss = args.mss ?? st?.mss;
  if (mss !== undefined)
    line(await sys.nftTableExists('inet', MSS_TABLE), `MSS clamp to ${mss} (nft table inet ${MSS_TABLE})`);
  out(missing ? `realserver: ${missing} missing` : 'realserver: ready');
  return missing ? 1 : 0;
}
