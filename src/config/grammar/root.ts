/** Top-level keywords (keepalived install_keyword_root): each block keyword routes to its grammar file. */
import type {
  BgpAnnounce,
  IpAddressEntry,
  LocalAddressGroup,
  RouteEntry,
  RuleEntry,
  TrackFile,
  TrackProcess,
  VirtualServerGroup,
  VrrpScript,
} from '../model.js';
import type { Node } from '../tree.js';
import { parseBgpAnnounce } from './bgp-announce.js';
import { block, deprecated, type KeywordEntry, runBlock, table, unsupportedAll } from './engine.js';
import { GLOBAL_DEFS, type GlobalDraft, newGlobalDraft } from './global-defs.js';
import { parseLocalAddressGroup } from './local-address-group.js';
import { parseStaticIpaddress } from './static-ipaddress.js';
import { parseStaticRoutes } from './static-routes.js';
import { parseStaticRules } from './static-rules.js';
import { type ParsedSyncGroup, parseSyncGroup } from './sync-group.js';
import { parseTrackFile } from './track-file.js';
import { parseTrackProcess } from './track-process.js';
import { parseVirtualServer, type VsDraft } from './virtual-server.js';
import { parseVirtualServerGroup } from './virtual-server-group.js';
import { type InstanceDraft, newInstanceDraft, parseInstanceBody } from './vrrp-instance.js';
import { parseVrrpScript } from './vrrp-script.js';

export interface RootDraft {
  global: GlobalDraft;
  staticIpaddresses: IpAddressEntry[];
  staticRoutes: RouteEntry[];
  staticRules: RuleEntry[];
  vrrpScripts: VrrpScript[];
  trackFiles: TrackFile[];
  trackProcesses: TrackProcess[];
  syncGroups: ParsedSyncGroup[];
  instances: { node: Node; draft: InstanceDraft }[];
  virtualServerGroups: VirtualServerGroup[];
  localAddressGroups: LocalAddressGroup[];
  virtualServers: VsDraft[];
  /** keepvs block; the last one wins (KV115) */
  bgpAnnounce?: BgpAnnounce;
}

export const newRootDraft = (): RootDraft => ({
  global: newGlobalDraft(),
  staticIpaddresses: [],
  staticRoutes: [],
  staticRules: [],
  vrrpScripts: [],
  trackFiles: [],
  trackProcesses: [],
  syncGroups: [],
  instances: [],
  virtualServerGroups: [],
  localAddressGroups: [],
  virtualServers: [],
});

const push = <T>(
  list: (d: RootDraft) => T[],
  parse: (n: Node, c: Parameters<KeywordEntry<RootDraft>['handle']>[2]) => T | undefined,
) =>
  block<RootDraft>((n, d, c) => {
    const v = parse(n, c);
    if (v !== undefined) list(d).push(v);
  });

const trackFile = push((d) => d.trackFiles, parseTrackFile);

export const ROOT = table<RootDraft>(
  [
    ['global_defs', block((n, d, c) => runBlock(n.children ?? [], GLOBAL_DEFS, d.global, c, 'global_defs'))],
    ['static_ipaddress', block((n, d, c) => d.staticIpaddresses.push(...parseStaticIpaddress(n, c)))],
    ['static_routes', block((n, d, c) => d.staticRoutes.push(...parseStaticRoutes(n, c)))],
    ['static_rules', block((n, d, c) => d.staticRules.push(...parseStaticRules(n, c)))],
    ['vrrp_script', push((d) => d.vrrpScripts, parseVrrpScript)],
    ['track_file', trackFile],
    ['vrrp_track_file', deprecated(trackFile, 'track_file', true)],
    ['vrrp_track_process', push((d) => d.trackProcesses, parseTrackProcess)],
    ['vrrp_sync_group', push((d) => d.syncGroups, parseSyncGroup)],
    [
      'vrrp_instance',
      block((n, d, c) => {
        const name = n.args[0]?.text;
        if (!name) return c.report('KV113', n.loc, "'vrrp_instance' needs a name");
        if (n.args.length > 1) c.report('KV114', n.args[1].loc, 'vrrp_instance takes one name; extra words ignored');
        const draft = newInstanceDraft(name);
        parseInstanceBody(n, draft, c);
        d.instances.push({ node: n, draft });
      }),
    ],
    ['virtual_server_group', push((d) => d.virtualServerGroups, parseVirtualServerGroup)],
    ['local_address_group', push((d) => d.localAddressGroups, parseLocalAddressGroup)],
    ['virtual_server', push((d) => d.virtualServers, parseVirtualServer)],
    [
      'bgp_announce',
      block(
        (n, d, c) => {
          if (d.bgpAnnounce) c.report('KV115', n.loc, "'bgp_announce' set more than once; the last one wins");
          const b = parseBgpAnnounce(n, c);
          if (b) d.bgpAnnounce = b;
        },
        { repeatable: true },
      ),
    ],
  ],
  unsupportedAll(
    ['net_namespace', 'net_namespace_ipvs', 'namespace_with_ipsets', 'instance', 'use_pid_dir', 'child_wait_time'],
    'network namespaces and process layout options do not apply to keepvs',
    'value',
  ),
  unsupportedAll(['linkbeat_use_polling'], 'link state comes from netlink/sysfs; polling is not configurable', 'value'),
  unsupportedAll(
    ['linkbeat_interfaces', 'interface_up_down_delays', 'track_group', 'garp_group'],
    'this block is not implemented',
    'block',
  ),
  unsupportedAll(['bfd_instance'], 'BFD is not implemented', 'block'),
  unsupportedAll(['SSL'], 'SSL_GET uses the system trust store and no client certificate', 'block'),
);
