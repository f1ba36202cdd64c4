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
  | { readonly v: 1; readonly cmd: 'apply'; readonly ops: readonly TableOp[] };

export type ControlResponse =
  | { readonly ok: true; readonly snapshot: TableSnapshot }
  | { readonly ok: true; readonly connections: readonly ConnSnapshot[] }
  | { readonly ok: true; readonly results: readonly { ok: boolean; error?: string }[] }
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
