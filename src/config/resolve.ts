/**
 * Whole-config validation after every block is parsed: defaults that depend on global_defs,
 * duplicate names and VRIDs, and references between blocks (track_script -> vrrp_script, ...).
 */
import { hostText } from '../util/address.js';
import type { DiagnosticBag } from './diagnostics.js';
import { type Ctx, deepFreeze } from './grammar/engine.js';
import { finishGlobal } from './grammar/global-defs.js';
import type { RootDraft } from './grammar/root.js';
import { finishVirtualServer } from './grammar/virtual-server.js';
import { finishInstance } from './grammar/vrrp-instance.js';
import type {
  BgpAnnounce,
  Config,
  DataplaneCapabilities,
  SourceLoc,
  VirtualServer,
  VrrpInstance,
  WeightedTrack,
} from './model.js';

function uniqueByName<T extends { name: string; loc: SourceLoc }>(items: readonly T[], what: string, ctx: Ctx): T[] {
  const seen = new Map<string, T>();
  for (const it of items) {
    const prev = seen.get(it.name);
    if (prev) {
      ctx.report(
        'KV302',
        it.loc,
        `${what} '${it.name}' is already defined at ${prev.loc.file}:${prev.loc.line}; this one is ignored`,
      );
      continue;
    }
    seen.set(it.name, it);
  }
  return [...seen.values()];
}

const vsKeyText = (vs: VirtualServer): string => {
  const k = vs.key;
  if (k.kind === 'address') return `${vs.protocol} ${hostText(k.address, k.family)}:${k.port}`;
  if (k.kind === 'fwmark') return `FWM ${k.fwmark} IPv${k.family}`;
  return `group ${k.group} ${vs.protocol}`;
};

/**
 * References to undefined tracking objects are dropped, as keepalived does ("(VI_1) track script
 * chk not found, ignoring...", vrrp_parser.c): reported, and the instance runs without them.
 */
function knownRefs(
  owner: string,
  tracks: readonly WeightedTrack[],
  names: ReadonlySet<string>,
  code: 'KV303' | 'KV304' | 'KV307',
  what: string,
  ctx: Ctx,
): WeightedTrack[] {
  return tracks.filter((t) => {
    if (names.has(t.name)) return true;
    ctx.repair(code, t.loc, `${owner} tracks ${what} '${t.name}', which is not defined; ignored`);
    return false;
  });
}

function checkVrids(instances: readonly VrrpInstance[], ctx: Ctx): void {
  const seen = new Map<string, VrrpInstance>();
  for (const vi of instances) {
    const key = `${vi.interface ?? ''}/${vi.family}/${vi.vrid}`;
    const prev = seen.get(key);
    // keepalived allows a repeated VRID on one interface only when the unicast peer sets are disjoint.
    const disjointUnicast =
      prev &&
      prev.unicastPeers.length > 0 &&
      vi.unicastPeers.length > 0 &&
      !prev.unicastPeers.some((p) => vi.unicastPeers.some((q) => q.address === p.address));
    if (prev && !disjointUnicast)
      ctx.report(
        'KV300',
        vi.loc,
        `vrrp_instance ${vi.name}: virtual_router_id ${vi.vrid} is already used on ${vi.interface ?? '(no interface)'} by ${prev.name} (IPv${vi.family})`,
      );
    else seen.set(key, vi);
  }
}

/** Fills `user`/`group` of every script without its own from global_defs script_user (model contract). */
function applyScriptUser(
  node: unknown,
  user: { user: string; group?: string } | undefined,
  seen = new Set<object>(),
): void {
  if (!user || !node || typeof node !== 'object' || seen.has(node)) return;
  seen.add(node);
  const o = node as Record<string, unknown>;
  if (typeof o.command === 'string' && Array.isArray(o.argv) && o.loc && o.user === undefined) {
    o.user = user.user;
    if (user.group !== undefined) o.group = user.group;
    return;
  }
  for (const v of Object.values(o)) applyScriptUser(v, user, seen);
}

/** KV315: what the chosen data plane cannot forward as written (never downgraded to the proxy's full NAT). */
function checkDataplane(
  vs: VirtualServer,
  fwmarkGroup: boolean,
  zeroPortGroup: boolean,
  plane: DataplaneCapabilities,
  ctx: Ctx,
): void {
  const where = `virtual_server ${vsKeyText(vs)}`;
  const methods = new Set([vs.method, ...vs.realServers.map((r) => r.method)]);
  const needs: string[] = [];
  if (vs.key.kind === 'fwmark' || fwmarkGroup) needs.push('a fwmark service');
  // IPVS: a persistent service on port 0 takes every port of the address (ip_vs_ctl.c); the proxy
  // would have to listen on all 65535 of them, so it is refused rather than put on one random port
  if ((vs.key.kind === 'address' && vs.key.port === 0) || zeroPortGroup) needs.push('port 0 (every port)');
  for (const m of ['DR', 'TUN'] as const) if (methods.has(m)) needs.push(`lvs_method ${m}`);
  if (!plane.kernel && needs.length > 0)
    ctx.report(
      'KV315',
      vs.loc,
      `${where}: ${needs.join(' and ')} needs the kernel data plane, but keepvs runs --dataplane ${plane.name} ` +
        '(the kernel plane needs root and nftables); the userspace proxy cannot forward it as written',
    );
  else if (plane.kernel && !plane.tun && methods.has('TUN'))
    ctx.report(
      'KV315',
      vs.loc,
      `${where}: lvs_method TUN needs the tc-BPF IPIP encapsulation, which is not available here` +
        (plane.tunUnavailable ? ` (${plane.tunUnavailable})` : ''),
    );
  else if (plane.kernel && plane.tun) checkTunnel(vs, fwmarkGroup, where, ctx);
  if (plane.kernel) checkKernelDrops(vs, fwmarkGroup, zeroPortGroup, where, ctx);
}

/**
 * KV333: `flow_pinning` only changes kernel DR services without persistence. NAT and full-NAT flows
 * already stay on their real server (conntrack), TUN always pins (the BPF program's LRU flow table),
 * a persistent service pins each client already, and the proxy keeps its sockets.
 */
function checkFlowPinning(vs: VirtualServer, dr: boolean, where: string, ctx: Ctx): void {
  const p = vs.flowPinning;
  if (!p) return;
  const why = !dr
    ? 'its real servers are not all lvs_method DR (NAT and full-NAT flows follow conntrack, TUN flows are always pinned)'
    : vs.persistenceTimeout !== undefined
      ? 'persistence_timeout already keeps each client on its real server'
      : vs.ops
        ? 'ops schedules each datagram on its own (there are no flows to pin)'
        : null;
  if (why) ctx.report('KV333', p.loc, `${where}: flow_pinning has no effect: ${why}`);
}

/**
 * KV318: what the kernel plane forwards without (it never writes payload). UDP `ops` runs per datagram
 * under NAT and DR (nft/render.ts opsKind); where it does not, each UDP flow is scheduled once.
 */
function checkKernelDrops(
  vs: VirtualServer,
  fwmarkGroup: boolean,
  zeroPortGroup: boolean,
  where: string,
  ctx: Ctx,
): void {
  const lost: string[] = [];
  if (vs.ops) {
    const methods = new Set([vs.method, ...vs.realServers.map((r) => r.method)]);
    const why =
      vs.key.kind === 'fwmark' || fwmarkGroup
        ? 'a fwmark service is marked after conntrack has seen the datagram'
        : (vs.key.kind === 'address' && vs.key.port === 0) || zeroPortGroup
          ? 'on port 0 the replies cannot be told apart by port without a connection entry'
          : methods.has('FNAT')
            ? 'under full-NAT a reply reaches its client only through the connection entry that holds its address'
            : methods.has('TUN')
              ? 'the TUN program pins each flow'
              : null;
    if (why) lost.push(`ops (the kernel schedules each UDP flow, not each datagram: ${why})`);
  }
  if ((vs.proxyProtocol ?? 'off') !== 'off')
    lost.push(`proxy_protocol ${vs.proxyProtocol} (the kernel adds no header)`);

  if (lost.length > 0)
    ctx.report(
      'KV318',
      vs.loc,
      `${where}: ${lost.join(' and ')} is not done by the kernel data plane; run keepvs with --dataplane proxy for it`,
    );
  // DR in the kernel keeps no connection table: a counting scheduler becomes a per-flow hash (nft/slots.ts)
  const dr = vs.realServers.length > 0 && vs.realServers.every((rs) => rs.method === 'DR');
  checkFlowPinning(vs, dr, where, ctx);
  // ops under DR picks per datagram in the scheduler's own order (numgen), no flow hash
  if (dr && !vs.ops && !['sh', 'dh', 'mh', 'fo'].includes(vs.scheduler))
    ctx.report(
      'KV318',
      vs.loc,
      `${where}: lvs_sched ${vs.scheduler} under DR runs as a weighted Maglev hash of source address and port (DR keeps no connection table in the kernel plane): flows split by weight, the same on both directors, not in ${vs.scheduler} order; lvs_sched mh says so`,
    );
}

/**
 * Connection sync (lvs_sync_daemon, docs/conn-sync.md): KV319 where it cannot run as written,
 * KV323 for the IPVS sync daemon's settings conntrackd has no counterpart for. keepalived
 * (vrrp_complete_init): a named instance that does not exist clears the setting.
 */
function checkConnSync(
  g: Config['globalDefs'],
  instances: readonly VrrpInstance[],
  plane: DataplaneCapabilities | undefined,
  ctx: Ctx,
): Config['globalDefs'] {
  const s = g.lvsSyncDaemon;
  const perInstance = instances.find((i) => i.lvsSyncDaemonInterface);
  const loc = s?.loc ?? perInstance?.loc;
  if (!loc) return g;
  if (s?.instance !== undefined && !instances.some((i) => i.name === s.instance)) {
    ctx.report(
      'KV319',
      loc,
      `lvs_sync_daemon: vrrp_instance '${s.instance}' is not defined; no connection sync (keepalived clears the setting)`,
    );
    const { lvsSyncDaemon: _dropped, ...rest } = g;
    return rest;
  }
  if (plane && !plane.kernel)
    ctx.report(
      'KV319',
      loc,
      `lvs_sync_daemon: connection sync needs the kernel data plane, but keepvs runs --dataplane ${plane.name}: ` +
        'the userspace proxy terminates TCP in this process, and a socket cannot move to the other director; no sync daemon runs',
    );
  if (s?.group?.includes(':'))
    ctx.report(
      'KV319',
      loc,
      `lvs_sync_daemon group ${s.group}: keepvs drives conntrackd over IPv4 only; no sync daemon runs`,
    );
  const unapplied = [
    ...(s?.maxlen !== undefined ? ['maxlen (conntrackd sizes its messages by the interface MTU)'] : []),
    ...(s?.ttl !== undefined && s.ttl !== 1 ? ['ttl (conntrackd sends its multicast with TTL 1)'] : []),
    ...(s?.syncId !== undefined
      ? ['id (conntrackd has no sync id: director pairs sharing a link need their own group or port)']
      : []),
  ];
  if (unapplied.length > 0)
    ctx.report('KV323', loc, `lvs_sync_daemon: not applied by conntrackd: ${unapplied.join('; ')}`);
  return g;
}

/** KV317: TUN variants the tc-BPF plane does not build (docs/kernel-tun.md, "Wire format"). */
function checkTunnel(vs: VirtualServer, fwmarkGroup: boolean, where: string, ctx: Ctx): void {
  const family = vs.key.kind === 'group' ? undefined : vs.key.family;
  for (const rs of vs.realServers) {
    if (rs.method !== 'TUN') continue;
    const t = rs.tunnel ?? vs.tunnel;
    const type = t?.type ?? 'ipip';
    const why =
      vs.key.kind === 'fwmark' || fwmarkGroup
        ? 'a fwmark service cannot be tunnelled (no mark at tc ingress)'
        : family !== undefined && rs.family !== family
          ? `an IPv${rs.family} real server in an IPv${family} service (mixed-family tunnels)`
          : t?.csum && t.csum !== 'nocsum'
            ? `tun_flags ${t.csum} (only nocsum)`
            : type === 'gue' && rs.family === 6
              ? 'GUE over IPv6 (it needs a UDP checksum)'
              : undefined;
    if (why)
      ctx.report(
        'KV317',
        rs.loc,
        `${where}: real_server ${rs.address}: the kernel TUN plane cannot forward ${why}; it would get no traffic`,
      );
  }
}

/**
 * KV330/KV331: a `bgp_announce` virtual server needs the block, one address (not fwmark or group)
 * and a neighbor of its family; a VIP that VRRP also moves is reported (one of the two should own it).
 */
function checkBgpAnnounce(
  bgp: BgpAnnounce | undefined,
  virtualServers: readonly VirtualServer[],
  vrrpInstances: readonly VrrpInstance[],
  ctx: Ctx,
): void {
  const vrrpVips = new Map<string, string>();
  for (const vi of vrrpInstances)
    for (const ip of [...vi.virtualIpaddresses, ...vi.virtualIpaddressesExcluded]) vrrpVips.set(ip.address, vi.name);
  for (const vs of virtualServers) {
    const b = vs.bgpAnnounce;
    if (!b) continue;
    const where = `virtual_server ${vsKeyText(vs)}`;
    if (vs.key.kind !== 'address') {
      ctx.report(
        'KV330',
        b.loc,
        `${where}: bgp_announce needs a virtual server with one address (not fwmark or group)`,
      );
      continue;
    }
    if (!bgp) {
      ctx.report('KV330', b.loc, `${where}: bgp_announce without a bgp_announce { } block (local_as, neighbor)`);
      continue;
    }
    const family = vs.key.family;
    if (!bgp.neighbors.some((n) => n.family === family))
      ctx.report('KV330', b.loc, `${where}: no IPv${family} neighbor in bgp_announce to announce it to`);
    const vrrp = vrrpVips.get(vs.key.address);
    if (vrrp)
      ctx.report(
        'KV331',
        b.loc,
        `${where}: ${vs.key.address} is announced by BGP and is also a virtual_ipaddress of vrrp_instance ${vrrp}; both run`,
      );
  }
}

export function resolveConfig(d: RootDraft, files: readonly string[], ctx: Ctx, plane?: DataplaneCapabilities): Config {
  const globalDefs = finishGlobal(d.global);
  // keepalived (vrrp_complete_instance, validate_check_config): unset smtp_alert takes the
  // process-specific global, then the global smtp_alert, else false (real servers: true).
  const explicitGlobalAlert = d.global.smtpAlertSet ? d.global.smtpAlert : undefined;
  const vrrpAlert = globalDefs.smtpAlertVrrp ?? explicitGlobalAlert ?? false;
  const checkerAlert = globalDefs.smtpAlertChecker ?? explicitGlobalAlert;
  const vrrpScripts = uniqueByName(d.vrrpScripts, 'vrrp_script', ctx);
  const trackFiles = uniqueByName(d.trackFiles, 'track_file', ctx);
  const trackProcesses = uniqueByName(d.trackProcesses, 'vrrp_track_process', ctx);
  const virtualServerGroups = uniqueByName(d.virtualServerGroups, 'virtual_server_group', ctx);
  const localAddressGroups = uniqueByName(d.localAddressGroups, 'local_address_group', ctx);
  const laddrNames = new Set(localAddressGroups.map((g) => g.name));

  const finished: VrrpInstance[] = [];
  for (const { node, draft } of d.instances) {
    const vi = finishInstance(node, draft, globalDefs, ctx);
    if (vi) finished.push({ ...vi, smtpAlert: vi.smtpAlert ?? vrrpAlert });
  }
  const scriptNames = new Set(vrrpScripts.map((s) => s.name));
  const fileNames = new Set(trackFiles.map((s) => s.name));
  const processNames = new Set(trackProcesses.map((s) => s.name));
  const vrrpInstances = uniqueByName(finished, 'vrrp_instance', ctx).map((vi) => {
    const owner = `vrrp_instance ${vi.name}`;
    return {
      ...vi,
      trackScripts: knownRefs(owner, vi.trackScripts, scriptNames, 'KV303', 'vrrp_script', ctx),
      trackFiles: knownRefs(owner, vi.trackFiles, fileNames, 'KV304', 'track_file', ctx),
      trackProcesses: knownRefs(owner, vi.trackProcesses, processNames, 'KV307', 'vrrp_track_process', ctx),
    };
  });
  checkVrids(vrrpInstances, ctx);

  const instanceNames = new Set(vrrpInstances.map((v) => v.name));
  const memberOf = new Map<string, string>();
  const syncGroups = uniqueByName(
    d.syncGroups.map((g) => ({ ...g, name: g.group.name, loc: g.group.loc })),
    'vrrp_sync_group',
    ctx,
  ).flatMap((g) => {
    const owner = `vrrp_sync_group ${g.name}`;
    for (const m of g.members) {
      // keepalived: "Virtual router X specified in sync group G doesn't exist - ignoring"
      if (!instanceNames.has(m.name)) {
        ctx.repair('KV305', m.loc, `${owner}: member '${m.name}' is not a defined vrrp_instance; ignored`);
        continue;
      }
      const other = memberOf.get(m.name);
      if (other && other !== g.name)
        ctx.report('KV308', m.loc, `vrrp_instance '${m.name}' is already in sync group '${other}'`);
      else memberOf.set(m.name, g.name);
    }
    const group = g.group.group.filter((m) => instanceNames.has(m));
    if (group.length === 0) {
      // keepalived: "Sync group G, no matching virtual router found in group declaration - removing"
      ctx.repair('KV305', g.group.loc, `${owner}: no defined vrrp_instance among its members; removed`);
      return [];
    }
    return {
      ...g.group,
      group,
      trackScripts: knownRefs(owner, g.group.trackScripts, scriptNames, 'KV303', 'vrrp_script', ctx),
      trackFiles: knownRefs(owner, g.group.trackFiles, fileNames, 'KV304', 'track_file', ctx),
      trackProcesses: knownRefs(owner, g.group.trackProcesses, processNames, 'KV307', 'vrrp_track_process', ctx),
      smtpAlert: g.group.smtpAlert ?? vrrpAlert,
    };
  });

  const groupNames = new Set(virtualServerGroups.map((g) => g.name));
  const shapes = new Map(
    virtualServerGroups.map((g) => [
      g.name,
      {
        hasAddresses: g.entries.some((e) => e.kind === 'address'),
        hasFwmarks: g.entries.some((e) => e.kind === 'fwmark'),
        zeroPort: g.entries.some((e) => e.kind === 'address' && e.port === 0),
      },
    ]),
  );
  const vsSeen = new Set<string>();
  const virtualServers: VirtualServer[] = [];
  for (const draft of d.virtualServers) {
    const finishedVs = finishVirtualServer(
      draft,
      ctx,
      draft.key.kind === 'group' ? shapes.get(draft.key.group) : undefined,
    );
    if (!finishedVs) continue;
    const vs: VirtualServer = {
      ...finishedVs,
      smtpAlert: finishedVs.smtpAlert ?? checkerAlert ?? false,
      realServers: finishedVs.realServers.map((rs) => ({ ...rs, smtpAlert: rs.smtpAlert ?? checkerAlert ?? true })),
    };
    if (vs.key.kind === 'group' && !groupNames.has(vs.key.group))
      ctx.report('KV306', vs.loc, `virtual_server group '${vs.key.group}' is not a defined virtual_server_group`);
    const fullNat = vs.method === 'FNAT' || vs.realServers.some((r) => r.method === 'FNAT');
    if (vs.laddrGroup !== undefined && !laddrNames.has(vs.laddrGroup))
      ctx.report('KV316', vs.loc, `laddr_group_name '${vs.laddrGroup}' is not a defined local_address_group`);
    else if (fullNat && vs.laddrGroup === undefined)
      ctx.report('KV316', vs.loc, `virtual_server ${vsKeyText(vs)}: lvs_method FNAT needs laddr_group_name`);
    if (plane) {
      const shape = vs.key.kind === 'group' ? shapes.get(vs.key.group) : undefined;
      checkDataplane(vs, shape?.hasFwmarks ?? false, shape?.zeroPort ?? false, plane, ctx);
    }
    for (const rs of vs.realServers)
      for (const ch of rs.checkers)
        if (ch.type === 'FILE_CHECK' && !fileNames.has(ch.trackFile))
          ctx.report('KV304', ch.loc, `FILE_CHECK uses track_file '${ch.trackFile}', which is not defined`);
    const key = vsKeyText(vs);
    if (vsSeen.has(key)) {
      ctx.report('KV310', vs.loc, `virtual_server ${key} is defined twice; this one is ignored`);
      continue;
    }
    vsSeen.add(key);
    virtualServers.push(vs);
  }

  checkBgpAnnounce(d.bgpAnnounce, virtualServers, vrrpInstances, ctx);

  const config: Config = {
    files: [...files],
    globalDefs: checkConnSync(globalDefs, vrrpInstances, plane, ctx),
    staticIpaddresses: d.staticIpaddresses,
    staticRoutes: d.staticRoutes,
    staticRules: d.staticRules,
    vrrpScripts,
    trackFiles,
    trackProcesses,
    syncGroups,
    vrrpInstances,
    virtualServerGroups,
    localAddressGroups,
    virtualServers,
    ...(d.bgpAnnounce ? { bgpAnnounce: d.bgpAnnounce } : {}),
  };
  applyScriptUser(config, globalDefs.scriptUser);
  return deepFreeze(config);
}

export type { DiagnosticBag };
