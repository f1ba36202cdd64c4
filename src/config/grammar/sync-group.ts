/** `vrrp_sync_group NAME { group { ... } ... }` */
import type { Node } from '../lexer.js';
import type { NotifyScripts, SyncGroup, WeightedTrack } from '../model.js';
import { applyTable, argAt, blockWords, boolArg, type Ctx, type KeywordTable, weightedTracks } from './common.js';
import { notifyEntries } from './vrrp-instance.js';

interface GroupBuilder {
  group: string[];
  trackInterfaces: WeightedTrack[];
  trackScripts: WeightedTrack[];
  trackFiles: WeightedTrack[];
  trackProcesses: WeightedTrack[];
  notify: { -readonly [K in keyof NotifyScripts]: NotifyScripts[K] };
  smtpAlert?: boolean;
  syncGroupTrackingWeight: boolean;
}

const syncGroupTable: KeywordTable<GroupBuilder> = {
  group: { block: true, handle: (n, _c, g) => void g.group.push(...blockWords(n).map((w) => w.text)) },
  track_interface: {
    block: true,
    handle: (n, c, g) => void g.trackInterfaces.push(...weightedTracks(n, c, { min: -254, max: 254 })),
  },
  track_script: {
    block: true,
    handle: (n, c, g) => void g.trackScripts.push(...weightedTracks(n, c, { min: -253, max: 253 })),
  },
  track_file: {
    block: true,
    handle: (n, c, g) => void g.trackFiles.push(...weightedTracks(n, c, { min: -254, max: 254 })),
  },
  track_process: {
    block: true,
    handle: (n, c, g) => void g.trackProcesses.push(...weightedTracks(n, c, { min: -254, max: 254 })),
  },
  sync_group_tracking_weight: { handle: (n, c, g) => void (g.syncGroupTrackingWeight = boolArg(n, c)) },
  global_tracking: {
    deprecated: 'sync_group_tracking_weight',
    handle: (_n, _c, g) => void (g.syncGroupTrackingWeight = true),
  },
  track_bfd: { unsupported: 'BFD is not implemented' },
  ...notifyEntries<GroupBuilder>(),
};

export function parseSyncGroup(n: Node, ctx: Ctx): SyncGroup | undefined {
  const name = argAt(n, 0, ctx, 'a name')?.text;
  const b: GroupBuilder = {
    group: [],
    trackInterfaces: [],
    trackScripts: [],
    trackFiles: [],
    trackProcesses: [],
    notify: {},
    syncGroupTrackingWeight: false,
  };
  applyTable(n.children, syncGroupTable, b, ctx, `vrrp_sync_group ${name ?? ''}`);
  if (!name) return undefined;
  if (b.group.length === 0) ctx.diag.report('KV305', n.loc, `vrrp_sync_group ${name} has no group { ... } members`);
  return {
    name,
    group: b.group,
    trackInterfaces: b.trackInterfaces,
    trackScripts: b.trackScripts,
    trackFiles: b.trackFiles,
    trackProcesses: b.trackProcesses,
    notify: b.notify,
    ...(b.smtpAlert !== undefined ? { smtpAlert: b.smtpAlert } : {}),
    syncGroupTrackingWeight: b.syncGroupTrackingWeight,
    loc: n.loc,
  };
}
