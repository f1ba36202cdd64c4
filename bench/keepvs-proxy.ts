/**
 * The keepvs data plane as the benchmark's harness row runs it: a ClusterDataPlane with lb's table
 * replicas, no supervisor, no LVS worker, no health checks (what bench/dataplane.sh compares the
 * daemon against, to show the daemon's own overhead).
 * Usage: node dist/bench/keepvs-proxy.js <workers> <scheduler> <vip-port>:<real-port>[,<real-port>...] [...]
 * Prints one JSON line {"pids":[...]} when listening; stops on SIGTERM.
 */
import { ClusterDataPlane } from '../src/dataplane/proxy/cluster.js';
import { LB_REPLICA_MODULE } from '../src/dataplane/proxy/lb-replica.js';
import type { TableOp } from '../src/lb/types.js';

async function main(): Promise<void> {
  const [workersArg, scheduler, ...pairs] = process.argv.slice(2);
  const dp = await ClusterDataPlane.start({ workers: Number(workersArg ?? 2), tableModule: LB_REPLICA_MODULE });
  const ops: TableOp[] = [];
  for (const pair of pairs) {
    const [vip, reals] = pair.split(':');
    const key = { kind: 'addr', protocol: 'tcp', family: 4, address: '127.0.0.1', port: Number(vip) } as const;
    ops.push({ op: 'add-service', key, params: { scheduler: scheduler ?? 'rr', schedFlags: [], ops: false } });
    for (const real of (reals ?? '').split(','))
      ops.push({
        op: 'add-dest',
        key,
        dest: { address: '127.0.0.1', port: Number(real) },
        params: { forward: 'masq', weight: 1, uThreshold: 0, lThreshold: 0 },
      });
  }
  await dp.apply(ops);
  for (let i = 0; i < 100 && !dp.snapshot().services.every((s) => s.listener === 'listening'); i++)
    await new Promise((r) => setTimeout(r, 50));
  process.stdout.write(`${JSON.stringify({ pids: [process.pid, ...dp.pids()] })}\n`);
  process.on('SIGTERM', () => {
    void dp.stop(0).then(() => process.exit(0));
  });
}

void main();
