/**
 * The LVS side of keepvs in one object: the virtual-server table, the data plane, the health
 * checks, and the rule that joins them: desired(config, health, admin overrides) -> diff -> apply
 * to the table, then to the data plane. Reload swaps the config and applies only the diff.
 */

import { CheckManager, type CheckSnapshot } from '../check/manager.js';
import type { CheckIo } from '../check/types.js';
import type { Config } from '../config/model.js';
import type { DataPlane } from '../dataplane/port.js';
import { ProxyDataPlane } from '../dataplane/proxy/proxy.js';
import { type DesiredTable, desiredTable } from '../lb/desired.js';
import { diffTables } from '../lb/diff.js';
import { VirtualServerTable } from '../lb/table.js';
import type { TableOp, TableSnapshot } from '../lb/types.js';
import type { Clock } from '../util/clock.js';
import type { EventSink } from '../util/events.js';
import type { Logger } from '../util/logger.js';

/** Operator overrides from the API (drain, set weight), kept across reloads. */
export interface AdminOverride {
  readonly weight: number;
  readonly reason: string;
}

export interface LvsServiceDeps {
  readonly clock: Clock;
  readonly io: CheckIo;
  readonly logger: Logger;
  readonly events: EventSink;
  readonly dataplane?: (table: VirtualServerTable) => DataPlane;
  readonly expireNodestConn?: boolean;
}

export class LvsService {
  readonly table: VirtualServerTable;
  readonly dataplane: DataPlane;
  readonly checks: CheckManager;
  private applied: DesiredTable = new Map();
  /** key: `${serviceId}|${destId}` */
  readonly overrides = new Map<string, AdminOverride>();
  private pending = Promise.resolve();

  constructor(
    private config: Config,
    private readonly deps: LvsServiceDeps,
  ) {
    this.table = new VirtualServerTable(deps.clock, { expireNodestConn: deps.expireNodestConn ?? false });
    const lt = config.globalDefs.lvsTimeouts;
    if (lt) this.table.apply({ op: 'set-timeouts', tcp: lt.tcp ?? 0, tcpfin: lt.tcpfin ?? 0, udp: lt.udp ?? 0 });
    this.dataplane = deps.dataplane
      ? deps.dataplane(this.table)
      : new ProxyDataPlane(this.table, { logger: deps.logger });
    this.checks = new CheckManager(config, {
      clock: deps.clock,
      io: deps.io,
      logger: deps.logger,
      events: deps.events,
    });
    this.checks.onChange(() => void this.sync());
  }

  async start(): Promise<void> {
    this.table.start();
    await this.sync();
    this.checks.start();
  }

  /** Recomputes the desired table and applies the difference; serialised. */
  sync(): Promise<void> {
    this.pending = this.pending
      .then(() => this.syncNow())
      .catch((e) => this.deps.logger.log('error', `apply failed: ${e}`));
    return this.pending;
  }

  private desired(): DesiredTable {
    const want = desiredTable(this.config, this.checks.health());
    if (this.overrides.size === 0) return want;
    const out = new Map(want);
    for (const [sid, svc] of want) {
      const dests = new Map(svc.dests);
      for (const [did, d] of svc.dests) {
        const o = this.overrides.get(`${sid}|${did}`);
        if (o) dests.set(did, { dest: d.dest, params: { ...d.params, weight: o.weight } });
      }
      out.set(sid, { ...svc, dests });
    }
    return out;
  }

  private async syncNow(): Promise<void> {
    const want = this.desired();
    const ops = diffTables(this.applied, want);
    if (ops.length === 0) return;
    const accepted: TableOp[] = [];
    for (const op of ops) {
      const r = this.table.apply(op);
      if (r.ok) accepted.push(op);
      else this.deps.logger.log('warning', `table: ${op.op} refused: ${r.error.message}`);
    }
    this.applied = want;
    await this.dataplane.apply(accepted);
  }

  /** Direct table changes from keepvsadm (they stand until the next health or config change touches them). */
  async applyOps(ops: readonly TableOp[]): Promise<{ ok: boolean; error?: string }[]> {
    const results = ops.map((op) => this.table.apply(op));
    await this.dataplane.apply(ops.filter((_, i) => results[i].ok));
    return results.map((r) => (r.ok ? { ok: true } : { ok: false, error: r.error.message }));
  }

  async reload(config: Config): Promise<void> {
    this.config = config;
    this.checks.reload(config);
    await this.sync();
  }

  setOverride(service: string, dest: string, override: AdminOverride | undefined): void {
    if (override) this.overrides.set(`${service}|${dest}`, override);
    else this.overrides.delete(`${service}|${dest}`);
    void this.sync();
  }

  snapshot(): { table: TableSnapshot; checks: CheckSnapshot; dataplane: ReturnType<DataPlane['snapshot']> } {
    return { table: this.table.snapshot(), checks: this.checks.snapshot(), dataplane: this.dataplane.snapshot() };
  }

  async stop(drainMs = 2000): Promise<void> {
    this.checks.stop();
    this.table.stop();
    await this.dataplane.stop(drainMs);
  }
}
