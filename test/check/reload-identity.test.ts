/**
 * What makes a checker "the same checker" across a reload (keepalived's per-checker compare:
 * check_api.c compare_conn_opts, check_tcp.c tcp_check_compare, check_http.c compare_http_check,
 * check_misc.c compare_misc_check, ...; ipwrapper.c migrate_checkers): timing never does, so a
 * down server stays down when only delay_loop, retry, delay_before_retry or warmup change.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HealthPolicy, type PolicyHooks } from '../../src/check/policy.js';
import type { Checker, MiscCheck, ScriptSpec } from '../../src/config/model.js';
import { EventBus } from '../../src/util/events.js';
import { MemoryLogger } from '../../src/util/logger.js';
import { config, httpCheck, loc, realServer, tcpCheck, virtualServer } from './fixtures.js';

const VS = 'tcp:198.18.0.100:80';
const RS = '127.0.0.1:1';
const down = { up: false, reason: 'connection refused' };

const hooks = (): PolicyHooks & { bus: EventBus } => {
  const bus = new EventBus();
  return { logger: new MemoryLogger(), events: bus, bus, wallNow: () => 0, notify: () => {} };
};

const script = (cmd: string): ScriptSpec => ({ command: cmd, argv: cmd.split(' '), loc });
const misc = (over: Partial<MiscCheck> = {}): MiscCheck => ({
  type: 'MISC_CHECK',
  loc,
  alpha: false,
  logAllFailures: false,
  connectTimeout: 1,
  retry: 0,
  delayBeforeRetry: 1,
  warmup: 0,
  delayLoop: 1,
  miscPath: script('/bin/check 1'),
  miscTimeout: 5,
  miscDynamic: false,
  ...over,
});

/** A policy whose only real server was taken down by `before`, then reloaded with `after`. */
function reloaded(before: Checker, after: Checker): { up: boolean; flaps: number } {
  const h = hooks();
  const p1 = new HealthPolicy(config([virtualServer([realServer(1, [before])])]), h);
  const key = p1.checkerKeys()[0];
  while (p1.health().services[VS].dests[RS].up) p1.report(key, down);
  const seen = h.bus.recent().length;
  const p2 = new HealthPolicy(config([virtualServer([realServer(1, [after])])]), h, p1);
  const flaps = h.bus
    .recent()
    .slice(seen)
    .filter((e) => e.type === 'rs-health').length;
  return { up: p2.health().services[VS].dests[RS].up, flaps };
}

describe('checker identity on reload', () => {
  const timingChanges = [
    { delayLoop: 7 },
    { retry: 4 },
    { delayBeforeRetry: 9 },
    { warmup: 3 },
    { delayLoop: 30, retry: 2, delayBeforeRetry: 5, warmup: 10 },
  ];
  for (const t of timingChanges) {
    it(`TCP_CHECK: a down server stays down when only ${Object.keys(t).join(', ')} change`, () => {
      assert.deepEqual(reloaded(tcpCheck(), tcpCheck(t)), { up: false, flaps: 0 });
    });
  }

  it('HTTP_GET: timing and http_protocol are not identity; a down server stays down', () => {
    assert.deepEqual(reloaded(httpCheck(), httpCheck({ delayLoop: 12, retry: 3, httpProtocol: '1.1' })), {
      up: false,
      flaps: 0,
    });
  });

  it('MISC_CHECK: misc_timeout and timing are not identity; a down server stays down', () => {
    assert.deepEqual(reloaded(misc(), misc({ miscTimeout: 20, delayLoop: 9 })), { up: false, flaps: 0 });
  });

  // a changed identity is a new checker: it has not run, so (not alpha) the server is up again
  const identityChanges: [string, Checker, Checker][] = [
    ['TCP_CHECK connect_port', tcpCheck(), tcpCheck({ connectPort: 2 })],
    ['TCP_CHECK connect_ip', tcpCheck(), tcpCheck({ connectIp: '127.0.0.2' })],
    ['TCP_CHECK connect_timeout', tcpCheck(), tcpCheck({ connectTimeout: 4 })],
    ['TCP_CHECK bindto', tcpCheck(), tcpCheck({ bindTo: '127.0.0.3' })],
    [
      'HTTP_GET url path',
      httpCheck(),
      httpCheck({ urls: [{ path: '/health', statusCodes: [[200, 299]], regexNoMatch: false, loc }] }),
    ],
    [
      'HTTP_GET status_code',
      httpCheck(),
      httpCheck({ urls: [{ path: '/', statusCodes: [[200, 200]], regexNoMatch: false, loc }] }),
    ],
    ['HTTP_GET virtualhost', httpCheck(), httpCheck({ virtualhost: 'www.example.test' })],
    ['MISC_CHECK misc_path', misc(), misc({ miscPath: script('/bin/check 2') })],
    ['MISC_CHECK misc_dynamic', misc(), misc({ miscDynamic: true })],
    ['a different checker type', tcpCheck(), httpCheck()],
  ];
  for (const [what, before, after] of identityChanges) {
    it(`${what} changed: a new checker, the server is up until it fails`, () => {
      assert.equal(reloaded(before, after).up, true);
    });
  }
});
