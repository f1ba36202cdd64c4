/**
 * Pure command-line parser for `keepvs`: keepalived's options (KA-man8) plus keepvs's own.
 * Returns a typed options object or a usage error (exit status 2, as getopt-based keepalived).
 */
import { err, ok, type Result } from '../util/result.js';

export type KeepvsCommand = 'run' | 'config-test' | 'dump-conf' | 'help' | 'version' | 'demo' | 'force-reload';

export interface KeepvsOptions {
  readonly command: KeepvsCommand;
  /** -f/--use-file */
  readonly useFile: string;
  /** -P/--vrrp: VRRP only */
  readonly vrrpOnly: boolean;
  /** -C/--check: health checkers / LVS only */
  readonly checkOnly: boolean;
  readonly dontFork: boolean;
  readonly logConsole: boolean;
  readonly logDetail: boolean;
  /** -S: syslog facility as LOCALn number 0..7, or 'user'/'daemon' */
  readonly logFacility?: string;
  readonly pidFile: string;
  readonly vrrpPidFile: string;
  readonly checkersPidFile: string;
  readonly configId?: string;
  readonly dontRespawn: boolean;
  readonly logFile?: string;
  readonly noSyslog: boolean;
  /** keepvs: control socket for keepvsadm */
  readonly socket?: string;
  readonly api: { readonly host: string; readonly port: number };
  readonly apiToken?: string;
  /** `--api-token NAME:TOKEN`, repeatable: named tokens for the audit trail */
  readonly apiTokens: readonly { readonly name: string; readonly token: string }[];
  /** the include file the config API writes (default: keepvs-managed.conf beside the config file) */
  readonly managedConfig?: string;
  /** the other director's API, shown in the dashboard (`--peer-api URL`) */
  readonly peerApi?: string;
  readonly peerToken?: string;
  readonly dataplane: 'auto' | 'proxy' | 'nft';
  /** proxy worker processes; undefined: one per core */
  readonly dataplaneWorkers?: number;
  /** PROXY protocol header to real servers for TCP services without their own proxy_protocol */
  readonly proxyProtocol?: 'v1' | 'v2';
  /** IPVS expire_nodest_conn: connections to a removed real server are closed */
  readonly expireNodestConn: boolean;
  /** UDP flows per proxy process; undefined: a quarter of its open-file limit */
  readonly udpFlows?: number;
  /** -t: keepvs's older exit status (0 usable, 3 cannot run) instead of keepalived's */
  readonly lenient: boolean;
  /** -t: do not check that interfaces exist (a config for another machine) */
  readonly noInterfaceCheck: boolean;
  /** -t/--config-test=LOG_FILE: diagnostics appended to this file instead of stderr (keepalived's meaning) */
  readonly configTestLog?: string;
  /** arguments after `demo` */
  readonly demoArgs: readonly string[];
}

export interface UsageError {
  readonly message: string;
  readonly exitCode: 2;
}

export const DEFAULT_CONFIG_FILE = '/etc/keepalived/keepalived.conf';
export const DEFAULT_API = { host: '127.0.0.1', port: 9180 } as const;

type Setter = (o: Draft, v: string | undefined) => string | undefined;
type Draft = { -readonly [K in keyof KeepvsOptions]: KeepvsOptions[K] };

interface OptSpec {
  readonly long: string;
  readonly short?: string;
  /** none: flag; required: needs a value; optional: only `--x=V` / `-xV` */
  readonly arg: 'none' | 'required' | 'optional';
  readonly set: Setter;
}

const FACILITIES = /^([0-7]|local[0-7]|user|daemon)$/;

function parseApi(v: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(v);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1] ?? (m[2] || DEFAULT_API.host), port };
}

/** A setter that stores a value computed from the argument (and never fails). */
const store =
  <K extends keyof Draft>(key: K, compute: (v: string | undefined, o: Draft) => Draft[K]): Setter =>
  (o, v) => {
    o[key] = compute(v, o);
    return undefined;
  };

const OPTIONS: readonly OptSpec[] = [
  { long: 'use-file', short: 'f', arg: 'required', set: store('useFile', (v) => v ?? '') },
  { long: 'vrrp', short: 'P', arg: 'none', set: store('vrrpOnly', () => true) },
  { long: 'check', short: 'C', arg: 'none', set: store('checkOnly', () => true) },
  { long: 'dont-fork', short: 'n', arg: 'none', set: store('dontFork', () => true) },
  { long: 'log-console', short: 'l', arg: 'none', set: store('logConsole', () => true) },
  { long: 'log-detail', short: 'D', arg: 'none', set: store('logDetail', () => true) },
  {
    long: 'log-facility',
    short: 'S',
    arg: 'required',
    set: (o, v) => {
      if (!v || !FACILITIES.test(v)) return `invalid log facility '${v}' (0-7, local0-7, user, daemon)`;
      o.logFacility = v;
      return undefined;
    },
  },
  { long: 'pid', short: 'p', arg: 'required', set: store('pidFile', (v) => v ?? '') },
  { long: 'vrrp_pid', short: 'r', arg: 'required', set: store('vrrpPidFile', (v) => v ?? '') },
  { long: 'checkers_pid', short: 'c', arg: 'required', set: store('checkersPidFile', (v) => v ?? '') },
  { long: 'config-id', short: 'i', arg: 'required', set: store('configId', (v) => v) },
  {
    long: 'config-test',
    short: 't',
    arg: 'optional',
    set: (o, v) => {
      if (o.command !== 'help' && o.command !== 'version') o.command = 'config-test';
      if (v) o.configTestLog = v;
      return undefined;
    },
  },
  {
    long: 'dump-conf',
    short: 'd',
    arg: 'none',
    set: store('command', (_v, o) => (o.command === 'run' ? 'dump-conf' : o.command)),
  },
  { long: 'help', short: 'h', arg: 'none', set: store('command', () => 'help') },
  {
    long: 'version',
    short: 'v',
    arg: 'none',
    set: store('command', (_v, o) => (o.command === 'help' ? 'help' : 'version')),
  },
  { long: 'dont-respawn', short: 'R', arg: 'none', set: store('dontRespawn', () => true) },
  { long: 'log-file', short: 'g', arg: 'optional', set: store('logFile', (v) => v ?? '/tmp/keepalived.log') },
  { long: 'no-syslog', short: 'G', arg: 'none', set: store('noSyslog', () => true) },
  { long: 'lenient', arg: 'none', set: store('lenient', () => true) },
  { long: 'no-interface-check', arg: 'none', set: store('noInterfaceCheck', () => true) },
  { long: 'socket', arg: 'required', set: store('socket', (v) => v) },
  {
    long: 'api',
    arg: 'required',
    set: (o, v) => {
      const api = v ? parseApi(v) : undefined;
      if (!api) return `invalid --api '${v}' (expected HOST:PORT, e.g. 127.0.0.1:9180)`;
      o.api = api;
      return undefined;
    },
  },
  {
    long: 'api-token',
    arg: 'required',
    set: (o, v) => {
      // NAME:TOKEN names the token in the audit trail; a plain TOKEN is the `default` one
      const m = /^([A-Za-z][A-Za-z0-9_.-]{0,31}):(.+)$/.exec(v ?? '');
      if (m) o.apiTokens = [...o.apiTokens.filter((t) => t.name !== m[1]), { name: m[1], token: m[2] }];
      else if (v) o.apiToken = v;
      else return 'invalid --api-token (TOKEN or NAME:TOKEN)';
      return undefined;
    },
  },
  { long: 'managed-config', arg: 'required', set: store('managedConfig', (v) => v) },
  {
    long: 'peer-api',
    arg: 'required',
    set: (o, v) => {
      if (!v || !/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(v))
        return `invalid --peer-api '${v}' (expected http://HOST:PORT)`;
      o.peerApi = v.replace(/\/+$/, '');
      return undefined;
    },
  },
  { long: 'peer-token', arg: 'required', set: store('peerToken', (v) => v) },
  {
    long: 'proxy-protocol',
    arg: 'required',
    set: (o, v) => {
      if (v !== 'v1' && v !== 'v2') return `invalid --proxy-protocol '${v}' (v1 or v2)`;
      o.proxyProtocol = v;
      return undefined;
    },
  },
  { long: 'expire-nodest-conn', arg: 'none', set: store('expireNodestConn', () => true) },
  {
    long: 'udp-flows',
    arg: 'required',
    set: (o, v) => {
      const n = Number(v);
      if (!/^[0-9]+$/.test(v ?? '') || n < 1 || n > 1_000_000) return `invalid --udp-flows '${v}' (1 to 1000000)`;
      o.udpFlows = n;
      return undefined;
    },
  },
  {
    long: 'force-reload',
    arg: 'none',
    set: store('command', (_v, o) => (o.command === 'run' ? 'force-reload' : o.command)),
  },
  {
    long: 'dataplane',
    arg: 'required',
    set: (o, v) => {
      if (v !== 'auto' && v !== 'proxy' && v !== 'nft') return `invalid --dataplane '${v}' (auto, nft or proxy)`;
      o.dataplane = v;
      return undefined;
    },
  },
  {
    long: 'dataplane-workers',
    arg: 'required',
    set: (o, v) => {
      const n = Number(v);
      if (!/^[0-9]+$/.test(v ?? '') || n < 1 || n > 256) return `invalid --dataplane-workers '${v}' (1 to 256)`;
      o.dataplaneWorkers = n;
      return undefined;
    },
  },
];

const usage = (message: string): Result<never, UsageError> =>
  err({ message: `keepvs: ${message}\nTry 'keepvs --help' for more information.`, exitCode: 2 });

export function parseKeepvsArgs(argv: readonly string[]): Result<KeepvsOptions, UsageError> {
  const o: Draft = {
    command: 'run',
    useFile: DEFAULT_CONFIG_FILE,
    vrrpOnly: false,
    checkOnly: false,
    dontFork: false,
    logConsole: false,
    logDetail: false,
    pidFile: '/run/keepvs.pid',
    vrrpPidFile: '/run/keepvs_vrrp.pid',
    checkersPidFile: '/run/keepvs_checkers.pid',
    dontRespawn: false,
    noSyslog: false,
    api: { ...DEFAULT_API },
    apiTokens: [],
    dataplane: 'auto',
    expireNodestConn: false,
    lenient: false,
    noInterfaceCheck: false,
    demoArgs: [],
  };
  const byLong = new Map(OPTIONS.map((s) => [s.long, s]));
  const byShort = new Map(OPTIONS.filter((s) => s.short).map((s) => [s.short as string, s]));
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      if (i + 1 < argv.length) return usage(`unexpected argument '${argv[i + 1]}'`);
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq < 0 ? a.slice(2) : a.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec) return usage(`unrecognized option '--${name}'`);
      let v: string | undefined = eq < 0 ? undefined : a.slice(eq + 1);
      if (spec.arg === 'none' && v !== undefined) return usage(`option '--${name}' doesn't allow an argument`);
      if (spec.arg === 'required' && v === undefined) {
        if (i + 1 >= argv.length) return usage(`option '--${name}' requires an argument`);
        v = argv[++i];
      }
      const problem = spec.set(o, v);
      if (problem) return usage(problem);
      continue;
    }
    if (a.startsWith('-') && a.length > 1) {
      for (let k = 1; k < a.length; k++) {
        const spec = byShort.get(a[k]);
        if (!spec) return usage(`invalid option -- '${a[k]}'`);
        let v: string | undefined;
        if (spec.arg !== 'none') {
          const attached = a.slice(k + 1);
          if (attached) v = attached;
          else if (spec.arg === 'required') {
            if (i + 1 >= argv.length) return usage(`option requires an argument -- '${a[k]}'`);
            v = argv[++i];
          }
          k = a.length;
        }
        const problem = spec.set(o, v);
        if (problem) return usage(problem);
      }
      continue;
    }
    if (a === 'demo' && o.command === 'run') {
      o.command = 'demo';
      o.demoArgs = argv.slice(i + 1);
      break;
    }
    return usage(`unexpected argument '${a}'`);
  }
  if (o.vrrpOnly && o.checkOnly) return usage('-P/--vrrp and -C/--check are mutually exclusive');
  if (o.useFile === '') return usage('-f/--use-file needs a file name');
  return ok(o);
}

export const KEEPVS_HELP = `Usage: keepvs [OPTION...]
       keepvs demo [DEMO OPTIONS]
       keepvs realserver start|stop|status --vip ADDR... [--tun]  (prepare an LVS-DR/TUN real server)
keepalived-compatible VRRP failover, health checks and virtual servers.

  -f, --use-file=FILE          Use the specified configuration file
                               (default ${DEFAULT_CONFIG_FILE})
  -P, --vrrp                   Only run the VRRP subsystem
  -C, --check                  Only run the health-checker / virtual server subsystem
  -l, --log-console            Log messages to the console
  -D, --log-detail             Detailed log messages
  -S, --log-facility=[0-7]     Syslog facility LOCAL[0-7] (or local0-7, user, daemon)
  -g, --log-file[=FILE]        Also log to FILE (default /tmp/keepalived.log)
  -G, --no-syslog              Don't log to syslog
  -n, --dont-fork              Don't fork the daemon process
  -R, --dont-respawn           Don't respawn child processes
  -p, --pid=FILE               Parent pid file
  -r, --vrrp_pid=FILE          VRRP pid file
  -c, --checkers_pid=FILE      Checkers pid file
  -i, --config-id ID           Select @ID conditional lines (default: first label of the host name)
  -t, --config-test[=LOG_FILE] Check the configuration, print every problem (to stderr,
                               or appended to LOG_FILE), and exit: 0 nothing to report,
                               4 cannot run, 5 problems reported (runs as repaired),
                               2 bad command line (keepalived's statuses)
      --lenient                With -t: exit 0 whenever the configuration can run, 3 if not
      --no-interface-check     With -t: don't check that interfaces exist on this host
  -d, --dump-conf              Print the resolved configuration as JSON and exit
      --socket=PATH            keepvsadm control socket
      --api=HOST:PORT          JSON status API and /metrics (default ${DEFAULT_API.host}:${DEFAULT_API.port})
      --api-token=[NAME:]TOKEN Bearer token required by the API (repeatable with NAME:,
                               the name shown in the audit trail)
      --managed-config=FILE    Include file the config API writes
                               (default keepvs-managed.conf beside the configuration file)
      --peer-api=URL           The other director's API (http://HOST:PORT), shown in the dashboard
      --peer-token=TOKEN       Token for the peer's API actions
      --proxy-protocol=v1|v2   Send a PROXY protocol header to the real servers of every TCP
                               service without its own proxy_protocol keyword
      --expire-nodest-conn     Close connections to a removed real server (IPVS
                               expire_nodest_conn; also global_defs expire_nodest_conn)
      --udp-flows=N            UDP flows per proxy process (default: a quarter of its
                               open-file limit, at most 16384)
      --force-reload           Ask the running keepvs (at --api, token from --api-token or
                               the api-token file next to --socket) to reload even though the
                               new file would remove a virtual_server or vrrp_instance and has
                               an unknown top-level block (a plain SIGHUP refuses that)
      --dataplane=auto|nft|proxy  Kernel (nftables) plane when root and nftables work, else the
                               userspace proxy (auto, default); nft or proxy forces one
      --dataplane-workers=N    Proxy processes sharing the load (default: one per core;
                               they outlive an LVS worker crash)
  -v, --version                Display the version number
  -h, --help                   Display this help message
`;
