/** Per-service and per-destination accounting as the data plane sees it (mergeable across workers). */
import type { ConnState, Endpoint } from '../../lb/types.js';

export class DestStats {
  activeConns = 0;
  inactConns = 0;
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;
  connectFailures = 0;
  /** open connections tied to this destination (for expire_nodest_conn) */
  readonly open = new Set<{ expire(): void }>();
  constructor(
    readonly id: string,
    readonly endpoint: Endpoint,
  ) {}
}

/** Moves one connection between the Active and InAct buckets (ESTABLISHED counts Active, as IPVS). */
export function moveState(d: DestStats, from: ConnState | null, to: ConnState | null): void {
  if (from === 'ESTABLISHED') d.activeConns--;
  else if (from !== null) d.inactConns--;
  if (to === 'ESTABLISHED') d.activeConns++;
  else if (to !== null) d.inactConns++;
}
