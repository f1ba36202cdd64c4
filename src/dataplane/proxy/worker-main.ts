/**
 * Entry point of one proxy worker (forked by ProxyProcesses). Its controller, the LVS worker's
 * ClusterDataPlane, connects to its Unix socket, configures it once and feeds it TableOps. When
 * the controller goes away (an LVS worker crash) the worker keeps forwarding with the table it
 * holds; the next controller is told that table in `hello` and reconciles against it. When the
 * parent goes away (a supervisor SIGKILL), the daemon's workers forward on with that table until
 * the next keepvs adopts them (processes.ts); others (tests, benchmarks) close their listeners and
 * let open connections drain.
 */
import { chmodSync, readdirSync, rmdirSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { RuntimeDataPlaneOptions } from '../port.js';
import { FrameChannel } from './channel.js';
import type { PrimaryToWorker, ReplicaShared, ReplicaTable, WorkerToPrimary } from './cluster.js';
import { loadFreebind } from './freebind.js';
import { openPositions } from './positions.js';
import type { ParentToProxy, ProxyProcessConfig, ProxyToParent } from './processes.js';
import { ProxyDataPlane } from './proxy-plane.js';

interface Running {
  readonly table: ReplicaTable;
  readonly dp: ProxyDataPlane;
  readonly bindPorts: Map<string, number>;
  stats?: NodeJS.Timeout;
}

/**
 * The socket, and its private directory once the last worker left it (an orphan's parent cannot):
 * the shared positions file goes with the last socket (a mapping still open keeps working).
 */
function removeSocket(path: string, positionsPath: string | undefined): void {
  // libuv unlinks a listening Unix socket when the server closes; this is for the other paths out
  const dir = dirname(path);
  const lastOut = () => {
    if (!positionsPath || dirname(positionsPath) !== dir) return;
    if (readdirSync(dir).every((name) => join(dir, name) === positionsPath)) unlinkSync(positionsPath);
  };
  for (const remove of [() => unlinkSync(path), lastOut, () => rmdirSync(dir)]) {
    try {
      remove();
    } catch {
      // gone already, or the other workers' sockets are still there
    }
  }
}

function main(): void {
  const config = JSON.parse(process.env.KEEPVS_DP_WORKER ?? '{}') as ProxyProcessConfig;
  let running: Running | undefined;
  let configuring: Promise<void> | undefined;
  let controller: FrameChannel<PrimaryToWorker, WorkerToPrimary> | undefined;
  let stopping = false;
  let orphanTimer: NodeJS.Timeout | undefined;
  let queue = Promise.resolve();
  const send = (m: WorkerToPrimary) => controller?.send(m);
  const report = () => {
    if (!running || !controller) return;
    const t = running.table.snapshot?.();
    controller.send({ type: 'stats', snapshot: running.dp.snapshot(), ...(t ? { table: t } : {}) }, true);
  };

  const configure = async (m: Extract<PrimaryToWorker, { type: 'configure' }>) => {
    // a worker configured by an earlier controller keeps its table, options and connections
    if (running) return;
    const modUrl = m.tableModule.startsWith('file:') ? m.tableModule : pathToFileURL(m.tableModule).href;
    const mod = (await import(modUrl)) as {
      createReplicaTable(options: typeof m.options, shared?: ReplicaShared): ReplicaTable;
    };
    const positions = config.positionsPath ? openPositions(config.positionsPath) : undefined;
    const table = mod.createReplicaTable(m.options, positions ? { positions } : {});
    const bindPorts = new Map<string, number>();
    // UDP: every worker binds with SO_REUSEPORT when libc is there (the kernel keeps a flow on one
    // worker); else only worker 0, so that all datagrams of a flow meet one process
    const dp = new ProxyDataPlane(table, {
      ...m.options,
      bindPorts,
      udp: config.index === 0 || loadFreebind() !== null,
    });
    running = { table, dp, bindPorts };
    running.stats = setInterval(report, m.statsIntervalMs);
  };

  // what a reload or a new controller may change in a running worker (the rest is fixed at configure)
  const setOptions = (o: RuntimeDataPlaneOptions) => {
    if (!running) return;
    running.dp.setOptions(o);
    if (o.expireNodestConn) running.table.setExpireNodestConn?.(o.expireNodestConn === 'close');
  };

  const onMessage = (m: PrimaryToWorker) => {
    if (stopping) return;
    if (m.type === 'configure') {
      if (configuring) {
        // configured by an earlier controller (an LVS worker crash, a new keepvs): its table and
        // connections stay, this controller's options apply
        const o = m.options;
        queue = queue
          .then(() => configuring)
          .then(() =>
            setOptions({ expireNodestConn: o.expireNodestConn ?? 'keep', proxyProtocol: o.proxyProtocol ?? {} }),
          );
      } else {
        configuring = configure(m);
        queue = queue.then(() => configuring);
      }
      // the controller's start() waits for this: from here on the worker runs with its options
      queue = queue.then(() => {
        send({ type: 'configured' });
      });
    } else if (m.type === 'options') {
      queue = queue.then(() => setOptions(m.options));
    } else if (m.type === 'ops') {
      queue = queue.then(async () => {
        if (!running) return;
        for (const [id, port] of m.bindPorts) running.bindPorts.set(id, port);
        for (const op of m.ops) running.table.apply(op);
        // do not wait for del-service drains: the controller only needs to know the ops are in
        void running.dp.apply(m.ops);
        send({ type: 'applied', seq: m.seq });
        report();
      });
    } else if (m.type === 'list-connections') {
      send({ type: 'connections', seq: m.seq, connections: running?.table.connections?.() ?? [] });
    } else if (m.type === 'peer-load') {
      const t = running?.table;
      if (t?.setPeerLoad) for (const l of m.loads) t.setPeerLoad(l.key, l.dest, l.active, l.inact);
    } else if (m.type === 'stop') stop(m.drainMs);
  };

  const server = net.createServer((socket) => {
    // a controller after the parent's death is the LVS worker of the keepvs that adopted this worker
    if (orphanTimer) clearTimeout(orphanTimer);
    orphanTimer = undefined;
    // one controller at a time: a new LVS worker replaces whatever connection is left
    controller?.close();
    const ch: FrameChannel<PrimaryToWorker, WorkerToPrimary> = new FrameChannel(socket, onMessage, () => {
      if (controller !== ch) return;
      controller = undefined;
      // adopted (no parent of its own): losing the controller may mean the adopting keepvs died too
      if (!process.connected) awaitAdoption();
    });
    controller = ch;
    void queue.then(() => {
      const held = running?.table.snapshot?.() ?? null;
      ch.send({
        type: 'hello',
        pid: process.pid,
        configured: running !== undefined,
        held,
        bindPorts: running ? [...running.bindPorts] : [],
      });
    });
  });

  function stop(drainMs: number): void {
    if (stopping) return;
    stopping = true;
    server.close();
    if (running?.stats) clearInterval(running.stats);
    void (running?.dp.stop(drainMs) ?? Promise.resolve()).then(() => {
      send({ type: 'stopped' });
      controller?.socket.end();
      removeSocket(config.socketPath, config.positionsPath);
      process.disconnect?.();
      process.exit(0);
    });
  }

  try {
    unlinkSync(config.socketPath);
  } catch {
    // not there: the usual case
  }
  server.listen(config.socketPath, () => {
    chmodSync(config.socketPath, 0o600);
  });
  process.on('message', (m: ParentToProxy) => {
    if (m.type === 'stop') stop(m.drainMs);
  });
  // the parent gone (a supervisor SIGKILL): in the daemon, forward on with the last table until the
  // next keepvs adopts this worker (processes.ts), as IPVS forwards on when keepalived dies; else drain
  // without a parent, a controller must come within outliveParentMs, else drain and exit
  function awaitAdoption(): void {
    if (stopping || orphanTimer) return;
    if (!config.outliveParentMs) {
      stop(config.orphanDrainMs);
      return;
    }
    orphanTimer = setTimeout(() => stop(config.orphanDrainMs), config.outliveParentMs);
  }
  process.on('disconnect', awaitAdoption);
  // the parent's stdout/stderr may be gone with it: a failed write must not end the data plane
  for (const out of [process.stdout, process.stderr]) out.on('error', () => {});
  // an orphan (parent gone) must not die of a send on the closed channel
  const memory = () => {
    if (process.connected)
      process.send?.({ type: 'memory', heapUsed: process.memoryUsage().heapUsed } satisfies ProxyToParent, () => {});
  };
  memory();
  setInterval(memory, 2000).unref();
  // a signal to the whole process group (systemd, Ctrl-C) reaches this process too: drain as the
  // supervisor's stop does (3 s), not as an orphan
  process.on('SIGTERM', () => stop(3000));
  process.on('SIGINT', () => stop(3000));
}

main();
