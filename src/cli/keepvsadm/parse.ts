/**
 * ipvsadm's command line (ipvsadm.c, ipvsadm.8): one command, options checked against the
 * command (commands_v_options), combined short flags (-Ln), optional arguments (-p [timeout]).
 * Pure: argv in, a Command or ipvsadm's error text out. Names are resolved later.
 */

export type CommandName =
  | 'add-service'
  | 'edit-service'
  | 'del-service'
  | 'clear'
  | 'restore'
  | 'save'
  | 'add-server'
  | 'edit-server'
  | 'del-server'
  | 'list'
  | 'zero'
  | 'set'
  | 'start-daemon'
  | 'stop-daemon'
  | 'help'
  | 'version';

export interface Command {
  cmd: CommandName;
  /** the command flag as typed, for messages */
  flag: string;
  service?: { kind: 'tcp' | 'udp' | 'fwmark'; value: string };
  ipv6: boolean;
  scheduler?: string;
  persistent?: number;
  netmask?: string;
  schedFlags?: string[];
  ops: boolean;
  pe?: string;
  realServer?: string;
  forward?: 'masq' | 'route' | 'tunnel' | 'fullnat';
  weight?: number;
  uThreshold?: number;
  lThreshold?: number;
  timeouts?: [number, number, number];
  daemonState?: string;
  numeric: boolean;
  connections: boolean;
  format: 'default' | 'stats' | 'rate' | 'thresholds' | 'persistent-conn';
  exact: boolean;
  timeout: boolean;
  daemon: boolean;
}

interface OptDef {
  long: string;
  short?: string;
  /** 'none' | 'required' | 'optional' | 'set' (three arguments) */
  arg: 'none' | 'required' | 'optional' | 'set';
  command?: CommandName;
  /** name used in "Illegal ... option" messages */
  name: string;
}

const DEFS: OptDef[] = [
  { long: 'add-service', short: 'A', arg: 'none', command: 'add-service', name: '-A' },
  { long: 'edit-service', short: 'E', arg: 'none', command: 'edit-service', name: '-E' },
  { long: 'delete-service', short: 'D', arg: 'none', command: 'del-service', name: '-D' },
  { long: 'clear', short: 'C', arg: 'none', command: 'clear', name: '-C' },
  { long: 'restore', short: 'R', arg: 'none', command: 'restore', name: '-R' },
  { long: 'save', short: 'S', arg: 'none', command: 'save', name: '-S' },
  { long: 'add-server', short: 'a', arg: 'none', command: 'add-server', name: '-a' },
  { long: 'edit-server', short: 'e', arg: 'none', command: 'edit-server', name: '-e' },
  { long: 'delete-server', short: 'd', arg: 'none', command: 'del-server', name: '-d' },
  { long: 'list', short: 'L', arg: 'none', command: 'list', name: '-L' },
  { long: 'list', short: 'l', arg: 'none', command: 'list', name: '-l' },
  { long: 'zero', short: 'Z', arg: 'none', command: 'zero', name: '-Z' },
  { long: 'set', arg: 'set', command: 'set', name: '--set' },
  { long: 'start-daemon', arg: 'required', command: 'start-daemon', name: '--start-daemon' },
  { long: 'stop-daemon', arg: 'required', command: 'stop-daemon', name: '--stop-daemon' },
  { long: 'help', short: 'h', arg: 'none', command: 'help', name: '-h' },
  { long: 'version', short: 'v', arg: 'none', command: 'version', name: '-v' },
  { long: 'tcp-service', short: 't', arg: 'required', name: '-t' },
  { long: 'udp-service', short: 'u', arg: 'required', name: '-u' },
  { long: 'fwmark-service', short: 'f', arg: 'required', name: '-f' },
  { long: 'ipv6', short: '6', arg: 'none', name: '-6' },
  { long: 'scheduler', short: 's', arg: 'required', name: '-s' },
  { long: 'persistent', short: 'p', arg: 'optional', name: '-p' },
  { long: 'netmask', short: 'M', arg: 'required', name: '-M' },
  { long: 'sched-flags', short: 'b', arg: 'required', name: '-b' },
  { long: 'ops', short: 'o', arg: 'none', name: '-o' },
  { long: 'pe', arg: 'required', name: '--pe' },
  { long: 'real-server', short: 'r', arg: 'required', name: '-r' },
  { long: 'gatewaying', short: 'g', arg: 'none', name: '-g' },
  { long: 'ipip', short: 'i', arg: 'none', name: '-i' },
  { long: 'masquerading', short: 'm', arg: 'none', name: '-m' },
  // DPVS's ipvsadm spells full-NAT --fullnat (its -b clashes with upstream's --sched-flags)
  { long: 'fullnat', arg: 'none', name: '--fullnat' },
  { long: 'weight', short: 'w', arg: 'required', name: '-w' },
  { long: 'u-threshold', short: 'x', arg: 'required', name: '-x' },
  { long: 'l-threshold', short: 'y', arg: 'required', name: '-y' },
  { long: 'numeric', short: 'n', arg: 'none', name: '-n' },
  { long: 'connection', short: 'c', arg: 'none', name: '-c' },
  { long: 'stats', arg: 'none', name: '--stats' },
  { long: 'rate', arg: 'none', name: '--rate' },
  { long: 'exact', arg: 'none', name: '--exact' },
  { long: 'thresholds', arg: 'none', name: '--thresholds' },
  { long: 'persistent-conn', arg: 'none', name: '--persistent-conn' },
  { long: 'timeout', arg: 'none', name: '--timeout' },
  { long: 'daemon', arg: 'none', name: '--daemon' },
  { long: 'sort', arg: 'none', name: '--sort' },
  { long: 'nosort', arg: 'none', name: '--nosort' },
  { long: 'tun-info', arg: 'none', name: '--tun-info' },
];

/** Which options each command accepts (ipvsadm.c commands_v_options, condensed). */
const ALLOWED: Record<CommandName, string[]> = {
  'add-service': ['-t', '-u', '-f', '-6', '-s', '-p', '-M', '-b', '-o', '--pe'],
  'edit-service': ['-t', '-u', '-f', '-6', '-s', '-p', '-M', '-b', '-o', '--pe'],
  'del-service': ['-t', '-u', '-f', '-6'],
  clear: [],
  restore: [],
  save: ['-n'],
  'add-server': ['-t', '-u', '-f', '-6', '-r', '-g', '-i', '-m', '-w', '-x', '-y'],
  'edit-server': ['-t', '-u', '-f', '-6', '-r', '-g', '-i', '-m', '-w', '-x', '-y'],
  'del-server': ['-t', '-u', '-f', '-6', '-r'],
  list: [
    '-t',
    '-u',
    '-f',
    '-6',
    '-n',
    '-c',
    '--stats',
    '--rate',
    '--exact',
    '--thresholds',
    '--persistent-conn',
    '--timeout',
    '--daemon',
    '--sort',
    '--nosort',
    '--tun-info',
  ],
  zero: ['-t', '-u', '-f', '-6'],
  set: [],
  'start-daemon': [],
  'stop-daemon': [],
  help: [],
  version: [],
};

const SCHED_FLAGS = new Set(['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port']);

function parseUint(v: string, max: number): number | undefined {
  return /^\d+$/.test(v) && Number(v) <= max ? Number(v) : undefined;
}

export function parseIpvsadmArgs(argv: readonly string[]): Command | { error: string } {
  const c: Command = {
    cmd: 'list',
    flag: '-L',
    ipv6: false,
    ops: false,
    numeric: false,
    connections: false,
    format: 'default',
    exact: false,
    timeout: false,
    daemon: false,
  };
  let command: OptDef | undefined;
  const used: OptDef[] = [];
  const byLong = new Map(DEFS.map((d) => [d.long, d]));
  const byShort = new Map(DEFS.filter((d) => d.short).map((d) => [d.short!, d]));
  const tokens: { def: OptDef; value?: string; values?: string[] }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const takeOptional = () => (argv[i + 1] !== undefined && !argv[i + 1].startsWith('-') ? argv[++i] : undefined);
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const def = byLong.get(eq >= 0 ? a.slice(2, eq) : a.slice(2));
      if (!def) return { error: `unrecognized option "${a}"` };
      if (def.arg === 'set') {
        const values = argv.slice(i + 1, i + 4);
        if (values.length < 3) return { error: '--set requires 3 arguments (tcp tcpfin udp)' };
        i += 3;
        tokens.push({ def, values });
      } else if (def.arg === 'required') {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) return { error: `missing argument for option "${a}"` };
        tokens.push({ def, value: v });
      } else if (def.arg === 'optional') tokens.push({ def, value: eq >= 0 ? a.slice(eq + 1) : takeOptional() });
      else tokens.push({ def });
    } else if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const def = byShort.get(a[j]);
        if (!def) return { error: `unknown option "-${a[j]}"` };
        if (def.arg === 'none') {
          tokens.push({ def });
          continue;
        }
        const rest = a.slice(j + 1);
        if (def.arg === 'required') {
          const v = rest || argv[++i];
          if (v === undefined) return { error: `missing argument for option "-${a[j]}"` };
          tokens.push({ def, value: v });
        } else tokens.push({ def, value: rest || takeOptional() });
        break;
      }
    } else return { error: `unexpected argument ${a}` };
  }
  for (const t of tokens) {
    if (t.def.command) {
      if (command && command.command !== t.def.command) return { error: 'multiple commands specified' };
      command = t.def;
      c.cmd = t.def.command;
      c.flag = t.def.name;
      if (t.def.command === 'set') {
        const v = (t.values ?? []).map((x) => parseUint(x, 0x7fffffff));
        if (v.some((x) => x === undefined)) return { error: 'illegal timeout value' };
        c.timeouts = v as [number, number, number];
      }
      if (t.def.arg === 'required') c.daemonState = t.value;
      continue;
    }
    used.push(t.def);
    const v = t.value ?? '';
    switch (t.def.name) {
      case '-t':
      case '-u':
      case '-f':
        if (c.service) return { error: 'multiple service options specified' };
        c.service = { kind: t.def.name === '-t' ? 'tcp' : t.def.name === '-u' ? 'udp' : 'fwmark', value: v };
        if (t.def.name === '-f' && parseUint(v, 0xffffffff) === undefined)
          return { error: 'illegal virtual server address[:port] specified' };
        break;
      case '-6':
        c.ipv6 = true;
        break;
      case '-s':
        c.scheduler = v;
        break;
      case '-p': {
        if (t.value === undefined) c.persistent = 360;
        else {
          const n = parseUint(v, 0x7fffffff);
          if (n === undefined || n === 0) return { error: 'illegal timeout value specified' };
          c.persistent = n;
        }
        break;
      }
      case '-M':
        c.netmask = v;
        break;
      case '-b': {
        const flags = v.split(',');
        for (const f of flags) if (!SCHED_FLAGS.has(f)) return { error: `invalid scheduler flag '${f}'` };
        c.schedFlags = flags;
        break;
      }
      case '-o':
        c.ops = true;
        break;
      case '--pe':
        c.pe = v;
        break;
      case '-r':
        c.realServer = v;
        break;
      case '-g':
        c.forward = 'route';
        break;
      case '-i':
        c.forward = 'tunnel';
        break;
      case '-m':
        c.forward = 'masq';
        break;
      case '--fullnat':
        c.forward = 'fullnat';
        break;
      case '-w': {
        const n = parseUint(v, 65535);
        if (n === undefined) return { error: 'illegal weight specified' };
        c.weight = n;
        break;
      }
      case '-x':
      case '-y': {
        const n = parseUint(v, 65535);
        if (n === undefined)
          return { error: `illegal ${t.def.name === '-x' ? 'u_threshold' : 'l_threshold'} specified` };
        if (t.def.name === '-x') c.uThreshold = n;
        else c.lThreshold = n;
        break;
      }
      case '-n':
        c.numeric = true;
        break;
      case '-c':
        c.connections = true;
        break;
      case '--stats':
        c.format = 'stats';
        break;
      case '--rate':
        c.format = 'rate';
        break;
      case '--thresholds':
        c.format = 'thresholds';
        break;
      case '--persistent-conn':
        c.format = 'persistent-conn';
        break;
      case '--exact':
        c.exact = true;
        break;
      case '--timeout':
        c.timeout = true;
        break;
      case '--daemon':
        c.daemon = true;
        break;
    }
  }
  const allowed = ALLOWED[c.cmd];
  for (const d of used) {
    if (!allowed.includes(d.name) && !(d.name === '-n' && c.cmd !== 'help')) {
      return { error: `Illegal '${d.name}' option with the '${c.flag}' command` };
    }
  }
  const needsService = [
    'add-service',
    'edit-service',
    'del-service',
    'add-server',
    'edit-server',
    'del-server',
  ].includes(c.cmd);
  if (needsService && !c.service) return { error: 'You must specify a service address with -t, -u or -f' };
  if (['add-server', 'edit-server', 'del-server'].includes(c.cmd) && !c.realServer)
    return { error: "You need to supply the 'real-server' address for this command" };
  if (c.cmd === 'list' && c.connections && (c.service || c.timeout || c.daemon))
    return { error: 'options -c, --timeout, --daemon and a service are mutually exclusive' };
  if (c.uThreshold !== undefined && c.lThreshold !== undefined && c.lThreshold > c.uThreshold) {
    return { error: 'l_threshold must be lower than u_threshold' };
  }
  return c;
}

export const IPVSADM_USAGE = `keepvsadm (ipvsadm-compatible) for keepvs
Usage:
  keepvsadm -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  keepvsadm -D virtual-service
  keepvsadm -C
  keepvsadm -R
  keepvsadm -S [-n]
  keepvsadm -a|e virtual-service -r server-address [options]
  keepvsadm -d virtual-service -r server-address
  keepvsadm -L|l [virtual-service] [options]
  keepvsadm -Z [virtual-service]
  keepvsadm --set tcp tcpfin udp
  keepvsadm -h

virtual-service: --tcp-service|-t service-address | --udp-service|-u service-address | --fwmark-service|-f fwmark
Options: -s scheduler (rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos, default wlc), -p [timeout] (default 360),
  -M netmask, -b sched-flags, -o, -r server-address, -g (route, default), -i (tunnel), -m (masquerade), -w weight,
  -x upper-threshold, -y lower-threshold, -n, -c, --stats, --rate, --exact, --thresholds, --persistent-conn,
  --timeout, --daemon, --sort, --nosort, -6
keepvs options: --socket PATH (control socket, default /run/keepvs/keepvs.sock or $KEEPVS_SOCKET)
`;
