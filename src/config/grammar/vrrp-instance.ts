/** `vrrp_instance NAME { ... }` (KA-man5 "VRRP instance(s)", keepalived/vrrp/vrrp_parser.c). */
import type { GlobalDefs, IpAddressEntry, RouteEntry, RuleEntry, UnicastPeer, VrrpInstance } from '../model.js';
import type { Node } from '../tree.js';
import {
  arg,
  block,
  boolArg,
  type Ctx,
  choiceWord,
  deprecated,
  intArg,
  ipWord,
  type KeywordEntry,
  type Mutable,
  noExtra,
  parseIntWord,
  runBlock,
  stringArg,
  table,
  timerArg,
  unsupportedAll,
  value,
} from './engine.js';
import { listBlock, parseAddressEntry, parseRouteEntry, parseRuleEntry } from './ip-entries.js';
import { newTrackingDraft, type TrackingDraft, trackingEntries } from './tracking.js';

export interface InstanceDraft extends TrackingDraft {
  name: string;
  state?: 'MASTER' | 'BACKUP';
  interface?: string;
  vrid?: number;
  priority?: number;
  advertInt?: number;
  version?: 2 | 3;
  nopreempt: boolean;
  preemptDelay?: number;
  downTimerAdverts?: number;
  vips: IpAddressEntry[];
  evips: IpAddressEntry[];
  routes: RouteEntry[];
  rules: RuleEntry[];
  noVirtualIpaddress: boolean;
  srcIp?: string;
  mcastDstIp?: string;
  unicastPeers: UnicastPeer[];
  unicastTtl?: number;
  unicastFaultNoPeer: boolean;
  auth?: { type: 'PASS' | 'AH'; pass: string };
  dontTrackPrimary: boolean;
  garp: Partial<
    Record<
      'masterDelay' | 'masterRepeat' | 'masterRefresh' | 'masterRefreshRepeat' | 'lowerPrioDelay' | 'lowerPrioRepeat',
      number
    >
  >;
  accept?: boolean;
  strictMode?: boolean;
  flags: Partial<
    Record<
      | 'skipCheckAdvAddr'
      | 'lowerPrioNoAdvert'
      | 'higherPrioSendAdvert'
      | 'ownerIgnoreAdverts'
      | 'checkUnicastSrc'
      | 'v3ChecksumAsV2'
      | 'promoteSecondaries',
      boolean
    >
  >;
  lvsSyncDaemonInterface?: string;
}

type E = KeywordEntry<InstanceDraft>;
type FlagKey = keyof InstanceDraft['flags'];
type GarpKey = keyof InstanceDraft['garp'];

const flag = (key: FlagKey): E =>
  value((n, d, c) => {
    const v = boolArg(n, c);
    if (v !== undefined) d.flags[key] = v;
  });
const garp = (key: GarpKey, min: number, max: number): E =>
  value((n, d, c) => {
    const v = intArg(n, c, min, max);
    if (v !== undefined) d.garp[key] = v;
  });

function authentication(n: Node, d: InstanceDraft, c: Ctx): void {
  let type: 'PASS' | 'AH' | undefined;
  let pass: string | undefined;
  for (const child of n.children ?? []) {
    if (child.keyword.text === 'auth_type') {
      const w = arg(child, 0, c, 'PASS|AH');
      if (w) type = choiceWord(w, ['PASS', 'AH'] as const, c, 'auth_type');
      noExtra(child, 1, c);
    } else if (child.keyword.text === 'auth_pass') {
      const w = arg(child, 0, c, 'a password');
      if (!w) continue;
      noExtra(child, 1, c);
      pass = w.text;
      // RFC 2338 §5.3.10: the authentication data field is 8 octets; keepalived keeps the first 8.
      if (pass.length > 8) {
        c.report(
          'KV209',
          w.loc,
          `auth_pass '${pass}' is ${pass.length} characters; only the first 8 ('${pass.slice(0, 8)}') are used, as keepalived does`,
        );
        pass = pass.slice(0, 8);
      }
    } else
      c.report('KV110', child.loc, `unknown keyword '${child.keyword.text}' in authentication (auth_type, auth_pass)`);
  }
  if (!type) {
    c.report('KV309', n.loc, 'authentication without auth_type; ignored');
    return;
  }
  if (type === 'PASS' && pass === undefined) c.report('KV309', n.loc, 'auth_type PASS without auth_pass');
  d.auth = { type, pass: pass ?? '' };
}

function unicastPeer(n: Node, d: InstanceDraft, c: Ctx): void {
  for (const child of n.children ?? []) {
    const ip = ipWord(child.keyword, c, 'unicast_peer');
    if (!ip) continue;
    const peer: Mutable<UnicastPeer> = { ...ip };
    for (let i = 0; i < child.args.length; i += 2) {
      const k = child.args[i];
      const v = child.args[i + 1];
      if ((k.text === 'min_ttl' || k.text === 'max_ttl') && v) {
        const t = parseIntWord(v, 0, 255, c, `unicast_peer ${k.text}`);
        if (t !== undefined) peer[k.text === 'min_ttl' ? 'minTtl' : 'maxTtl'] = t;
      } else c.report('KV114', k.loc, `unicast_peer: unexpected '${k.text}' ignored (expected min_ttl N / max_ttl N)`);
    }
    if (d.unicastPeers.some((p) => p.address === peer.address))
      c.report('KV311', child.loc, `unicast_peer ${peer.address} listed twice`);
    else d.unicastPeers.push(peer);
  }
}

const srcIp = value<InstanceDraft>((n, d, c) => {
  const w = arg(n, 0, c, 'an address');
  if (!w) return;
  noExtra(n, 1, c);
  d.srcIp = ipWord(w, c, `'${n.keyword.text}'`)?.address ?? d.srcIp;
});

export const VRRP_INSTANCE = table<InstanceDraft>(
  [
    [
      'state',
      value((n, d, c) => {
        const w = arg(n, 0, c, 'MASTER|BACKUP');
        if (!w) return;
        noExtra(n, 1, c);
        d.state = choiceWord(w, ['MASTER', 'BACKUP'] as const, c, 'state') ?? d.state;
      }),
    ],
    ['interface', value((n, d, c) => (d.interface = stringArg(n, c, 'an interface name') ?? d.interface))],
    ['virtual_router_id', value((n, d, c) => (d.vrid = intArg(n, c, 1, 255) ?? d.vrid))],
    ['priority', value((n, d, c) => (d.priority = intArg(n, c, 1, 255) ?? d.priority))],
    ['advert_int', value((n, d, c) => (d.advertInt = timerArg(n, c, 0.01, 255) ?? d.advertInt))],
    ['version', value((n, d, c) => (d.version = (intArg(n, c, 2, 3) as 2 | 3 | undefined) ?? d.version))],
    ['nopreempt', value((_n, d) => (d.nopreempt = true))],
    ['preempt', value((_n, d) => (d.nopreempt = false))],
    ['preempt_delay', value((n, d, c) => (d.preemptDelay = timerArg(n, c, 0, 1000) ?? d.preemptDelay))],
    ['down_timer_adverts', value((n, d, c) => (d.downTimerAdverts = intArg(n, c, 1, 100) ?? d.downTimerAdverts))],
    ['virtual_ipaddress', block((n, d, c) => d.vips.push(...listBlock(n, c, parseAddressEntry)))],
    ['virtual_ipaddress_excluded', block((n, d, c) => d.evips.push(...listBlock(n, c, parseAddressEntry)))],
    ['virtual_routes', block((n, d, c) => d.routes.push(...listBlock(n, c, parseRouteEntry)))],
    ['virtual_rules', block((n, d, c) => d.rules.push(...listBlock(n, c, parseRuleEntry)))],
    ['no_virtual_ipaddress', value((_n, d) => (d.noVirtualIpaddress = true))],
    ['mcast_src_ip', srcIp],
    ['unicast_src_ip', srcIp],
    [
      'mcast_dst_ip',
      value((n, d, c) => {
        const w = arg(n, 0, c, 'a multicast address');
        if (w) d.mcastDstIp = ipWord(w, c, 'mcast_dst_ip')?.address ?? d.mcastDstIp;
      }),
    ],
    ['unicast_peer', block(unicastPeer)],
    ['unicast_ttl', value((n, d, c) => (d.unicastTtl = intArg(n, c, 1, 255) ?? d.unicastTtl))],
    ['unicast_fault_no_peer', value((_n, d) => (d.unicastFaultNoPeer = true))],
    ['authentication', block(authentication, { repeatable: false })],
    ['dont_track_primary', value((_n, d) => (d.dontTrackPrimary = true))],
    ['garp_master_delay', garp('masterDelay', 0, 86400)],
    ['garp_master_repeat', garp('masterRepeat', 0, 65535)],
    ['garp_master_refresh', garp('masterRefresh', 0, 86400)],
    ['garp_master_refresh_repeat', garp('masterRefreshRepeat', 1, 65535)],
    ['garp_lower_prio_delay', garp('lowerPrioDelay', 0, 86400)],
    ['garp_lower_prio_repeat', garp('lowerPrioRepeat', 0, 65535)],
    ['accept', value((_n, d) => (d.accept = true))],
    ['no_accept', value((_n, d) => (d.accept = false))],
    ['strict_mode', value((n, d, c) => (d.strictMode = boolArg(n, c) ?? d.strictMode))],
    ['skip_check_adv_addr', flag('skipCheckAdvAddr')],
    ['lower_prio_no_advert', flag('lowerPrioNoAdvert')],
    ['higher_prio_send_advert', flag('higherPrioSendAdvert')],
    ['owner_ignore_adverts', flag('ownerIgnoreAdverts')],
    ['check_unicast_src', flag('checkUnicastSrc')],
    ['v3_checksum_as_v2', flag('v3ChecksumAsV2')],
    ['promote_secondaries', flag('promoteSecondaries')],
    [
      'lvs_sync_daemon_interface',
      deprecated(
        value((n, d, c) => (d.lvsSyncDaemonInterface = stringArg(n, c, 'an interface') ?? d.lvsSyncDaemonInterface)),
        'lvs_sync_daemon (global_defs)',
      ),
    ],
    [
      'native_ipv6',
      deprecated(
        value((_n, d) => (d.version = 3)),
        'an IPv6 virtual_ipaddress',
      ),
    ],
  ],
  trackingEntries<InstanceDraft>(),
  unsupportedAll(
    ['use_vmac', 'use_vmac_addr', 'vmac_xmit_base', 'use_ipvlan', 'garp_extra_if', 'vmac_garp_intvl'],
    'VMAC / ipvlan interfaces are not implemented',
  ),
  unsupportedAll(['auth_hmac'], 'HMAC authentication is not implemented', 'block'),
  unsupportedAll(
    [
      'vrf',
      'kernel_rx_buf_size',
      'debug',
      'linkbeat_use_polling',
      'track_src_ip',
      'old_unicast_checksum',
      'timer_expired_backup',
      'thread_timer_expired',
    ],
    'this vrrp_instance option has no keepvs equivalent',
  ),
);

export const newInstanceDraft = (name: string): InstanceDraft => ({
  ...newTrackingDraft(),
  name,
  nopreempt: false,
  vips: [],
  evips: [],
  routes: [],
  rules: [],
  noVirtualIpaddress: false,
  unicastPeers: [],
  unicastFaultNoPeer: false,
  dontTrackPrimary: false,
  garp: {},
  flags: {},
});

/** End-of-block validation and defaults (keepalived fills them from global_defs). */
export function finishInstance(node: Node, d: InstanceDraft, g: GlobalDefs, ctx: Ctx): VrrpInstance | undefined {
  const where = `vrrp_instance ${d.name}`;
  if (d.vrid === undefined) {
    ctx.report('KV309', node.loc, `${where} has no virtual_router_id (1..255); instance ignored`);
    return undefined;
  }
  if (!d.interface && d.unicastPeers.length === 0)
    ctx.report('KV309', node.loc, `${where} has no 'interface' (needed unless unicast_peer is set)`);
  const first = d.vips[0] ?? d.unicastPeers[0];
  const family = first?.family ?? 4;
  for (const v of d.vips)
    if (v.family !== family)
      ctx.report(
        'KV312',
        v.loc,
        `${where}: ${v.address} is IPv${v.family} but the instance is IPv${family} (use virtual_ipaddress_excluded for mixed families)`,
      );
  for (const p of d.unicastPeers)
    if (p.family !== family) ctx.report('KV312', node.loc, `${where}: unicast_peer ${p.address} is not IPv${family}`);
  let version: 2 | 3 = d.version ?? g.vrrpVersion;
  if (family === 6 && version === 2) {
    if (d.version === 2) ctx.report('KV211', node.loc, `${where}: IPv6 needs VRRP version 3; using version 3`);
    version = 3;
  }
  let advertInt = d.advertInt ?? 1;
  if (version === 2 && !Number.isInteger(advertInt)) {
    const adjusted = Math.max(1, Math.round(advertInt));
    ctx.report('KV211', node.loc, `${where}: VRRPv2 advert_int is whole seconds; ${advertInt} becomes ${adjusted}`);
    advertInt = adjusted;
  } else if (version === 3) {
    const cs = Math.round(advertInt * 100);
    if (cs > 4095) {
      ctx.report('KV211', node.loc, `${where}: VRRPv3 advert_int is at most 40.95 s; using 40.95`);
      advertInt = 40.95;
    } else advertInt = Math.max(1, cs) / 100;
  }
  const state = d.state ?? 'BACKUP';
  const priority = d.priority ?? 100;
  if (d.preemptDelay && state === 'MASTER')
    ctx.report('KV311', node.loc, `${where}: preempt_delay needs 'state BACKUP' (ignored with MASTER)`);
  if (d.nopreempt && state === 'MASTER')
    ctx.report('KV311', node.loc, `${where}: nopreempt needs 'state BACKUP'; keepalived ignores it with MASTER`);
  if (d.vips.length === 0 && !d.noVirtualIpaddress && d.evips.length === 0)
    ctx.report('KV311', node.loc, `${where} has no virtual_ipaddress`);
  const strict = d.strictMode ?? g.vrrpStrict;
  const f = d.flags;
  return {
    name: d.name,
    initialState: state,
    ...(d.interface ? { interface: d.interface } : {}),
    vrid: d.vrid,
    priority,
    advertInt,
    version,
    family,
    nopreempt: d.nopreempt && state !== 'MASTER',
    preemptDelay: state === 'MASTER' ? 0 : (d.preemptDelay ?? 0),
    downTimerAdverts: d.downTimerAdverts ?? 3,
    virtualIpaddresses: d.vips,
    virtualIpaddressesExcluded: d.evips,
    virtualRoutes: d.routes,
    virtualRules: d.rules,
    ...(d.srcIp ? { srcIp: d.srcIp } : {}),
    ...(d.mcastDstIp ? { mcastDstIp: d.mcastDstIp } : {}),
    unicastPeers: d.unicastPeers,
    ...(d.unicastTtl !== undefined ? { unicastTtl: d.unicastTtl } : {}),
    unicastFaultNoPeer: d.unicastFaultNoPeer,
    ...(d.auth ? { authentication: d.auth } : {}),
    dontTrackPrimary: d.dontTrackPrimary,
    trackInterfaces: d.trackInterfaces,
    trackScripts: d.trackScripts,
    trackFiles: d.trackFiles,
    trackProcesses: d.trackProcesses,
    notify: d.notify,
    ...(d.smtpAlert !== undefined ? { smtpAlert: d.smtpAlert } : {}),
    garpMasterDelay: d.garp.masterDelay ?? g.vrrpGarpMasterDelay,
    garpMasterRepeat: d.garp.masterRepeat ?? g.vrrpGarpMasterRepeat,
    garpMasterRefresh: d.garp.masterRefresh ?? g.vrrpGarpMasterRefresh,
    garpMasterRefreshRepeat: d.garp.masterRefreshRepeat ?? g.vrrpGarpMasterRefreshRepeat,
    ...((d.garp.lowerPrioDelay ?? g.vrrpGarpLowerPrioDelay) !== undefined
      ? { garpLowerPrioDelay: d.garp.lowerPrioDelay ?? g.vrrpGarpLowerPrioDelay }
      : {}),
    ...((d.garp.lowerPrioRepeat ?? g.vrrpGarpLowerPrioRepeat) !== undefined
      ? { garpLowerPrioRepeat: d.garp.lowerPrioRepeat ?? g.vrrpGarpLowerPrioRepeat }
      : {}),
    accept: d.accept ?? !strict,
    strictMode: strict,
    skipCheckAdvAddr: f.skipCheckAdvAddr ?? g.vrrpSkipCheckAdvAddr,
    lowerPrioNoAdvert: f.lowerPrioNoAdvert ?? g.vrrpLowerPrioNoAdvert,
    higherPrioSendAdvert: f.higherPrioSendAdvert ?? g.vrrpHigherPrioSendAdvert,
    ownerIgnoreAdverts: f.ownerIgnoreAdverts ?? false,
    checkUnicastSrc: f.checkUnicastSrc ?? g.vrrpCheckUnicastSrc,
    v3ChecksumAsV2: f.v3ChecksumAsV2 ?? g.v3ChecksumAsV2,
    promoteSecondaries: f.promoteSecondaries ?? false,
    ...(d.lvsSyncDaemonInterface ? { lvsSyncDaemonInterface: d.lvsSyncDaemonInterface } : {}),
    loc: node.loc,
  };
}

export const parseInstanceBody = (node: Node, d: InstanceDraft, ctx: Ctx): void =>
  runBlock(node.children ?? [], VRRP_INSTANCE, d, ctx, `vrrp_instance ${d.name}`);
