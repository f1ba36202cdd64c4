/**
 * The table kept from conntrack events over full dumps (os/conntrack-watch.ts), with a fake dump
 * and clock: what a read returns after events, timeouts, lost events, the periodic resync, and
 * events that arrive while a dump runs. Against the kernel: test/os/ctnetlink-lab.test.ts.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CtEntry, CtEvent } from '../../src/codec/conntrack.js';
import {
  COUNTER_REFRESH_MS,
  ConntrackTable,
  DUMP_KEEPS_UP_MS,
  RESYNC_MS,
  TIMER_SLACK_MS,
} from '../../src/os/conntrack-watch.js';

const entry = (sport: number, state = 'ESTABLISHED', timeout = 432000, dst = '198.18.0.100'): CtEntry => ({
  family: 4,
  protocol: 'tcp',
  state,
  timeout,
  original: { src: '198.18.0.10', dst, sport, dport: 80 },
  reply: { src: '198.18.1.11', dst: '198.18.0.10', sport: 80, dport: sport },
});
const up = (e: CtEntry, hasState = true): CtEvent => ({ kind: 'upsert', entry: e, hasState });
const gone = (e: CtEntry): CtEvent => ({ kind: 'destroy', entry: e, hasState: false });

function fixture(dumped: CtEntry[] = []) {
  let clock = 1_000_000;
  const state = { dumps: 0, next: dumped, fail: false, hold: null as Promise<void> | null, takesMs: 0 };
  const table = new ConntrackTable(
    {
      async list() {
        state.dumps++;
        clock += state.takesMs;
        if (state.hold) await state.hold;
        if (state.fail) throw new Error('dump refused');
        return state.next;
      },
      flushDest: async () => {},
      countConnections: () => null,
      listSync: () => state.next,
    },
    () => clock,
  );
  return { table, state, tick: (ms: number) => (clock += ms) };
}
const ports = (es: CtEntry[]) => es.map((e) => `${e.original.sport}:${e.state}:${e.timeout}`).sort();

test('the first read dumps; events then keep the table: new, changed, gone', async () => {
  const f = fixture([entry(1), entry(2)]);
  assert.deepEqual(ports(await f.table.list()), ['1:ESTABLISHED:432000', '2:ESTABLISHED:432000']);
  f.table.apply([up(entry(3, 'SYN_SENT', 120)), up(entry(2, 'TIME_WAIT', 120)), gone(entry(1))]);
  assert.deepEqual(ports(await f.table.list()), ['2:TIME_WAIT:120', '3:SYN_SENT:120']);
  assert.equal(f.state.dumps, 1);
});

test('an update without the protocol state keeps the state held', async () => {
  const f = fixture([entry(1, 'FIN_WAIT', 120)]);
  await f.table.list();
  f.table.apply([up(entry(1, '', 100), false)]);
  assert.deepEqual(ports(await f.table.list()), ['1:FIN_WAIT:100']);
});

test('timeouts count down with the clock; an entry past its timeout is dropped without an event', async () => {
  const f = fixture([entry(1, 'TIME_WAIT', 120), entry(2, 'CLOSE', 10)]);
  await f.table.list();
  f.tick(5_500);
  assert.deepEqual(ports(await f.table.list()), ['1:TIME_WAIT:115', '2:CLOSE:5']);
  f.tick(6_000);
  assert.deepEqual(ports(await f.table.list()), ['1:TIME_WAIT:109']);
  assert.equal(f.table.size, 1);
});

test('`wanted` filters by family and original destination', async () => {
  const f = fixture([entry(1), entry(2, 'ESTABLISHED', 432000, '198.18.0.101')]);
  const got = await f.table.list((family, dst) => family === 4 && dst === '198.18.0.101');
  assert.deepEqual(ports(got), ['2:ESTABLISHED:432000']);
});

test('lost events and the resync period bring a dump; the dump replaces what was held', async () => {
  const f = fixture([entry(1)]);
  await f.table.list();
  f.table.apply([up(entry(9))]);
  f.state.next = [entry(2)];
  f.table.lost();
  assert.deepEqual(ports(await f.table.list()), ['2:ESTABLISHED:432000']);
  assert.equal(f.state.dumps, 2);
  f.tick(RESYNC_MS - TIMER_SLACK_MS - 1);
  await f.table.list();
  assert.equal(f.state.dumps, 2);
  f.state.next = [entry(3)];
  f.tick(1);
  assert.deepEqual(ports(await f.table.list()), ['3:ESTABLISHED:432000']);
  assert.equal(f.state.dumps, 3);
});

test('events during a dump apply over it: gone ones go, new ones stay, the later state wins', async () => {
  const f = fixture([]);
  await f.table.list();
  let release = () => {};
  f.state.hold = new Promise<void>((r) => {
    release = r;
  });
  // the dump read 1 in TIME_WAIT, 2 established, 3 before it went
  f.state.next = [entry(1, 'TIME_WAIT', 120), entry(2), entry(3)];
  f.table.lost();
  const reading = f.table.list();
  f.table.apply([up(entry(1, 'ESTABLISHED')), up(entry(2, 'FIN_WAIT', 120)), gone(entry(3)), up(entry(4))]);
  release();
  assert.deepEqual(ports(await reading), ['1:TIME_WAIT:120', '2:FIN_WAIT:120', '4:ESTABLISHED:432000']);
});

test('a failed dump fails the read and the next read dumps again', async () => {
  const f = fixture([entry(1)]);
  f.state.fail = true;
  await assert.rejects(f.table.list(), /dump refused/);
  f.state.fail = false;
  assert.deepEqual(ports(await f.table.list()), ['1:ESTABLISHED:432000']);
  assert.equal(f.state.dumps, 2);
});

test('counting connections (--stats from conntrack): a dump each second for the live counters, slower on a large table', async () => {
  const f = fixture([entry(1)]);
  assert.equal(f.table.countConnections(), null);
  await f.table.list();
  f.tick(COUNTER_REFRESH_MS - TIMER_SLACK_MS - 1);
  await f.table.list();
  assert.equal(f.state.dumps, 1);
  f.tick(1);
  await f.table.list();
  assert.equal(f.state.dumps, 2);
  // a dump of 400 ms: the next one 8 s later (at most 5% of the time)
  f.state.takesMs = 400;
  f.tick(COUNTER_REFRESH_MS);
  await f.table.list();
  assert.equal(f.state.dumps, 3);
  f.state.takesMs = 0;
  f.tick(7_000);
  await f.table.list();
  assert.equal(f.state.dumps, 3);
  f.tick(1_000);
  await f.table.list();
  assert.equal(f.state.dumps, 4);
});

test('a synchronous read (ipvsadm -Z) reads the table now and holds it', async () => {
  const f = fixture([entry(1)]);
  await f.table.list();
  f.state.next = [entry(1, 'TIME_WAIT', 120), entry(2)];
  assert.deepEqual(ports(f.table.listSync()), ['1:TIME_WAIT:120', '2:ESTABLISHED:432000']);
  assert.deepEqual(ports(await f.table.list()), ['1:TIME_WAIT:120', '2:ESTABLISHED:432000']);
  assert.equal(f.state.dumps, 1);
});

test('a connection read again (an update, the next dump) keeps its tuple objects, so the plane need not derive its keys again', async () => {
  const f = fixture([entry(1), entry(2)]);
  const first = await f.table.list();
  const o1 = first.find((e) => e.original.sport === 1)?.original;
  // an update event: a new parse of the same connection
  f.table.apply([up(entry(1, 'TIME_WAIT', 120))]);
  const second = await f.table.list();
  const e1 = second.find((e) => e.original.sport === 1);
  assert.equal(e1?.state, 'TIME_WAIT');
  assert.equal(e1?.original, o1);
  // the next dump: new objects for every entry, one of them another connection on the same tuple's
  // original side (a different real server answers): that one keeps its own
  const moved = { ...entry(2), reply: { ...entry(2).reply, src: '198.18.1.12' } };
  f.state.next = [entry(1, 'TIME_WAIT', 100), moved];
  f.tick(RESYNC_MS);
  const third = await f.table.list();
  assert.equal(f.state.dumps, 2);
  assert.equal(third.find((e) => e.original.sport === 1)?.original, o1);
  const e2 = third.find((e) => e.original.sport === 2);
  assert.equal(e2?.reply.src, '198.18.1.12');
  assert.equal(e2?.original, moved.original);
});

test('without events the table is kept by dumps, one per counter refresh; following them, the next read dumps, then events keep it', async () => {
  let clock = 1_000_000;
  const state = { dumps: 0, next: [entry(1)], subscribed: [] as boolean[], refuse: null as string | null };
  const table = new ConntrackTable(
    {
      async list() {
        state.dumps++;
        return state.next;
      },
      flushDest: async () => {},
    },
    () => clock,
    () => {},
    () => {},
    (on) => {
      state.subscribed.push(on);
      return on ? state.refuse : null;
    },
  );
  assert.equal(table.followingEvents, false, 'a table with a subscription starts without events');
  await table.list();
  await table.list();
  assert.equal(state.dumps, 1, 'within one refresh: what is held');
  state.next = [entry(1), entry(2)];
  clock += COUNTER_REFRESH_MS;
  assert.deepEqual(ports(await table.list()), ['1:ESTABLISHED:432000', '2:ESTABLISHED:432000']);
  assert.equal(state.dumps, 2, 'a refresh later: dumped again (no event tells of entry 2)');
  state.refuse = 'no libc through koffi';
  assert.equal(table.followEvents(true), 'no libc through koffi');
  assert.equal(table.followingEvents, false);
  state.refuse = null;
  assert.equal(table.followEvents(true), null);
  assert.equal(table.followingEvents, true);
  await table.list();
  assert.equal(state.dumps, 3, 'events on: the next read dumps (what came before is known only so)');
  table.apply([up(entry(3, 'SYN_SENT', 120))]);
  clock += COUNTER_REFRESH_MS * 5;
  assert.equal((await table.list()).length, 3);
  assert.equal(state.dumps, 3, 'following events: no dump before the resync');
  assert.equal(table.followEvents(false), null);
  assert.deepEqual(state.subscribed, [true, true, false]);
  clock += COUNTER_REFRESH_MS;
  await table.list();
  assert.equal(state.dumps, 4, 'events off again: a dump each refresh');
});

/** A table with an event subscription, its dump taking `takes()` ms of its clock `t.clock`. */
function timedTable(takes: () => number) {
  const t = { clock: 1_000_000, dumps: 0 };
  const table = new ConntrackTable(
    {
      async list() {
        t.dumps++;
        t.clock += takes();
        return [];
      },
      flushDest: async () => {},
    },
    () => t.clock,
    () => {},
    () => {},
    () => null,
  );
  return { table, t };
}

test('a dump each refresh keeps its period: the next poll one period after a dump starts reads again', async () => {
  const { table, t } = timedTable(() => 30); // the dump itself takes 30 ms
  for (let i = 0; i < 5; i++) {
    const start = t.clock;
    await table.list();
    t.clock = start + COUNTER_REFRESH_MS; // a 1 s poll timer
  }
  assert.equal(t.dumps, 5);
});

test('dumps keep up while one takes at most 5% of a refresh; once events are followed, only below 70% of that', async () => {
  let takes = 0;
  const { table, t } = timedTable(() => takes);
  assert.equal(table.dumpsKeepUp(), true, 'no dump yet: nothing says the table is large');
  takes = DUMP_KEEPS_UP_MS;
  await table.list();
  assert.equal(table.dumpsKeepUp(), true, 'at the bound: still');
  takes = DUMP_KEEPS_UP_MS + 1;
  t.clock += COUNTER_REFRESH_MS * 2;
  await table.list();
  assert.equal(table.lastDumpDuration, DUMP_KEEPS_UP_MS + 1);
  assert.equal(table.dumpsKeepUp(), false, 'slower than 5% of a refresh');
  assert.equal(table.followEvents(true), null);
  takes = DUMP_KEEPS_UP_MS - 1;
  await table.list(); // events on: the next read dumps
  assert.equal(table.dumpsKeepUp(), false, 'following events: just under the bound is not enough');
  takes = Math.floor(DUMP_KEEPS_UP_MS * 0.7);
  t.clock += RESYNC_MS;
  await table.list();
  assert.equal(table.dumpsKeepUp(), true, 'below 70% of the bound: dumps alone again');
});

test('a due dump is spared while nothing began since a read of settled entries only (ListHint.noNewFlows), up to RESYNC_MS', async () => {
  const f = fixture([entry(1, 'TIME_WAIT', 120), entry(2, 'CLOSE', 10)]);
  assert.equal(f.table.countConnections(), null, 'counting: a dump each refresh');
  const wanted = () => true;
  const quiet = { noNewFlows: true };
  await f.table.list(wanted, quiet);
  assert.equal(f.state.dumps, 1, 'the first read dumps, whatever the hint');
  f.tick(COUNTER_REFRESH_MS);
  assert.deepEqual(ports(await f.table.list(wanted, quiet)), ['1:TIME_WAIT:119', '2:CLOSE:9']);
  assert.equal(f.state.dumps, 1, 'settled, nothing new: no dump; timeouts count down');
  assert.equal(f.table.quietReads, 1);
  f.tick(COUNTER_REFRESH_MS);
  await f.table.list(wanted, { noNewFlows: false });
  assert.equal(f.state.dumps, 2, 'a new flow: dumped');
  f.tick(COUNTER_REFRESH_MS);
  await f.table.list(() => true, quiet);
  assert.equal(f.state.dumps, 3, 'another `wanted`: what was settled for one says nothing of the other');
  f.state.next = [entry(1, 'TIME_WAIT', 120), entry(3, 'ESTABLISHED', 300)];
  f.tick(COUNTER_REFRESH_MS);
  await f.table.list(wanted, quiet);
  assert.equal(f.state.dumps, 4);
  f.tick(COUNTER_REFRESH_MS);
  await f.table.list(wanted, quiet);
  assert.equal(f.state.dumps, 5, 'an established entry changes (its counters): dumped each refresh');
  f.state.next = [entry(1, 'TIME_WAIT', 120)];
  f.tick(COUNTER_REFRESH_MS);
  await f.table.list(wanted, quiet);
  f.table.lost();
  f.tick(COUNTER_REFRESH_MS);
  await f.table.list(wanted, quiet);
  assert.equal(f.state.dumps, 7, 'lost events: dumped');
  for (let t = COUNTER_REFRESH_MS; t < RESYNC_MS - TIMER_SLACK_MS; t += COUNTER_REFRESH_MS) {
    f.tick(COUNTER_REFRESH_MS);
    await f.table.list(wanted, quiet);
  }
  assert.equal(f.state.dumps, 7, 'quiet for most of RESYNC_MS');
  f.tick(COUNTER_REFRESH_MS);
  await f.table.list(wanted, quiet);
  assert.equal(f.state.dumps, 8, 'the resync comes all the same');
});
