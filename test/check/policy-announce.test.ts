import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AnnounceInput, AnnouncePolicy, type AnnounceRule } from '../../src/check/policy-announce.js';
import { FakeClock } from '../../src/util/clock.js';

const WEB: AnnounceRule = {
  prefix: '198.18.0.100/32',
  services: [
    { id: 'tcp:198.18.0.100:80', minHealthy: 2 },
    { id: 'tcp:198.18.0.100:443', minHealthy: 1 },
  ],
};
const TIMERS = { holdDownMs: 5000, holdDownMaxMs: 60000 };

const healthy = (over: Partial<AnnounceInput> = {}, h80 = 3, h443 = 3): AnnounceInput => ({
  dataPlaneUp: true,
  maintenance: false,
  services: {
    'tcp:198.18.0.100:80': { quorumUp: true, healthy: h80 },
    'tcp:198.18.0.100:443': { quorumUp: true, healthy: h443 },
  },
  ...over,
});

function setup() {
  const clock = new FakeClock();
  const p = new AnnouncePolicy(clock, TIMERS, [WEB]);
  return { clock, p };
}

test('announced at start once healthy, withdrawn at once when it is not, for each reason', () => {
  const { clock, p } = setup();
  assert.deepEqual(p.step({ ...healthy(), services: {} }), []);
  assert.match(p.snapshot()[0].reason, /no health yet/);
  assert.deepEqual(p.step(healthy()), [{ prefix: '198.18.0.100/32', announce: true, reason: 'healthy' }]);
  assert.deepEqual(p.announced(), ['198.18.0.100/32']);
  assert.deepEqual(p.step(healthy()), [], 'no change, no command');
  const reasons: [AnnounceInput, RegExp][] = [
    [healthy({ dataPlaneUp: false }), /data plane down/],
    [healthy({ maintenance: true }), /maintenance/],
    [healthy({}, 1, 3), /:80: 1 real servers healthy, needs 2/],
    [healthy({}, 3, 0), /:443: 0 real servers healthy, needs 1/],
    [
      healthy({
        services: {
          'tcp:198.18.0.100:80': { quorumUp: false, healthy: 3 },
          'tcp:198.18.0.100:443': { quorumUp: true, healthy: 3 },
        },
      }),
      /:80: quorum lost/,
    ],
  ];
  for (const [input, why] of reasons) {
    // each round: healthy for longer than the longest hold-down, then one failure
    clock.advance(61000);
    p.step(healthy());
    clock.advance(61000);
    p.step(healthy());
    assert.deepEqual(p.announced(), ['198.18.0.100/32']);
    const ch = p.step(input);
    assert.equal(ch.length, 1);
    assert.equal(ch[0].announce, false);
    assert.match(ch[0].reason, why);
    assert.deepEqual(p.announced(), []);
  }
});

test('a flapping director is held down: each short announcement doubles the hold-down, up to the maximum', () => {
  const { clock, p } = setup();
  p.step(healthy());
  const holds: number[] = [];
  // flap: unhealthy 1 s, healthy again; measure how long until it is announced again
  for (let flap = 0; flap < 6; flap++) {
    clock.advance(1000);
    assert.equal(p.step(healthy({ dataPlaneUp: false })).length, 1);
    clock.advance(1000);
    const since = clock.now();
    while (p.step(healthy()).length === 0) {
      assert.match(p.snapshot()[0].reason, /held down/);
      clock.advance(500);
    }
    holds.push(clock.now() - since);
  }
  assert.deepEqual(holds, [10000, 20000, 40000, 60000, 60000, 60000]);
  assert.equal(p.snapshot()[0].withdrawals, 6);
  // stable for the maximum hold-down: the next failure starts again from the base hold-down
  clock.advance(60000);
  p.step(healthy());
  p.step(healthy({ maintenance: true }));
  assert.equal(p.snapshot()[0].holdDownMs, 5000);
});

test('healthy again inside the hold-down but failing before it ends restarts the wait', () => {
  const { clock, p } = setup();
  p.step(healthy());
  clock.advance(100000);
  p.step(healthy({ dataPlaneUp: false }));
  p.step(healthy());
  assert.equal(p.nextDeadline(), clock.now() + 5000);
  clock.advance(4000);
  assert.deepEqual(p.step(healthy()), []);
  p.step(healthy({ dataPlaneUp: false }));
  clock.advance(1000);
  assert.deepEqual(p.step(healthy()), [], 'the 4 s before the failure do not count');
  clock.advance(4999);
  assert.deepEqual(p.step(healthy()), []);
  clock.advance(1);
  assert.equal(p.step(healthy())[0]?.announce, true);
});

test('reload: unchanged prefixes keep their state, removed ones are dropped; withdrawals come first', () => {
  const { clock, p } = setup();
  p.step(healthy());
  const other: AnnounceRule = { prefix: '2001:2::100/128', services: [{ id: 'tcp:[2001:2::100]:80', minHealthy: 1 }] };
  p.configure([other, WEB]);
  assert.deepEqual(p.announced(), ['198.18.0.100/32']);
  const v6 = (up: boolean): AnnounceInput => {
    const input = healthy();
    return { ...input, services: { ...input.services, 'tcp:[2001:2::100]:80': { quorumUp: up, healthy: 1 } } };
  };
  assert.deepEqual(
    p.step(v6(true)).map((c) => c.prefix),
    ['2001:2::100/128'],
  );
  clock.advance(100000);
  assert.equal(p.step(v6(false))[0]?.announce, false);
  p.step(v6(true));
  clock.advance(5000);
  const mixed = v6(true);
  const v4down: AnnounceInput = {
    ...mixed,
    services: { ...mixed.services, 'tcp:198.18.0.100:80': { quorumUp: true, healthy: 0 } },
  };
  assert.deepEqual(
    p.step(v4down).map((c) => `${c.announce ? '+' : '-'}${c.prefix}`),
    ['-198.18.0.100/32', '+2001:2::100/128'],
  );
  p.configure([WEB]);
  assert.deepEqual(p.announced(), []);
  assert.deepEqual(
    p.snapshot().map((s) => s.prefix),
    ['198.18.0.100/32'],
  );
});

test('hold-down remaining: 0 while announced, the whole hold-down while unhealthy, counting down once healthy', () => {
  const { clock, p } = setup();
  p.step(healthy());
  assert.equal(p.snapshot()[0].holdDownRemainingMs, 0);
  clock.advance(1000);
  p.step(healthy({ dataPlaneUp: false }));
  // a 1 s announcement was a flap: the hold-down doubled to 10 s, and it has not started yet
  assert.equal(p.snapshot()[0].holdDownRemainingMs, 10000);
  clock.advance(3000);
  assert.equal(p.snapshot()[0].holdDownRemainingMs, 10000);
  p.step(healthy());
  clock.advance(4000);
  p.step(healthy());
  assert.equal(p.snapshot()[0].holdDownRemainingMs, 6000);
  clock.advance(6000);
  p.step(healthy());
  assert.equal(p.snapshot()[0].announced, true);
  assert.equal(p.snapshot()[0].holdDownRemainingMs, 0);
});
