import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type InstanceAction,
  type InstanceEvent,
  type InstanceParams,
  initialState,
  masterDownMs,
  nextDeadline,
  skewMs,
  step,
} from '../../src/vrrp/instance.js';

const base = (over: Partial<InstanceParams> = {}): InstanceParams => ({
  version: 2,
  priority: 100,
  advertIntMs: 1000,
  preempt: true,
  preemptDelayMs: 0,
  initialMaster: false,
  primaryAddress: '198.18.0.1',
  downTimerAdverts: 3,
  lowerPrioNoAdvert: false,
  ...over,
});

/** Feeds events at their times, firing timer events at every deadline in between; returns a log. */
function scenario(p: InstanceParams, events: [number, InstanceEvent][], until: number): string[] {
  let s = initialState(p);
  const log: string[] = [];
  const record = (t: number, acts: readonly InstanceAction[]) => {
    for (const a of acts)
      log.push(
        `${Math.round(t)} ${a.type === 'send-advert' ? `advert ${a.priority}` : a.type === 'reannounce' ? 'reannounce' : `${a.from}->${a.to} (${a.reason})`}`,
      );
  };
  const queue = [...events];
  for (;;) {
    const d = nextDeadline(s);
    const nextEvent = queue[0]?.[0] ?? Number.POSITIVE_INFINITY;
    const t = Math.min(d ?? Number.POSITIVE_INFINITY, nextEvent);
    if (t > until) break;
    const ev: InstanceEvent = d !== undefined && d <= nextEvent ? { type: 'timer' } : queue.shift()![1];
    const r = step(p, s, ev, t);
    record(t, r.actions);
    s = r.state;
  }
  return log;
}

test('timers: skew and master down interval, v2 and v3 forms (RFC 3768/5798 §6.1)', () => {
  assert.equal(skewMs(base(), 100, 1000), 609.375);
  assert.equal(masterDownMs(base(), 100, 1000), 3609.375);
  assert.equal(skewMs(base({ version: 3 }), 200, 100), (56 * 100) / 256);
  assert.equal(masterDownMs(base({ version: 3 }), 200, 100), 300 + 21.875);
});

test('v2: a lone backup becomes master after the master down interval and advertises every interval', () => {
  assert.deepEqual(scenario(base(), [[0, { type: 'startup' }]], 5700), [
    '0 INIT->BACKUP (start-up)',
    '3609 advert 100',
    '3609 BACKUP->MASTER (master down timer expired)',
    '4609 advert 100',
    '5609 advert 100',
  ]);
});

test('the address owner with state MASTER takes over at once (RFC 5798 §6.4.1)', () => {
  assert.deepEqual(scenario(base({ priority: 255, initialMaster: true }), [[0, { type: 'startup' }]], 500), [
    '0 advert 255',
    '0 INIT->MASTER (address owner)',
  ]);
});

test('backup: adverts from a higher master keep it backup; priority 0 means takeover after skew only', () => {
  const log = scenario(
    base(),
    [
      [0, { type: 'startup' }],
      [1000, { type: 'advert', from: '198.18.0.2', priority: 150, advertIntMs: 1000 }],
      [2000, { type: 'advert', from: '198.18.0.2', priority: 150, advertIntMs: 1000 }],
      [2500, { type: 'advert', from: '198.18.0.2', priority: 0, advertIntMs: 1000 }],
    ],
    3500,
  );
  assert.deepEqual(log, [
    '0 INIT->BACKUP (start-up)',
    '3109 advert 100',
    '3109 BACKUP->MASTER (master down timer expired)',
  ]);
});

test('preemption: a lower-priority master is ignored and preempted; nopreempt accepts it', () => {
  const lower = (t: number): [number, InstanceEvent] => [
    t,
    { type: 'advert', from: '198.18.0.2', priority: 50, advertIntMs: 1000 },
  ];
  const pre = scenario(base(), [[0, { type: 'startup' }], lower(500), lower(1500), lower(2500), lower(3500)], 4000);
  assert.ok(pre.includes('3609 BACKUP->MASTER (master down timer expired)'));
  const nopre = scenario(
    base({ preempt: false }),
    [[0, { type: 'startup' }], lower(500), lower(1500), lower(2500), lower(3500)],
    4000,
  );
  assert.deepEqual(nopre, ['0 INIT->BACKUP (start-up)']);
});

test('preempt_delay: the lower master is accepted until the delay has passed since it was first seen', () => {
  const ev: [number, InstanceEvent][] = [[0, { type: 'startup' }]];
  for (let t = 500; t < 12000; t += 1000)
    ev.push([t, { type: 'advert', from: '198.18.0.2', priority: 50, advertIntMs: 1000 }]);
  const log = scenario(base({ preemptDelayMs: 5000 }), ev, 12000);
  const take = log.find((l) => l.includes('->MASTER'));
  assert.ok(take);
  const t = Number(take.split(' ')[0]);
  assert.ok(t >= 5500 && t <= 5500 + 3610, take);
});

test('master: a higher priority advert, or equal priority from a higher address, makes it backup', () => {
  const p = base({ priority: 255, initialMaster: true });
  const higherAddr = scenario(
    base({ priority: 100 }),
    [
      [0, { type: 'startup' }],
      [4000, { type: 'advert', from: '198.18.0.9', priority: 100, advertIntMs: 1000 }],
    ],
    4100,
  );
  assert.ok(higherAddr.includes('4000 MASTER->BACKUP (higher priority advert from 198.18.0.9)'));
  const lowerAddr = scenario(
    base({ priority: 100, primaryAddress: '198.18.0.9' }),
    [
      [0, { type: 'startup' }],
      [4000, { type: 'advert', from: '198.18.0.2', priority: 100, advertIntMs: 1000 }],
    ],
    4100,
  );
  assert.ok(lowerAddr.includes('4000 advert 100'), 'the lower address loses the tie: the master answers');
  assert.ok(!lowerAddr.some((l) => l.includes('MASTER->BACKUP')));
  void p;
});

test('a master stepping down for a higher-priority master says so once, so that a healed partition is re-announced', () => {
  // after a partition both are masters; the first advert across the healed link decides. When the
  // higher one's arrives first, the lower one steps down; its last advert makes the higher master
  // re-announce the VIPs (keepalived's vrrp_state_master_rx: lower priority -> advert + gratuitous
  // ARPs), else neighbours keep sending to the director that dropped the VIPs
  const ev: [number, InstanceEvent][] = [
    [0, { type: 'startup' }],
    [4000, { type: 'advert', from: '198.18.0.9', priority: 150, advertIntMs: 1000 }],
  ];
  const log = scenario(base(), ev, 4100);
  const at = log.filter((l) => l.startsWith('4000 '));
  assert.deepEqual(at, ['4000 advert 100', '4000 MASTER->BACKUP (higher priority advert from 198.18.0.9)']);
  // RFC-strict (lower_prio_no_advert): silent, as RFC 5798 §6.4.3 has it
  const strict = scenario(base({ lowerPrioNoAdvert: true }), ev, 4100).filter((l) => l.startsWith('4000 '));
  assert.deepEqual(strict, ['4000 MASTER->BACKUP (higher priority advert from 198.18.0.9)']);
});

test('a master answers priority 0 adverts and lower-priority masters (keepalived), unless lower_prio_no_advert', () => {
  const ev: [number, InstanceEvent][] = [
    [0, { type: 'startup' }],
    [3700, { type: 'advert', from: '198.18.0.2', priority: 50, advertIntMs: 1000 }],
  ];
  assert.ok(scenario(base(), ev, 3800).includes('3700 advert 100'));
  assert.ok(!scenario(base({ lowerPrioNoAdvert: true }), ev, 3800).includes('3700 advert 100'));
});

test('shutdown: a master sends a priority 0 advert (RFC 5798 §6.4.3)', () => {
  const log = scenario(
    base({ priority: 255, initialMaster: true }),
    [
      [0, { type: 'startup' }],
      [1500, { type: 'shutdown' }],
    ],
    3000,
  );
  assert.deepEqual(log.slice(-2), ['1500 advert 0', '1500 MASTER->STOP (shutdown)']);
});

test('fault: a failing tracked item takes a master to FAULT (resigning with priority 0); clearing it returns to BACKUP', () => {
  const log = scenario(
    base({ priority: 255, initialMaster: true }),
    [
      [0, { type: 'startup' }],
      [500, { type: 'fault', on: true, reason: 'chk_nginx failed' }],
      [2000, { type: 'fault', on: false, reason: 'chk_nginx ok' }],
    ],
    2100,
  );
  assert.deepEqual(log, [
    '0 advert 255',
    '0 INIT->MASTER (address owner)',
    '500 advert 0',
    '500 MASTER->FAULT (chk_nginx failed)',
    '2000 FAULT->BACKUP (fault cleared (chk_nginx ok))',
  ]);
});

test("v3: a backup adopts the master's advertisement interval (sub-second)", () => {
  const p = base({ version: 3, advertIntMs: 1000 });
  const log = scenario(
    p,
    [
      [0, { type: 'startup' }],
      [100, { type: 'advert', from: '198.18.0.2', priority: 200, advertIntMs: 100 }],
    ],
    1000,
  );
  // down interval from the adopted 100 ms: 3 x 100 + (156 x 100 / 256) = 360.9 ms after the advert
  assert.deepEqual(log, [
    '0 INIT->BACKUP (start-up)',
    '461 advert 100',
    '461 BACKUP->MASTER (master down timer expired)',
  ]);
});

test('tracking changes the effective priority, clamped to 1..254; an owner stays 255', () => {
  let s = initialState(base());
  s = step(base(), s, { type: 'priority', effective: 400 }, 0).state;
  assert.equal(s.effectivePriority, 254);
  const owner = base({ priority: 255 });
  assert.equal(step(owner, initialState(owner), { type: 'priority', effective: 10 }, 0).state.effectivePriority, 255);
});
