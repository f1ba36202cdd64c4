import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FakeClock } from '../../src/util/clock.js';

test('FakeClock fires timers in deadline order and only when advanced', () => {
  const clock = new FakeClock();
  const fired: string[] = [];
  clock.setTimer(20, () => fired.push('b'));
  clock.setTimer(10, () => {
    fired.push('a');
    clock.setTimer(5, () => fired.push('a2'));
  });
  const c = clock.setTimer(12, () => fired.push('cancelled'));
  c.cancel();
  clock.advance(9);
  assert.deepEqual(fired, []);
  clock.advance(11);
  assert.deepEqual(fired, ['a', 'a2', 'b']);
  assert.equal(clock.now(), 20);
  assert.equal(clock.pending(), 0);
});
