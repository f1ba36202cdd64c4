// The dashboard as a configuration tool, in headless Chromium against two keepvs daemons on
// loopback (a director and its peer): add a real server from the page (diff, diagnostics, apply,
// traffic reaches it), roll back, an invalid value shown at its field with nothing applied, two
// pages editing at once (conflict), drain and weight, both directors in one page.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { managedText, renderManaged } from '../../src/config/edit/render.js';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';
import { freePort, stopKeepvs } from './harness.js';

const root = process.cwd();
const dir = mkdtempSync(join(tmpdir(), 'kv-webcfg-'));
const shots = join(root, 'test-output', 'webcfg');
const daemons: ChildProcess[] = [];
const servers: http.Server[] = [];
let output = '';

after(async () => {
  await Promise.all(daemons.map((d) => stopKeepvs(d)));
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

async function startRs(name: string): Promise<number> {
  const port = await freePort();
  const s = http.createServer((_req, res) => res.end(name));
  await new Promise<void>((r) => s.listen(port, '127.0.0.1', r));
  servers.push(s);
  return port;
}

function get(port: number, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 3000 }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, ms = 30000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what} ${last ?? ''}\n${output.slice(-3000)}`);
}

function startDaemon(name: string, conf: string, apiPort: number, extra: string[]): ChildProcess {
  const d = spawn(
    process.execPath,
    [
      join(root, 'bin/keepvs.js'),
      '-n',
      '-l',
      '-G',
      '-f',
      conf,
      '--socket',
      join(dir, `${name}.sock`),
      '--api',
      `127.0.0.1:${apiPort}`,
      '-p',
      join(dir, `${name}.pid`),
      '-c',
      join(dir, `${name}-checkers.pid`),
      '-r',
      join(dir, `${name}-vrrp.pid`),
      '--dataplane-workers=1',
      // the userspace proxy even as root (auto would take the kernel plane): two loopback directors
      '--dataplane=proxy',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  d.stdout?.on('data', (b) => (output += `[${name}] ${b}`));
  d.stderr?.on('data', (b) => (output += `[${name}] ${b}`));
  daemons.push(d);
  return d;
}

const txt = async (page: import('playwright-core').Page, selector: string) =>
  (await page.locator(selector).first().textContent()) ?? '';

async function waitText(page: import('playwright-core').Page, selector: string, text: string): Promise<void> {
  try {
    await page.locator(selector, { hasText: text }).first().waitFor({ timeout: 30000 });
  } catch (e) {
    const seen = await page.locator(selector).first().textContent();
    const msg = await txt(page, '#cfg-message');
    const diags = await txt(page, '#preview-diags');
    throw new Error(
      `${selector} never showed '${text}': it shows '${seen}'; message '${msg}'; diagnostics '${diags}'\n${output.slice(-2000)}\n${(e as Error).message}`,
    );
  }
}

const rsOf = (port: number) => ({
  address: '127.0.0.1',
  port,
  weight: 1,
  checkers: [{ type: 'TCP_CHECK' as const, connectTimeout: 1, delayLoop: 1, retry: 0 }],
});

test('configure and watch two directors from the dashboard', {
  skip: !existsSync(CHROMIUM) && 'Debian chromium is not installed',
  timeout: 180000,
}, async () => {
  const { chromium } = await import('playwright-core');
  mkdirSync(shots, { recursive: true });
  const [rsA, rsB, rsC, rsD, rsP] = [
    await startRs('A'),
    await startRs('B'),
    await startRs('C'),
    await startRs('D'),
    await startRs('P'),
  ];
  const [vip1, vip2, api1, api2] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const svc = `tcp:127.0.0.1:${vip1}`;

  // director 1: the operator's file includes the managed file, which holds the service
  const conf1 = join(dir, 'd1.conf');
  const managed1 = join(dir, 'keepvs-managed.conf');
  writeFileSync(conf1, 'global_defs {\n    router_id director-one\n}\ninclude keepvs-managed.conf\n');
  const initial = managedText(
    renderManaged({
      virtualServers: [
        {
          address: '127.0.0.1',
          port: vip1,
          protocol: 'TCP',
          scheduler: 'rr',
          method: 'NAT',
          delayLoop: 1,
          realServers: [rsOf(rsA)],
        },
      ],
      vrrpInstances: [],
    }),
  );
  writeFileSync(managed1, initial);
  // director 2, its peer, with its own service in its own file
  const conf2 = join(dir, 'd2.conf');
  writeFileSync(
    conf2,
    `global_defs {\n    router_id director-two\n}\nvirtual_server 127.0.0.1 ${vip2} {\n    delay_loop 1\n    lvs_sched rr\n    protocol TCP\n    real_server 127.0.0.1 ${rsP} {\n        TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}\n`,
  );
  startDaemon('d2', conf2, api2, ['--api-token', 'peer-token', '--managed-config', join(dir, 'd2-managed.conf')]);
  startDaemon('d1', conf1, api1, [
    '--api-token',
    'alice:alice-token',
    '--api-token',
    'bob:bob-token',
    '--peer-api',
    `http://127.0.0.1:${api2}`,
    '--peer-token',
    'peer-token',
  ]);
  const status = async (port = api1) => JSON.parse(await get(port, '/api/v1/status'));
  const dests = async () => (await status()).lvs?.table.services.find((s: { id: string }) => s.id === svc)?.dests ?? [];
  const up = async (port: number) =>
    (await status()).lvs?.checks.servers.find((h: { dest: string; up: boolean }) => h.dest === `127.0.0.1:${port}`)?.up;
  await until('director 1 serves A', async () => (await up(rsA)) && (await get(vip1)) === 'A');
  await until('director 2 up', async () => (await status(api2)).lvs?.checks.servers[0]?.up);

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
  });
  const shot = async (page: import('playwright-core').Page, name: string) => {
    const path = join(shots, `${name}.png`);
    await page.screenshot({ path, fullPage: true });
    console.log(`# screenshot: ${path}`);
  };
  try {
    const open = async (token: string) => {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      page.on('pageerror', (e) => {
        output += `[page] ${e.message}\n`;
      });
      await page.goto(`http://127.0.0.1:${api1}/`);
      await page.waitForSelector('body[data-ready="1"]');
      await page.fill('#token', token);
      await page.dispatchEvent('#token', 'change');
      await page.waitForSelector('body[data-config]');
      return page;
    };
    const page = await open('alice-token');

    // both directors in one page: the peer's card and its service, through director 1's API
    await page.waitForSelector('body[data-peer="1"]', { timeout: 10000 });
    await waitText(page, '#directors', 'director-two');
    assert.match(await txt(page, '#directors'), /director-one[\s\S]*director-two/);
    assert.match(await txt(page, '#peer-services'), new RegExp(`tcp:127\\.0\\.0\\.1:${vip2}`));

    // add real server B from the page: preview shows the diff and no diagnostics, then apply
    await page.selectOption('#rs-service', svc);
    await page.fill('#rs-address', '127.0.0.1');
    await page.fill('#rs-port', String(rsB));
    await page.fill('#rs-weight', '1');
    await page.selectOption('#rs-chk_type', 'TCP_CHECK');
    await page.fill('#rs-chk_connectTimeout', '1');
    await page.fill('#rs-chk_delayLoop', '1');
    await page.click('#rs-preview');
    await page.waitForSelector('#preview:not([hidden])');
    const diff = await txt(page, '#preview-diff');
    assert.match(diff, new RegExp(`\\+ {4}real_server 127\\.0\\.0\\.1 ${rsB} \\{`), diff);
    assert.match(await txt(page, '#preview-diags'), /no problem/);
    assert.equal(readFileSync(managed1, 'utf8'), initial, 'a preview writes nothing');
    await shot(page, '1-preview-add-real-server');
    await page.click('#apply');
    await waitText(page, '#cfg-message', 'Applied');
    assert.match(readFileSync(managed1, 'utf8'), new RegExp(`real_server 127\\.0\\.0\\.1 ${rsB} \\{`));
    // traffic reaches the new server
    await until('B in the table and up', async () => (await dests()).length === 2 && (await up(rsB)));
    const seen = new Set<string>();
    for (let i = 0; i < 8; i++) seen.add(await get(vip1));
    assert.deepEqual([...seen].sort(), ['A', 'B']);
    await page.waitForSelector(`.svc[data-service="${svc}"] tr[data-dest="127.0.0.1:${rsB}"]`);
    assert.match(await txt(page, '#audit'), /alice[\s\S]*add real server/);
    await shot(page, '2-applied-two-real-servers');

    // one-click rollback (with confirmation): B leaves again
    await page.click('#rollback');
    await page.click('#confirm-ok');
    await waitText(page, '#cfg-message', 'Rolled back');
    assert.equal(readFileSync(managed1, 'utf8'), initial);
    await until('B gone after rollback', async () => (await dests()).length === 1);

    // an invalid value: the diagnostic at the weight field, Apply disabled, nothing written
    await page.fill('#rs-address', '127.0.0.1');
    await page.fill('#rs-port', String(rsC));
    await page.fill('#rs-weight', 'heavy');
    await page.click('#rs-preview');
    await waitText(page, '#rs-weight-err', 'KV200');
    assert.equal(await page.getAttribute('#rs-weight', 'aria-invalid'), 'true');
    assert.equal(await txt(page, '#rs-port-err'), '');
    assert.equal(await page.isDisabled('#apply'), true);
    await shot(page, '3-invalid-weight');
    assert.equal(readFileSync(managed1, 'utf8'), initial);
    await page.click('#cancel');

    // two pages edit at once: the second apply is refused as a conflict, nothing merged
    const page2 = await open('bob-token');
    await page.fill('#rs-weight', '1');
    for (const [p, port] of [
      [page, rsC],
      [page2, rsD],
    ] as const) {
      await p.selectOption('#rs-service', svc);
      await p.fill('#rs-address', '127.0.0.1');
      await p.fill('#rs-port', String(port));
      await p.fill('#rs-weight', '1');
      await p.click('#rs-preview');
      await p.waitForSelector('#preview:not([hidden])');
    }
    await page.click('#apply');
    await waitText(page, '#cfg-message', 'Applied');
    await page2.click('#apply');
    await waitText(page2, '#cfg-message', 'Conflict');
    assert.match(await txt(page2, '#cfg-message'), /changed by alice/);
    const text = readFileSync(managed1, 'utf8');
    assert.match(text, new RegExp(`real_server 127\\.0\\.0\\.1 ${rsC} `));
    assert.doesNotMatch(text, new RegExp(`real_server 127\\.0\\.0\\.1 ${rsD} `));
    await shot(page2, '4-conflict');
    await page2.close();

    // a virtual server created from its form, then deleted from the blocks table
    const vip3 = await freePort();
    await page.fill('#vs-address', '127.0.0.1');
    await page.fill('#vs-port', String(vip3));
    await page.selectOption('#vs-scheduler', 'wrr');
    await page.fill('#vs-delayLoop', '2');
    await page.click('#vs-preview');
    await page.waitForSelector('#preview:not([hidden])');
    assert.match(await txt(page, '#preview-diff'), new RegExp(`\\+virtual_server 127\\.0\\.0\\.1 ${vip3} \\{`));
    // no real server yet: keepalived ignores such a service; the form says so and Apply is off
    assert.match(await txt(page, '#vs-form-err'), /KV314/);
    assert.equal(await page.isDisabled('#apply'), true);
    await page.fill('#vs-rsAddress', '127.0.0.1');
    await page.fill('#vs-rsPort', String(rsC));
    await page.click('#vs-preview');
    await waitText(page, '#preview-diff', `real_server 127.0.0.1 ${rsC}`);
    assert.equal(await page.isDisabled('#apply'), false);
    await page.click('#apply');
    await waitText(page, '#cfg-message', 'Applied');
    await waitText(page, '#blocks', `tcp:127.0.0.1:${vip3}`);
    await page.click(`#blocks button[data-act="delete-vs"][data-service="tcp:127.0.0.1:${vip3}"]`);
    await page.waitForSelector('#preview:not([hidden])');
    assert.match(await txt(page, '#preview-diff'), new RegExp(`-virtual_server 127\\.0\\.0\\.1 ${vip3} \\{`));
    await page.click('#apply');
    await waitText(page, '#cfg-message', 'Applied');
    assert.doesNotMatch(readFileSync(managed1, 'utf8'), new RegExp(`virtual_server 127\\.0\\.0\\.1 ${vip3} `));

    // drain, then a weight, each confirmed
    const row = `.svc[data-service="${svc}"] tr[data-dest="127.0.0.1:${rsA}"]`;
    await page.click(`${row} button[data-act="drain"]`);
    assert.match(await txt(page, '#confirm-text'), /Drain 127\.0\.0\.1:\d+/);
    await page.click('#confirm-ok');
    await until('A drained', async () => (await dests()).find((d: { port: number }) => d.port === rsA)?.weight === 0);
    await page.fill(`${row} .weight input`, '5');
    await page.click(`${row} button[data-act="weight"]`);
    await page.click('#confirm-ok');
    await until('A weight 5', async () => (await dests()).find((d: { port: number }) => d.port === rsA)?.weight === 5);
    await waitText(page, `${row} td[data-label="Weight"]`, '5');

    // an action on the peer director, relayed with its token
    const peerRow = `#peer-services .svc[data-service="tcp:127.0.0.1:${vip2}"] tr[data-dest="127.0.0.1:${rsP}"]`;
    await page.click(`${peerRow} button[data-act="drain"]`);
    await page.click('#confirm-ok');
    await until(
      'peer real server drained',
      async () => (await status(api2)).lvs?.table.services[0]?.dests[0]?.weight === 0,
    );

    // charts: 15 minutes with a clock axis and a scale, fed by the daemon's history
    const caption = await txt(page, `.svc[data-service="${svc}"] figure.chart figcaption`);
    assert.match(caption, /Connections · last 15 min/);
    const labels = await page
      .locator(`.svc[data-service="${svc}"] figure.chart`)
      .first()
      .locator('text')
      .allTextContents();
    assert.ok(labels.filter((l) => /\d{1,2}:\d{2}/.test(l)).length >= 3, labels.join('|'));
    assert.ok(
      labels.some((l) => /\/s$/.test(l)),
      labels.join('|'),
    );

    // watching: check type, last result, latency, failures in a row, time in state; events with dates, filtered
    const cells = await txt(page, row);
    assert.match(cells, /TCP_CHECK/);
    assert.match(cells, /\d+(\.\d+)? ms/);
    assert.match(cells, /\d+ s|min/);
    await page.selectOption('#ev-type', 'config-change');
    const evRows = await page.locator('#events tbody tr').allInnerTexts();
    assert.ok(evRows.length >= 3, evRows.join('\n'));
    for (const r of evRows) assert.match(r, /config-change/);
    assert.match(await txt(page, '#sec-diag'), /no problems in the running configuration/);
    await shot(page, '5-drained-weight-events');
    await page.setViewportSize({ width: 390, height: 844 });
    await shot(page, '6-phone');
    // the phone layout: no horizontal scrolling of the page, real servers as cards
    const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth');
    assert.ok(Number(overflow) <= 1, `page is ${overflow} px wider than a phone screen`);
    // the dashboard redraws the card on each refresh: a locator caught between two draws is detached
    await until(
      'the service card in view',
      async () => {
        await page.locator(`.svc[data-service="${svc}"]`).scrollIntoViewIfNeeded({ timeout: 2000 });
        return true;
      },
      15000,
    );
    const phone = join(shots, '7-phone-service.png');
    await page.screenshot({ path: phone });
    console.log(`# screenshot: ${phone}`);
  } catch (e) {
    // a failure leaves a picture of every open page and the daemons' last words
    for (const [i, p] of browser
      .contexts()
      .flatMap((c) => c.pages())
      .entries()) {
      const path = join(shots, `failure-${i}.png`);
      await p.screenshot({ path, fullPage: true }).catch(() => undefined);
      console.log(`# failure screenshot: ${path}`);
    }
    throw new Error(`${(e as Error).stack}\n${output.slice(-3000)}`);
  } finally {
    await browser.close();
  }
  assert.doesNotMatch(output, /\[page\]/, 'no script error in the page');
});
