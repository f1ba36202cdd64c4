/**
 * keepvs's command line: keepalived's options (keepalived(8)) plus keepvs's own.
 * Pure: argv in, options or a usage error out.
 */
export interface KeepvsOptions {
  command: 'run' | 'config-test' | 'dump-conf' | 'help' | 'version' | 'demo';
  configFile: string;
  vrrpOnly: boolean;
  checkOnly: boolean;
  dontFork: boolean;
  logConsole: boolean;
  logDetail: boolean;
  logFacility: string;
  logFile?: string;
  noSyslog: boolean;
  dontRespawn: boolean;
  pidFile: string;
  vrrpPidFile: string;
  checkersPidFile: string;
  configId?: string;
  socket: string;
  api: { host: string; port: number } | null;
  apiToken?: string;
  dataplane: 'proxy' | 'nft';
  /** `keepvs demo --duration S` */
  duration?: number;
}

export const DEFAULT_CONFIG = '/etc/keepalived/keepalived.conf';
export const DEFAULT_SOCKET = '/run/keepvs/keepvs.sock';

export type ParseArgsResult = { ok: true; options: KeepvsOptions } | { ok: false; error: string };

const FACILITIES = new Set([
  'user',
  'daemon',
  ...Array.from({ length: 8 }, (_, i) => `local${i}`),
  ...Array.from({ length: 8 }, (_, i) => String(i)),
]);

interface OptSpec {
  long: string;
  short?: string;
  /** 'none' flag, 'required' value, 'optional' value (only as --opt=value or -oVALUE) */
  arg: 'none' | 'required' | 'optional';
  apply: (o: KeepvsOptions, value: string | undefined) => string | undefined;
}

const OPTIONS: OptSpec[] = [
  { long: 'use-file', short: 'f', arg: 'required', apply: (o, v) => void (o.configFile = v!) },
  { long: 'vrrp', short: 'P', arg: 'none', apply: (o) => void (o.vrrpOnly = true) },
  { long: 'check', short: 'C', arg: 'none', apply: (o) => void (o.checkOnly = true) },
  { long: 'dont-fork', short: 'n', arg: 'none', apply: (o) => void (o.dontFork = true) },
  { long: 'log-console', short: 'l', arg: 'none', apply: (o) => void (o.logConsole = true) },
  { long: 'log-detail', short: 'D', arg: 'none', apply: (o) => void (o.logDetail = true) },
  {
    long: 'log-facility',
    short: 'S',
    arg: 'required',
    apply: (o, v) =>
      FACILITIES.has(v!) ? void (o.logFacility = v!) : `invalid log facility '${v}' (0-7, local0-7, user, daemon)`,
  },
  { long: 'log-file', short: 'g', arg: 'required', apply: (o, v) => void (o.logFile = v) },
  { long: 'no-syslog', short: 'G', arg: 'none', apply: (o) => void (o.noSyslog = true) },
  { long: 'dont-respawn', short: 'R', arg: 'none', apply: (o) => void (o.dontRespawn = true) },
  { long: 'pid', short: 'p', arg: 'required', apply: (o, v) => void (o.pidFile = v!) },
  { long: 'vrrp_pid', short: 'r', arg: 'required', apply: (o, v) => void (o.vrrpPidFile = v!) },
  { long: 'checkers_pid', short: 'c', arg: 'required', apply: (o, v) => void (o.checkersPidFile = v!) },
  { long: 'config-id', short: 'i', arg: 'required', apply: (o, v) => void (o.configId = v) },
  {
    long: 'config-test',
    short: 't',
    arg: 'optional',
    apply: (o, v) => {
      o.command = 'config-test';
      if (v) o.configFile = v;
      return undefined;
    },
  },
  { long: 'dump-conf', short: 'd', arg: 'none', apply: (o) => void (o.command = 'dump-conf') },
  { long: 'help', short: 'h', arg: 'none', apply: (o) => void (o.command = 'help') },
  { long: 'version', short: 'v', arg: 'none', apply: (o) => void (o.command = 'version') },
  { long: 'socket', arg: 'required', apply: (o, v) => void (o.socket = v!) },
  {
    long: 'api',
    arg: 'required',
    apply: (o, v) => {
      if (v === 'off' || v === 'none') {
        o.api = null;
        return undefined;
      }
      const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d+)$/.exec(v!);
      const port = m ? Number(m[3]) : Number.NaN;
      if (!m || port > 65535) return `invalid --api '${v}' (expected HOST:PORT, e.g. 127.0.0.1:9180, or 'off')`;
      o.api = { host: m[1] ?? m[2], port };
      return undefined;
    },
  },
  { long: 'api-token', arg: 'required', apply: (o, v) => void (o.apiToken = v) },
  {
    long: 'dataplane',
    arg: 'required',
    apply: (o, v) =>
      v === 'proxy' || v === 'nft' ? void (o.dataplane = v) : `invalid --dataplane '${v}' (proxy or nft)`,
  },
  {
    long: 'duration',
    arg: 'required',
    apply: (o, v) => {
      const n = Number(v);
      if (!(n > 0)) return `invalid --duration '${v}' (seconds > 0)`;
      o.duration = n;
      return undefined;
    },
  },
];

export function defaultOptions(): KeepvsOptions {
  return {
    command: 'run',
    configFile: DEFAULT_CONFIG,
    vrrpOnly: false,
    checkOnly: false,
    dontFork: false,
    logConsole: false,
    logDetail: false,
    logFacility: 'daemon',
    noSyslog: false,
    dontRespawn: false,
    pidFile: '/run/keepvs.pid',
    vrrpPidFile: '/run/keepvs_vrrp.pid',
    checkersPidFile: '/run/keepvs_checkers.pid',
    socket: process.env.KEEPVS_SOCKET ?? DEFAULT_SOCKET,
    api: { host: '127.0.0.1', port: 9180 },
    dataplane: 'proxy',
  };
}

export function parseKeepvsArgs(argv: readonly string[]): ParseArgsResult {
  const o = defaultOptions();
  const byLong = new Map(OPTIONS.map((s) => [s.long, s]));
  const byShort = new Map(OPTIONS.filter((s) => s.short).map((s) => [s.short!, s]));
  let i = 0;
  if (argv[0] === 'demo') {
    o.command = 'demo';
    i = 1;
  }
  const use = (spec: OptSpec, value: string | undefined): string | undefined => spec.apply(o, value);
  for (; i < argv.length; i++) {
    const a = argv[i];
    let err: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      const spec = byLong.get(name);
      if (!spec) return { ok: false, error: `unrecognized option '${a}'` };
      let value: string | undefined = eq >= 0 ? a.slice(eq + 1) : undefined;
      if (spec.arg === 'none' && value !== undefined)
        return { ok: false, error: `option '--${name}' doesn't allow an argument` };
      if (spec.arg === 'required' && value === undefined) {
        value = argv[++i];
        if (value === undefined) return { ok: false, error: `option '--${name}' requires an argument` };
      }
      err = use(spec, value);
    } else if (a.startsWith('-') && a.length > 1) {
      for (let j = 1; j < a.length; j++) {
        const spec = byShort.get(a[j]);
        if (!spec) return { ok: false, error: `invalid option -- '${a[j]}'` };
        if (spec.arg === 'none') {
          err = use(spec, undefined);
          if (err) break;
          continue;
        }
        let value: string | undefined = a.slice(j + 1) || undefined;
        if (value === undefined && spec.arg === 'required') {
          value = argv[++i];
          if (value === undefined) return { ok: false, error: `option requires an argument -- '${a[j]}'` };
        }
        err = use(spec, value);
        break;
      }
    } else return { ok: false, error: `unexpected argument '${a}'` };
    if (err) return { ok: false, error: err };
  }
  if (o.vrrpOnly && o.checkOnly) return { ok: false, error: '-P/--vrrp and -C/--check cannot be used together' };
  return { ok: true, options: o };
}

export const USAGE = `Usage: keepvs [OPTION...]
       keepvs demo [--duration S] [--api HOST:PORT]

keepalived-compatible options:
  -f, --use-file=FILE          use the specified configuration file (default ${DEFAULT_CONFIG})
  -P, --vrrp                   only run with the VRRP subsystem
  -C, --check                  only run with virtual servers, health checks and the data plane
  -n, --dont-fork              don't fork the daemon process (stay in the foreground)
  -l, --log-console            log messages to the local console
  -D, --log-detail             detailed log messages
  -S, --log-facility=[0-7]     syslog facility LOG_LOCAL[0-7] (also user, daemon)
  -g, --log-file=FILE          also log to FILE
  -G, --no-syslog              don't log via syslog
  -R, --dont-respawn           don't respawn a worker that dies
  -p, --pid=FILE               supervisor pid file (default /run/keepvs.pid)
  -r, --vrrp_pid=FILE          VRRP worker pid file (default /run/keepvs_vrrp.pid)
  -c, --checkers_pid=FILE      checker worker pid file (default /run/keepvs_checkers.pid)
  -i, --config-id=ID           select @ID conditional configuration lines
  -t, --config-test[=FILE]     check the configuration for errors and exit
  -d, --dump-conf              print the resolved configuration as JSON and exit
  -v, --version                print the version and exit
  -h, --help                   print this help and exit

keepvs options:
      --socket=PATH            control socket for keepvsadm (default ${DEFAULT_SOCKET}, or $KEEPVS_SOCKET)
      --api=HOST:PORT|off      status API, metrics and dashboard (default 127.0.0.1:9180)
      --api-token=TOKEN        bearer token required for API actions
      --dataplane=proxy|nft    data plane (default proxy: userspace, no root)
`;
