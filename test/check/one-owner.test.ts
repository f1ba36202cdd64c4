/**
 * One owner per decision: the health policy (check/policy.ts) decides who is in the pool (retry,
 * alpha, quorum with hysteresis, sorry server, inhibit_on_failure) and the desired-state builder
 * (lb/desired.ts) programs exactly its verdict.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthPolicy, type PolicyHooks } from '../../src/check/policy.js';
import type { Config } from '../../src/config/model.js';
import { desiredTable } from '../../src/lb/desired.js';
import { destId } from '../../src/lb/ids.js';
import { EventBus } from '../../src/util/events.js';
import { MemoryLogger } from '../../src/util/logger.js';
import { config, realServer, tcpCheck, virtualServer } from './fixtures.js';

const hooks = (): PolicyHooks => ({
  logger: new MemoryLogger(),
  events: new EventBus(),
  wallNow: () => 0,
  notify: () => {},
});
const down = { up: false, reason: 'refused' };
const up = { up: true, reason: 'ok' };

/** What the table would hold: dest id -> weight, for the one service. */
function table(cfg: Config, p: HealthPolicy): Record<string, number> {
  const d = desiredTable(cfg, p.desiredInput()).services[0];
  return Object.fromEntries(d.dests.map((x) => [destId(x.dest, 4), x.params.weight]));
}

/** What the policy says is in the pool: dest id -> weight. */
function verdict(p: HealthPolicy): Record<string, number> {
  const s = Object.values(p.health().services)[0];
  const out: Record<string, number> = {};
  for (const [id, h] of Object.entries(s.dests)) if (h.inPool) out[id] = h.weight;
  if (s.sorry?.inPool) out[s.sorry.dest] = s.sorry.weight;
  return out;
}

describe('the desired table is the health policy verdict', () => {
  const sorryServer = { address: '127.0.0.9', family: 4 as const, port: 1 };
  for (const inhibit of [false, true]) {
    it(`quorum with hysteresis, sorry server${inhibit ? ', sorry_server_inhibit and inhibit_on_failure' : ''}; and after the checks stop`, () => {
      const cfg = config([
        virtualServer(
          [1, 2, 3, 4].map((port) => realServer(port, [tcpCheck()], { inhibitOnFailure: inhibit })),
          { quorum: 3, hysteresis: 1, sorryServer, sorryServerInhibit: inhibit },
        ),
      ]);
      const p = new HealthPolicy(cfg, hooks());
      const keys = p.checkerKeys();
      const steps = [
        () => {},
        () => p.report(keys[0], down),
        () => p.report(keys[1], down),
        () => p.report(keys[2], down), // quorum lost: the sorry server replaces the pool
        () => p.report(keys[0], up), // 2 < quorum + hysteresis: still lost
        () => p.report(keys[1], up), // regained
        () => p.stop(),
      ];
      for (const [i, step] of steps.entries()) {
        step();
        assert.deepEqual(table(cfg, p), verdict(p), `step ${i}`);
      }
      assert.deepEqual(table(cfg, p), {}, 'stopped checks: nothing in the pool, no sorry server');
    });
  }
});
