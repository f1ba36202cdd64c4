/**
 * Cost of steering clients to proxy workers by source address (SO_ATTACH_REUSEPORT_CBPF, steer.ts)
 * against the kernel's plain reuseport hash, side by side in one interleaved run:
 *   npx tsc -p . && node dist/bench/steering.js [rounds]
 * Two clusters of 2 proxy workers with lb replicas, rr over 3 local real servers; each round runs
 * 16 client loops (4 per source address 127.0.0.2-5) opening a connection, reading the reply and
 * closing, for 2 s on one cluster then the other (order alternating), and prints connections/s
 * and steered/plain ratios. Loopback only.
 */
import net from 'node:net';
import { ClusterDataPlane } from '../src/dataplane/proxy/cluster.js';
import { LB_REPLICA_MODULE } from '../src/dataplane/proxy/lb-replica.js';
import type { ServiceKey, TableOp } from '../src/lb/types.js';

const rounds = Number(process.argv[2] ?? 4);
const SECONDS = 2;

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

async function cluster(steer: boolean, rsPorts: number[]): Promise<{ dp: ClusterDataPlane; port: number }> {
  const dp = await ClusterDataPlane.start({
    workers: 2,
    tableModule: LB_REPLICA_MODULE,
    statsIntervalMs: 250,
    ...(steer ? {} : { steerWorkers: 1 }),
  });
  const port = await freePort();
  const key: ServiceKey = { kind: 'addr', protocol: 'tcp', family: 4, address: '127.0.0.1', port };
  const ops: TableOp[] = [
    // persistent: only persistent services carry the address-steering program (steer.ts)
    { op: 'add-service', key, params: { scheduler: 'rr', schedFlags: [], ops: false, persistentTimeout: 300 } },
    ...rsPorts.map(
      (p): TableOp => ({
        op: 'add-dest',
        key,
        dest: { address: '127.0.0.1', port: p },
        params: { forward: 'masq', weight: 1, uThreshold: 0, lThreshold: 0 },
      }),
    ),
  ];
  await dp.apply(ops);
  for (let i = 0; i < 200 && !dp.snapshot().services.every((s) => s.listener === 'listening'); i++)
    await new Promise((r) => setTimeout(r, 50));
  return { dp, port };
}

function once(port: number, from: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = net.connect({ port, host: '127.0.0.1', localAddress: from });
    c.on('error', () => resolve(false));
    c.resume();
    c.on('end', () => {
      c.destroy();
      resolve(true);
    });
  });
}

async function load(port: number): Promise<{ ok: number; failed: number }> {
  const end = Date.now() + SECONDS * 1000;
  let ok = 0;
  let failed = 0;
  const loop = async (from: string) => {
    while (Date.now() < end) {
      if (await once(port, from)) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: 16 }, (_, i) => loop(`127.0.0.${2 + (i % 4)}`)));
  return { ok, failed };
}

async function main(): Promise<void> {
  const servers = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const s = net.createServer((c) => c.end(`rs${i}\n`));
      s.listen(0, '127.0.0.1');
      await new Promise((r) => s.once('listening', r));
      return s;
    }),
  );
  const rsPorts = servers.map((s) => (s.address() as net.AddressInfo).port);
  const steered = await cluster(true, rsPorts);
  const plain = await cluster(false, rsPorts);
  console.log(`steering bench ${new Date().toISOString()}, ${rounds} rounds of ${SECONDS} s per cluster`);
  console.log('| round | steered conn/s | plain conn/s | steered/plain |');
  console.log('| --- | --- | --- | --- |');
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? [steered, plain] : [plain, steered];
    const res = new Map<typeof steered, { ok: number; failed: number }>();
    for (const c of order) res.set(c, await load(c.port));
    const a = res.get(steered)!;
    const b = res.get(plain)!;
    ratios.push(a.ok / b.ok);
    console.log(
      `| ${r + 1} | ${(a.ok / SECONDS).toFixed(0)}${a.failed ? ` (${a.failed} failed)` : ''} | ${(b.ok / SECONDS).toFixed(0)}${b.failed ? ` (${b.failed} failed)` : ''} | ${(a.ok / b.ok).toFixed(2)} |`,
    );
  }
  ratios.sort((x, y) => x - y);
  console.log(`median steered/plain: ${ratios[Math.floor(ratios.length / 2)]!.toFixed(2)}`);
  await steered.dp.stop(0);
  await plain.dp.stop(0);
  for (const s of servers) s.close();
}

void main();
