/**
 * rr/wrr positions shared by the proxy workers (lb/sched SharedPosition), so that their table
 * replicas make one rr/wrr sequence for the whole director, as IPVS's one table does, however the
 * kernel spreads connections over the workers. A small file in the workers' private 0700
 * directory, created by their parent and mapped MAP_SHARED by each worker; one slot per service
 * (a key and a value, Int32 each), found by the service id's hash with open addressing. A slot
 * once taken stays that service's (a service added again continues its old position).
 */
import { closeSync, constants, fstatSync, openSync, writeFileSync } from 'node:fs';
import { destTag, type SharedPosition } from '../../lb/sched/types.js';
import { mapSharedFile } from '../../os/libc.js';

const SLOTS = 4096;
export const POSITIONS_BYTES = SLOTS * 8;
/** a service whose slot is not found within this many probes keeps its own position */
const MAX_PROBES = 64;

/** The zeroed file, created exclusively with mode 0600 (never through a symlink). */
export function createPositionsFile(path: string): void {
  writeFileSync(path, Buffer.alloc(POSITIONS_BYTES), { mode: 0o600, flag: 'wx' });
}

/** The service id -> shared cell lookup over the mapped file, or undefined (no file, no libc). */
export function openPositions(path: string): ((serviceId: string) => SharedPosition | undefined) | undefined {
  let cells: Int32Array;
  let fd = -1;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_NOFOLLOW);
    if (fstatSync(fd).size < POSITIONS_BYTES) return undefined;
    const mapped = mapSharedFile(fd, POSITIONS_BYTES);
    if (!mapped) return undefined;
    cells = new Int32Array(mapped);
  } catch {
    return undefined;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
  const cell = (i: number): SharedPosition => ({
    load: () => Atomics.load(cells, i),
    compareExchange: (expected, next) => Atomics.compareExchange(cells, i, expected, next),
  });
  return (serviceId) => {
    const key = destTag(serviceId);
    for (let probe = 0; probe < MAX_PROBES; probe++) {
      const slot = ((key >>> 0) + probe) % SLOTS;
      const held = Atomics.compareExchange(cells, slot * 2, 0, key);
      if (held === 0 || held === key) return cell(slot * 2 + 1);
    }
    return undefined;
  };
}
