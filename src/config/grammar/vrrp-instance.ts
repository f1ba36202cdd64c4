/** `vrrp_instance NAME { ... }` (keepalived.conf(5) "VRRP instance(s)"). */
import type { Node } from '../lexer.js';
import type {
  IpAddressEntry,
  NotifyScripts,
  RouteEntry,
  RuleEntry,
  UnicastPeer,
  VrrpInstance,
  WeightedTrack,
} from '../model.js';
import { parseIpAddressBlock, parseRouteBlock, parseRuleBlock } from './addresses.js';
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
  scriptArg,
  secondsArg,
  stringArg,
  unsupported,
  weightedTracks,
} from './common.js';
import type { GlobalBuilder } from './global.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface InstanceBuilder {
  initialState: 'MASTER' | 'BACKUP';
  interface?: string;
  vrid?: number;
  priority: number;
  advertInt: number;
  version?: 2 | 3;
  nopreempt: boolean;
  preemptDelay: number;
  downTimerAdverts: number;
  vips: IpAddressEntry[];
  vipsExcluded: IpAddressEntry[];
  routes: RouteEntry[];
  rules: RuleEntry[];
  srcIp?: string;
  mcastDstIp?: string;
  unicastPeers: UnicastPeer[];
  unicastTtl?: number;
  unicastFaultNoPeer: boolean;
  authentication?: { type: 'PASS' | 'AH'; pass: string };
  dontTrackPrimary: boolean;
  trackInterfaces: WeightedTrack[];
  trackScripts: WeightedTrack[];
  trackFiles: WeightedTrack[];
  trackProcesses: WeightedTrack[];
  notify: Mutable<NotifyScripts>;
  smtpAlert?: boolean;
  garpMasterDelay?: number;
  garpMasterRepeat?: number;
  garpMasterRefresh?: number;
  garpMasterRefreshRepeat?: number;
  garpLowerPrioDelay?: number;
  garpLowerPrioRepeat?: number;
  accept?: boolean;
  strictMode?: boolean;
  skipCheckAdvAddr?: boolean;
  lowerPrioNoAdvert?: boolean;
  higherPrioSendAdvert?: boolean;
  ownerIgnoreAdverts: boolean;
  checkUnicastSrc?: boolean;
  v3ChecksumAsV2?: boolean;
  promoteSecondaries: boolean;
  lvsSyncDaemonInterface?: string;
}

/** notify_* keywords shared by vrrp_instance and vrrp_sync_group. */
export function notifyEntries<T extends { notify: Mutable<NotifyScripts>; smtpAlert?: boolean }>(): KeywordTable<T> {
  const set = (k: keyof NotifyScripts) => ({
    handle: (n: Node, c: Ctx, t: T) => {
      t.notify[k] = scriptArg(n, c);
    },
  });
  return {
    notify_master: set('master'),
    notify_backup: set('backup'),
    notify_fault: set('fault'),
    notify_stop: set('stop'),
    notify_deleted: set('deleted'),
    notify: set('notify'),
    notify_master_rx_lower_pri: set('masterRxLowerPri'),
    smtp_alert: { handle: (n, c, t) => void (t.smtpAlert = boolArg(n, c)) },
    ...unsupported<T>('not implemented yet', 'notify_priority_changes'),
  };
}

function unicastPeers(n: Node, ctx: Ctx, b: InstanceBuilder): void {
  for (const c of n.children ?? []) {
    const a = parseAddress({ text: c.keyword, loc: c.loc }, ctx, { what: 'unicast_peer' });
    if (!a) continue;
    const peer: Mutable<UnicastPeer> = { address: a.address, family: a.family };
    for (let i = 0; i < c.args.length; i += 2) {
      const k = c.args[i].text;
      const v = parseNumber(c.args[i + 1], ctx, { min: 0, max: 255, integer: true, what: k });
      if (k === 'min_ttl') peer.minTtl = v;
      else if (k === 'max_ttl') peer.maxTtl = v;
      else ctx.diag.report('KV203', c.args[i].loc, `unicast_peer takes min_ttl/max_ttl, not '${k}'`);
    }
    b.unicastPeers.push(peer);
  }
}

function authentication(n: Node, ctx: Ctx, b: InstanceBuilder): void {
  let type: 'PASS' | 'AH' | undefined;
  let pass: string | undefined;
  for (const c of n.children ?? []) {
    if (c.keyword === 'auth_type')
      type = oneOf(argAt(c, 0, ctx, 'PASS or AH'), ['PASS', 'AH'] as const, ctx, 'auth_type', true);
    else if (c.keyword === 'auth_pass') {
      const w = argAt(c, 0, ctx, 'a password');
      if (!w) continue;
      pass = w.text;
      // VRRPv2 carries 8 octets of authentication data (RFC 3768 §5.3.10); keepalived truncates
      if (pass.length > 8) {
        ctx.diag.report('KV204', w.loc, `auth_pass is longer than 8 characters: only '${pass.slice(0, 8)}' is used`);
        pass = pass.slice(0, 8);
      }
    } else
      ctx.diag.report(
        'KV101',
        c.loc,
        `unknown keyword '${c.keyword}' in authentication (expected auth_type, auth_pass)`,
      );
  }
  if (!type) {
    ctx.diag.report('KV305', n.loc, 'authentication block has no auth_type');
    return;
  }
  b.authentication = { type, pass: pass ?? '' };
}

const notVmac = 'VMAC/ipvlan interfaces are not supported by keepvs';

export const vrrpInstanceTable: KeywordTable<InstanceBuilder> = {
  state: {
    handle: (n, c, b) => {
      noExtra(n, 1, c);
      const s = oneOf(argAt(n, 0, c, 'MASTER or BACKUP'), ['MASTER', 'BACKUP'] as const, c, 'state', true);
      if (s) b.initialState = s;
    },
  },
  interface: { handle: (n, c, b) => void (b.interface = stringArg(n, c)) },
  virtual_router_id: { handle: (n, c, b) => void (b.vrid = intArg(n, c, 1, 255)) },
  priority: { handle: (n, c, b) => void (b.priority = intArg(n, c, 1, 255) ?? b.priority) },
  advert_int: { handle: (n, c, b) => void (b.advertInt = secondsArg(n, c, 0.01, 255) ?? 1) },
  version: { handle: (n, c, b) => void (b.version = intArg(n, c, 2, 3) as 2 | 3 | undefined) },
  nopreempt: { handle: (_n, _c, b) => void (b.nopreempt = true) },
  preempt: { handle: (_n, _c, b) => void (b.nopreempt = false) },
  preempt_delay: { handle: (n, c, b) => void (b.preemptDelay = secondsArg(n, c, 0, 1000) ?? 0) },
  down_timer_adverts: { handle: (n, c, b) => void (b.downTimerAdverts = intArg(n, c, 1, 100) ?? 3) },
  virtual_ipaddress: { block: true, handle: (n, c, b) => void b.vips.push(...parseIpAddressBlock(n, c)) },
  virtual_ipaddress_excluded: {
    block: true,
    handle: (n, c, b) => void b.vipsExcluded.push(...parseIpAddressBlock(n, c)),
  },
  no_virtual_ipaddress: { handle: () => undefined },
  virtual_routes: { block: true, handle: (n, c, b) => void b.routes.push(...parseRouteBlock(n, c)) },
  virtual_rules: { block: true, handle: (n, c, b) => void b.rules.push(...parseRuleBlock(n, c)) },
  mcast_src_ip: {
    handle: (n, c, b) =>
      void (b.srcIp = parseAddress(argAt(n, 0, c, 'an address'), c, { what: 'mcast_src_ip' })?.address),
  },
  unicast_src_ip: {
    handle: (n, c, b) =>
      void (b.srcIp = parseAddress(argAt(n, 0, c, 'an address'), c, { what: 'unicast_src_ip' })?.address),
  },
  mcast_dst_ip: {
    handle: (n, c, b) =>
      void (b.mcastDstIp = parseAddress(argAt(n, 0, c, 'an address'), c, { what: 'mcast_dst_ip' })?.address),
  },
  unicast_peer: { block: true, handle: unicastPeers },
  unicast_ttl: { handle: (n, c, b) => void (b.unicastTtl = intArg(n, c, 1, 255)) },
  unicast_fault_no_peer: { handle: (n, c, b) => void (b.unicastFaultNoPeer = boolArg(n, c)) },
  authentication: { block: true, handle: authentication },
  dont_track_primary: { handle: (_n, _c, b) => void (b.dontTrackPrimary = true) },
  track_interface: {
    block: true,
    handle: (n, c, b) => void b.trackInterfaces.push(...weightedTracks(n, c, { min: -254, max: 254 })),
  },
  track_script: {
    block: true,
    handle: (n, c, b) => void b.trackScripts.push(...weightedTracks(n, c, { min: -253, max: 253 })),
  },
  track_file: {
    block: true,
    handle: (n, c, b) => void b.trackFiles.push(...weightedTracks(n, c, { min: -254, max: 254 })),
  },
  track_process: {
    block: true,
    handle: (n, c, b) => void b.trackProcesses.push(...weightedTracks(n, c, { min: -254, max: 254 })),
  },
  ...notifyEntries<InstanceBuilder>(),
  garp_master_delay: { handle: (n, c, b) => void (b.garpMasterDelay = intArg(n, c, 0, 3600)) },
  garp_master_repeat: { handle: (n, c, b) => void (b.garpMasterRepeat = intArg(n, c, 1, 1000)) },
  garp_master_refresh: { handle: (n, c, b) => void (b.garpMasterRefresh = intArg(n, c, 0, 86400)) },
  garp_master_refresh_repeat: { handle: (n, c, b) => void (b.garpMasterRefreshRepeat = intArg(n, c, 1, 1000)) },
  garp_lower_prio_delay: { handle: (n, c, b) => void (b.garpLowerPrioDelay = intArg(n, c, 0, 3600)) },
  garp_lower_prio_repeat: { handle: (n, c, b) => void (b.garpLowerPrioRepeat = intArg(n, c, 0, 1000)) },
  accept: { handle: (_n, _c, b) => void (b.accept = true) },
  no_accept: { handle: (_n, _c, b) => void (b.accept = false) },
  strict_mode: { handle: (n, c, b) => void (b.strictMode = boolArg(n, c)) },
  skip_check_adv_addr: { handle: (n, c, b) => void (b.skipCheckAdvAddr = boolArg(n, c)) },
  lower_prio_no_advert: { handle: (n, c, b) => void (b.lowerPrioNoAdvert = boolArg(n, c)) },
  higher_prio_send_advert: { handle: (n, c, b) => void (b.higherPrioSendAdvert = boolArg(n, c)) },
  owner_ignore_adverts: { handle: (_n, _c, b) => void (b.ownerIgnoreAdverts = true) },
  check_unicast_src: { handle: (_n, _c, b) => void (b.checkUnicastSrc = true) },
  v3_checksum_as_v2: { handle: (n, c, b) => void (b.v3ChecksumAsV2 = boolArg(n, c)) },
  promote_secondaries: { handle: (_n, _c, b) => void (b.promoteSecondaries = true) },
  lvs_sync_daemon_interface: {
    deprecated: 'global_defs lvs_sync_daemon',
    handle: (n, c, b) => void (b.lvsSyncDaemonInterface = stringArg(n, c)),
  },
  debug: { unsupported: 'keepalived does not implement it either' },
  ...unsupported<InstanceBuilder>(
    notVmac,
    'use_vmac',
    'use_vmac_addr',
    'vmac_xmit_base',
    'use_ipvlan',
    'garp_extra_if',
    'vmac_garp_intvl',
  ),
  ...unsupported<InstanceBuilder>(
    'not implemented yet',
    'vrf',
    'native_ipv6',
    'track_bfd',
    'track_src_ip',
    'linkbeat_use_polling',
    'timer_expired_backup',
    'thread_timer_expired',
    'old_unicast_checksum',
    'kernel_rx_buf_size',
    'auth_hmac',
  ),
};

export function newInstanceBuilder(): InstanceBuilder {
  return {
    initialState: 'BACKUP',
    priority: 100,
    advertInt: 1,
    nopreempt: false,
    preemptDelay: 0,
    downTimerAdverts: 3,
    vips: [],
    vipsExcluded: [],
    routes: [],
    rules: [],
    unicastPeers: [],
    unicastFaultNoPeer: false,
    dontTrackPrimary: false,
    trackInterfaces: [],
    trackScripts: [],
    trackFiles: [],
    trackProcesses: [],
    notify: {},
    ownerIgnoreAdverts: false,
    promoteSecondaries: false,
  };
}

export function parseVrrpInstance(n: Node, ctx: Ctx, g: GlobalBuilder): VrrpInstance | undefined {
  const name = argAt(n, 0, ctx, 'a name')?.text;
  const b = newInstanceBuilder();
  applyTable(n.children, vrrpInstanceTable, b, ctx, `vrrp_instance ${name ?? ''}`);
  if (!name) return undefined;
  if (b.vrid === undefined) {
    ctx.diag.report('KV305', n.loc, `vrrp_instance ${name} has no virtual_router_id`);
    return undefined;
  }
  const family = b.vips[0]?.family ?? b.unicastPeers[0]?.family ?? 4;
  let version = b.version ?? g.vrrpVersion;
  if (family === 6 && version === 2) {
    if (b.version === 2) ctx.diag.report('KV306', n.loc, `vrrp_instance ${name}: IPv6 needs VRRP version 3; using 3`);
    version = 3;
  }
  if (version === 2 && !Number.isInteger(b.advertInt)) {
    ctx.diag.report('KV201', n.loc, `vrrp_instance ${name}: VRRPv2 advert_int must be whole seconds (RFC 3768 §5.3.7)`);
  }
  for (const v of b.vips) {
    if (v.family !== family) {
      ctx.diag.report(
        'KV202',
        v.loc,
        `virtual_ipaddress ${v.address}: all VIPs of an instance must share one family (use virtual_ipaddress_excluded)`,
      );
    }
  }
  if (b.preemptDelay > 0 && b.initialState === 'MASTER') {
    ctx.diag.report('KV306', n.loc, `vrrp_instance ${name}: preempt_delay needs state BACKUP; ignored`);
    b.preemptDelay = 0;
  }
  if (b.nopreempt && b.initialState === 'MASTER') {
    ctx.diag.report(
      'KV306',
      n.loc,
      `vrrp_instance ${name}: nopreempt needs state BACKUP (keepalived treats it as BACKUP)`,
    );
    b.initialState = 'BACKUP';
  }
  if (!b.interface && b.unicastPeers.length === 0) {
    ctx.diag.report('KV305', n.loc, `vrrp_instance ${name} has no interface (needed for multicast)`);
  }
  const strict = b.strictMode ?? g.vrrpStrict;
  return {
    name,
    initialState: b.initialState,
    ...(b.interface !== undefined ? { interface: b.interface } : {}),
    vrid: b.vrid,
    priority: b.priority,
    advertInt: b.advertInt,
    version,
    family,
    nopreempt: b.nopreempt,
    preemptDelay: b.preemptDelay,
    downTimerAdverts: b.downTimerAdverts,
    virtualIpaddresses: b.vips,
    virtualIpaddressesExcluded: b.vipsExcluded,
    virtualRoutes: b.routes,
    virtualRules: b.rules,
    ...(b.srcIp !== undefined ? { srcIp: b.srcIp } : {}),
    ...(b.mcastDstIp !== undefined ? { mcastDstIp: b.mcastDstIp } : {}),
    unicastPeers: b.unicastPeers,
    ...(b.unicastTtl !== undefined ? { unicastTtl: b.unicastTtl } : {}),
    unicastFaultNoPeer: b.unicastFaultNoPeer,
    ...(b.authentication ? { authentication: b.authentication } : {}),
    dontTrackPrimary: b.dontTrackPrimary,
    trackInterfaces: b.trackInterfaces,
    trackScripts: b.trackScripts,
    trackFiles: b.trackFiles,
    trackProcesses: b.trackProcesses,
    notify: b.notify,
    ...(b.smtpAlert !== undefined ? { smtpAlert: b.smtpAlert } : {}),
    garpMasterDelay: b.garpMasterDelay ?? g.vrrpGarpMasterDelay,
    garpMasterRepeat: b.garpMasterRepeat ?? g.vrrpGarpMasterRepeat,
    garpMasterRefresh: b.garpMasterRefresh ?? g.vrrpGarpMasterRefresh,
    garpMasterRefreshRepeat: b.garpMasterRefreshRepeat ?? g.vrrpGarpMasterRefreshRepeat,
    ...((b.garpLowerPrioDelay ?? g.vrrpGarpLowerPrioDelay) !== undefined
      ? { garpLowerPrioDelay: b.garpLowerPrioDelay ?? g.vrrpGarpLowerPrioDelay }
      : {}),
    ...((b.garpLowerPrioRepeat ?? g.vrrpGarpLowerPrioRepeat) !== undefined
      ? { garpLowerPrioRepeat: b.garpLowerPrioRepeat ?? g.vrrpGarpLowerPrioRepeat }
      : {}),
    // keepalived: accept mode is the default unless strict mode is on
    accept: b.accept ?? !strict,
    strictMode: strict,
    skipCheckAdvAddr: b.skipCheckAdvAddr ?? g.vrrpSkipCheckAdvAddr,
    lowerPrioNoAdvert: b.lowerPrioNoAdvert ?? g.vrrpLowerPrioNoAdvert,
    higherPrioSendAdvert: b.higherPrioSendAdvert ?? g.vrrpHigherPrioSendAdvert,
    ownerIgnoreAdverts: b.ownerIgnoreAdverts,
    checkUnicastSrc: b.checkUnicastSrc ?? g.vrrpCheckUnicastSrc,
    v3ChecksumAsV2: b.v3ChecksumAsV2 ?? g.v3ChecksumAsV2,
    promoteSecondaries: b.promoteSecondaries,
    ...(b.lvsSyncDaemonInterface !== undefined ? { lvsSyncDaemonInterface: b.lvsSyncDaemonInterface } : {}),
    loc: n.loc,
  };
}
