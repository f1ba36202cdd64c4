/**
 * The reload guard: a one-byte typo in a block name (`virtuad_server`) is only an unknown keyword
 * (KV110, a warning, as in keepalived), so a reload would silently delete that virtual server or
 * VRRP instance. A reload that removes a virtual_server or vrrp_instance while the new file has an
 * unknown top-level block is refused unless forced (`keepvs --force-reload`, or the API's reload
 * action with force). Pure: compares two configurations.
 */
import type { Config, LoadResult, VirtualServer } from './model.js';

export interface ReloadRefusal {
  /** what the reload would remove, as keepalived names them */
  readonly removed: readonly string[];
  /** `FILE:LINE:COL: 'word'` of each unknown top-level block */
  readonly unknownBlocks: readonly string[];
  readonly message: string;
}

/** keepalived's FMT_VS-like label of a virtual server: `[TCP]10.0.0.1:80`, `FWM 3`, `group NAME`. */
export function virtualServerLabel(vs: VirtualServer): string {
  const k = vs.key;
  if (k.kind === 'address') return `[${vs.protocol}]${k.family === 6 ? `[${k.address}]` : k.address}:${k.port}`;
  if (k.kind === 'fwmark') return `FWM ${k.fwmark}${k.family === 6 ? ' IPv6' : ''}`;
  return `group ${k.group}`;
}

/** undefined: the reload may go ahead; else why it is refused. */
export function reloadRefusal(running: Config, next: LoadResult): ReloadRefusal | undefined {
  const unknown = next.unknownTopLevelBlocks ?? [];
  if (unknown.length === 0 || !next.config) return undefined;
  const nextVs = new Set(next.config.virtualServers.map(virtualServerLabel));
  const nextVi = new Set(next.config.vrrpInstances.map((i) => i.name));
  const removed = [
    ...running.virtualServers
      .map(virtualServerLabel)
      .filter((l) => !nextVs.has(l))
      .map((l) => `virtual_server ${l}`),
    ...running.vrrpInstances.filter((i) => !nextVi.has(i.name)).map((i) => `vrrp_instance ${i.name}`),
  ];
  if (removed.length === 0) return undefined;
  const unknownBlocks = unknown.map((u) => `${u.loc.file}:${u.loc.line}:${u.loc.col}: '${u.keyword}'`);
  const message =
    `Reload refused: it would remove ${removed.join(', ')} while the new configuration has an unknown ` +
    `top-level block (${unknownBlocks.join(', ')}); fix the typo, or force it with keepvs --force-reload`;
  return { removed, unknownBlocks, message };
}
