/** Entry point of one proxy worker (forked by ClusterDataPlane). Talks to the primary over IPC only. */
import { pathToFileURL } from 'node:url';
import type { PrimaryToWorker, ReplicaTable, WorkerConfig, WorkerToPrimary } from './cluster.js';
import { ProxyDataPlane } from './engine.js';

async function main(): Promise<void> {
  const config = JSON.parse(process.env.KEEPVS_DP_WORKER ?? '{}') as WorkerConfig;
  const send = (m: WorkerToPrimary) => process.send?.(m);
  const modUrl = config.tableModule.startsWith('file:') ? config.tableModule : pathToFileURL(config.tableModule).href;
  const mod = (await import(modUrl)) as { createReplicaTable(options: WorkerConfig['options']): ReplicaTable };
  const table = mod.createReplicaTable(config.options);
  const bindPorts = new Map<string, number>();
  const dp = new ProxyDataPlane(table, {
    ...config.options,
    bindPorts,
    udp: config.index === 0,
  });
  const report = () => {
    const t = table.snapshot?.();
    send({ type: 'stats', snapshot: dp.snapshot(), ...(t ? { table: t } : {}) });
  };
  const stats = setInterval(report, config.statsIntervalMs);
  let queue = Promise.resolve();
  process.on('message', (m: PrimaryToWorker) => {
    if (m.type === 'ops') {
      queue = queue.then(async () => {
        for (const [id, port] of m.bindPorts) bindPorts.set(id, port);
        for (const op of m.ops) table.apply(op);
        // do not wait for del-service drains: the primary only needs to know the ops are in
        void dp.apply(m.ops);
        send({ type: 'applied', seq: m.seq });
        report();
      });
    } else if (m.type === 'list-connections') {
      send({ type: 'connections', seq: m.seq, connections: table.connections?.() ?? [] });
    } else if (m.type === 'peer-load') {
      if (table.setPeerLoad) for (const l of m.loads) table.setPeerLoad(l.key, l.dest, l.active, l.inact);
    } else if (m.type === 'stop') {
      clearInterval(stats);
      void dp.stop(m.drainMs).then(() => {
        send({ type: 'stopped' });
        process.disconnect?.();
        process.exit(0);
      });
    }
  });
  process.on('disconnect', () => process.exit(0));
  send({ type: 'ready' });
}

void main();
