/**
 * keepvsadm <-> daemon control protocol: one JSON request per line, one JSON response per line,
 * over a Unix socket (mode 0600). Version 1.
 */
import type { ConnSnapshot, TableOp, TableSnapshot } from '../lb/types.js';

export const PROTOCOL_VERSION = 1;
/** Where keepvs listens and keepvsadm connects unless told otherwise (or KEEPVS_SOCKET). */
export const DEFAULT_SOCKET = '/run/keepvs/keepvs.sock';
/** Requests larger than this are refused (a -R restore of thousands of services still fits). */
export const MAX_REQUEST_BYTES = 8 * 1024 * 1024;

export type ControlRequest =
  | { readonly v: 1; readonly cmd: 'snapshot' }
  | { readonly v: 1; readonly cmd: 'connections' }
  | { readonly v: 1; readonly cmd: 'apply'; readonly ops: readonly TableOp[] }
  /** ipvsadm --start-daemon STATE [daemon options] */
  | { readonly v: 1; readonly cmd: 'start-daemon'; readonly daemon: DaemonRequest }
  /** ipvsadm --stop-daemon STATE */
  | { readonly v: 1; readonly cmd: 'stop-daemon'; readonly state: 'master' | 'backup' };

export interface DaemonRequest {
  readonly state: 'master' | 'backup';
  readonly interface: string;
  readonly syncId: number;
  readonly maxlen?: number;
  readonly group?: string;
  readonly port?: number;
  readonly ttl?: number;
}

export type ControlResponse =
  | { readonly ok: true; readonly snapshot: TableSnapshot }
  | { readonly ok: true; readonly connections: readonly ConnSnapshot[] }
  | { readonly ok: true; readonly results: readonly { ok: boolean; error?: string }[] }
  | { readonly ok: true; readonly done: true }
  | { readonly ok: false; readonly error: string };

/** Validates an untrusted request line; returns an error text for anything malformed. */
export function parseRequest(line: string): ControlRequest | string {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return 'request is not valid JSON';
  }
  if (!v || typeof v !== 'object') return 'request must be an object';
  const r = v as Record<string, unknown>;
  if (r.v !== PROTOCOL_VERSION) return `unsupported protocol version ${String(r.v)} (expected ${PROTOCOL_VERSION})`;
  if (r.cmd === 'snapshot' || r.cmd === 'connections') return { v: 1, cmd: r.cmd };
  if (r.cmd === 'start-daemon' || r.cmd === 'stop-daemon') return parseDaemon(r);
  if (r.cmd === 'apply') {
    if (!Array.isArray(r.ops)) return "'apply' needs an 'ops' array";
    for (const op of r.ops) {
      if (!op || typeof op !== 'object' || typeof (op as { op?: unknown }).op !== 'string')
        return 'each op needs an "op" name';
    }
    return { v: 1, cmd: 'apply', ops: r.ops as TableOp[] };
  }
  return `unknown command ${JSON.stringify(r.cmd)}`;
}

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const intIn = (v: unknown, lo: number, hi: number) =>
  typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi;

/** The daemon commands' fields, checked as untrusted input (an interface name goes into conntrackd.conf). */
function parseDaemon(r: Record<string, unknown>): ControlRequest | string {
  if (r.cmd === 'stop-daemon') {
    if (r.state !== 'master' && r.state !== 'backup') return "'stop-daemon' needs state master or backup";
    return { v: 1, cmd: 'stop-daemon', state: r.state };
  }
  const d = r.daemon as Record<string, unknown> | null;
  if (!d || typeof d !== 'object') return "'start-daemon' needs a 'daemon' object";
  if (d.state !== 'master' && d.state !== 'backup') return 'daemon.state must be master or backup';
  if (typeof d.interface !== 'string' || !IFNAME.test(d.interface)) return 'daemon.interface is not an interface name';
  if (!intIn(d.syncId, 0, 255)) return 'daemon.syncId must be 0..255';
  if (d.maxlen !== undefined && !intIn(d.maxlen, 1, 65535 - 28)) return 'daemon.maxlen must be 1..65507';
  if (d.port !== undefined && !intIn(d.port, 1, 65535)) return 'daemon.port must be 1..65535';
  if (d.ttl !== undefined && !intIn(d.ttl, 1, 255)) return 'daemon.ttl must be 1..255';
  if (d.group !== undefined && (typeof d.group !== 'string' || !/^[0-9A-Fa-f.:]{2,45}$/.test(d.group)))
    return 'daemon.group is not an address';
  return {
    v: 1,
    cmd: 'start-daemon',
    daemon: {
      state: d.state,
      interface: d.interface,
      syncId: d.syncId as number,
      ...(d.maxlen !== undefined ? { maxlen: d.maxlen as number } : {}),
      ...(d.group !== undefined ? { group: d.group as string } : {}),
      ...(d.port !== undefined ? { port: d.port as number } : {}),
      ...(d.ttl !== undefined ? { ttl: d.ttl as number } : {}),
    },
  };
}
