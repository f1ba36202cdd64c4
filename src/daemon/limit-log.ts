/**
 * Logs the proxy's resource limits (fd exhaustion, the UDP flow cap) from the counters in the data
 * plane snapshot: a line when a counter grew, at most once per interval per service and kind, so a
 * flood is visible in the log without filling it.
 */
import type { DataPlaneSnapshot } from '../dataplane/port.js';

const KINDS = [
  ['fdExhausted', 'out of file descriptors (accept/socket EMFILE or ENFILE); TCP listeners pause 100 ms and go on'],
  ['udpFlowsDropped', 'UDP flow limit reached: datagrams of new flows dropped (keepvs --udp-flows)'],
] as const;

export class LimitLog {
  private readonly seen = new Map<string, { count: number; at: number }>();

  constructor(
    private readonly log: (message: string) => void,
    private readonly intervalMs = 10_000,
  ) {}

  report(dp: DataPlaneSnapshot, now: number): void {
    for (const s of dp.services) {
      if (!s.limits) continue;
      for (const [kind, what] of KINDS) {
        const key = `${s.id} ${kind}`;
        const count = s.limits[kind];
        const prev = this.seen.get(key);
        if (count <= (prev?.count ?? 0)) continue;
        if (prev && now - prev.at < this.intervalMs) continue;
        this.seen.set(key, { count, at: now });
        this.log(`proxy ${s.id}: ${what} (${count} so far)`);
      }
    }
  }
}
