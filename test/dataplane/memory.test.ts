import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryDataPlane } from '../../src/dataplane/memory.js';
import { addOps, tcpKey } from './helpers.js';

test('MemoryDataPlane records ops and mirrors services and destinations', async () => {
  const dp = new MemoryDataPlane();
  const key = tcpKey(80, '198.18.0.100');
  await dp.apply(addOps(key, [8080, 8081]));
  await dp.apply([{ op: 'del-dest', key, dest: { address: '127.0.0.1', port: 8080 } }]);
  assert.equal(dp.applied.length, 4);
  const s = dp.snapshot().services;
  assert.equal(s.length, 1);
  assert.deepEqual(
    s[0]!.dests.map((d) => d.port),
    [8081],
  );
  await dp.stop(100);
  assert.deepEqual(dp.stopped, { drainMs: 100 });
  assert.equal(dp.snapshot().services.length, 0);
});
