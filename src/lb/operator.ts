/**
 * Changes an operator makes by hand (keepvsadm, ipvsadm's language) on top of the desired table,
 * with keepalived + ipvsadm's observable semantics:
 *
 * - keepalived only changes what it configured, and only when something of its own changes
 *   (check/ipwrapper.c: clear_diff_rs walks the old configuration's real servers only;
 *   init_service_rs edits a reloaded real server only when its configured weight changed;
 *   perform_svr_state acts on a checker's state change). So a hand edit of a configured real
 *   server or service (-e/-E, or its deletion with -d/-D) stays until that object's desired
 *   state changes (its checker changes it, or a reload changes its configuration): the edit
 *   remembers the desired state it was made against (`basis`) and is dropped once that differs.
 * - a real server added by hand to a configured service (-a), and a service added by hand (-A)
 *   with its real servers, are never removed by a reload: keepalived never configured them. If
 *   the configuration later names the same object, the configuration takes it over.
 * - `--set` timeouts stay until a configuration that sets lvs_timeouts is loaded.
 *
 * The state is plain data (OperatorStateData) so that the supervisor can hold a copy and give it
 * to the next LVS worker: operator changes survive a worker restart.
 */
import { canonicalAddress } from '../util/address.js';
import { sameDestParams, sameServiceParams, type TableState, type TableStateService } from './diff.js';
import {
  type DestParams,
  destId,
  type Endpoint,
  type ServiceKey,
  type ServiceParams,
  serviceId,
  type TableOp,
} from './types.js';

export interface OperatorServiceEdit {
  readonly key: ServiceKey;
  /** null: deleted by hand */
  readonly params: ServiceParams | null;
  /** the desired parameters when the edit was made */
  readonly basis: ServiceParams;
}

export interface OperatorDestEdit {
  readonly key: ServiceKey;
  readonly dest: Endpoint;
  /** null: deleted by hand */
  readonly params: DestParams | null;
  /** the desired parameters when the edit was made; null: added by hand (not configured) */
  readonly basis: DestParams | null;
}

export interface OperatorStateData {
  readonly added: readonly TableStateService[];
  readonly services: readonly OperatorServiceEdit[];
  readonly dests: readonly OperatorDestEdit[];
  readonly timeouts?: { readonly tcp: number; readonly tcpfin: number; readonly udp: number };
}

export const EMPTY_OPERATOR_STATE: OperatorStateData = { added: [], services: [], dests: [] };

const full = (key: ServiceKey) => (key.family === 4 ? 32 : 128);
const sidOf = (key: ServiceKey) =>
  serviceId(
    key.kind === 'fwmark' ? key : { ...key, address: canonicalAddress(key.address, key.family) ?? key.address },
  );
const didOf = (key: ServiceKey, dest: Endpoint) =>
  destId({ address: canonicalAddress(dest.address, key.family) ?? dest.address, port: dest.port }, key.family);

export class OperatorState {
  private added = new Map<string, TableStateService>();
  private services = new Map<string, OperatorServiceEdit>();
  /** key: `${sid}|${did}` */
  private dests = new Map<string, OperatorDestEdit>();
  private timeouts: OperatorStateData['timeouts'];

  constructor(data: OperatorStateData = EMPTY_OPERATOR_STATE) {
    for (const s of data.added) this.added.set(sidOf(s.key), s);
    for (const s of data.services) this.services.set(sidOf(s.key), s);
    for (const d of data.dests) this.dests.set(`${sidOf(d.key)}|${didOf(d.key, d.dest)}`, d);
    this.timeouts = data.timeouts;
  }

  data(): OperatorStateData {
    return {
      added: [...this.added.values()],
      services: [...this.services.values()],
      dests: [...this.dests.values()],
      ...(this.timeouts ? { timeouts: this.timeouts } : {}),
    };
  }

  get handTimeouts(): OperatorStateData['timeouts'] {
    return this.timeouts;
  }

  /** A configuration with lvs_timeouts was loaded: it replaces a hand `--set`. */
  forgetTimeouts(): void {
    this.timeouts = undefined;
  }

  /** Records an op the table accepted; `desired` is the desired table without operator changes. */
  record(op: TableOp, desired: TableState): void {
    if (op.op === 'zero') return;
    if (op.op === 'set-timeouts') {
      const t = this.timeouts ?? { tcp: 0, tcpfin: 0, udp: 0 };
      this.timeouts = { tcp: op.tcp || t.tcp, tcpfin: op.tcpfin || t.tcpfin, udp: op.udp || t.udp };
      return;
    }
    if (op.op === 'clear') {
      this.added.clear();
      this.dests.clear();
      for (const s of desired.services)
        this.services.set(sidOf(s.key), { key: s.key, params: null, basis: this.basisOf(s) });
      return;
    }
    const sid = sidOf(op.key);
    const configured = desired.services.find((s) => sidOf(s.key) === sid);
    if (!configured) {
      this.recordHandService(op, sid);
      return;
    }
    const basis = this.basisOf(configured);
    if (op.op === 'add-service' || op.op === 'edit-service') {
      this.services.set(sid, { key: configured.key, params: op.params, basis });
      if (op.op === 'add-service')
        // re-added after a hand -D: it starts empty, as the table has it
        for (const d of configured.dests) this.setDest(op.key, d.dest, null, this.destBasis(sid, op.key, d));
      return;
    }
    if (op.op === 'del-service') {
      this.services.set(sid, { key: configured.key, params: null, basis });
      for (const k of [...this.dests.keys()]) if (k.startsWith(`${sid}|`)) this.dests.delete(k);
      return;
    }
    const did = didOf(op.key, op.dest);
    const configuredDest = configured.dests.find((d) => didOf(op.key, d.dest) === did);
    const destBasis = configuredDest ? this.destBasis(sid, op.key, configuredDest) : null;
    if (op.op === 'del-dest') {
      if (destBasis) this.setDest(op.key, op.dest, null, destBasis);
      else this.dests.delete(`${sid}|${did}`);
    } else this.setDest(op.key, op.dest, op.params, destBasis);
  }

  private basisOf(s: TableStateService): ServiceParams {
    return this.services.get(sidOf(s.key))?.basis ?? s.params;
  }

  private destBasis(sid: string, key: ServiceKey, d: TableStateService['dests'][number]): DestParams {
    return this.dests.get(`${sid}|${didOf(key, d.dest)}`)?.basis ?? d.params;
  }

  private setDest(key: ServiceKey, dest: Endpoint, params: DestParams | null, basis: DestParams | null): void {
    this.dests.set(`${sidOf(key)}|${didOf(key, dest)}`, { key, dest, params, basis });
  }

  private recordHandService(op: Exclude<TableOp, { op: 'zero' | 'set-timeouts' | 'clear' }>, sid: string): void {
    const s = this.added.get(sid);
    if (op.op === 'add-service') this.added.set(sid, { key: op.key, params: op.params, dests: [] });
    else if (op.op === 'del-service') this.added.delete(sid);
    else if (!s) return;
    else if (op.op === 'edit-service') this.added.set(sid, { ...s, params: op.params });
    else {
      const did = didOf(op.key, op.dest);
      const others = s.dests.filter((d) => didOf(op.key, d.dest) !== did);
      this.added.set(sid, {
        ...s,
        dests: op.op === 'del-dest' ? others : [...others, { dest: op.dest, params: op.params }],
      });
    }
  }

  /**
   * The desired table with the operator's changes on top. Changes whose basis no longer matches
   * (the configuration or a checker changed that object) are dropped here, for good.
   */
  overlay(desired: TableState): TableState {
    const out: TableStateService[] = [];
    const seen = new Set<string>();
    for (const s of desired.services) {
      const sid = sidOf(s.key);
      seen.add(sid);
      this.added.delete(sid); // the configuration took it over
      let edit = this.services.get(sid);
      if (edit && !sameServiceParams(edit.basis, s.params, full(s.key))) {
        this.services.delete(sid);
        edit = undefined;
      }
      if (edit && edit.params === null) continue;
      const dests: TableStateService['dests'][number][] = [];
      const here = new Set<string>();
      for (const d of s.dests) {
        const did = didOf(s.key, d.dest);
        here.add(did);
        let e = this.dests.get(`${sid}|${did}`);
        if (e && (e.basis === null || !sameDestParams(e.basis, d.params))) {
          this.dests.delete(`${sid}|${did}`);
          e = undefined;
        }
        if (e && e.params === null) continue;
        dests.push(e?.params ? { dest: d.dest, params: e.params } : d);
      }
      for (const [k, e] of this.dests) {
        if (!k.startsWith(`${sid}|`) || here.has(didOf(e.key, e.dest))) continue;
        // an edit of a real server the configuration or its checker took away is void
        if (e.basis !== null || e.params === null) this.dests.delete(k);
        else dests.push({ dest: e.dest, params: e.params });
      }
      out.push({ key: s.key, params: edit?.params ?? s.params, dests });
    }
    for (const sid of [...this.services.keys()]) if (!seen.has(sid)) this.services.delete(sid);
    for (const k of [...this.dests.keys()]) if (!seen.has(k.slice(0, k.indexOf('|')))) this.dests.delete(k);
    out.push(...this.added.values());
    return { services: out };
  }
}
