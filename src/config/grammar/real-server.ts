/** `real_server IP [PORT] { weight ...; checkers }` (KA-man5 "Real server(s)", check_parser.c). */
import type { Checker, LvsMethod, RealServer, ScriptSpec, TunnelSpec } from '../model.js';
import type { Node } from '../tree.js';
import { type CheckerDraft, resolveTiming, type TimingDraft, timingEntries } from './checkers/common.js';
import { CHECKERS } from './checkers/index.js';
import {
  boolArg,
  type Ctx,
  type IpValue,
  intArg,
  ipWord,
  type KeywordEntry,
  portWord,
  runBlock,
  scriptArg,
  stringArg,
  table,
  unsupportedAll,
  value,
} from './engine.js';
import { parseMethod } from './lvs-common.js';

export interface RealServerDraft {
  ip: IpValue;
  port?: number;
  weight?: number;
  method?: LvsMethod;
  tunnel?: TunnelSpec;
  uthreshold?: number;
  lthreshold?: number;
  inhibitOnFailure?: boolean;
  alpha?: boolean;
  notifyUp?: ScriptSpec;
  notifyDown?: ScriptSpec;
  smtpAlert?: boolean;
  virtualhost?: string;
  timing: TimingDraft;
  checkers: { node: Node; draft: CheckerDraft }[];
  loc: Node['loc'];
}

type E = KeywordEntry<RealServerDraft>;

const checkerEntry = (type: Checker['type']): E => ({
  kind: 'block',
  repeatable: true,
  handle: (n, d, c) => {
    const spec = CHECKERS.get(type);
    if (!spec) return;
    const draft: CheckerDraft = { type, loc: n.loc, timing: {}, specific: {} };
    if (n.args.length > 0) c.report('KV114', n.args[0].loc, `${type} takes no arguments; ignored`);
    runBlock(n.children ?? [], spec.table, draft, c, type);
    d.checkers.push({ node: n, draft });
  },
});

export const REAL_SERVER = new Map<string, E>([
  ...table<RealServerDraft>(
    [
      ['weight', value((n, d, c) => (d.weight = intArg(n, c, 0, 65535) ?? d.weight))],
      [
        'lvs_method',
        value((n, d, c) => {
          const m = parseMethod(n, c);
          if (m) [d.method, d.tunnel] = [m.method, m.tunnel];
        }),
      ],
      ['uthreshold', value((n, d, c) => (d.uthreshold = intArg(n, c, 0, 0xffffffff) ?? d.uthreshold))],
      ['lthreshold', value((n, d, c) => (d.lthreshold = intArg(n, c, 0, 0xffffffff) ?? d.lthreshold))],
      ['inhibit_on_failure', value((n, d, c) => (d.inhibitOnFailure = boolArg(n, c) ?? d.inhibitOnFailure))],
      ['alpha', value((n, d, c) => (d.alpha = boolArg(n, c) ?? d.alpha))],
      ['notify_up', value((n, d, c) => (d.notifyUp = scriptArg(n, c, true) ?? d.notifyUp))],
      ['notify_down', value((n, d, c) => (d.notifyDown = scriptArg(n, c, true) ?? d.notifyDown))],
      ['smtp_alert', value((n, d, c) => (d.smtpAlert = boolArg(n, c) ?? d.smtpAlert))],
      ['virtualhost', value((n, d, c) => (d.virtualhost = stringArg(n, c, 'a host name') ?? d.virtualhost))],
    ],
    timingEntries<RealServerDraft>(),
    [...CHECKERS.keys()].map((t) => [t, checkerEntry(t)] as const),
    unsupportedAll(['BFD_CHECK'], 'BFD is not implemented', 'block'),
    unsupportedAll(['snmp_name'], 'SNMP is not implemented', 'value'),
  ),
]);

export function parseRealServer(node: Node, ctx: Ctx): RealServerDraft | undefined {
  const w = node.args[0];
  if (!w) {
    ctx.report('KV113', node.loc, "'real_server' needs an address and usually a port");
    return undefined;
  }
  const ip = ipWord(w, ctx, 'real_server');
  if (!ip) return undefined;
  const d: RealServerDraft = { ip, timing: {}, checkers: [], loc: node.loc };
  if (node.args[1]) d.port = portWord(node.args[1], ctx, 'real_server port');
  if (node.args.length > 2) ctx.report('KV114', node.args[2].loc, 'real_server takes IP [PORT]; extra words ignored');
  runBlock(node.children ?? [], REAL_SERVER, d, ctx, `real_server ${w.text}`);
  return d;
}

export interface VsDefaults {
  readonly port: number;
  readonly weight: number;
  readonly method: LvsMethod;
  readonly tunnel?: TunnelSpec;
  readonly inhibitOnFailure: boolean;
  readonly alpha: boolean;
  readonly virtualhost?: string;
  readonly timing: TimingDraft;
}

export function finishRealServer(d: RealServerDraft, vs: VsDefaults, ctx: Ctx): RealServer {
  const checkers: Checker[] = [];
  for (const { node, draft } of d.checkers) {
    const spec = CHECKERS.get(draft.type);
    if (!spec) continue;
    const timing = resolveTiming(draft.type, [draft.timing, d.timing, vs.timing]);
    const specific = spec.finish(node, draft, ctx, timing.delayLoop);
    if (!specific) continue;
    const common = {
      type: draft.type,
      loc: draft.loc,
      ...timing,
      alpha: draft.alpha ?? d.alpha ?? vs.alpha,
      logAllFailures: draft.logAllFailures ?? false,
    };
    const conn = {
      ...(draft.connectIp ? { connectIp: draft.connectIp } : {}),
      ...(draft.connectPort !== undefined ? { connectPort: draft.connectPort } : {}),
      ...(draft.bindTo ? { bindTo: draft.bindTo } : {}),
      ...(draft.bindPort !== undefined ? { bindPort: draft.bindPort } : {}),
      ...(draft.bindIf ? { bindIf: draft.bindIf } : {}),
      ...(draft.fwmark !== undefined ? { fwmark: draft.fwmark } : {}),
    };
    const isConnecting = draft.type !== 'MISC_CHECK' && draft.type !== 'FILE_CHECK';
    checkers.push({ ...common, ...(isConnecting ? conn : {}), ...specific } as Checker);
  }
  const uth = d.uthreshold ?? 0;
  const lth = d.lthreshold ?? 0;
  if (uth && lth > uth) ctx.report('KV201', d.loc, `real_server: lthreshold ${lth} is above uthreshold ${uth}`);
  const method = d.method ?? vs.method;
  const tunnel = d.method ? d.tunnel : vs.tunnel;
  return {
    address: d.ip.address,
    family: d.ip.family,
    port: d.port ?? vs.port,
    weight: d.weight ?? vs.weight,
    method,
    ...(method === 'TUN' && tunnel ? { tunnel } : {}),
    uthreshold: uth,
    lthreshold: lth,
    inhibitOnFailure: d.inhibitOnFailure ?? vs.inhibitOnFailure,
    alpha: d.alpha ?? vs.alpha,
    ...(d.notifyUp ? { notifyUp: d.notifyUp } : {}),
    ...(d.notifyDown ? { notifyDown: d.notifyDown } : {}),
    ...(d.smtpAlert !== undefined ? { smtpAlert: d.smtpAlert } : {}),
    ...((d.virtualhost ?? vs.virtualhost) ? { virtualhost: d.virtualhost ?? vs.virtualhost } : {}),
    checkers,
    loc: d.loc,
  };
}
