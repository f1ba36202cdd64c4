/** The tests' freePort never hands out a port twice in one process (bind(0) alone may). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { freePort } from './harness.js';

test('freePort: 2,000 ports in a row, all different', async () => {
  // bind(0) picks from about 28,000 ephemeral ports: 2,000 closed picks repeat some ~70 times on average
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const p = await freePort();
    assert.ok(!seen.has(p), `port ${p} handed out twice (after ${i})`);
    seen.add(p);
  }
});
