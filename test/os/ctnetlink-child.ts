/**
 * Run inside a network namespace of its own by ctnetlink-lab.test.ts: makes connections on
 * loopback (open, closed into TIME_WAIT, DNATed, UDP, IPv4 and IPv6, `count` short ones so the dump
 * spans many datagrams), then reads the namespace's conntrack table through
 * /proc/net/nf_conntrack, through a ctnetlink dump and through the table kept from conntrack
 * events (subscribed before the traffic, read after it without a second dump), and prints them as JSON.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { ProcConntrack } from '../../src/os/conntrack.js';
import { ConntrackEvents, ConntrackTable } from '../../src/os/conntrack-watch.js';
import { NetlinkConntrack } from '../../src/os/ctnetlink.js';

const runner = { run: async () => ({ code: 0, stdout: '', stderr: '' }) };
const netlink = NetlinkConntrack.open(runner as never);
if (!netlink) throw new Error('no ctnetlink socket');
const events = ConntrackEvents.open();
if (typeof events === 'string') throw new Error(events);
let dumps = 0;
let read = () => {};
const table = new ConntrackTable(
  {
    list: (w) => {
      dumps++;
      return netlink.list(w);
    },
    flushDest: async () => {},
  },
  Date.now,
  () => read(),
);
/** upsert events by the state they carry, and destroys, as a table hears them */
const heard = (t: ConntrackTable): Record<string, number> => {
  const states: Record<string, number> = {};
  const apply = t.apply.bind(t);
  t.apply = (evs) => {
    for (const ev of evs) {
      const k = ev.kind === 'destroy' ? 'destroy' : ev.hasState ? ev.entry.state : 'no state';
      states[k] = (states[k] ?? 0) + 1;
    }
    apply(evs);
  };
  return states;
};
const filteredStates = heard(table);
read = events.feed(table);
await table.list();
// the same events without the update filter, to compare
const all = ConntrackEvents.open(false);
if (typeof all === 'string') throw new Error(all);
const allTable = new ConntrackTable({ list: async () => [], flushDest: async () => {} });
const allStates = heard(allTable);
const readAll = all.feed(allTable);

const count = Number(process.argv[2] ?? 100);
const server = net.createServer((c) => {
  c.on('data', () => {});
  c.on('end', () => c.end());
});
await new Promise<void>((r) => server.listen(8080, '::', r));
const open: net.Socket[] = [];
const connect = (port: number, host: string) =>
  new Promise<net.Socket>((r) => {
    const c = net.connect(port, host, () => r(c));
  });
for (const host of ['127.0.0.1', '::1']) open.push(await connect(8080, host));
// open, then closed after a while: ESTABLISHED, then TIME_WAIT by events
const later = [await connect(8080, '127.0.0.1'), await connect(8080, '::1')];
// 9090 is DNATed to 8080 by the test's rule: the reply tuple differs from the original
open.push(await connect(9090, '127.0.0.1'));
for (let i = 0; i < count; i++) {
  const c = await connect(8080, i % 2 ? '::1' : '127.0.0.1');
  await new Promise((r) => {
    c.on('close', r);
    c.end();
  });
}
for (const [type, host] of [
  ['udp4', '127.0.0.1'],
  ['udp6', '::1'],
] as const) {
  const u = dgram.createSocket(type);
  await new Promise((r) => u.send('x', 5353, host, r));
  u.close();
}
await new Promise((r) => setTimeout(r, 200));
for (const c of later) {
  await new Promise((r) => {
    c.on('close', r);
    c.end();
  });
}
await new Promise((r) => setTimeout(r, 300));
const wanted = (family: 4 | 6, dst: string) => family === 6 && dst === '::1';
readAll();
const out = {
  proc: await new ProcConntrack(runner as never).list(),
  netlink: await netlink.list(),
  proc6: await new ProcConntrack(runner as never).list(wanted),
  netlink6: await netlink.list(wanted),
  events: await table.list(),
  dumps,
  filtered: events.filtered,
  batched: events.batched,
  filteredStates,
  allStates,
};
process.stdout.write(JSON.stringify(out));
netlink.close();
events.close();
all.close();
for (const c of open) c.destroy();
server.close();
