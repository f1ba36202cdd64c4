import { LbTable, type LbTableOptions } from '../../src/lb/table.js';
import type { DestParams, ServiceKey, ServiceParams, TableOp } from '../../src/lb/types.js';
import { FakeClock } from '../../src/util/clock.js';

export const tcp = (address: string, port: number): ServiceKey => ({
  kind: 'addr',
  protocol: 'tcp',
  family: address.includes(':') ? 6 : 4,
  address,
  port,
});
export const udp = (address: string, port: number): ServiceKey =>
  ({ ...tcp(address, port), protocol: 'udp' }) as ServiceKey;

export const svcParams = (over: Partial<ServiceParams> = {}): ServiceParams => ({
  scheduler: 'wlc',
  schedFlags: [],
  ops: false,
  ...over,
});
export const destParams = (over: Partial<DestParams> = {}): DestParams => ({
  forward: 'masq',
  weight: 1,
  uThreshold: 0,
  lThreshold: 0,
  ...over,
});

export function mustApply(table: LbTable, op: TableOp): void {
  const r = table.apply(op);
  if (!r.ok) throw new Error(`${op.op}: ${r.error.code} ${r.error.message}`);
}

/** A table with one service and the given dests (weights), added in order (IPVS lists them reversed). */
export function tableWith(
  scheduler: string,
  weights: number[],
  opts: Partial<LbTableOptions> & {
    params?: Partial<ServiceParams>;
    key?: ServiceKey;
    dest?: Partial<DestParams>;
  } = {},
): { table: LbTable; clock: FakeClock; key: ServiceKey; addrs: string[] } {
  const clock = (opts.clock as FakeClock | undefined) ?? new FakeClock();
  const table = new LbTable({ ...opts, clock });
  const key = opts.key ?? tcp('198.18.0.100', 80);
  mustApply(table, { op: 'add-service', key, params: svcParams({ scheduler, ...opts.params }) });
  const addrs: string[] = [];
  weights.forEach((w, i) => {
    const address = `198.18.1.${i + 1}`;
    addrs.push(address);
    mustApply(table, {
      op: 'add-dest',
      key,
      dest: { address, port: 80 },
      params: destParams({ weight: w, ...opts.dest }),
    });
  });
  return { table, clock, key, addrs };
}

export const client = (i: number, port = 40000): { address: string; port: number } => ({
  address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  port,
});
