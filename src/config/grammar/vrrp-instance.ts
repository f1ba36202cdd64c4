/** `vrrp_instance NAME { ... }` (KA-man5 "VRRP instance(s)", keepalived/vrrp/vrrp_parser.c). */
import type {
  GlobalDefs,
  IpAddressEntry,
  RouteEntry,
  RuleEntry,
  SourceLoc,
  UnicastPeer,
  VrrpInstance,
} from '../model.js';
import type { Node, Word } from '../tree.js';
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
  repairing,
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
  interfaceLoc?: SourceLoc;
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
  /** use_vmac [name]: '' = keepalived's default name vrrp.VRID */
  vmac?: string;
  vmacXmitBase?: boolean;
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

/** keepalived accepts (and drops) a /prefix on unicast_src_ip and unicast_peer addresses. */
const withoutPrefix = (w: Word): Word => {
  const m = /^([^/]+)\/\d{1,3}$/.exec(w.text);
  return m ? { ...w, text: m[1] } : w;
};

function unicastPeer(n: Node, d: InstanceDraft, c: Ctx): void {
  for (const child of n.children ?? []) {
    // keepalived: "malformed unicast peer address[...]. Skipping..."
    const ip = ipWord(withoutPrefix(child.keyword), repairing(c), 'unicast_peer');
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
  d.srcIp = ipWord(withoutPrefix(w), c, `'${n.keyword.text}'`)?.address ?? d.srcIp;
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
    [
      'interface',
      value((n, d, c) => {
        d.interface = stringArg(n, c, 'an interface name') ?? d.interface;
        d.interfaceLoc = n.loc;
      }),
    ],
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
        true,
      ),
    ],
  ],
  trackingEntries<InstanceDraft>(),
  [
    // keepalived: use_vmac [IFNAME], a macvlan carrying 00-00-5E-00-01-VRID (RFC 5798 §7.3)
    ['use_vmac', value((n, d) => (d.vmac = n.args[0]?.text ?? ''))],
    ['vmac_xmit_base', value((_n, d) => (d.vmacXmitBase = true))],
  ],
  unsupportedAll(
    ['use_vmac_addr', 'use_ipvlan', 'garp_extra_if', 'vmac_garp_intvl'],
    'VMAC address reuse / ipvlan interfaces are not implemented',
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

/** Ethernet MTU assumed when sizing adverts (keepalived uses the interface's real MTU). */
const ASSUMED_MTU = 1500;
/** RFC 5798 §5.2.6: Count IPvX Addr is 8 bits. */
const VRRP_MAX_ADDR = 255;

/**
 * End-of-block validation and defaults, following keepalived's vrrp_complete_instance
 * (keepalived/vrrp/vrrp.c): priority/state derivation, authentication limits, strict-mode rules,
 * preemption conflicts, advert interval rounding, VIPs that do not fit in an advert.
 */
export function finishInstance(node: Node, d: InstanceDraft, g: GlobalDefs, ctx: Ctx): VrrpInstance | undefined {
  const where = `vrrp_instance ${d.name}`;
  const adjust = (message: string) => ctx.report('KV211', node.loc, `${where}: ${message}`);
  if (d.vrid === undefined) {
    ctx.report('KV309', node.loc, `${where} has no virtual_router_id (1..255); instance ignored`);
    return undefined;
  }
  if (!d.interface && d.unicastPeers.length === 0)
    ctx.report('KV309', node.loc, `${where} has no 'interface' (needed unless unicast_peer is set)`);
  const strict = d.strictMode ?? g.vrrpStrict;
  const first = d.vips[0] ?? d.unicastPeers[0];
  const family = first?.family ?? 4;
  // keepalived (vrrp_parser.c): "address family must match VRRP instance [...] - ignoring"
  for (const v of d.vips)
    if (v.family !== family)
      ctx.repair(
        'KV312',
        v.loc,
        `${where}: ${v.address} is IPv${v.family} but the instance is IPv${family}; ignored (use virtual_ipaddress_excluded for mixed families)`,
      );
  d.vips = d.vips.filter((v) => v.family === family);
  for (const p of d.unicastPeers)
    if (p.family !== family)
      ctx.repair('KV312', node.loc, `${where}: unicast_peer ${p.address} is not IPv${family}; ignored`);
  d.unicastPeers = d.unicastPeers.filter((p) => p.family === family);
  let version: 2 | 3 = d.version ?? g.vrrpVersion;
  if (family === 6 && version === 2) {
    if (d.version === 2) adjust('IPv6 needs VRRP version 3; using version 3');
    version = 3;
  }
  if (d.vips.length === 0 && (version === 3 || strict)) {
    ctx.report(
      'KV309',
      node.loc,
      `${where}: no virtual_ipaddress; VRRPv3 and strict mode need at least one; instance ignored`,
    );
    return undefined;
  }
  // keepalived accepts this silently: a keepvs note
  if (d.vips.length === 0 && !d.noVirtualIpaddress && d.evips.length === 0)
    ctx.bag.report(
      'KV311',
      node.loc,
      `${where} has no virtual_ipaddress (write no_virtual_ipaddress if intended)`,
      'note',
    );
  // vrrp.c: "(VI_1) Ignoring track_interface eth0 since own interface"
  for (const t of d.trackInterfaces)
    if (t.name === d.interface)
      ctx.repair(
        'KV311',
        t.loc,
        `(${d.name}) ignoring track_interface ${t.name} since it is the instance's own interface`,
      );
  d.trackInterfaces = d.trackInterfaces.filter((t) => t.name !== d.interface);

  // Unset priority follows the state (MASTER = address owner), unset state follows the priority.
  const priority = d.priority ?? (d.state === 'MASTER' ? 255 : 100);
  let state: 'MASTER' | 'BACKUP' = d.state ?? (priority === 255 ? 'MASTER' : 'BACKUP');
  if (strict && d.state && (state === 'MASTER') !== (priority === 255)) {
    state = priority === 255 ? 'MASTER' : 'BACKUP';
    adjust(`strict mode: state MASTER must match being address owner (priority 255); state set to ${state}`);
  }

  let auth = d.auth;
  if (auth) {
    const drop = (why: string) => {
      adjust(`${why}; authentication ignored`);
      auth = undefined;
    };
    if (strict) drop('strict mode does not support authentication');
    else if (version === 3) drop('VRRP version 3 does not support authentication');
    else if (auth.pass === '') drop('authentication has no auth_pass');
    else if (family === 6 && auth.type === 'AH') drop('AH authentication cannot be used with IPv6');
    else if (auth.type === 'AH' && state === 'MASTER' && priority !== 255) {
      adjust('initial state MASTER is incompatible with AH authentication; state set to BACKUP');
      state = 'BACKUP';
    }
  }

  if (family === 6 && d.unicastPeers.length === 0 && d.vips.length > 0 && !d.vips[0].address.startsWith('fe80:'))
    ctx.report('KV311', d.vips[0].loc, `${where}: the first IPv6 virtual_ipaddress should be link-local (fe80::/10)`);

  // Addresses that do not fit in one advert become excluded VIPs (not advertised, still added).
  const overhead = 14 + (family === 4 ? 20 : 40) + 8 + (version === 2 ? 8 : 0) + (auth?.type === 'AH' ? 24 : 0);
  const maxAddr = Math.min(VRRP_MAX_ADDR, Math.floor((ASSUMED_MTU - overhead) / (family === 4 ? 4 : 16)));
  // keepalived puts an address without `dev` on the instance's interface.
  const onInterface = (e: IpAddressEntry): IpAddressEntry => (e.dev || !d.interface ? e : { ...e, dev: d.interface });
  let vips = d.vips.map(onInterface);
  let evips = d.evips.map(onInterface);
  if (vips.length > maxAddr) {
    adjust(
      `${vips.length} virtual addresses do not fit in one advert (max ${maxAddr}); the rest become virtual_ipaddress_excluded`,
    );
    evips = [...evips, ...vips.slice(maxAddr)];
    vips = vips.slice(0, maxAddr);
  }

  let nopreempt = d.nopreempt;
  let preemptDelay = d.preemptDelay ?? 0;
  if (nopreempt && priority === 255) {
    adjust('nopreempt is incompatible with priority 255; cleared');
    nopreempt = false;
  }
  if (state === 'MASTER') {
    if (nopreempt)
      ctx.report(
        'KV311',
        node.loc,
        `${where}: nopreempt will not work with initial state MASTER; cleared (as keepalived does)`,
      );
    if (preemptDelay)
      ctx.report('KV311', node.loc, `${where}: preempt_delay will not work with initial state MASTER; cleared`);
    nopreempt = false;
    preemptDelay = 0;
  }
  if (preemptDelay && (strict || nopreempt)) {
    adjust(`preempt_delay is incompatible with ${strict ? 'strict mode' : 'nopreempt'}; cleared`);
    preemptDelay = 0;
  }

  let accept = d.accept ?? !strict;
  if (accept && strict && priority !== 255 && version === 2) {
    adjust('accept mode with VRRP version 2 does not comply with RFC 3768 in strict mode; cleared');
    accept = false;
  }
  const f = d.flags;
  let garpLowerPrioRepeat = d.garp.lowerPrioRepeat ?? (strict ? 0 : g.vrrpGarpLowerPrioRepeat);
  let garpLowerPrioDelay = d.garp.lowerPrioDelay ?? (strict ? 0 : g.vrrpGarpLowerPrioDelay);
  let lowerPrioNoAdvert = f.lowerPrioNoAdvert ?? (strict ? true : g.vrrpLowerPrioNoAdvert);
  let higherPrioSendAdvert = f.higherPrioSendAdvert ?? (strict ? false : g.vrrpHigherPrioSendAdvert);
  if (strict) {
    if (garpLowerPrioRepeat || garpLowerPrioDelay)
      adjust('strict mode requires no lower-priority GARP repeats; cleared');
    if (!lowerPrioNoAdvert) adjust('strict mode requires lower_prio_no_advert; set');
    if (higherPrioSendAdvert) adjust('strict mode requires higher_prio_send_advert to be clear; cleared');
    garpLowerPrioRepeat = garpLowerPrioRepeat ? 0 : garpLowerPrioRepeat;
    garpLowerPrioDelay = garpLowerPrioDelay ? 0 : garpLowerPrioDelay;
    lowerPrioNoAdvert = true;
    higherPrioSendAdvert = false;
  }

  // RFC 3768 §5.3.7: v2 advert interval is whole seconds (max 255); RFC 5798 §5.2.7: v3 is centiseconds (max 40.95).
  let advertInt = d.advertInt ?? 1;
  if (version === 2 && !Number.isInteger(advertInt)) {
    const rounded = Math.max(1, Math.round(advertInt));
    adjust(`VRRPv2 advert_int must be whole seconds; ${advertInt} rounded to ${rounded}`);
    advertInt = rounded;
  } else if (version === 3) {
    const cs = Math.round(advertInt * 100);
    if (cs > 4095) {
      adjust(`VRRPv3 advert_int ${advertInt} is above 40.95 s; set to 40.95`);
      advertInt = 40.95;
    } else {
      if (Math.abs(cs - advertInt * 100) > 1e-6)
        adjust(`VRRPv3 advert_int must be in units of 10 ms; ${advertInt} rounded`);
      advertInt = Math.max(1, cs) / 100;
    }
  }

  return {
    name: d.name,
    initialState: state,
    ...(d.interface ? { interface: d.interface, interfaceLoc: d.interfaceLoc ?? node.loc } : {}),
    vrid: d.vrid,
    priority,
    advertInt,
    version,
    family,
    nopreempt,
    preemptDelay,
    downTimerAdverts: d.downTimerAdverts ?? 3,
    virtualIpaddresses: vips,
    virtualIpaddressesExcluded: evips,
    virtualRoutes: d.routes,
    virtualRules: d.rules,
    ...(d.srcIp ? { srcIp: d.srcIp } : {}),
    ...(d.mcastDstIp ? { mcastDstIp: d.mcastDstIp } : {}),
    unicastPeers: d.unicastPeers,
    ...(d.unicastTtl !== undefined ? { unicastTtl: d.unicastTtl } : {}),
    unicastFaultNoPeer: d.unicastFaultNoPeer,
    ...(auth ? { authentication: auth } : {}),
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
    ...(garpLowerPrioDelay !== undefined ? { garpLowerPrioDelay } : {}),
    ...(garpLowerPrioRepeat !== undefined ? { garpLowerPrioRepeat } : {}),
    accept,
    strictMode: strict,
    skipCheckAdvAddr: f.skipCheckAdvAddr ?? g.vrrpSkipCheckAdvAddr,
    lowerPrioNoAdvert,
    higherPrioSendAdvert,
    ownerIgnoreAdverts: f.ownerIgnoreAdverts ?? false,
    checkUnicastSrc: f.checkUnicastSrc ?? g.vrrpCheckUnicastSrc,
    v3ChecksumAsV2: f.v3ChecksumAsV2 ?? g.v3ChecksumAsV2,
    promoteSecondaries: f.promoteSecondaries ?? false,
    ...(d.lvsSyncDaemonInterface ? { lvsSyncDaemonInterface: d.lvsSyncDaemonInterface } : {}),
    ...(d.vmac !== undefined ? { vmac: { name: d.vmac || `vrrp.${d.vrid}`, xmitBase: d.vmacXmitBase ?? false } } : {}),
    loc: node.loc,
  };
}

export const parseInstanceBody = (node: Node, d: InstanceDraft, ctx: Ctx): void =>
  runBlock(node.children ?? [], VRRP_INSTANCE, d, ctx, `vrrp_instance ${d.name}`);
