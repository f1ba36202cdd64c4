/** `virtual_server IP PORT | fwmark N | group NAME { ... }` (KA-man5 "Virtual server(s)", check_parser.c). */

import { netmaskToPrefix } from '../../util/address.js';
import { didYouMean } from '../diagnostics.js';
import type {
  Family,
  LvsMethod,
  LvsProtocol,
  ScriptSpec,
  TunnelSpec,
  VirtualServer,
  VirtualServerKey,
} from '../model.js';
import type { Node } from '../tree.js';
import { parseVsBgpAnnounce } from './bgp-announce.js';
import type { TimingDraft } from './checkers/common.js';
import { DEFAULT_DELAY_LOOP, timingEntries } from './checkers/common.js';
import {
  arg,
  boolArg,
  type Ctx,
  choiceWord,
  deprecated,
  intArg,
  ipWord,
  noExtra,
  parsedOnly,
  parseIntWord,
  parseIp,
  portWord,
  runBlock,
  scriptArg,
  stringArg,
  table,
  unsupportedAll,
  value,
} from './engine.js';
import { parseMethod } from './lvs-common.js';
import { finishRealServer, parseRealServer, type RealServerDraft } from './real-server.js';

/** `flow_pinning` without a timeout: IPVS's TCP established timeout (ip_vs_proto_tcp.c, 15 min). */
export const DEFAULT_FLOW_PIN_TIMEOUT_S = 900;

/** Schedulers IPVS knows (net/netfilter/ipvs/ip_vs_*.c). */
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
];
const SCHED_FLAGS = ['flag-1', 'flag-2', 'flag-3', 'sh-port', 'sh-fallback', 'mh-port', 'mh-fallback'];

export interface VsDraft {
  key: VirtualServerKey;
  protocol?: LvsProtocol;
  scheduler?: string;
  schedFlags: string[];
  ops: boolean;
  method?: LvsMethod;
  tunnel?: TunnelSpec;
  laddrGroup?: string;
  persistenceTimeout?: number;
  persistenceGranularity?: string;
  persistenceEngine?: string;
  timing: TimingDraft;
  haSuspend: boolean;
  alpha: boolean;
  omega: boolean;
  quorum?: number;
  hysteresis?: number;
  quorumUp?: ScriptSpec;
  quorumDown?: ScriptSpec;
  inhibitOnFailure: boolean;
  sorry?: { address: string; family: Family; port: number; method?: LvsMethod };
  sorryInhibit: boolean;
  sorryMethod?: LvsMethod;
  virtualhost?: string;
  smtpAlert?: boolean;
  proxyProtocol?: 'v1' | 'v2' | 'off';
  bgpAnnounce?: VirtualServer['bgpAnnounce'];
  flowPinning?: VirtualServer['flowPinning'];
  weight?: number;
  ipFamily?: Family;
  realServers: RealServerDraft[];
  loc: Node['loc'];
}

function scheduler(n: Node, d: VsDraft, c: Ctx): void {
  const w = arg(n, 0, c, 'a scheduler name');
  if (!w) return;
  noExtra(n, 1, c);
  if (!SCHEDULERS.includes(w.text)) {
    // keepalived: "Invalid lvs_scheduler '%s' - ignoring", then the default (wlc) applies
    c.repair(
      'KV207',
      w.loc,
      `unknown scheduler '${w.text}' (${SCHEDULERS.join(', ')})${didYouMean(w.text, SCHEDULERS)}; ignored, the default wlc applies`,
    );
    return;
  }
  d.scheduler = w.text;
}

function method(n: Node, d: VsDraft, c: Ctx): void {
  const m = parseMethod(n, c);
  if (m) [d.method, d.tunnel] = [m.method, m.tunnel];
}

function persistenceTimeout(n: Node, d: VsDraft, c: Ctx): void {
  // Without a value keepalived uses IPVS_SVC_PERSISTENT_TIMEOUT (360 s, libipvs.h).
  if (n.args.length === 0) {
    d.persistenceTimeout = 360;
    return;
  }
  const v = intArg(n, c, 1, 0xffffffff);
  if (v !== undefined) d.persistenceTimeout = v;
}

function granularity(n: Node, d: VsDraft, c: Ctx): void {
  const w = arg(n, 0, c, 'a netmask or prefix length');
  if (!w) return;
  noExtra(n, 1, c);
  if (/^\d{1,3}$/.test(w.text)) {
    if (Number(w.text) > 128) c.report('KV205', w.loc, `persistence_granularity /${w.text} is out of range`);
    else d.persistenceGranularity = w.text;
    return;
  }
  const contiguous = parseIp(w.text)?.family === 4 && netmaskToPrefix(w.text) !== null;
  if (!contiguous)
    c.report('KV205', w.loc, `persistence_granularity '${w.text}' is not a netmask (e.g. 255.255.255.0)`);
  else d.persistenceGranularity = w.text;
}

function sorryServer(n: Node, d: VsDraft, c: Ctx): void {
  const w = arg(n, 0, c, 'an address and port');
  if (!w) return;
  noExtra(n, 2, c);
  const ip = ipWord(w, c, 'sorry_server');
  if (!ip) return;
  const port = n.args[1] ? portWord(n.args[1], c, 'sorry_server port') : undefined;
  d.sorry = { ...ip, port: port ?? 0 };
}

export const VIRTUAL_SERVER = table<VsDraft>(
  [
    ['lvs_sched', value(scheduler)],
    ['lb_algo', deprecated(value(scheduler), 'lvs_sched', true)],
    ['lvs_method', value(method)],
    ['lb_kind', deprecated(value(method), 'lvs_method', true)],
    [
      'laddr_group_name',
      value((n, d, c) => (d.laddrGroup = stringArg(n, c, 'a local_address_group name') ?? d.laddrGroup)),
    ],
    ['persistence_timeout', value(persistenceTimeout)],
    ['persistence_granularity', value(granularity)],
    [
      'persistence_engine',
      value((n, d, c) => {
        const w = arg(n, 0, c, 'an engine name (sip)');
        if (w) d.persistenceEngine = choiceWord(w, ['sip'] as const, c, 'persistence_engine') ?? d.persistenceEngine;
      }),
    ],
    [
      'protocol',
      value((n, d, c) => {
        const w = arg(n, 0, c, 'TCP|UDP|SCTP');
        if (!w) return;
        noExtra(n, 1, c);
        d.protocol =
          choiceWord({ text: w.text.toUpperCase(), loc: w.loc }, ['TCP', 'UDP', 'SCTP'] as const, c, 'protocol') ??
          d.protocol;
      }),
    ],
    [
      'ha_suspend',
      parsedOnly(
        value((n, d, c) => (d.haSuspend = boolArg(n, c) ?? d.haSuspend)),
        'checks run whether or not the VIP is held',
      ),
    ],
    ['alpha', value((n, d, c) => (d.alpha = boolArg(n, c) ?? d.alpha))],
    ['omega', value((n, d, c) => (d.omega = boolArg(n, c) ?? d.omega))],
    [
      'quorum',
      value((n, d, c) => {
        // keepalived (check_parser.c quorum_handler): "Quorum 0 must be in [1, 4294967295]. Setting to 1."
        if (n.args[0]?.text === '0') {
          c.repair('KV201', n.args[0].loc, 'quorum 0 must be in [1, 4294967295]; set to 1 as keepalived does');
          d.quorum = 1;
          return;
        }
        d.quorum = intArg(n, c, 1, 0xffffffff) ?? d.quorum;
      }),
    ],
    ['hysteresis', value((n, d, c) => (d.hysteresis = intArg(n, c, 0, 0xffffffff) ?? d.hysteresis))],
    ['quorum_up', value((n, d, c) => (d.quorumUp = scriptArg(n, c, true) ?? d.quorumUp))],
    ['quorum_down', value((n, d, c) => (d.quorumDown = scriptArg(n, c, true) ?? d.quorumDown))],
    ['inhibit_on_failure', value((n, d, c) => (d.inhibitOnFailure = boolArg(n, c) ?? d.inhibitOnFailure))],
    ['sorry_server', value(sorryServer)],
    ['sorry_server_inhibit', value((n, d, c) => (d.sorryInhibit = boolArg(n, c) ?? d.sorryInhibit))],
    [
      'sorry_server_lvs_method',
      value((n, d, c) => {
        const m = parseMethod(n, c);
        if (m) d.sorryMethod = m.method;
      }),
    ],
    ['virtualhost', value((n, d, c) => (d.virtualhost = stringArg(n, c, 'a host name') ?? d.virtualhost))],
    ['smtp_alert', value((n, d, c) => (d.smtpAlert = boolArg(n, c) ?? d.smtpAlert))],
    ['weight', value((n, d, c) => (d.weight = intArg(n, c, 0, 65535) ?? d.weight))],
    [
      'ip_family',
      value((n, d, c) => {
        const w = arg(n, 0, c, 'inet|inet6');
        const f = w && choiceWord(w, ['inet', 'inet6'] as const, c, 'ip_family');
        if (f) d.ipFamily = f === 'inet' ? 4 : 6;
      }),
    ],
    ['ops', value((n, d, c) => (d.ops = boolArg(n, c) ?? d.ops))],
    [
      'proxy_protocol',
      value((n, d, c) => {
        c.report('KV116', n.loc, "'proxy_protocol' is a keepvs keyword (keepalived would report it as unknown)");
        const w = arg(n, 0, c, 'a PROXY protocol version (v1, v2 or off)');
        if (w) d.proxyProtocol = choiceWord(w, ['v1', 'v2', 'off'] as const, c, 'proxy_protocol') ?? d.proxyProtocol;
      }),
    ],
    [
      'flow_pinning',
      value((n, d, c) => {
        c.report('KV116', n.loc, "'flow_pinning' is a keepvs keyword (keepalived would report it as unknown)");
        const w = n.args[0];
        const timeoutS = w ? parseIntWord(w, 1, 86400, c, 'flow_pinning timeout') : DEFAULT_FLOW_PIN_TIMEOUT_S;
        if (n.args.length > 1)
          c.report('KV114', n.args[1].loc, "'flow_pinning' takes one timeout; extra words ignored");
        if (timeoutS !== undefined) d.flowPinning = { timeoutS, loc: n.loc };
      }),
    ],
    [
      'bgp_announce',
      value((n, d, c) => {
        const b = parseVsBgpAnnounce(n, c);
        if (b) d.bgpAnnounce = b;
      }),
    ],
    [
      'real_server',
      {
        kind: 'either',
        repeatable: true,
        handle: (n, d, c) => {
          const rs = parseRealServer(n, c);
          if (!rs) return;
          const port = rs.port ?? (d.key.kind === 'address' ? d.key.port : 0);
          if (d.realServers.some((r) => r.ip.address === rs.ip.address && (r.port ?? 0) === port)) {
            c.report(
              'KV301',
              n.loc,
              `real_server ${rs.ip.address} port ${port} is already in this virtual_server; ignored`,
            );
            return;
          }
          rs.port = port;
          d.realServers.push(rs);
        },
      },
    ],
  ],
  SCHED_FLAGS.map((f) => [f, value<VsDraft>((_n, d) => void d.schedFlags.push(f))] as const),
  [['hashed', value<VsDraft>((_n, d) => void d.schedFlags.push('flag-1'))]],
  timingEntries<VsDraft>(),
  unsupportedAll(['snmp_name'], 'SNMP is not implemented', 'value'),
);

/** Parses the `virtual_server` arguments into its key. */
export function parseVsKey(node: Node, ctx: Ctx): VirtualServerKey | undefined {
  const [a, b, c3] = node.args;
  if (!a) {
    ctx.report('KV113', node.loc, "'virtual_server' needs IP PORT, 'fwmark N' or 'group NAME'");
    return undefined;
  }
  if (a.text === 'fwmark') {
    if (!b) return void ctx.report('KV113', a.loc, "'virtual_server fwmark' needs a mark number");
    const mark = parseIntWord(b, 1, 0xffffffff, ctx, 'fwmark');
    if (mark === undefined) return undefined;
    let family: Family = 4;
    if (c3) {
      const f = choiceWord(c3, ['inet', 'inet6'] as const, ctx, 'fwmark family');
      if (f === 'inet6') family = 6;
    }
    return { kind: 'fwmark', fwmark: mark, family };
  }
  if (a.text === 'group') {
    if (!b) return void ctx.report('KV113', a.loc, "'virtual_server group' needs a virtual_server_group name");
    return { kind: 'group', group: b.text };
  }
  const ip = ipWord(a, ctx, 'virtual_server');
  if (!ip) return undefined;
  // keepalived 2.0.7+: `virtual_server IP {` is port 0 (then made persistent, see finishVirtualServer)
  if (!b) return { kind: 'address', address: ip.address, family: ip.family, port: 0 };
  const port = portWord(b, ctx, 'virtual_server port');
  if (port === undefined) return undefined;
  if (c3) ctx.report('KV114', c3.loc, 'virtual_server takes IP PORT; extra words ignored');
  return { kind: 'address', address: ip.address, family: ip.family, port };
}

export function parseVirtualServer(node: Node, ctx: Ctx): VsDraft | undefined {
  const key = parseVsKey(node, ctx);
  if (!key) return undefined;
  const d: VsDraft = {
    key,
    schedFlags: [],
    ops: false,
    timing: {},
    haSuspend: false,
    alpha: false,
    omega: false,
    inhibitOnFailure: false,
    sorryInhibit: false,
    realServers: [],
    loc: node.loc,
  };
  runBlock(node.children ?? [], VIRTUAL_SERVER, d, ctx, `virtual_server ${node.args.map((w) => w.text).join(' ')}`);
  return d;
}

/**
 * End-of-block defaults and corrections, as keepalived's validate_check_config (check_parser.c)
 * makes them: UDP when no protocol is set on an address service, OPS only with UDP, port 0 only
 * with persistence, ha_suspend not with fwmarks, quorum capped at the real servers' total weight,
 * hysteresis below quorum, and real/sorry server ports aligned unless NAT.
 */
export interface GroupShape {
  readonly hasAddresses: boolean;
  readonly hasFwmarks: boolean;
  /** an address entry without a port */
  readonly zeroPort: boolean;
}

export function finishVirtualServer(d: VsDraft, ctx: Ctx, group?: GroupShape): VirtualServer | undefined {
  const where = `virtual_server ${vsName(d)}`;
  if (d.realServers.length === 0) {
    ctx.report('KV314', d.loc, `${where} has no real servers; ignored (as keepalived does)`);
    return undefined;
  }
  const adjust = (message: string) => ctx.report('KV211', d.loc, `${where}: ${message}`);
  // A group made only of fwmarks behaves like a fwmark service.
  const isFwmark = d.key.kind === 'fwmark' || (group !== undefined && !group.hasAddresses && group.hasFwmarks);
  const method = d.method ?? 'NAT';
  const delayLoop = d.timing.delayLoop ?? DEFAULT_DELAY_LOOP;
  const family: Family | undefined = d.key.kind === 'group' ? d.ipFamily : d.key.family;
  if (d.ipFamily && d.key.kind !== 'group' && d.key.family !== d.ipFamily)
    ctx.report('KV312', d.loc, `${where}: ip_family inet${d.ipFamily === 6 ? '6' : ''} contradicts its address`);
  let protocol = d.protocol;
  if (isFwmark && protocol) {
    ctx.report('KV311', d.loc, `${where}: protocol is ignored for a fwmark service`);
    protocol = undefined;
  }
  if (!isFwmark && !protocol) {
    adjust("no protocol set; defaulting to UDP as keepalived does (write 'protocol TCP' for TCP services)");
    protocol = 'UDP';
  }
  let ops = d.ops;
  if (ops && !isFwmark && protocol !== 'UDP') {
    adjust('one-packet scheduling (ops) requires UDP; cleared');
    ops = false;
  }
  let persistenceTimeout = d.persistenceTimeout;
  if (
    persistenceTimeout === undefined &&
    ((d.key.kind === 'address' && d.key.port === 0) || (d.key.kind === 'group' && group?.zeroPort))
  ) {
    adjust('port 0 is only valid for persistent services; persistence_timeout set to 360');
    persistenceTimeout = 360;
  }
  let haSuspend = d.haSuspend;
  if (haSuspend && (isFwmark || group?.hasFwmarks)) {
    adjust('ha_suspend cannot be used with fwmarks; cleared');
    haSuspend = false;
  }
  const vsPort = d.key.kind === 'address' ? d.key.port : 0;
  const realServers = d.realServers.map((rs) => {
    if (family && rs.ip.family !== family && method !== 'TUN')
      ctx.report(
        'KV312',
        rs.loc,
        `real_server ${rs.ip.address} is IPv${rs.ip.family} but the virtual server is IPv${family}`,
      );
    const finished = finishRealServer(
      rs,
      {
        port: vsPort,
        weight: d.weight ?? 1,
        method,
        ...(d.tunnel ? { tunnel: d.tunnel } : {}),
        inhibitOnFailure: d.inhibitOnFailure,
        alpha: d.alpha,
        ...(d.virtualhost ? { virtualhost: d.virtualhost } : {}),
        timing: d.timing,
      },
      ctx,
    );
    // Without NAT the real server cannot translate ports: keepalived forces the service's port.
    if (finished.method !== 'NAT' && finished.method !== 'FNAT' && d.key.kind !== 'group') {
      const want = isFwmark ? 0 : vsPort;
      if (finished.port !== want) {
        ctx.report(
          'KV211',
          rs.loc,
          `real_server ${rs.ip.address}: port ${finished.port} reset to ${want} (${finished.method} cannot change ports)`,
        );
        return { ...finished, port: want };
      }
    }
    return finished;
  });
  const weightSum = realServers.reduce((a, r) => a + r.weight, 0);
  let quorum = d.quorum ?? 1;
  if (quorum > weightSum) {
    adjust(`quorum ${quorum} exceeds the real servers' total weight ${weightSum}; reduced to ${weightSum}`);
    quorum = weightSum;
  }
  let hysteresis = d.hysteresis ?? 0;
  if (hysteresis > 0 && hysteresis >= quorum) {
    const h = Math.max(0, quorum - 1);
    adjust(`hysteresis ${hysteresis} >= quorum ${quorum}; set to ${h}`);
    hysteresis = h;
  }
  if (d.schedFlags.some((f) => f.startsWith('sh-')) && d.scheduler !== 'sh')
    ctx.report('KV311', d.loc, 'sh-port / sh-fallback only apply to lvs_sched sh');
  if (d.schedFlags.some((f) => f.startsWith('mh-')) && d.scheduler !== 'mh')
    ctx.report('KV311', d.loc, 'mh-port / mh-fallback only apply to lvs_sched mh');
  if (d.persistenceGranularity && persistenceTimeout === undefined)
    ctx.report('KV311', d.loc, 'persistence_granularity has no effect without persistence_timeout');
  if (d.sorryMethod && !d.sorry)
    ctx.report('KV311', d.loc, 'sorry_server_lvs_method has no effect without sorry_server');
  let sorryServer: VirtualServer['sorryServer'];
  if (d.sorry) {
    const sorryMethod = d.sorryMethod ?? method;
    let port = d.sorry.port || vsPort;
    if (sorryMethod !== 'NAT' && sorryMethod !== 'FNAT' && d.key.kind !== 'group') port = isFwmark ? 0 : vsPort;
    sorryServer = { ...d.sorry, port, ...(d.sorryMethod ? { method: d.sorryMethod } : {}) };
  }
  return {
    key: d.key,
    protocol: protocol ?? 'TCP',
    scheduler: d.scheduler ?? 'wlc',
    schedFlags: [...new Set(d.schedFlags)],
    ops,
    method,
    ...(method === 'TUN' && d.tunnel ? { tunnel: d.tunnel } : {}),
    ...(d.laddrGroup !== undefined ? { laddrGroup: d.laddrGroup } : {}),
    ...(persistenceTimeout !== undefined ? { persistenceTimeout } : {}),
    ...(d.persistenceGranularity ? { persistenceGranularity: d.persistenceGranularity } : {}),
    ...(d.persistenceEngine ? { persistenceEngine: d.persistenceEngine } : {}),
    delayLoop,
    haSuspend,
    alpha: d.alpha,
    omega: d.omega,
    quorum,
    hysteresis,
    ...(d.quorumUp ? { quorumUp: d.quorumUp } : {}),
    ...(d.quorumDown ? { quorumDown: d.quorumDown } : {}),
    inhibitOnFailure: d.inhibitOnFailure,
    ...(sorryServer ? { sorryServer } : {}),
    sorryServerInhibit: d.sorryInhibit,
    ...(d.virtualhost ? { virtualhost: d.virtualhost } : {}),
    ...(d.smtpAlert !== undefined ? { smtpAlert: d.smtpAlert } : {}),
    ...(d.proxyProtocol ? { proxyProtocol: d.proxyProtocol } : {}),
    ...(d.bgpAnnounce ? { bgpAnnounce: d.bgpAnnounce } : {}),
    ...(d.flowPinning ? { flowPinning: d.flowPinning } : {}),
    realServers,
    loc: d.loc,
  };
}

const vsName = (d: VsDraft): string => {
  const k = d.key;
  if (k.kind === 'address') return `${k.family === 6 ? `[${k.address}]` : k.address} ${k.port}`;
  if (k.kind === 'fwmark') return `fwmark ${k.fwmark}`;
  return `group ${k.group}`;
};
