/**
 * diffTables(current, desired) -> the minimal TableOps that turn one into the other.
 * Applying them and diffing again gives []; replaying them through `LbTable.applyAll`
 * is harmless. Within a service, adds/edits come before deletes so a swap (sorry server
 * in, real servers out) never leaves a moment with no destination.
 */
import { canonicalAddress } from '../util/address.js';
import {
  type DestParams,
  destId,
  type Endpoint,
  type ServiceKey,
  type ServiceParams,
  serviceId,
  type TableOp,
  type TableSnapshot,
} from './types.js';

export interface TableStateService {
  readonly key: ServiceKey;
  readonly params: ServiceParams;
  readonly dests: readonly { readonly dest: Endpoint; readonly params: DestParams }[];
}

export interface TableState {
  readonly services: readonly TableStateService[];
}

export interface DiffOptions {
  /**
   * Ids (serviceId) of services this diff owns. Services in `current` but not in
   * `desired` are deleted only if listed here (default: all are owned), so services
   * added by hand with keepvsadm survive a config reload.
   */
  readonly managed?: ReadonlySet<string>;
}

/** The table's configuration part of a snapshot (counters dropped). */
export function tableStateOf(snapshot: TableSnapshot): TableState {
  return {
    services: snapshot.services.map((s) => ({
      key: s.key,
      params: {
        scheduler: s.scheduler,
        schedFlags: s.schedFlags,
        ops: s.ops,
        ...(s.persistentTimeout !== undefined ? { persistentTimeout: s.persistentTimeout } : {}),
        ...(s.persistentPrefixLen !== undefined ? { persistentPrefixLen: s.persistentPrefixLen } : {}),
        ...(s.pe !== undefined ? { pe: s.pe } : {}),
      },
      dests: s.dests.map((d) => ({
        dest: { address: d.address, port: d.port },
        params: {
          forward: d.forward,
          weight: d.weight,
          uThreshold: d.uThreshold,
          lThreshold: d.lThreshold,
          ...(d.tunType !== undefined ? { tunType: d.tunType } : {}),
          ...(d.tunPort !== undefined ? { tunPort: d.tunPort } : {}),
          ...(d.tunFlags !== undefined ? { tunFlags: d.tunFlags } : {}),
        },
      })),
    })),
  };
}

function canonicalKey(key: ServiceKey): ServiceKey {
  if (key.kind === 'fwmark') return key;
  return { ...key, address: canonicalAddress(key.address, key.family) ?? key.address };
}

export function sameServiceParams(a: ServiceParams, b: ServiceParams, full: number): boolean {
  return (
    (a.scheduler || 'wlc') === (b.scheduler || 'wlc') &&
    [...a.schedFlags].sort().join(',') === [...b.schedFlags].sort().join(',') &&
    a.ops === b.ops &&
    a.persistentTimeout === b.persistentTimeout &&
    (a.persistentTimeout === undefined || (a.persistentPrefixLen ?? full) === (b.persistentPrefixLen ?? full)) &&
    a.pe === b.pe &&
    a.proxyProtocol === b.proxyProtocol &&
    a.flowPinTimeout === b.flowPinTimeout
  );
}

export function sameDestParams(a: DestParams, b: DestParams): boolean {
  return (
    a.forward === b.forward &&
    a.weight === b.weight &&
    a.uThreshold === b.uThreshold &&
    a.lThreshold === b.lThreshold &&
    a.tunType === b.tunType &&
    a.tunPort === b.tunPort &&
    (a.tunFlags ?? []).join(',') === (b.tunFlags ?? []).join(',')
  );
}

export function diffTables(current: TableState, desired: TableState, options: DiffOptions = {}): TableOp[] {
  const ops: TableOp[] = [];
  const cur = new Map(current.services.map((s) => [serviceId(canonicalKey(s.key)), s]));
  const wanted = new Set<string>();
  for (const want of desired.services) {
    const key = canonicalKey(want.key);
    const id = serviceId(key);
    wanted.add(id);
    const have = cur.get(id);
    const full = key.family === 4 ? 32 : 128;
    if (!have) ops.push({ op: 'add-service', key, params: want.params });
    else if (!sameServiceParams(have.params, want.params, full))
      ops.push({ op: 'edit-service', key, params: want.params });
    const haveDests = new Map(
      (have?.dests ?? []).map((d) => [
        destId({ ...d.dest, address: canonicalAddress(d.dest.address, key.family) ?? d.dest.address }, key.family),
        d,
      ]),
    );
    const wantIds = new Set<string>();
    for (const d of want.dests) {
      const dest = { address: canonicalAddress(d.dest.address, key.family) ?? d.dest.address, port: d.dest.port };
      const did = destId(dest, key.family);
      if (wantIds.has(did)) continue;
      wantIds.add(did);
      const h = haveDests.get(did);
      if (!h) ops.push({ op: 'add-dest', key, dest, params: d.params });
      else if (!sameDestParams(h.params, d.params)) ops.push({ op: 'edit-dest', key, dest, params: d.params });
    }
    for (const [did, h] of haveDests) if (!wantIds.has(did)) ops.push({ op: 'del-dest', key, dest: h.dest });
  }
  for (const [id, s] of cur) {
    if (wanted.has(id)) continue;
    if (options.managed && !options.managed.has(id)) continue;
    ops.push({ op: 'del-service', key: s.key });
  }
  return ops;
}
