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
  /** --start-daemon's options (ipvsadm.c: --mcast-interface, --syncid, --sync-maxlen, --mcast-group/port/ttl) */
  mcastInterface?: string;
  syncId?: number;
  syncMaxlen?: number;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
  numeric: boolean;
  connections: boolean;
  format: 'default' | 'stats' | 'rate' | 'thresholds' | 'persistent-conn';
  exact: boolean;
  timeout: boolean;
  daemon: boolean;
  /** listings sorted as ipvsadm sorts them (default); --nosort keeps the table's order */
  sort: boolean;
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
  { long: 'exact', short: 'X', arg: 'none', name: '--exact' },
  { long: 'thresholds', arg: 'none', name: '--thresholds' },
  { long: 'persistent-conn', arg: 'none', name: '--persistent-conn' },
  { long: 'timeout', arg: 'none', name: '--timeout' },
  { long: 'daemon', arg: 'none', name: '--daemon' },
  { long: 'sort', arg: 'none', name: '--sort' },
  { long: 'nosort', arg: 'none', name: '--nosort' },
  { long: 'tun-info', arg: 'none', name: '--tun-info' },
  { long: 'mcast-interface', arg: 'required', name: '--mcast-interface' },
  { long: 'syncid', arg: 'required', name: '--syncid' },
  { long: 'sync-maxlen', arg: 'required', name: '--sync-maxlen' },
  { long: 'mcast-group', arg: 'required', name: '--mcast-group' },
  { long: 'mcast-port', arg: 'required', name: '--mcast-port' },
  { long: 'mcast-ttl', arg: 'required', name: '--mcast-ttl' },
];

/** ipvsadm's names of the commands and options, as its messages print them (ipvsadm.c cmdnames, optnames). */
const CMD_NAMES: Record<CommandName, string> = {
  'add-service': 'add-service',
  'edit-service': 'edit-service',
  'del-service': 'delete-service',
  clear: 'flush',
  list: 'list',
  'add-server': 'add-server',
  'del-server': 'delete-server',
  'edit-server': 'edit-server',
  set: 'set',
  'start-daemon': 'start-daemon',
  'stop-daemon': 'stop-daemon',
  restore: 'restore',
  save: 'save',
  zero: 'zero',
  help: 'help',
  version: 'version',
};

/** Option flag -> ipvsadm's option name; the order is optnames', in which ipvsadm checks them. */
const OPT_NAMES: readonly (readonly [string, readonly string[]])[] = [
  ['numeric', ['-n']],
  ['connection', ['-c']],
  ['service-address', ['-t', '-u', '-f']],
  ['scheduler', ['-s']],
  ['pe', ['--pe']],
  ['persistent', ['-p']],
  ['netmask', ['-M']],
  ['real-server', ['-r']],
  ['forwarding-method', ['-g', '-i', '-m']],
  ['weight', ['-w']],
  ['u-threshold', ['-x']],
  ['l-threshold', ['-y']],
  ['mcast-interface', ['--mcast-interface']],
  ['timeout', ['--timeout']],
  ['daemon', ['--daemon']],
  ['stats', ['--stats']],
  ['rate', ['--rate']],
  ['thresholds', ['--thresholds']],
  ['persistent-conn', ['--persistent-conn']],
  ['nosort', ['--nosort', '--sort']],
  ['syncid', ['--syncid']],
  ['exact', ['--exact']],
  ['ops', ['-o']],
  ['sched-flags', ['-b']],
  ['tun-info', ['--tun-info']],
  ['sync-maxlen', ['--sync-maxlen']],
  ['mcast-group', ['--mcast-group']],
  ['mcast-port', ['--mcast-port']],
  ['mcast-ttl', ['--mcast-ttl']],
];
const OPT_NAME_OF = new Map(OPT_NAMES.flatMap(([name, flags]) => flags.map((f) => [f, name] as const)));

/**
 * ipvsadm.c commands_v_options: per command, '+' compulsory, '1' at most one of them, ' '
 * optional; an option not listed is illegal. (-6 qualifies the service and goes with it.)
 */
const MATRIX: Record<CommandName, Readonly<Record<string, '+' | '1' | ' '>>> = {
  'add-service': {
    'service-address': '+',
    scheduler: ' ',
    pe: ' ',
    persistent: ' ',
    netmask: ' ',
    ops: ' ',
    'sched-flags': ' ',
  },
  'edit-service': {
    'service-address': '+',
    scheduler: ' ',
    pe: ' ',
    persistent: ' ',
    netmask: ' ',
    ops: ' ',
    'sched-flags': ' ',
  },
  'del-service': { 'service-address': '+' },
  clear: {},
  list: {
    numeric: ' ',
    connection: '1',
    'service-address': '1',
    timeout: '1',
    daemon: '1',
    stats: ' ',
    rate: ' ',
    thresholds: ' ',
    'persistent-conn': ' ',
    nosort: ' ',
    exact: ' ',
    'tun-info': ' ',
  },
  'add-server': {
    'service-address': '+',
    'real-server': '+',
    'forwarding-method': ' ',
    weight: ' ',
    'u-threshold': ' ',
    'l-threshold': ' ',
  },
  'edit-server': {
    'service-address': '+',
    'real-server': '+',
    'forwarding-method': ' ',
    weight: ' ',
    'u-threshold': ' ',
    'l-threshold': ' ',
  },
  'del-server': { 'service-address': '+', 'real-server': '+' },
  set: {},
  'start-daemon': {
    'mcast-interface': ' ',
    syncid: ' ',
    'sync-maxlen': ' ',
    'mcast-group': ' ',
    'mcast-port': ' ',
    'mcast-ttl': ' ',
  },
  'stop-daemon': { syncid: ' ' },
  restore: {},
  save: { numeric: ' ' },
  zero: { 'service-address': ' ' },
  help: {},
  version: {},
};

/** ipvsadm.c generic_opt_check, then process_options' list conflicts: ipvsadm's texts. */
function checkOptions(c: Command, used: readonly OptDef[]): string | undefined {
  const names = new Set(used.map((d) => OPT_NAME_OF.get(d.name)).filter((n): n is string => n !== undefined));
  const row = MATRIX[c.cmd];
  const cmd = CMD_NAMES[c.cmd];
  let exclusive: string | undefined;
  for (const [name] of OPT_NAMES) {
    const rule = row[name];
    if (!names.has(name)) {
      if (rule === '+') return `You need to supply the '${name}' option for the '${cmd}' command`;
      continue;
    }
    if (rule === undefined) return `Illegal '${name}' option with the '${cmd}' command`;
    if (rule === '1') {
      if (exclusive) return `The option '${name}' conflicts with the '${exclusive}' option in the '${cmd}' command`;
      exclusive = name;
    }
  }
  if (c.cmd === 'list') {
    const has = (...n: string[]) => n.some((x) => names.has(x));
    if (
      (has('connection', 'timeout', 'daemon') && has('stats', 'rate', 'thresholds')) ||
      (has('timeout', 'daemon') && has('persistent-conn'))
    )
      return 'options conflicts in the list command';
  }
  return undefined;
}

const SCHED_FLAGS = new Set(['flag-1', 'flag-2', 'flag-3', 'sh-fallback', 'sh-port', 'mh-fallback', 'mh-port']);

/** `host`, `host:0`, `[v6]`, `[v6]:0` or a bare IPv6 address: the service port is 0 (all ports). */
function servicePortIsZero(v: string): boolean {
  const b = /^\[[^\]]*\](?::(.*))?$/.exec(v);
  if (b) return b[1] === undefined || b[1] === '0';
  const colons = v.split(':').length - 1;
  return colons !== 1 || v.split(':')[1] === '0';
}

/** an IPv4 (224-239) or IPv6 (ff00::/8) multicast address */
const MULTICAST = /^(2(2[4-9]|3\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}|[fF][fF][0-9a-fA-F]{2}:[0-9a-fA-F:]*)$/;

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
    sort: true,
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
      // popt's words: "OPTION: unknown option"
      if (!def) return { error: `${eq >= 0 ? a.slice(0, eq) : a}: unknown option` };
      if (def.arg === 'set') {
        const values = argv.slice(i + 1, i + 4);
        if (values.length < 3) return { error: '--set requires 3 arguments (tcp tcpfin udp)' };
        i += 3;
        tokens.push({ def, values });
      } else if (def.arg === 'required') {
        const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
        if (v === undefined) return { error: `${a}: missing argument` };
        tokens.push({ def, value: v });
      } else if (def.arg === 'optional') tokens.push({ def, value: eq >= 0 ? a.slice(eq + 1) : takeOptional() });
      else tokens.push({ def });
    } else if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const def = byShort.get(a[j]);
        if (!def) return { error: `-${a[j]}: unknown option` };
        if (def.arg === 'none') {
          tokens.push({ def });
          continue;
        }
        const rest = a.slice(j + 1);
        if (def.arg === 'required') {
          const v = rest || argv[++i];
          if (v === undefined) return { error: `-${a[j]}: missing argument` };
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
    // ipvsadm.c set_option: "multiple '%s' options specified"
    const optName = OPT_NAME_OF.get(t.def.name);
    if (optName && used.some((d) => OPT_NAME_OF.get(d.name) === optName))
      return { error: `multiple '${optName}' options specified` };
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
      case '--nosort':
        c.sort = false;
        break;
      // ipvsadm.c parse_options: the daemon options and their "illegal ..." texts
      case '--mcast-interface':
        c.mcastInterface = v;
        break;
      case '--syncid': {
        const n = parseUint(v, 255);
        if (n === undefined) return { error: 'illegal syncid specified' };
        c.syncId = n;
        break;
      }
      case '--sync-maxlen': {
        const n = parseUint(v, 65535 - 20 - 8);
        if (n === undefined || n < 1) return { error: 'illegal sync-maxlen specified' };
        c.syncMaxlen = n;
        break;
      }
      case '--mcast-group':
        if (!MULTICAST.test(v)) return { error: 'illegal mcast-group specified' };
        c.mcastGroup = v;
        break;
      case '--mcast-port': {
        const n = parseUint(v, 65535);
        if (n === undefined || n < 1) return { error: 'illegal mcast-port specified' };
        c.mcastPort = n;
        break;
      }
      case '--mcast-ttl': {
        const n = parseUint(v, 255);
        if (n === undefined || n < 1) return { error: 'illegal mcast-ttl specified' };
        c.mcastTtl = n;
        break;
      }
    }
  }
  const problem = checkOptions(c, used);
  if (problem) return { error: problem };
  if (c.cmd === 'start-daemon' || c.cmd === 'stop-daemon') {
    if (c.daemonState !== 'master' && c.daemonState !== 'backup')
      return { error: `illegal ${c.cmd === 'start-daemon' ? 'start-daemon' : 'stop_daemon'} parameter specified` };
  }
  // ipvsadm.c process_options: a port-0 service must be persistent; OPS only for UDP
  if ((c.cmd === 'add-service' || c.cmd === 'edit-service') && c.service && c.service.kind !== 'fwmark') {
    if (c.persistent === undefined && servicePortIsZero(c.service.value))
      return { error: 'Zero port specified for non-persistent service' };
    if (c.ops && c.service.kind !== 'udp') return { error: 'One-Packet Scheduling is only for UDP virtual services' };
  }
  if (c.uThreshold !== undefined && c.lThreshold !== undefined && c.lThreshold > c.uThreshold) {
    return { error: 'l_threshold must be lower than u_threshold' };
  }
  return c;
}

/** ipvsadm -h's layout (ipvsadm.c usage_exit): the same sections, columns and option names. */
export const IPVSADM_USAGE = `keepvsadm (keepvs, ipvsadm v1.31 compatible; IPVS v1.2.1 semantics)
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
  keepvsadm --start-daemon {master|backup} [daemon-options]
  keepvsadm --stop-daemon {master|backup}
  keepvsadm -h

Commands:
Either long or short options are allowed.
  --add-service     -A        add a virtual service with options
  --edit-service    -E        edit a virtual service with options
  --delete-service  -D        delete a virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add a real server with options
  --edit-server     -e        edit a real server with options
  --delete-server   -d        delete a real server
  --list            -L|-l     list the table
  --zero            -Z        zero the counters of a service or of all services
  --set tcp tcpfin udp        set the connection timeouts
  --start-daemon              start the connection sync daemon (conntrackd, kernel plane)
  --stop-daemon               stop the connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine (sip),
                                      not set by default.
  --persistent   -p [timeout]         persistent service (default timeout 360 s)
  --netmask      -M netmask           persistence granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --weight       -w weight            capacity of the real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   list the current connections
  --timeout                           list the timeouts (tcp tcpfin udp)
  --daemon                            list the sync daemon state
  --stats                             list with statistics
  --rate                              list with rates
  --exact        -X                   expand numbers (display exact values)
  --thresholds                        list with thresholds
  --persistent-conn                   list with persistent connections
  --tun-info                          list with tunnel information
  --nosort                            do not sort services and real servers (table order)
  --sort                              sort (the default; kept for compatibility)
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)

Daemon Options:
  --syncid sid                        syncid for connection sync (default=0)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)

keepvs options:
  --socket PATH                       control socket (default /run/keepvs/keepvs.sock, or $KEEPVS_SOCKET)
`;
