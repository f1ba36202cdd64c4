/** GET /api/v1/connections against a fake source: what reaches the source, 503s, the in-flight cap. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { buildApi } from '../../src/api/server.js';
import type { StatusSource } from '../../src/api/types.js';
import { WEB_ROOT } from '../../src/daemon/main.js';
import type { ConnListing, ConnQuery } from '../../src/lb/conn-list.js';
import { EventBus } from '../../src/util/events.js';
import type { Result } from '../../src/util/result.js';

const EMPTY: ConnListing = {
  total: 0,
  matched: 0,
  returned: 0,
  truncated: false,
  limit: 1000,
  connections: [],
  unlisted: [],
};

function source(connections?: (q: ConnQuery) => Promise<Result<ConnListing, string>>): StatusSource {
  const bus = new EventBus();
  return {
    status: () => ({}) as never,
    events: () => bus.recent(),
    subscribe: (l) => bus.subscribe(l),
    act: async () => ({ ok: true }),
    ...(connections ? { connections } : {}),
  };
}

test('the source gets the canonical query; its failure and its absence are a 503', async () => {
  const asked: ConnQuery[] = [];
  let fail = false;
  const app = buildApi(
    source(async (q) => {
      asked.push(q);
      return fail ? { ok: false, error: 'the LVS worker is not running' } : { ok: true, value: EMPTY };
    }),
    { token: 't', webRoot: WEB_ROOT },
  );
  const r = await app.inject({ url: '/api/v1/connections?service=tcp:198.18.0.100:80&state=ESTABLISHED&limit=7' });
  assert.equal(r.statusCode, 200);
  assert.deepEqual(r.json(), EMPTY);
  assert.deepEqual(asked, [{ service: 'tcp:198.18.0.100:80', state: 'ESTABLISHED', limit: 7 }]);
  fail = true;
  const down = await app.inject({ url: '/api/v1/connections' });
  assert.deepEqual(
    [down.statusCode, down.json().error, down.json().message],
    [503, 'KV_API_NO_CONNECTIONS', 'the LVS worker is not running'],
  );
  const bad = await app.inject({ url: '/api/v1/connections?kind=nope' });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().message, /kind.*connection, template, pinned, synced/);
  assert.equal(asked.length, 2, 'a bad query never reaches the source');
  await app.close();
  const none = buildApi(source(), { token: 't', webRoot: WEB_ROOT });
  assert.equal((await none.inject({ url: '/api/v1/connections' })).statusCode, 503);
  await none.close();
});

test('at most two listings at once: the next gets 503 KV_API_BUSY with Retry-After, and later ones run again', async () => {
  const waiting: (() => void)[] = [];
  const app = buildApi(
    source(
      () =>
        new Promise((resolve) => {
          waiting.push(() => resolve({ ok: true, value: EMPTY }));
        }),
    ),
    { token: 't', webRoot: WEB_ROOT },
  );
  const slow = [app.inject({ url: '/api/v1/connections' }), app.inject({ url: '/api/v1/connections' })];
  while (waiting.length < 2) await new Promise((r) => setImmediate(r));
  const busy = await app.inject({ url: '/api/v1/connections' });
  assert.deepEqual([busy.statusCode, busy.json().error, busy.headers['retry-after']], [503, 'KV_API_BUSY', '1']);
  for (const w of waiting.splice(0)) w();
  assert.deepEqual(
    (await Promise.all(slow)).map((r) => r.statusCode),
    [200, 200],
  );
  const again = app.inject({ url: '/api/v1/connections' });
  while (waiting.length < 1) await new Promise((r) => setImmediate(r));
  waiting[0]();
  assert.equal((await again).statusCode, 200);
  await app.close();
});

test('any query string is answered 200 or 400, never 500', async () => {
  const app = buildApi(
    source(async () => ({ ok: true, value: EMPTY })),
    { token: 't', webRoot: WEB_ROOT },
  );
  const key = fc.constantFrom('service', 'real_server', 'state', 'kind', 'plane', 'limit', 'x', '', '__proto__');
  const value = fc.oneof(fc.string(), fc.constantFrom('', '0', '-1', '1e3', '100000', 'tcp:1.2.3.4:5', '[::1]:80'));
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(key, value), { maxLength: 6 }), async (pairs) => {
      const qs = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
      const r = await app.inject({ url: `/api/v1/connections?${qs}` });
      assert.ok(r.statusCode === 200 || r.statusCode === 400, `${qs}: ${r.statusCode} ${r.body}`);
      if (r.statusCode === 400) assert.ok(typeof r.json().message === 'string' && r.json().message.length > 0);
    }),
    { numRuns: 300 },
  );
  for (const raw of ['%ZZ', 'limit=1&limit=2', 'service', 'limit=', '&&&', 'a=%00'])
    assert.ok([200, 400].includes((await app.inject({ url: `/api/v1/connections?${raw}` })).statusCode), raw);
  await app.close();
});
