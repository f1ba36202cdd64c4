import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CheckManager } from '../../src/check/manager.js';
import type { Config } from '../../src/config/model.js';
import { FakeClock } from '../../src/util/clock.js';
import { EventBus, type KeepvsEvent } from '../../src/util/events.js';
import { MemoryLogger } from '../../src/util/logger.js';
import type { ProcessRunner, RunResult } from '../../src/util/ports.js';
import { parse } from '../config/helpers.js';

/** A process runner whose exit code per server the test sets: `/check <addr>` exits with codes[addr]. */
class ScriptedRunner implements ProcessRunner {
  codes = new Map<string, number>();
  calls = 0;
  async run(argv: readonly string[]): Promise<RunResult> {
    this.calls++;
    return { exitCode: this.codes.get(argv[1]) ?? 0, signal: null, timedOut: false, stdout: '' };
  }
}

function setup(vsExtra = '', rsExtra = '', checkExtra = '') {
  const rs = [1, 2, 3]
    .map(
      (i) => ` real_server 10.0.0.${i} 80 {
  weight 1
${rsExtra}
  MISC_CHECK {
   misc_path "/check 10.0.0.${i}"
   retry 2
   delay_before_retry 1
   delay_loop 5
   warmup 0
${checkExtra}
  }
 }`,
    )
    .join('\n');
  const r = parse(`virtual_server 198.18.0.100 80 {\n${vsExtra}\n${rs}\n}`);
  assert.equal(r.usable, true, JSON.stringify(r.diagnostics));
  const clock = new FakeClock();
  const runner = new ScriptedRunner();
  const bus = new EventBus();
  const events: KeepvsEvent[] = [];
  bus.subscribe((e) => events.push(e));
  const logger = new MemoryLogger();
  const m = new CheckManager(r.config!, {
    clock,
    io: { runner, readFile: async () => '' },
    logger,
    events: bus,
    random: () => 0,
  });
  const step = async (ms: number) => {
    for (let t = 0; t < ms; t += 250) {
      clock.advance(250);
      await new Promise((res) => setImmediate(res));
    }
  };
  return { m, clock, runner, events, logger, step, config: r.config as Config };
}

const up = (m: CheckManager, addr: string) => m.health().dests.get(`tcp:198.18.0.100:80|${addr}:80`)?.up;

test('a server goes down only after retry failures delay_before_retry apart, and back on the first success', async () => {
  const { m, runner, events, logger, step } = setup();
  m.start();
  await step(500);
  assert.equal(up(m, '10.0.0.2'), true);
  runner.codes.set('10.0.0.2', 1);
  await step(5000); // first failure at the next delay_loop
  assert.equal(up(m, '10.0.0.2'), true, 'retry 1 of 2');
  await step(1000);
  assert.equal(up(m, '10.0.0.2'), true, 'retry 2 of 2');
  await step(1000);
  assert.equal(up(m, '10.0.0.2'), false);
  assert.ok(logger.text().includes('Removing service [10.0.0.2]:tcp:80 from VS [198.18.0.100]:tcp:80'));
  runner.codes.set('10.0.0.2', 0);
  await step(5000);
  assert.equal(up(m, '10.0.0.2'), true);
  assert.deepEqual(
    events.filter((e) => e.type === 'rs-health').map((e) => e.type === 'rs-health' && `${e.dest}:${e.up}`),
    ['10.0.0.2:80:false', '10.0.0.2:80:true'],
  );
  m.stop();
});

test('alpha starts servers down until a check passes', async () => {
  const { m, step } = setup('', '  alpha');
  assert.equal(up(m, '10.0.0.1'), false);
  m.start();
  await step(250);
  assert.equal(up(m, '10.0.0.1'), true);
  m.stop();
});

test('quorum with hysteresis: lost below quorum-hysteresis, regained only at quorum+hysteresis', async () => {
  const { m, runner, events, step } = setup(' quorum 2\n hysteresis 1');
  const q = () => m.health().quorumUp.get('tcp:198.18.0.100:80');
  m.start();
  await step(500);
  for (const a of ['10.0.0.1', '10.0.0.2']) runner.codes.set(a, 1);
  await step(7500);
  assert.equal(q(), true, 'live weight 1 is not below 2-1');
  runner.codes.set('10.0.0.3', 1);
  await step(7500);
  assert.equal(q(), false, 'live weight 0');
  runner.codes.set('10.0.0.1', 0);
  runner.codes.set('10.0.0.2', 0);
  await step(5000);
  assert.equal(q(), false, 'live weight 2 is below 2+1');
  runner.codes.set('10.0.0.3', 0);
  await step(5000);
  assert.equal(q(), true, 'live weight 3 reaches 2+1');
  assert.deepEqual(
    events.filter((e) => e.type === 'vs-quorum').map((e) => e.type === 'vs-quorum' && e.up),
    [false, true],
  );
  m.stop();
});

test('misc_dynamic changes the weight without flapping health', async () => {
  const { m, runner, events, step } = setup('', '', '   misc_dynamic');
  m.start();
  await step(500);
  runner.codes.set('10.0.0.3', 12);
  await step(5000);
  const h = m.health().dests.get('tcp:198.18.0.100:80|10.0.0.3:80');
  assert.deepEqual(h, { up: true, weight: 10 });
  assert.ok(events.some((e) => e.type === 'rs-weight' && e.weight === 10));
  assert.ok(!events.some((e) => e.type === 'rs-health'));
  m.stop();
});

test('reload keeps the state of unchanged checkers (no flap)', async () => {
  const { m, runner, step, config } = setup();
  m.start();
  await step(500);
  runner.codes.set('10.0.0.2', 1);
  await step(7500);
  assert.equal(up(m, '10.0.0.2'), false);
  m.reload(config);
  assert.equal(up(m, '10.0.0.2'), false, 'still down after reload');
  assert.equal(up(m, '10.0.0.1'), true);
  m.stop();
});
