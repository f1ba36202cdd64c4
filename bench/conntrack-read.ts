/**
 * The kernel plane's conntrack read, /proc/net/nf_conntrack (text) against a ctnetlink dump
 * (binary) and the table kept from conntrack events, on one table in a network namespace of its
 * own: ENTRIES closed loopback connections (TIME_WAIT, 120 s, as a busy director holds them). The
 * readers alternate, order rotating each round; printed: milliseconds and CPU per read, the longest
 * event-loop stall during a read (what health checks and the API wait), ratios to /proc; then the
 * events' own cost: CHURN more connections with one event socket left unread, drained at once.
 * Run as root: `node dist/bench/conntrack-read.js` (env ENTRIES, ROUNDS). Loopback only.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import net from 'node:net';
import { ProcConntrack } from '../src/os/conntrack.js';
import { ConntrackEvents, ConntrackTable } from '../src/os/conntrack-watch.js';
import { NetlinkConntrack } from '../src/os/ctnetlink.js';

const ENTRIES = Number(process.env.ENTRIES ?? 50000);
const ROUNDS = Number(process.env.ROUNDS ?? 10);
const CHURN = Number(process.env.CHURN ?? 2000);

async function inside(): Promise<void> {
  const server = net.createServer((c) => c.on('end', () => c.end()).resume());
  await new Promise<void>((r) => server.listen(8080, '127.0.0.1', r));
  const runner = { run: async () => ({ code: 0, stdout: '', stderr: '' }) };
  const netlink = NetlinkConntrack.open(runner as never);
  if (!netlink) throw new Error('no ctnetlink socket');
  const watch = (dump: NetlinkConntrack | null) => {
    const events = ConntrackEvents.open();
    if (typeof events === 'string') throw new Error(events);
    let read = () => {};
    const table = new ConntrackTable(
      { list: (w) => dump?.list(w) ?? Promise.resolve([]), flushDest: async () => {} },
      Date.now,
      () => read(),
    );
    return { table, events, feed: () => (read = events.feed(table)) };
  };
  // subscribed before the traffic: the table learns it from events
  const kept = watch(netlink);
  kept.feed();
  await kept.table.list();
  const heap = () => {
    (globalThis as { gc?: () => void }).gc?.();
    return process.memoryUsage().heapUsed;
  };
  const heapBefore = heap();
  // 16 source addresses: each has one ephemeral port range of TIME_WAIT sockets
  const t0 = Date.now();
  let made = 0;
  const connections = async (n: number, from: number) => {
    await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w, n, from)));
  };
  const worker = async (w: number, n: number, from: number) => {
    for (let i = from + w; i < from + n; i += 64) {
      await new Promise<void>((resolve) => {
        const c = net.connect({ port: 8080, host: '127.0.0.1', localAddress: `127.0.1.${(i % 16) + 1}` }, () =>
          c.end(),
        );
        c.on('close', () => resolve());
        c.on('error', () => {});
        c.resume();
      });
      made++;
    }
  };
  await connections(ENTRIES, 0);
  await new Promise((r) => setTimeout(r, 200));
  await kept.table.list();
  const perEntry = (heap() - heapBefore) / kept.table.size;
  const readers = { proc: new ProcConntrack(runner as never), netlink, events: kept.table };
  const NAMES = ['proc', 'netlink', 'events'] as const;
  const wanted = (_f: 4 | 6, dst: string) => dst === '127.0.0.1';
  const times: Record<string, number[]> = { proc: [], netlink: [], events: [] };
  const stalls: Record<string, number[]> = { proc: [], netlink: [], events: [] };
  const cpu: Record<string, number[]> = { proc: [], netlink: [], events: [] };
  const counts: Record<string, number> = {};
  console.log(`# ${made} connections made in ${Date.now() - t0} ms`);
  for (let round = 0; round < ROUNDS; round++) {
    const order = NAMES.map((_, i) => NAMES[(i + round) % NAMES.length]!);
    for (const name of order) {
      // the longest gap between 1 ms ticks, read after a tick that follows the read (a synchronous
      // parse delays the tick past the read's end)
      let last = performance.now();
      let gap = 0;
      const tick = setInterval(() => {
        const now = performance.now();
        gap = Math.max(gap, now - last);
        last = now;
      }, 1);
      const c0 = process.cpuUsage();
      const s = performance.now();
      const es = await (readers[name] as ProcConntrack).list(wanted);
      times[name]!.push(performance.now() - s);
      const cu = process.cpuUsage(c0);
      cpu[name]!.push((cu.user + cu.system) / 1000);
      await new Promise((r) => setTimeout(r, 5));
      clearInterval(tick);
      stalls[name]!.push(gap);
      counts[name] = es.length;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  const max = (xs: number[]) => Math.max(...xs);
  console.log('| reader | entries read | median ms | max ms | CPU ms (median) | longest stall ms (median of rounds) |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const n of NAMES)
    console.log(
      `| ${n} | ${counts[n]} | ${med(times[n]!).toFixed(1)} | ${max(times[n]!).toFixed(1)} | ${med(cpu[n]!).toFixed(1)} | ${med(stalls[n]!).toFixed(1)} |`,
    );
  for (const n of ['netlink', 'events'] as const)
    console.log(
      `${n}/proc: time ${(med(times[n]!) / med(times.proc!)).toFixed(3)}, CPU ${(med(cpu[n]!) / med(cpu.proc!)).toFixed(3)}, stall ${(med(stalls[n]!) / med(stalls.proc!)).toFixed(2)}`,
    );
  // the events' own cost: a socket left unread during CHURN connections, then drained at once
  const idle = watch(null);
  await connections(CHURN, ENTRIES);
  await new Promise((r) => setTimeout(r, 200));
  const c0 = process.cpuUsage();
  const s0 = performance.now();
  idle.feed()();
  const ms = performance.now() - s0;
  const cu = process.cpuUsage(c0);
  console.log(
    `events of ${CHURN} connections: ${ms.toFixed(1)} ms, CPU ${((cu.user + cu.system) / 1000).toFixed(1)} ms, ${((ms * 1000) / CHURN).toFixed(1)} us a connection; table ${idle.table.size} entries`,
  );
  console.log(
    `events table: ${kept.table.size} entries held, ${perEntry.toFixed(0)} bytes of heap each${(globalThis as { gc?: unknown }).gc ? '' : ' (no --expose-gc: an upper bound)'}`,
  );
  server.close();
  process.exit(0);
}

if (process.argv[2] === 'inside') await inside();
else {
  if (process.getuid?.() !== 0) {
    console.error('conntrack-read: needs root (a network namespace)');
    process.exit(2);
  }
  const ns = `kvctb${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    execFileSync('ip', ['-n', ns, 'addr', 'add', '127.0.1.0/24', 'dev', 'lo']);
    // conntrack tracks loopback once a rule uses it
    execFileSync('ip', [
      'netns',
      'exec',
      ns,
      'nft',
      'add table ip t { chain o { type filter hook output priority 0; ct state new; }; }',
    ]);
    console.log(
      `# ${new Date().toISOString()} load ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim()}`,
    );
    spawnSync(
      'ip',
      ['netns', 'exec', ns, process.execPath, '--expose-gc', new URL(import.meta.url).pathname, 'inside'],
      {
        stdio: 'inherit',
      },
    );
    console.log(`# end load ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim()}`);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
  }
}
