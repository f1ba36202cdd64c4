/**
 * The operator's changes (keepvsadm -A/-a/-e/-d/--set, API drains and weights) kept on disk, so that
 * they survive a restart of keepvs itself as hand-made IPVS entries survive keepalived's restart in
 * the kernel. One JSON file beside the control socket (the runtime directory), written and read
 * with the safe-file helpers: private directory, never through a symlink, ours and 0600.
 */
import { readFileSafely, writeFileSafely } from '../os/safe-file.js';
import type { OperatorSnapshot } from './lvs-service.js';

export const operatorStateFile = (socket: string): string => `${socket}.operator`;

const FORMAT = 1;

const isArray = (v: unknown): v is unknown[] => Array.isArray(v);

/** A plausible snapshot (the file is ours, but a truncated or older one must not reach the worker). */
function isSnapshot(v: unknown): v is OperatorSnapshot {
  const s = v as OperatorSnapshot | undefined;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.table === 'object' &&
    s.table !== null &&
    isArray(s.table.added) &&
    isArray(s.table.services) &&
    isArray(s.table.dests) &&
    isArray(s.overrides) &&
    s.overrides.every((o) => isArray(o) && typeof o[0] === 'string' && typeof o[1]?.weight === 'number')
  );
}

/** The saved snapshot; `error` says why a file that is there was not taken. */
export function loadOperatorState(path: string): { state?: OperatorSnapshot; error?: string } {
  let text: string | undefined;
  try {
    text = readFileSafely(path);
  } catch (e) {
    return { error: (e as Error).message };
  }
  if (text === undefined) return {};
  try {
    const v = JSON.parse(text) as { format?: number; operator?: unknown };
    if (v.format !== FORMAT || !isSnapshot(v.operator)) return { error: `${path}: not a keepvs operator state file` };
    return { state: v.operator };
  } catch (e) {
    return { error: `${path}: ${(e as Error).message}` };
  }
}

/** Throws with the reason when it cannot be written safely. */
export function saveOperatorState(path: string, state: OperatorSnapshot): void {
  writeFileSafely(path, `${JSON.stringify({ format: FORMAT, operator: state })}\n`, 0o600);
}

/** How much there is, for the log line at start. */
export function describeOperatorState(s: OperatorSnapshot): string {
  const t = s.table;
  return `${t.added.length} services added, ${t.services.length + t.dests.length} edits, ${s.overrides.length} API overrides${t.timeouts ? ', timeouts' : ''}`;
}
