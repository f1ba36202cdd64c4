/**
 * The dashboard's BGP panel in headless Chromium, against the real API server (buildApi) fed a
 * status with `bgp` (what the supervisor's announcer reports): each VIP announced or withdrawn with
 * its reason and hold-down left, the sessions to the routers with BFD, and the speaker's error.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import type { DaemonStatus, StatusSource } from '../../src/api/types.js';
import { EventBus } from '../../src/util/events.js';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';

test('dashboard shows the BGP state: VIPs announced/withdrawn with reason and hold-down, sessions and BFD', {
  skip: !existsSync(CHROMIUM) && 'Debian chromium is not installed',
}, async () => {
  const { chromium } = await import('playwright-core');
  let bgp: NonNullable<DaemonStatus['bgp']> = {
    speaker: 'frr-bgpd',
    dir: '/run/keepvs/frr',
    running: true,
    neighbors: [
      { address: '198.18.2.1', state: 'Established', bfd: 'Up' },
      { address: '198.18.3.1', state: 'Active', bfd: 'Down' },
    ],
    vips: [
      {
        prefix: '198.18.0.100/32',
        announced: true,
        reason: 'healthy',
        holdDownMs: 5000,
        holdDownRemainingMs: 0,
        withdrawals: 0,
      },
      {
        prefix: '198.18.0.101/32',
        announced: false,
        reason: 'held down: healthy for 3 of 10 s after 1 withdrawal(s)',
        holdDownMs: 10000,
        holdDownRemainingMs: 7000,
        withdrawals: 1,
      },
    ],
  };
  const status = (): DaemonStatus => ({
    version: 'test',
    routerId: 'lb1',
    configFile: '/etc/keepalived/keepalived.conf',
    startedAt: Date.now(),
    workers: [],
    vrrp: [],
    maintenance: false,
    bgp,
  });
  const bus = new EventBus();
  const source: StatusSource = {
    status,
    events: () => [],
    subscribe: (l) => bus.subscribe(l),
    act: async () => ({ ok: true }),
  };
  const app = buildApi(source, { token: 'x'.repeat(32), webRoot: join(process.cwd(), 'web') });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as AddressInfo).port;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`http://127.0.0.1:${port}/`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
    await page.waitForSelector('#bgp:not([hidden])', { timeout: 5000 });
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText(), not the DOM property
    const held = await page.locator('#bgp-vips tr[data-prefix="198.18.0.101/32"]').innerText();
    assert.match(held, /withdrawn/);
    assert.match(held, /held down: healthy for 3 of 10 s/);
    assert.match(held, /7 s of 10 s/);
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText(), not the DOM property
    assert.match(await page.locator('#bgp-vips tr[data-prefix="198.18.0.100/32"]').innerText(), /announced\s+healthy/);
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText(), not the DOM property
    const sessions = await page.locator('#bgp-neighbors').innerText();
    assert.match(sessions, /198\.18\.2\.1\s+Established\s+BFD Up/);
    assert.match(sessions, /198\.18\.3\.1\s+Active\s+BFD Down/);
    // the speaker fails: the API's words on the dashboard (refreshed every second)
    bgp = { ...bgp, running: false, error: 'BGP: bgpd exited; VIPs are not announced' };
    await page.locator('#bgp-speaker', { hasText: 'not running' }).waitFor({ timeout: 5000 });
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText(), not the DOM property
    assert.match(await page.locator('#bgp-speaker').innerText(), /bgpd exited; VIPs are not announced/);
  } finally {
    await browser.close();
    await app.close();
  }
});
