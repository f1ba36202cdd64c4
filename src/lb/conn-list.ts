/**
 * The connection list of the JSON API: the entries `ipvsadm -Lnc` prints (the columns of
 * ip_vs_conn_seq_show: pro, expire, state, source, virtual, destination) as JSON rows, with the
 * plane that holds each entry and its kind. The LVS worker filters and cuts the list before it
 * crosses IPC, so a director holding 100k+ flows answers with `limit` rows and the totals.
 */

import type { Family } from '../config/model.js';
import { canonicalAddress } from '../util/address.js';
import { err, ok, type Result } from '../util/result.js';
import { destId, parseDestId, parseServiceId, serviceId } from './ids.js';
import { CONN_STATES } from './timeouts.js';
import type { ConnSnapshot, ConnState, Endpoint, Protocol } from './types.js';

export type ConnPlane = 'kernel' | 'proxy';
/** connection: a conntrack or proxy entry; template: persistence; pinned: a DR flow-map entry; synced: the peer's flow held by conntrackd (backup) */
export type ConnKind = 'connection' | 'template' | 'pinned' | 'synced';

/** the IPVS state names a `state` filter accepts: every state the tables store */
export const CONN_STATE_NAMES: readonly ConnState[] = CONN_STATES;
export const CONN_KINDS: readonly ConnKind[] = ['connection', 'template', 'pinned', 'synced'];
export const CONN_PLANES: readonly ConnPlane[] = ['kernel', 'proxy'];
export const CONN_LIMIT_DEFAULT = 1000;
export const CONN_LIMIT_MAX = 100_000;

export interface ConnQuery {
  /** a service id (lb/ids serviceId), canonical */
  readonly service?: string;
  /** a real server id (lb/ids destId), canonical; with or without `service` */
  readonly realServer?: string;
  readonly state?: ConnState;
  readonly kind?: ConnKind;
  readonly plane?: ConnPlane;
  readonly limit: number;
}

export interface ConnRow {
  readonly protocol: Protocol;
  /** seconds left, the number -Lnc prints as MM:SS */
  readonly expire: number;
  readonly state: ConnState;
  readonly source: Endpoint;
  readonly virtual: Endpoint;
  readonly destination: Endpoint;
  readonly family: Family;
  /** absent only for an entry no service claims */
  readonly service?: string;
  /** absent for synced flows (the real server is unknown until the takeover) */
  readonly realServer?: string;
  readonly plane: ConnPlane;
  readonly kind: ConnKind;
}

export interface ConnListing {
  /** entries the director holds, before filters */
  readonly total: number;
  /** entries the filters select */
  readonly matched: number;
  /** rows returned: min(matched, limit) */
  readonly returned: number;
  /** matched > returned: more entries than the limit */
  readonly truncated: boolean;
  readonly limit: number;
  readonly connections: readonly ConnRow[];
  /** entries the filters select that cannot be listed (not in total or matched): IPv6 pinned DR flows */
  readonly unlisted: readonly (UnlistedEntries & { readonly plane: ConnPlane })[];
}

/** Entries a plane holds but cannot list (so -Lnc shows none of them), counted per real server. */
export interface UnlistedEntries {
  readonly service: string;
  readonly realServer: string;
  readonly kind: ConnKind;
  readonly count: number;
  /** why they cannot be listed */
  readonly reason: string;
}

/** Entries of one source, in -Lnc order. */
export interface ConnGroup {
  readonly plane: ConnPlane;
  /** the peer's flows conntrackd holds on a backup */
  readonly synced?: boolean;
  readonly conns: readonly ConnSnapshot[];
  readonly unlisted?: readonly UnlistedEntries[];
}

const kindOf = (c: ConnSnapshot, g: ConnGroup): ConnKind =>
  g.synced ? 'synced' : c.template ? 'template' : c.pinned ? 'pinned' : 'connection';

/** The rows `q` selects, in -Lnc order, at most q.limit of them. */
export function listConnections(groups: readonly ConnGroup[], q: ConnQuery): ConnListing {
  let total = 0;
  let matched = 0;
  const rows: ConnRow[] = [];
  const unlisted: ConnListing['unlisted'][number][] = [];
  for (const g of groups) {
    total += g.conns.length;
    if (q.plane && q.plane !== g.plane) continue;
    for (const u of g.unlisted ?? []) {
      // pinned flows carry no TCP state: NONE, as the listed ones show
      if (q.kind && q.kind !== u.kind) continue;
      if (q.state && q.state !== 'NONE') continue;
      if (q.service && q.service !== u.service) continue;
      if (q.realServer && q.realServer !== u.realServer) continue;
      unlisted.push({ ...u, plane: g.plane });
    }
    for (const c of g.conns) {
      const kind = kindOf(c, g);
      if (q.kind && q.kind !== kind) continue;
      if (q.state && q.state !== c.state) continue;
      if (q.service && q.service !== c.service) continue;
      if (q.realServer && q.realServer !== c.realServer) continue;
      matched++;
      if (rows.length >= q.limit) continue;
      rows.push({
        protocol: c.protocol,
        expire: Math.ceil(c.expiresInMs / 1000),
        state: c.state,
        source: c.client,
        virtual: c.virtual,
        destination: c.dest,
        family: c.family,
        ...(c.service !== undefined ? { service: c.service } : {}),
        ...(c.realServer !== undefined ? { realServer: c.realServer } : {}),
        plane: g.plane,
        kind,
      });
    }
  }
  return {
    total,
    matched,
    returned: rows.length,
    truncated: matched > rows.length,
    limit: q.limit,
    connections: rows,
    unlisted,
  };
}

/** The query string as the API receives it (strings; fastify has checked the types it can). */
export interface RawConnQuery {
  readonly service?: string;
  readonly real_server?: string;
  readonly state?: string;
  readonly kind?: string;
  readonly plane?: string;
  readonly limit?: number | string;
}

const QUERY_PARAMETERS: readonly string[] = ['service', 'real_server', 'state', 'kind', 'plane', 'limit'];

/** Checks and canonicalizes the API's query; the error says which parameter and why. */
export function parseConnQuery(raw: RawConnQuery): Result<ConnQuery, string> {
  const unknown = Object.keys(raw).filter((k) => !QUERY_PARAMETERS.includes(k));
  if (unknown.length)
    return err(
      `unknown parameter ${unknown.map((k) => JSON.stringify(k)).join(', ')} (known: ${QUERY_PARAMETERS.join(', ')})`,
    );
  let service: string | undefined;
  if (raw.service !== undefined) {
    const p = parseServiceId(raw.service);
    if (!p) return err(`service: ${JSON.stringify(raw.service)} is not a service id (tcp:198.18.0.100:80, fwm:7:4)`);
    if (p.kind === 'group')
      return err(`service: ${raw.service} is a virtual_server_group; name one of its services (tcp:ADDR:PORT)`);
    if (p.kind === 'fwmark') service = serviceId(p);
    else
      service = serviceId({
        kind: 'addr',
        protocol: p.protocol as Protocol,
        family: p.family,
        address: canonicalAddress(p.address, p.family) ?? p.address,
        port: p.port,
      });
  }
  let realServer: string | undefined;
  if (raw.real_server !== undefined) {
    const d = parseDestId(raw.real_server);
    if (!d)
      return err(
        `real_server: ${JSON.stringify(raw.real_server)} is not a real server id (198.18.1.11:80, [2001:db8::11]:80)`,
      );
    realServer = destId({ address: canonicalAddress(d.address, d.family) ?? d.address, port: d.port }, d.family);
  }
  const oneOf = <T extends string>(
    name: string,
    v: string | undefined,
    allowed: readonly T[],
  ): Result<T | undefined, string> =>
    v === undefined || (allowed as readonly string[]).includes(v)
      ? ok(v as T | undefined)
      : err(`${name}: ${JSON.stringify(v)} is not one of ${allowed.join(', ')}`);
  const state = oneOf('state', raw.state, CONN_STATE_NAMES);
  if (!state.ok) return state;
  const kind = oneOf('kind', raw.kind, CONN_KINDS);
  if (!kind.ok) return kind;
  const plane = oneOf('plane', raw.plane, CONN_PLANES);
  if (!plane.ok) return plane;
  let limit = CONN_LIMIT_DEFAULT;
  if (raw.limit !== undefined) {
    limit = typeof raw.limit === 'number' ? raw.limit : /^\d+$/.test(raw.limit) ? Number(raw.limit) : Number.NaN;
    if (!Number.isInteger(limit) || limit < 1 || limit > CONN_LIMIT_MAX)
      return err(`limit: ${JSON.stringify(raw.limit)} is not an integer from 1 to ${CONN_LIMIT_MAX}`);
  }
  return ok({
    ...(service !== undefined ? { service } : {}),
    ...(realServer !== undefined ? { realServer } : {}),
    ...(state.value !== undefined ? { state: state.value } : {}),
    ...(kind.value !== undefined ? { kind: kind.value } : {}),
    ...(plane.value !== undefined ? { plane: plane.value } : {}),
    limit,
  });
}
