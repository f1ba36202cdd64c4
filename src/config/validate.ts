/** Cross-block checks that need the whole configuration: references, duplicates, VRID clashes. */
import type { DiagnosticSink } from './diagnostics.js';
import { didYouMean } from './diagnostics.js';
import type { Config, VirtualServer, WeightedTrack } from './model.js';

function checkRefs(tracks: readonly WeightedTrack[], defined: Set<string>, what: string, diag: DiagnosticSink): void {
  for (const t of tracks) {
    if (!defined.has(t.name)) {
      const hint = didYouMean(t.name, defined);
      diag.report('KV303', t.loc, `${what} '${t.name}' is not defined${hint ? ` (did you mean '${hint}'?)` : ''}`);
    }
  }
}

function vsLabel(vs: VirtualServer): string {
  const k = vs.key;
  if (k.kind === 'fwmark') return `fwmark ${k.fwmark}`;
  if (k.kind === 'group') return `group ${k.group}`;
  return `${k.family === 6 ? `[${k.address}]` : k.address}:${k.port}`;
}

export function validateReferences(config: Config, diag: DiagnosticSink): void {
  const scripts = new Set(config.vrrpScripts.map((s) => s.name));
  const files = new Set(config.trackFiles.map((s) => s.name));
  const processes = new Set(config.trackProcesses.map((s) => s.name));
  const instances = new Set(config.vrrpInstances.map((i) => i.name));
  for (const i of config.vrrpInstances) {
    checkRefs(i.trackScripts, scripts, 'vrrp_script', diag);
    checkRefs(i.trackFiles, files, 'track_file', diag);
    checkRefs(i.trackProcesses, processes, 'vrrp_track_process', diag);
  }
  const memberOf = new Map<string, string>();
  for (const g of config.syncGroups) {
    checkRefs(g.trackScripts, scripts, 'vrrp_script', diag);
    checkRefs(g.trackFiles, files, 'track_file', diag);
    checkRefs(g.trackProcesses, processes, 'vrrp_track_process', diag);
    for (const m of g.group) {
      if (!instances.has(m)) {
        const hint = didYouMean(m, instances);
        diag.report(
          'KV303',
          g.loc,
          `vrrp_sync_group ${g.name}: vrrp_instance '${m}' is not defined${hint ? ` (did you mean '${hint}'?)` : ''}`,
        );
      } else if (memberOf.has(m)) {
        diag.report('KV306', g.loc, `vrrp_instance ${m} is already in vrrp_sync_group ${memberOf.get(m)}`);
      } else memberOf.set(m, g.name);
    }
  }
  // RFC 5798 §5.2.3: a VRID identifies one virtual router on a LAN, per address family.
  // keepalived allows duplicates only between unicast instances with disjoint peer sets.
  const vrids = new Map<string, string>();
  for (const i of config.vrrpInstances) {
    if (i.unicastPeers.length > 0) continue;
    const key = `${i.interface ?? ''}/${i.family}/${i.vrid}`;
    const prev = vrids.get(key);
    if (prev) {
      diag.report(
        'KV301',
        i.loc,
        `vrrp_instance ${i.name}: virtual_router_id ${i.vrid} is already used by ${prev} on ${i.interface ?? '(no interface)'}`,
      );
    } else vrids.set(key, i.name);
  }
  const groups = new Set(config.virtualServerGroups.map((g) => g.name));
  const seenVs = new Map<string, VirtualServer>();
  for (const vs of config.virtualServers) {
    if (vs.key.kind === 'group' && !groups.has(vs.key.group)) {
      diag.report('KV303', vs.loc, `virtual_server group '${vs.key.group}' is not defined`);
    }
    const id = `${vs.protocol} ${vsLabel(vs)}`;
    const prev = seenVs.get(id);
    if (prev)
      diag.report('KV304', vs.loc, `virtual_server ${id} is already defined at ${prev.loc.file}:${prev.loc.line}`);
    else seenVs.set(id, vs);
    for (const rs of vs.realServers) {
      for (const ch of rs.checkers) {
        if (ch.type === 'FILE_CHECK' && !files.has(ch.trackFile)) {
          diag.report('KV303', ch.loc, `FILE_CHECK track_file '${ch.trackFile}' is not defined`);
        }
      }
    }
  }
}
