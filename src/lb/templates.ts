/**
 * Persistence templates (ip_vs_sched_persist): one entry per service and masked client address,
 * found by its key while it is hashed. The entries themselves live in the connection store.
 */
import { type ConnStore, F_UNHASHED } from './conn-store.js';

export class PersistenceTemplates {
  private readonly slotOfKey = new Map<string, number>();
  private readonly keyOfSlot = new Map<number, string>();

  /** the store, not its flags column: the columns are replaced when the store grows */
  constructor(private readonly store: ConnStore) {}

  /** The template key of a client of service `serviceId` (address already masked). */
  static key(serviceId: string, maskedClient: string): string {
    return `${serviceId}|${maskedClient}`;
  }

  get(key: string): number | undefined {
    return this.slotOfKey.get(key);
  }

  set(key: string, slot: number): void {
    this.slotOfKey.set(key, slot);
    this.keyOfSlot.set(slot, key);
  }

  /** The template is no longer found by its key (ip_vs_conn_unhash); it lives on while referenced. */
  unhash(slot: number): void {
    const k = this.keyOfSlot.get(slot);
    if (k !== undefined && this.slotOfKey.get(k) === slot) this.slotOfKey.delete(k);
    this.keyOfSlot.delete(slot);
    this.store.flags[slot] |= F_UNHASHED;
  }

  /** A deleted service's templates are no longer found. */
  dropService(serviceId: string): void {
    for (const [k, slot] of this.slotOfKey) {
      if (k.startsWith(`${serviceId}|`)) {
        this.slotOfKey.delete(k);
        this.store.flags[slot] |= F_UNHASHED;
      }
    }
  }
}
