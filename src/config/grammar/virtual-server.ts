/** `virtual_server`, `real_server`, `sorry_server` and `virtual_server_group` (keepalived.conf(5) "LVS CONFIGURATION"). */
import ipaddr from 'ipaddr.js';
import type { Node } from '../lexer.js';
import type {
  Checker,
  CheckerType,
  Family,
  LvsMethod,
  LvsProtocol,
  RealServer,
  ScriptSpec,
  SourceLoc,
  TunnelSpec,
  VirtualServer,
  VirtualServerGroup,
  VirtualServerKey,
  VsgEntry,
} from '../model.js';
import { CHECKER_TABLES, type InheritedTiming, parseChecker } from './checkers.js';
import {
  applyTable,
  argAt,
  boolArg,
  type Ctx,
  intArg,
  type KeywordTable,
  noExtra,
  oneOf,
  parseAddress,
  parseNumber,
  parsePort,
  scriptArg,
  secondsArg,
  stringArg,
} from './common.js';

/** IPVS's scheduler names (ip_vs_*.c); keepalived passes them through. */
export const SCHEDULERS = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'dh',
  'sh',
  'sed',
  'nq',
  'fo',
  'ovf',
  'mh',
  'twos',
] as const;
const SCHED_FLAGS = ['flag-1', 'flag-2', 'flag-3', 'sh-port', 'sh-fallback', 'mh-port', 'mh-fallback'];
/** IPVS_SVC_PERSISTENT_TIMEOUT (libipvs.h), used by ipvsadm and keepalived alike. */
export const DEFAULT_PERSISTENCE_TIMEOUT = 360;

interface Timing {
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  delayLoop?: number;
  alpha?: boolean;
}

interface RsBuilder extends Timing {
  weight?: number;
  method?: LvsMethod;
  tunnel?: TunnelSpec;
  uthreshold: number;
  lthreshold: number;
  inhibitOnFailure?: boolean;
  notifyUp?: ScriptSpec;
  notifyDown?: ScriptSpec;
  smtpAlert?: boolean;
  virtualhost?: string;
  checkerNodes: { type: CheckerType; node: Node }[];
}

interface VsBuilder extends Timing {
  protocol: LvsProtocol;
  scheduler: string;
  schedFlags: string[];
  ops: boolean;
  method: LvsMethod;
  tunnel?: TunnelSpec;
  persistenceTimeout?: number;
  persistenceGranularity?: string;
  persistenceEngine?: string;
  haSuspend: boolean;
  omega: boolean;
  quorum: number;
  hysteresis: number;
  quorumUp?: ScriptSpec;
  quorumDown?: ScriptSpec;
  inhibitOnFailure: boolean;
  sorryServer?: { address: string; family: Family; port: number; method?: LvsMethod };
  sorryServerInhibit: boolean;
  virtualhost?: string;
  smtpAlert?: boolean;
  weight: number;
  ipFamily?: Family;
  realServerNodes: Node[];
  loc: SourceLoc;
}

function timingEntries<T extends Timing>(): KeywordTable<T> {
  return {
    connect_timeout: { handle: (n, c, t) => void (t.connectTimeout = secondsArg(n, c, 0.001, 3600)) },
    retry: { handle: (n, c, t) => void (t.retry = intArg(n, c, 0, 1_000_000)) },
    nb_get_retry: { deprecated: 'retry', handle: (n, c, t) => void (t.retry = intArg(n, c, 0, 1_000_000)) },
    delay_before_retry: { handle: (n, c, t) => void (t.delayBeforeRetry = secondsArg(n, c, 0, 86400)) },
    warmup: { handle: (n, c, t) => void (t.warmup = secondsArg(n, c, 0, 86400)) },
    delay_loop: { handle: (n, c, t) => void (t.delayLoop = secondsArg(n, c, 0.001, 86400)) },
    alpha: { handle: (n, c, t) => void (t.alpha = boolArg(n, c)) },
  };
}

/** `lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]` */
function parseMethod(n: Node, ctx: Ctx): { method?: LvsMethod; tunnel?: TunnelSpec } {
  const m = oneOf(argAt(n, 0, ctx, 'NAT, DR or TUN'), ['NAT', 'DR', 'TUN'] as const, ctx, 'forwarding method', true);
  if (m !== 'TUN') {
    noExtra(n, 1, ctx);
    return { method: m };
  }
  const t: { -readonly [K in keyof TunnelSpec]: TunnelSpec[K] } = { type: 'ipip' };
  for (let i = 1; i < n.args.length; i++) {
    const w = n.args[i].text;
    if (w === 'type') {
      t.type = oneOf(n.args[++i], ['ipip', 'gue', 'gre'] as const, ctx, 'tunnel type') ?? 'ipip';
    } else if (w === 'port') t.port = parsePort(n.args[++i], ctx, 'tunnel port');
    else if (w === 'nocsum' || w === 'csum' || w === 'remcsum') t.csum = w;
    else ctx.diag.report('KV203', n.args[i].loc, `unexpected '${w}' after TUN`);
  }
  if (t.type === 'gue' && t.port === undefined) ctx.diag.report('KV305', n.loc, 'GUE tunnels need a port');
  return { method: 'TUN', tunnel: t };
}

function checkerEntries(): KeywordTable<RsBuilder> {
  const out: Record<string, { block: true; handle: (n: Node, c: Ctx, r: RsBuilder) => void }> = {};
  for (const type of Object.keys(CHECKER_TABLES) as CheckerType[]) {
    out[type] = { block: true, handle: (n, _c, r) => void r.checkerNodes.push({ type, node: n }) };
  }
  return out;
}

const realServerTable: KeywordTable<RsBuilder> = {
  weight: { handle: (n, c, r) => void (r.weight = intArg(n, c, 0, 65535)) },
  lvs_method: {
    handle: (n, c, r) => {
      const m = parseMethod(n, c);
      r.method = m.method;
      r.tunnel = m.tunnel;
    },
  },
  lb_kind: {
    deprecated: 'lvs_method',
    handle: (n, c, r) => {
      const m = parseMethod(n, c);
      r.method = m.method;
      r.tunnel = m.tunnel;
    },
  },
  uthreshold: { handle: (n, c, r) => void (r.uthreshold = intArg(n, c, 0, 65535) ?? 0) },
  lthreshold: { handle: (n, c, r) => void (r.lthreshold = intArg(n, c, 0, 65535) ?? 0) },
  inhibit_on_failure: { handle: (n, c, r) => void (r.inhibitOnFailure = boolArg(n, c)) },
  notify_up: { handle: (n, c, r) => void (r.notifyUp = scriptArg(n, c)) },
  notify_down: { handle: (n, c, r) => void (r.notifyDown = scriptArg(n, c)) },
  smtp_alert: { handle: (n, c, r) => void (r.smtpAlert = boolArg(n, c)) },
  virtualhost: { handle: (n, c, r) => void (r.virtualhost = stringArg(n, c)) },
  ...timingEntries<RsBuilder>(),
  ...checkerEntries(),
  BFD_CHECK: { block: true, unsupported: 'BFD is not implemented' },
  snmp_name: { unsupported: 'SNMP is not implemented' },
};

const virtualServerTable: KeywordTable<VsBuilder> = {
  lvs_sched: {
    handle: (n, c, v) => {
      const s = oneOf(argAt(n, 0, c, 'a scheduler'), SCHEDULERS, c, 'scheduler');
      if (s) v.scheduler = s;
      noExtra(n, 1, c);
    },
  },
  lb_algo: {
    deprecated: 'lvs_sched',
    handle: (n, c, v) => {
      const s = oneOf(argAt(n, 0, c, 'a scheduler'), SCHEDULERS, c, 'scheduler');
      if (s) v.scheduler = s;
      noExtra(n, 1, c);
    },
  },
  ...Object.fromEntries(
    SCHED_FLAGS.map((f) => [
      f,
      { handle: (_n: Node, _c: Ctx, v: VsBuilder) => void (v.schedFlags.includes(f) || v.schedFlags.push(f)) },
    ]),
  ),
  hashed: { handle: (_n, _c, v) => void (v.schedFlags.includes('sh-port') || v.schedFlags.push('flag-1')) },
  ops: { handle: (_n, _c, v) => void (v.ops = true) },
  lvs_method: {
    handle: (n, c, v) => {
      const m = parseMethod(n, c);
      if (m.method) v.method = m.method;
      v.tunnel = m.tunnel;
    },
  },
  lb_kind: {
    deprecated: 'lvs_method',
    handle: (n, c, v) => {
      const m = parseMethod(n, c);
      if (m.method) v.method = m.method;
      v.tunnel = m.tunnel;
    },
  },
  protocol: {
    handle: (n, c, v) => {
      const p = oneOf(argAt(n, 0, c, 'TCP, UDP or SCTP'), ['TCP', 'UDP', 'SCTP'] as const, c, 'protocol', true);
      if (p === 'SCTP') c.diag.report('KV102', n.args[0].loc, 'SCTP virtual servers are not supported by keepvs');
      else if (p) v.protocol = p;
    },
  },
  persistence_timeout: {
    handle: (n, c, v) => {
      noExtra(n, 1, c);
      v.persistenceTimeout = n.args[0]
        ? parseNumber(n.args[0], c, { min: 1, max: 2678400, integer: true, what: 'persistence_timeout' })
        : DEFAULT_PERSISTENCE_TIMEOUT;
    },
  },
  persistence_granularity: {
    handle: (n, c, v) => {
      const w = argAt(n, 0, c, 'a netmask or prefix length');
      if (!w) return;
      if (/^\d+$/.test(w.text) ? Number(w.text) <= 128 : ipaddr.IPv4.isValidFourPartDecimal(w.text))
        v.persistenceGranularity = w.text;
      else c.diag.report('KV202', w.loc, `persistence_granularity '${w.text}' is not a netmask or prefix length`);
    },
  },
  persistence_engine: { handle: (n, c, v) => void (v.persistenceEngine = stringArg(n, c)) },
  ha_suspend: { handle: (_n, _c, v) => void (v.haSuspend = true) },
  omega: { handle: (_n, _c, v) => void (v.omega = true) },
  quorum: { handle: (n, c, v) => void (v.quorum = intArg(n, c, 1, 0x7fffffff) ?? 1) },
  hysteresis: { handle: (n, c, v) => void (v.hysteresis = intArg(n, c, 0, 0x7fffffff) ?? 0) },
  quorum_up: { handle: (n, c, v) => void (v.quorumUp = scriptArg(n, c)) },
  quorum_down: { handle: (n, c, v) => void (v.quorumDown = scriptArg(n, c)) },
  inhibit_on_failure: { handle: (n, c, v) => void (v.inhibitOnFailure = boolArg(n, c)) },
  sorry_server: {
    handle: (n, c, v) => {
      noExtra(n, 2, c);
      const a = parseAddress(argAt(n, 0, c, 'an address'), c, { what: 'sorry_server' });
      const port = n.args[1] ? parsePort(n.args[1], c, 'sorry_server port') : 0;
      if (a) v.sorryServer = { address: a.address, family: a.family, port: port ?? 0 };
    },
  },
  sorry_server_inhibit: { handle: (n, c, v) => void (v.sorryServerInhibit = boolArg(n, c)) },
  sorry_server_lvs_method: {
    handle: (n, c, v) => {
      const m = parseMethod(n, c);
      if (v.sorryServer && m.method) v.sorryServer = { ...v.sorryServer, method: m.method };
    },
  },
  virtualhost: { handle: (n, c, v) => void (v.virtualhost = stringArg(n, c)) },
  smtp_alert: { handle: (n, c, v) => void (v.smtpAlert = boolArg(n, c)) },
  weight: { handle: (n, c, v) => void (v.weight = intArg(n, c, 0, 65535) ?? 1) },
  ip_family: {
    handle: (n, c, v) => {
      const f = oneOf(argAt(n, 0, c, 'inet or inet6'), ['inet', 'inet6'] as const, c, 'ip_family');
      if (f) v.ipFamily = f === 'inet' ? 4 : 6;
    },
  },
  real_server: { block: 'optional', handle: (n, _c, v) => void v.realServerNodes.push(n) },
  ...timingEntries<VsBuilder>(),
  snmp_name: { unsupported: 'SNMP is not implemented' },
};

function parseRealServer(n: Node, ctx: Ctx, vs: VsBuilder, vsPort: number): RealServer | undefined {
  noExtra(n, 2, ctx);
  const a = parseAddress(argAt(n, 0, ctx, 'an address'), ctx, { what: 'real_server' });
  const port = n.args[1] ? parsePort(n.args[1], ctx, 'real_server port') : vsPort;
  const r: RsBuilder = { uthreshold: 0, lthreshold: 0, checkerNodes: [] };
  applyTable(n.children, realServerTable, r, ctx, `real_server ${n.args.map((x) => x.text).join(' ')}`);
  if (!a || port === undefined) return undefined;
  const inherited: InheritedTiming = {
    connectTimeout: r.connectTimeout ?? vs.connectTimeout,
    retry: r.retry ?? vs.retry,
    delayBeforeRetry: r.delayBeforeRetry ?? vs.delayBeforeRetry,
    warmup: r.warmup ?? vs.warmup,
    delayLoop: r.delayLoop ?? vs.delayLoop ?? 60,
    alpha: r.alpha ?? vs.alpha,
  };
  const checkers: Checker[] = [];
  for (const { type, node } of r.checkerNodes) {
    const ch = parseChecker(type, node, ctx, inherited);
    if (ch) checkers.push(ch);
  }
  if (r.uthreshold && r.lthreshold > r.uthreshold) {
    ctx.diag.report(
      'KV306',
      n.loc,
      `real_server ${a.address}: lthreshold ${r.lthreshold} is above uthreshold ${r.uthreshold}`,
    );
  }
  return {
    address: a.address,
    family: a.family,
    port,
    weight: r.weight ?? vs.weight,
    method: r.method ?? vs.method,
    ...((r.tunnel ?? vs.tunnel) ? { tunnel: r.tunnel ?? vs.tunnel } : {}),
    uthreshold: r.uthreshold,
    lthreshold: r.lthreshold,
    inhibitOnFailure: r.inhibitOnFailure ?? vs.inhibitOnFailure,
    alpha: r.alpha ?? vs.alpha ?? false,
    ...(r.notifyUp ? { notifyUp: r.notifyUp } : {}),
    ...(r.notifyDown ? { notifyDown: r.notifyDown } : {}),
    ...((r.smtpAlert ?? vs.smtpAlert) !== undefined ? { smtpAlert: r.smtpAlert ?? vs.smtpAlert } : {}),
    ...((r.virtualhost ?? vs.virtualhost) !== undefined ? { virtualhost: r.virtualhost ?? vs.virtualhost } : {}),
    checkers,
    loc: n.loc,
  };
}

function parseKey(n: Node, ctx: Ctx): VirtualServerKey | undefined {
  const first = argAt(n, 0, ctx, 'an address and port, fwmark N, or group NAME');
  if (!first) return undefined;
  if (first.text === 'fwmark') {
    noExtra(n, 2, ctx);
    const mark = parseNumber(argAt(n, 1, ctx, 'a firewall mark'), ctx, {
      min: 1,
      max: 0xffffffff,
      integer: true,
      what: 'fwmark',
    });
    return mark === undefined ? undefined : { kind: 'fwmark', fwmark: mark, family: 4 };
  }
  if (first.text === 'group') {
    noExtra(n, 2, ctx);
    const g = argAt(n, 1, ctx, 'a group name');
    return g ? { kind: 'group', group: g.text } : undefined;
  }
  noExtra(n, 2, ctx);
  const a = parseAddress(first, ctx, { what: 'virtual_server' });
  const port = n.args[1] ? parsePort(n.args[1], ctx, 'virtual_server port') : 0;
  if (!a || port === undefined) return undefined;
  return { kind: 'address', address: a.address, family: a.family, port };
}

export function parseVirtualServer(n: Node, ctx: Ctx): VirtualServer | undefined {
  let key = parseKey(n, ctx);
  const v: VsBuilder = {
    protocol: 'TCP',
    scheduler: 'wlc',
    schedFlags: [],
    ops: false,
    method: 'NAT',
    haSuspend: false,
    omega: false,
    quorum: 1,
    hysteresis: 0,
    inhibitOnFailure: false,
    sorryServerInhibit: false,
    weight: 1,
    realServerNodes: [],
    loc: n.loc,
  };
  applyTable(n.children, virtualServerTable, v, ctx, `virtual_server ${n.args.map((a) => a.text).join(' ')}`);
  if (!key) return undefined;
  if (key.kind === 'fwmark' && v.ipFamily) key = { ...key, family: v.ipFamily };
  if (key.kind === 'address' && key.port === 0 && v.persistenceTimeout === undefined) {
    ctx.diag.report(
      'KV306',
      n.loc,
      'a virtual_server with port 0 (all ports) needs persistence_timeout (as IPVS requires)',
    );
  }
  if (v.ops && v.protocol !== 'UDP')
    ctx.diag.report('KV306', n.loc, "'ops' (one-packet scheduling) applies to UDP only; ignored");
  const vsPort = key.kind === 'address' ? key.port : 0;
  const realServers: RealServer[] = [];
  const seen = new Map<string, SourceLoc>();
  for (const rn of v.realServerNodes) {
    const rs = parseRealServer(rn, ctx, v, vsPort);
    if (!rs) continue;
    const id = `${rs.address}:${rs.port}`;
    const prev = seen.get(id);
    if (prev) {
      ctx.diag.report(
        'KV302',
        rs.loc,
        `real_server ${id} is already defined at ${prev.file}:${prev.line}; this one is ignored`,
      );
      continue;
    }
    seen.set(id, rs.loc);
    if (key.kind === 'address' && rs.family !== key.family && v.method !== 'TUN') {
      ctx.diag.report('KV202', rs.loc, `real_server ${rs.address} is not of the virtual server's address family`);
    }
    realServers.push(rs);
  }
  return {
    key,
    protocol: v.protocol,
    scheduler: v.scheduler,
    schedFlags: v.schedFlags,
    ops: v.ops && v.protocol === 'UDP',
    method: v.method,
    ...(v.tunnel ? { tunnel: v.tunnel } : {}),
    ...(v.persistenceTimeout !== undefined ? { persistenceTimeout: v.persistenceTimeout } : {}),
    ...(v.persistenceGranularity !== undefined ? { persistenceGranularity: v.persistenceGranularity } : {}),
    ...(v.persistenceEngine !== undefined ? { persistenceEngine: v.persistenceEngine } : {}),
    delayLoop: v.delayLoop ?? 60,
    haSuspend: v.haSuspend,
    alpha: v.alpha ?? false,
    omega: v.omega,
    quorum: v.quorum,
    hysteresis: v.hysteresis,
    ...(v.quorumUp ? { quorumUp: v.quorumUp } : {}),
    ...(v.quorumDown ? { quorumDown: v.quorumDown } : {}),
    inhibitOnFailure: v.inhibitOnFailure,
    ...(v.sorryServer ? { sorryServer: { ...v.sorryServer, port: v.sorryServer.port || vsPort } } : {}),
    sorryServerInhibit: v.sorryServerInhibit,
    ...(v.virtualhost !== undefined ? { virtualhost: v.virtualhost } : {}),
    ...(v.smtpAlert !== undefined ? { smtpAlert: v.smtpAlert } : {}),
    realServers,
    loc: n.loc,
  };
}

/** `virtual_server_group NAME { IP [PORT] | a.b.c.d-e [PORT] | a.b.c.d/nn [PORT] | fwmark N }` */
export function parseVirtualServerGroup(n: Node, ctx: Ctx): VirtualServerGroup | undefined {
  const name = argAt(n, 0, ctx, 'a name')?.text;
  const entries: VsgEntry[] = [];
  for (const c of n.children ?? []) {
    if (c.keyword === 'fwmark') {
      const mark = parseNumber(argAt(c, 0, ctx, 'a mark'), ctx, {
        min: 1,
        max: 0xffffffff,
        integer: true,
        what: 'fwmark',
      });
      const fam = c.args[1]?.text === 'inet6' ? 6 : 4;
      if (mark !== undefined) entries.push({ kind: 'fwmark', fwmark: mark, family: fam, loc: c.loc });
      continue;
    }
    noExtra(c, 1, ctx);
    const port = c.args[0] ? parsePort(c.args[0], ctx) : 0;
    if (port === undefined) continue;
    const range = /^([0-9.]+)-(\d{1,3})$/.exec(c.keyword) ?? /^([0-9a-fA-F:.]+)-([0-9a-fA-F:.]+)$/.exec(c.keyword);
    if (range) {
      const first = parseAddress({ text: range[1], loc: c.loc }, ctx, { what: 'group range start' });
      if (!first) continue;
      let lastText = range[2];
      if (first.family === 4 && /^\d{1,3}$/.test(lastText))
        lastText = `${first.address.split('.').slice(0, 3).join('.')}.${lastText}`;
      const last = parseAddress({ text: lastText, loc: c.loc }, ctx, { what: 'group range end' });
      if (!last) continue;
      entries.push({
        kind: 'address',
        address: first.address,
        lastAddress: last.address,
        family: first.family,
        port,
        loc: c.loc,
      });
      continue;
    }
    const a = parseAddress({ text: c.keyword, loc: c.loc }, ctx, { prefix: true, what: 'group entry' });
    if (!a) continue;
    if (a.prefixLen !== undefined) {
      const net = ipaddr.IPv4.isValid(a.address)
        ? ipaddr.IPv4.networkAddressFromCIDR(`${a.address}/${a.prefixLen}`)
        : ipaddr.IPv6.networkAddressFromCIDR(`${a.address}/${a.prefixLen}`);
      const bc = ipaddr.IPv4.isValid(a.address)
        ? ipaddr.IPv4.broadcastAddressFromCIDR(`${a.address}/${a.prefixLen}`)
        : ipaddr.IPv6.broadcastAddressFromCIDR(`${a.address}/${a.prefixLen}`);
      entries.push({
        kind: 'address',
        address: net.toString(),
        lastAddress: bc.toString(),
        family: a.family,
        port,
        loc: c.loc,
      });
    } else
      entries.push({ kind: 'address', address: a.address, lastAddress: a.address, family: a.family, port, loc: c.loc });
  }
  if (!name) return undefined;
  return { name, entries, loc: n.loc };
}
