/**
 * keepalived's respawn back-off (calc_restart_delay): a worker that ran for more than a minute is
 * restarted at once; otherwise after 1, 2, 4 ... seconds, capped at 60.
 */
export function restartDelayMs(ranMs: number, consecutiveFailures: number): number {
  if (ranMs > 60_000) return 0;
  return Math.min(60, 2 ** Math.max(0, consecutiveFailures - 1)) * 1000;
}
