/** Shared pieces of vrrp_instance and vrrp_sync_group: track_* lists and notify scripts. */
import type { NotifyScripts, WeightedTrack } from '../model.js';
import type { Node } from '../tree.js';
import {
  block,
  type Ctx,
  type KeywordEntry,
  type Mutable,
  scriptArg,
  unsupported,
  value,
  weightWords,
} from './engine.js';

export interface TrackingDraft {
  trackInterfaces: WeightedTrack[];
  trackScripts: WeightedTrack[];
  trackFiles: WeightedTrack[];
  trackProcesses: WeightedTrack[];
  notify: Mutable<NotifyScripts>;
  smtpAlert?: boolean;
}

const trackList = (
  key: 'trackInterfaces' | 'trackScripts' | 'trackFiles' | 'trackProcesses',
  min: number,
  max: number,
) =>
  block<TrackingDraft>((n: Node, d, c: Ctx) => {
    for (const child of n.children ?? []) {
      const w = weightWords(child.args, c, min, max, `${n.keyword.text} ${child.keyword.text}`);
      d[key].push({
        name: child.keyword.text,
        ...(w.weight !== undefined ? { weight: w.weight } : {}),
        reverse: w.reverse,
        loc: child.loc,
      });
    }
  });

const notify = (key: keyof NotifyScripts) =>
  value<TrackingDraft>((n, d, c) => {
    const s = scriptArg(n, c, true);
    if (s) d.notify[key] = s;
  });

export function trackingEntries<D extends TrackingDraft>(): (readonly [string, KeywordEntry<D>])[] {
  const e = (x: KeywordEntry<TrackingDraft>) => x as unknown as KeywordEntry<D>;
  return [
    ['track_interface', e(trackList('trackInterfaces', -254, 254))],
    ['track_script', e(trackList('trackScripts', -254, 254))],
    ['track_file', e(trackList('trackFiles', -254, 254))],
    ['track_process', e(trackList('trackProcesses', -254, 254))],
    ['track_bfd', unsupported<D>('BFD is not implemented', 'block')],
    ['notify_master', e(notify('master'))],
    ['notify_backup', e(notify('backup'))],
    ['notify_fault', e(notify('fault'))],
    ['notify_stop', e(notify('stop'))],
    ['notify_deleted', e(notify('deleted'))],
    ['notify', e(notify('notify'))],
    ['notify_master_rx_lower_pri', e(notify('masterRxLowerPri'))],
    ['notify_priority_changes', unsupported<D>('priority-change notifications are not implemented', 'value')],
    [
      'smtp_alert',
      e(
        value((n, d, c) => {
          const w = n.args[0]?.text.toLowerCase();
          if (w === undefined || ['on', 'true', 'yes'].includes(w)) d.smtpAlert = true;
          else if (['off', 'false', 'no'].includes(w)) d.smtpAlert = false;
          else c.report('KV202', n.args[0].loc, `'smtp_alert': '${n.args[0].text}' is not a boolean`);
        }),
      ),
    ],
  ];
}

export const newTrackingDraft = (): TrackingDraft => ({
  trackInterfaces: [],
  trackScripts: [],
  trackFiles: [],
  trackProcesses: [],
  notify: {},
});
