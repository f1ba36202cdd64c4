/**
 * The state of a vrrp_sync_group as keepalived's vrrp_sync.c moves it (vrrp_sync_master,
 * vrrp_sync_backup, vrrp_sync_fault): FAULT as soon as one member is FAULT, BACKUP as soon as one
 * member goes to BACKUP, MASTER only once every member is MASTER; STOP when all have stopped. Each
 * change runs the group's notify scripts (notify_master/backup/fault/stop, `notify GROUP ...`).
 */
import type { VrrpStateName } from '../util/events.js';

/** The group's new state after a member moved to `to`, or undefined when it stays. */
export function syncGroupStateAfter(
  current: VrrpStateName,
  to: VrrpStateName,
  members: readonly VrrpStateName[],
): VrrpStateName | undefined {
  let next: VrrpStateName | undefined;
  if (to === 'FAULT') next = 'FAULT';
  else if (to === 'BACKUP') next = members.includes('FAULT') ? 'FAULT' : 'BACKUP';
  else if (to === 'MASTER') next = members.every((m) => m === 'MASTER') ? 'MASTER' : undefined;
  else if (to === 'STOP') next = members.every((m) => m === 'STOP') ? 'STOP' : undefined;
  return next !== undefined && next !== current ? next : undefined;
}
