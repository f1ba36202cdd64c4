/**
 * vrrp_sync_group policy as keepalived's vrrp_sync.c applies it: members move together, a group
 * goes to MASTER only when every member wants MASTER ("prefer backup state to avoid thrashing"),
 * one member taking BACKUP takes the whole group to BACKUP, FAULT in one takes all to FAULT.
 */
import type { SyncGroup } from '../config/model.js';

export interface SyncMember {
  /** keepalived's wantstate == MASTER: its own master-down timer ran out (or it is MASTER) */
  readonly wantsMaster: boolean;
}

export class SyncGroups {
  private readonly byMember = new Map<string, SyncGroup>();

  constructor(groups: readonly SyncGroup[]) {
    for (const g of groups) for (const m of g.group) this.byMember.set(m, g);
  }

  groupOf(instance: string): SyncGroup | undefined {
    return this.byMember.get(instance);
  }

  /**
   * keepalived's vrrp_sync_can_goto_master(): a member whose timer ran out may become MASTER only
   * when every other running member wants it too; otherwise it waits another master-down interval.
   */
  mayGoMaster(instance: string, member: (name: string) => SyncMember | undefined): boolean {
    const g = this.groupOf(instance);
    if (!g) return true;
    return g.group.every((n) => n === instance || (member(n)?.wantsMaster ?? true));
  }
}
