/**
 * Health-checker blocks inside `real_server` (keepalived.conf(5) "Checkers"). Timing fields are
 * resolved here with keepalived's precedence: checker, real_server, virtual_server, checker default.
 * Defaults follow keepalived's check_api.c/check_*.c: retry 1 and delay_before_retry 1 s, HTTP and
 * SSL delay_before_retry 3 s, DNS retry 3 with delay_before_retry = delay_loop, MISC retry 0.
 */
import type { Node } from '../lexer.js';
import type { Checker, CheckerType, HttpUrl, ScriptSpec, SourceLoc } from '../model.js';
import {
  applyTable,
  argAt,
  boolArg,
  type Ctx,
  intArg,
  type KeywordTable,
  makeScript,
  noExtra,
  oneOf,
  parseAddress,
  parseNumber,
  parsePort,
  secondsArg,
  stringArg,
  unsupported,
} from './common.js';

/** Timing given at real_server / virtual_server level, used when a checker leaves it unset. */
export interface InheritedTiming {
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  delayLoop: number;
  alpha?: boolean;
}

interface CheckerBuilder {
  type: CheckerType;
  loc: SourceLoc;
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  delayLoop?: number;
  alpha?: boolean;
  logAllFailures: boolean;
  connectIp?: string;
  connectPort?: number;
  bindTo?: string;
  bindPort?: number;
  bindIf?: string;
  fwmark?: number;
  urls: HttpUrl[];
  httpProtocol: '1.0' | '1.0C' | '1.1';
  virtualhost?: string;
  enableSni: boolean;
  fastRecovery: boolean;
  miscPath?: ScriptSpec;
  miscTimeout?: number;
  miscDynamic: boolean;
  user?: string;
  group?: string;
  heloName?: string;
  queryType: 'A' | 'NS' | 'CNAME' | 'SOA' | 'MX' | 'TXT' | 'AAAA';
  name: string;
  payload?: string;
  requireReply?: string;
  minReplyLength: number;
  maxReplyLength: number;
  trackFile?: string;
  dynamic: boolean;
  weight: number;
  weightReverse: boolean;
}

const common: KeywordTable<CheckerBuilder> = {
  connect_timeout: { handle: (n, c, b) => void (b.connectTimeout = secondsArg(n, c, 0.001, 3600)) },
  retry: { handle: (n, c, b) => void (b.retry = intArg(n, c, 0, 1_000_000)) },
  nb_get_retry: { deprecated: 'retry', handle: (n, c, b) => void (b.retry = intArg(n, c, 0, 1_000_000)) },
  delay_before_retry: { handle: (n, c, b) => void (b.delayBeforeRetry = secondsArg(n, c, 0, 86400)) },
  warmup: { handle: (n, c, b) => void (b.warmup = secondsArg(n, c, 0, 86400)) },
  delay_loop: { handle: (n, c, b) => void (b.delayLoop = secondsArg(n, c, 0.001, 86400)) },
  alpha: { handle: (n, c, b) => void (b.alpha = boolArg(n, c)) },
  log_all_failures: { handle: (n, c, b) => void (b.logAllFailures = boolArg(n, c)) },
};

const connecting: KeywordTable<CheckerBuilder> = {
  ...common,
  connect_ip: {
    handle: (n, c, b) =>
      void (b.connectIp = parseAddress(argAt(n, 0, c, 'an address'), c, { what: 'connect_ip' })?.address),
  },
  connect_port: {
    handle: (n, c, b) => {
      noExtra(n, 1, c);
      b.connectPort = parsePort(argAt(n, 0, c, 'a port'), c, 'connect_port');
    },
  },
  bindto: {
    handle: (n, c, b) => void (b.bindTo = parseAddress(argAt(n, 0, c, 'an address'), c, { what: 'bindto' })?.address),
  },
  bind_port: {
    handle: (n, c, b) => {
      noExtra(n, 1, c);
      b.bindPort = parsePort(argAt(n, 0, c, 'a port'), c, 'bind_port');
    },
  },
  bind_if: { handle: (n, c, b) => void (b.bindIf = stringArg(n, c)) },
  fwmark: { handle: (n, c, b) => void (b.fwmark = intArg(n, c, 0, 0xffffffff)) },
};

function parseStatusCodes(n: Node, ctx: Ctx): [number, number][] {
  const out: [number, number][] = [];
  for (const a of n.args) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(a.text);
    if (!m) {
      ctx.diag.report('KV201', a.loc, `status_code '${a.text}' is not a code (100..599) or a range like 200-299`);
      continue;
    }
    const lo = Number(m[1]);
    const hi = Number(m[2] ?? m[1]);
    if (lo < 100 || hi > 599 || hi < lo)
      ctx.diag.report('KV201', a.loc, `status_code '${a.text}' is out of range 100..599`);
    else out.push([lo, hi]);
  }
  if (n.args.length === 0) ctx.diag.report('KV104', n.loc, 'status_code needs at least one code');
  return out;
}

interface UrlBuilder {
  path?: string;
  digest?: string;
  statusCodes: [number, number][];
  virtualhost?: string;
  regex?: string;
  regexNoMatch: boolean;
}

const urlTable: KeywordTable<UrlBuilder> = {
  path: { handle: (n, c, u) => void (u.path = stringArg(n, c)) },
  digest: {
    handle: (n, c, u) => {
      const d = stringArg(n, c);
      if (d === undefined) return;
      if (!/^[0-9a-fA-F]{32}$/.test(d))
        c.diag.report('KV203', n.args[0].loc, `digest '${d}' is not an MD5 hex digest (32 hex digits)`);
      else u.digest = d.toLowerCase();
    },
  },
  status_code: { handle: (n, c, u) => void u.statusCodes.push(...parseStatusCodes(n, c)) },
  virtualhost: { handle: (n, c, u) => void (u.virtualhost = stringArg(n, c)) },
  regex: { handle: (n, _c, u) => void (u.regex = n.args.map((a) => a.text).join(' ')) },
  regex_no_match: { handle: (_n, _c, u) => void (u.regexNoMatch = true) },
  ...unsupported<UrlBuilder>(
    'regex tuning is not implemented',
    'regex_options',
    'regex_stack',
    'regex_min_offset',
    'regex_max_offset',
  ),
};

function parseUrl(n: Node, ctx: Ctx): HttpUrl | undefined {
  const u: UrlBuilder = { statusCodes: [], regexNoMatch: false };
  applyTable(n.children, urlTable, u, ctx, 'url');
  if (!u.path) {
    ctx.diag.report('KV305', n.loc, "url block has no 'path'");
    return undefined;
  }
  if (u.regex !== undefined) {
    try {
      new RegExp(u.regex);
    } catch {
      ctx.diag.report('KV203', n.loc, `url regex '${u.regex}' is not a valid regular expression`);
    }
  }
  return {
    path: u.path,
    ...(u.digest ? { digest: u.digest } : {}),
    statusCodes: u.statusCodes.length ? u.statusCodes : u.digest ? [] : [[200, 299]],
    ...(u.virtualhost ? { virtualhost: u.virtualhost } : {}),
    ...(u.regex !== undefined ? { regex: u.regex } : {}),
    regexNoMatch: u.regexNoMatch,
    loc: n.loc,
  };
}

const httpTable: KeywordTable<CheckerBuilder> = {
  ...connecting,
  url: {
    block: true,
    handle: (n, c, b) => {
      const u = parseUrl(n, c);
      if (u) b.urls.push(u);
    },
  },
  http_protocol: {
    handle: (n, c, b) => {
      const v = oneOf(argAt(n, 0, c, '1.0, 1.0C or 1.1'), ['1.0', '1.0C', '1.1'] as const, c, 'http_protocol', true);
      if (v) b.httpProtocol = v;
    },
  },
  virtualhost: { handle: (n, c, b) => void (b.virtualhost = stringArg(n, c)) },
  enable_sni: { handle: (n, c, b) => void (b.enableSni = boolArg(n, c)) },
  fast_recovery: { handle: (n, c, b) => void (b.fastRecovery = boolArg(n, c)) },
  ...unsupported<CheckerBuilder>('not implemented yet', 'sni_name', 'tls_compliant'),
};

const miscTable: KeywordTable<CheckerBuilder> = {
  ...common,
  misc_path: {
    handle: (n, c, b) => {
      const w = argAt(n, 0, c, 'a command');
      if (w) b.miscPath = makeScript(w.text, w.loc, c);
      noExtra(n, 1, c);
    },
  },
  misc_timeout: { handle: (n, c, b) => void (b.miscTimeout = secondsArg(n, c, 0.001, 86400)) },
  misc_dynamic: { handle: (_n, _c, b) => void (b.miscDynamic = true) },
  user: {
    handle: (n, c, b) => {
      noExtra(n, 2, c);
      b.user = argAt(n, 0, c, 'a user')?.text;
      b.group = n.args[1]?.text;
    },
  },
};

const smtpTable: KeywordTable<CheckerBuilder> = {
  ...connecting,
  helo_name: { handle: (n, c, b) => void (b.heloName = stringArg(n, c)) },
  host: { unsupported: "the old SMTP_CHECK 'host' sub-block is deprecated in keepalived; use one SMTP_CHECK per host" },
};

const DNS_TYPES = ['A', 'NS', 'CNAME', 'SOA', 'MX', 'TXT', 'AAAA'] as const;
const dnsTable: KeywordTable<CheckerBuilder> = {
  ...connecting,
  type: {
    handle: (n, c, b) => {
      const t = oneOf(argAt(n, 0, c, 'a record type'), DNS_TYPES, c, 'DNS_CHECK type', true);
      if (t) b.queryType = t;
    },
  },
  name: { handle: (n, c, b) => void (b.name = stringArg(n, c) ?? '.') },
};

function hexArg(n: Node, c: Ctx, wildcards: boolean): string | undefined {
  const v = stringArg(n, c);
  if (v === undefined) return undefined;
  const re = wildcards ? /^([0-9a-fA-FxX]{2})*$/ : /^([0-9a-fA-F]{2})*$/;
  if (!re.test(v)) {
    c.diag.report(
      'KV203',
      n.args[0].loc,
      `'${n.keyword}' takes hex bytes${wildcards ? ' (X as a wildcard nibble)' : ''}, not '${v}'`,
    );
    return undefined;
  }
  return v.toLowerCase();
}

const udpTable: KeywordTable<CheckerBuilder> = {
  ...connecting,
  payload: { handle: (n, c, b) => void (b.payload = hexArg(n, c, false)) },
  require_reply: { handle: (n, c, b) => void (b.requireReply = n.args.length ? hexArg(n, c, true) : '') },
  min_reply_length: { handle: (n, c, b) => void (b.minReplyLength = intArg(n, c, 0, 65535) ?? 0) },
  max_reply_length: { handle: (n, c, b) => void (b.maxReplyLength = intArg(n, c, 0, 65535) ?? 255) },
};

const fileTable: KeywordTable<CheckerBuilder> = {
  ...common,
  track_file: { handle: (n, c, b) => void (b.trackFile = stringArg(n, c)) },
  dynamic: { handle: (_n, _c, b) => void (b.dynamic = true) },
  weight: {
    handle: (n, c, b) => {
      b.weight =
        parseNumber(argAt(n, 0, c, 'a weight'), c, { min: -65535, max: 65535, integer: true, what: 'weight' }) ?? 1;
      b.weightReverse = n.args[1]?.text === 'reverse';
    },
  },
};

export const CHECKER_TABLES: Readonly<Record<CheckerType, KeywordTable<CheckerBuilder>>> = {
  TCP_CHECK: connecting,
  HTTP_GET: httpTable,
  SSL_GET: httpTable,
  MISC_CHECK: miscTable,
  SMTP_CHECK: smtpTable,
  DNS_CHECK: dnsTable,
  UDP_CHECK: udpTable,
  PING_CHECK: connecting,
  FILE_CHECK: fileTable,
};

export function parseChecker(type: CheckerType, n: Node, ctx: Ctx, inherited: InheritedTiming): Checker | undefined {
  const b: CheckerBuilder = {
    type,
    loc: n.loc,
    logAllFailures: false,
    urls: [],
    httpProtocol: '1.0',
    enableSni: false,
    fastRecovery: false,
    miscDynamic: false,
    queryType: 'SOA',
    name: '.',
    minReplyLength: 0,
    maxReplyLength: 255,
    dynamic: false,
    weight: 1,
    weightReverse: false,
  };
  applyTable(n.children, CHECKER_TABLES[type], b, ctx, type);
  const delayLoop = b.delayLoop ?? inherited.delayLoop;
  const defaultRetry = type === 'DNS_CHECK' ? 3 : type === 'MISC_CHECK' ? 0 : 1;
  const defaultDbr = type === 'HTTP_GET' || type === 'SSL_GET' ? 3 : type === 'DNS_CHECK' ? delayLoop : 1;
  const base = {
    loc: n.loc,
    connectTimeout: b.connectTimeout ?? inherited.connectTimeout ?? 5,
    retry: b.retry ?? inherited.retry ?? defaultRetry,
    delayBeforeRetry: b.delayBeforeRetry ?? inherited.delayBeforeRetry ?? defaultDbr,
    warmup: b.warmup ?? inherited.warmup ?? delayLoop,
    delayLoop,
    alpha: b.alpha ?? inherited.alpha ?? false,
    logAllFailures: b.logAllFailures,
  };
  const conn = {
    ...base,
    ...(b.connectIp !== undefined ? { connectIp: b.connectIp } : {}),
    ...(b.connectPort !== undefined ? { connectPort: b.connectPort } : {}),
    ...(b.bindTo !== undefined ? { bindTo: b.bindTo } : {}),
    ...(b.bindPort !== undefined ? { bindPort: b.bindPort } : {}),
    ...(b.bindIf !== undefined ? { bindIf: b.bindIf } : {}),
    ...(b.fwmark !== undefined ? { fwmark: b.fwmark } : {}),
  };
  switch (type) {
    case 'TCP_CHECK':
    case 'PING_CHECK':
      return { type, ...conn };
    case 'HTTP_GET':
    case 'SSL_GET':
      if (b.urls.length === 0) {
        ctx.diag.report('KV305', n.loc, `${type} has no url { path ... } block`);
        return undefined;
      }
      return {
        type,
        ...conn,
        urls: b.urls,
        httpProtocol: b.httpProtocol,
        ...(b.virtualhost !== undefined ? { virtualhost: b.virtualhost } : {}),
        enableSni: b.enableSni || type === 'SSL_GET',
        fastRecovery: b.fastRecovery,
      };
    case 'MISC_CHECK': {
      if (!b.miscPath) {
        ctx.diag.report('KV305', n.loc, "MISC_CHECK has no 'misc_path'");
        return undefined;
      }
      const miscPath =
        b.user !== undefined ? { ...b.miscPath, user: b.user, ...(b.group ? { group: b.group } : {}) } : b.miscPath;
      return { type, ...base, miscPath, miscTimeout: b.miscTimeout ?? delayLoop, miscDynamic: b.miscDynamic };
    }
    case 'SMTP_CHECK':
      return { type, ...conn, heloName: b.heloName ?? 'localhost' };
    case 'DNS_CHECK':
      return { type, ...conn, queryType: b.queryType, name: b.name };
    case 'UDP_CHECK':
      return {
        type,
        ...conn,
        ...(b.payload !== undefined ? { payload: b.payload } : {}),
        ...(b.requireReply !== undefined ? { requireReply: b.requireReply } : {}),
        minReplyLength: b.minReplyLength,
        maxReplyLength: b.maxReplyLength,
      };
    case 'FILE_CHECK':
      if (!b.trackFile) {
        ctx.diag.report('KV305', n.loc, "FILE_CHECK has no 'track_file'");
        return undefined;
      }
      return {
        type,
        ...base,
        trackFile: b.trackFile,
        dynamic: b.dynamic,
        weight: b.weight,
        weightReverse: b.weightReverse,
      };
  }
}
