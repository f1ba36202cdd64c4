import type { RealServer, ScriptSpec, VirtualServer } from '../config/model.js';
import { formatRealServer, formatVirtualServer } from '../lb/ids.js';

/** States a notify script or FIFO line can report (vrrp_notify.c). */
export type NotifyState = 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP' | 'DELETED';
export type NotifyTarget = 'INSTANCE' | 'GROUP';

/** `notify` script argv: the configured argv + TYPE NAME STATE PRIORITY (group priority is 0). */
export function genericNotifyArgv(
  script: ScriptSpec,
  target: NotifyTarget,
  name: string,
  state: NotifyState,
  priority: number,
): string[] {
  return [...script.argv, target, name, state, String(priority)];
}

/** vrrp_notify.c notify_fifo: `INSTANCE "VI_1" MASTER 100\n`, `GROUP "G1" BACKUP 0\n`. */
export function vrrpFifoLine(target: NotifyTarget, name: string, state: NotifyState, priority: number): string {
  return `${target} "${name}" ${state} ${priority}\n`;
}

/** ipwrapper.c notify_fifo_vs / notify_fifo_rs lines (keepalived also writes a trailing NUL; we do not). */
export function vsFifoLine(vs: VirtualServer, up: boolean): string {
  return `VS ${formatVirtualServer(vs)} ${up ? 'UP' : 'DOWN'}\n`;
}
export function rsFifoLine(rs: RealServer, vs: VirtualServer, up: boolean): string {
  return `RS ${formatRealServer(vs, rs)} ${formatVirtualServer(vs)} ${up ? 'UP' : 'DOWN'}\n`;
}

export interface MailText {
  readonly subject: string;
  readonly body: string;
}

/** vrrp_notify.c vrrp_smtp_notifier / vrrp_sync_smtp_notifier + smtp.c smtp_alert subjects. */
export function vrrpMail(
  routerId: string,
  target: NotifyTarget,
  name: string,
  state: NotifyState,
): MailText | undefined {
  const group = target === 'GROUP';
  const texts: Record<NotifyState, [string, string] | undefined> = {
    MASTER: [
      'Entering MASTER state',
      group ? 'All VRRP group instances are now in MASTER state' : 'VRRP Instance is now owning VRRP VIPs',
    ],
    BACKUP: [
      'Entering BACKUP state',
      group ? 'All VRRP group instances are now in BACKUP state' : 'VRRP Instance is no longer owning VRRP VIPs',
    ],
    FAULT: [
      'Entering FAULT state',
      group ? 'All VRRP group instances are now in FAULT state' : 'VRRP Instance is no longer owning VRRP VIPs',
    ],
    STOP: ['Stopping', group ? 'All VRRP group instances are now stopping' : 'VRRP Instance stopping'],
    DELETED: group ? undefined : ['Deleted', 'VRRP Deleted at reload'],
  };
  const t = texts[state];
  if (!t) return undefined;
  return { subject: `[${routerId}] VRRP ${group ? 'Group' : 'Instance'} ${name} - ${t[0]}`, body: `=> ${t[1]} <=` };
}

export function realServerMail(
  routerId: string,
  rs: RealServer,
  vs: VirtualServer,
  up: boolean,
  reason: string,
): MailText {
  return {
    subject: `[${routerId}] Realserver ${formatRealServer(vs, rs)} of virtual server ${formatVirtualServer(vs)} - ${up ? 'UP' : 'DOWN'}`,
    body: `=> ${reason} <=`,
  };
}

export function virtualServerMail(routerId: string, vs: VirtualServer, up: boolean): MailText {
  return {
    subject: `[${routerId}] Virtualserver ${formatVirtualServer(vs)} - ${up ? 'UP' : 'DOWN'}`,
    body: `=> ${up ? 'Gained quorum' : 'Lost quorum'} <=`,
  };
}
