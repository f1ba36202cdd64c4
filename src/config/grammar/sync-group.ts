/** `vrrp_sync_group NAME { group { VI_1 VI_2 } ... }` (KA-man5 "VRRP synchronization group"). */
import type { SyncGroup } from '../model.js';
import type { Node } from '../tree.js';
import { block, boolArg, type Ctx, deprecated, runBlock, table, value } from './engine.js';
import { newTrackingDraft, type TrackingDraft, trackingEntries } from './tracking.js';

type Draft = TrackingDraft & { name: string; group?: { name: string; loc: Node['loc'] }[]; trackingWeight: boolean };

export const SYNC_GROUP = table<Draft>(
  [
    [
      'group',
      block((n, d) => {
        d.group ??= [];
        for (const child of n.children ?? [])
          for (const w of [child.keyword, ...child.args]) d.group.push({ name: w.text, loc: w.loc });
      }),
    ],
    ['sync_group_tracking_weight', value((n, d, c) => (d.trackingWeight = boolArg(n, c) ?? d.trackingWeight))],
    [
      'global_tracking',
      deprecated(
        value((_n, d) => (d.trackingWeight = true)),
        'sync_group_tracking_weight',
      ),
    ],
  ],
  trackingEntries<Draft>(),
);

export interface ParsedSyncGroup {
  readonly group: SyncGroup;
  /** member names with their locations, for reference checks */
  readonly members: readonly { name: string; loc: Node['loc'] }[];
}

export function parseSyncGroup(node: Node, ctx: Ctx): ParsedSyncGroup | undefined {
  const name = node.args[0]?.text;
  if (!name) {
    ctx.report('KV113', node.loc, "'vrrp_sync_group' needs a name");
    return undefined;
  }
  const d: Draft = { ...newTrackingDraft(), name, trackingWeight: false };
  runBlock(node.children ?? [], SYNC_GROUP, d, ctx, `vrrp_sync_group ${name}`);
  if (!d.group || d.group.length === 0) {
    ctx.report('KV309', node.loc, `vrrp_sync_group ${name} has no 'group { ... }' members; ignored`);
    return undefined;
  }
  if (d.group.length === 1)
    ctx.report('KV313', node.loc, `vrrp_sync_group ${name} has only one member; a sync group needs two or more`);
  return {
    members: d.group,
    group: {
      name,
      group: d.group.map((g) => g.name),
      trackInterfaces: d.trackInterfaces,
      trackScripts: d.trackScripts,
      trackFiles: d.trackFiles,
      trackProcesses: d.trackProcesses,
      notify: d.notify,
      ...(d.smtpAlert !== undefined ? { smtpAlert: d.smtpAlert } : {}),
      syncGroupTrackingWeight: d.trackingWeight,
      loc: node.loc,
    },
  };
}
