import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';
import { freePort, stopKeepvs } from './harness.js';

let demo: ChildProcess | undefined;

after(async () => {
  if (demo) await stopKeepvs(demo);
});

test('dashboard in headless Chromium shows the demo service, its real servers and live health', {
  skip: !existsSync(CHROMIUM) && 'Debian chromium is not installed',
}, async () => {
  const { chromium } = await import('playwright-core');
  const port = await freePort();
  let out = '';
  demo = spawn(process.execPath, ['bin/keepvs.js', 'demo', '--duration', '40', '--api', `127.0.0.1:${port}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  demo.stdout?.on('data', (d) => (out += d));
  demo.stderr?.on('data', (d) => (out += d));
  // the demo prints its three rounds of traffic, the last after rs2 came back
  const deadline = Date.now() + 30000;
  while (!out.includes('rs2 back') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  assert.match(out, /balanced \(6 requests\): (rs\d ){5}rs\d/, out);
  assert.match(out, /rs2 health: down/, out);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: CHROMIUM_ARGS,
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`http://127.0.0.1:${port}/`);
    // Playwright's default: a 2-core CI machine running lab tests beside it once took over 10 s
    await page.waitForSelector('body[data-ready="1"]', { timeout: 30000 });
    await page.waitForSelector('#live.up', { timeout: 10000 });
    const rows = await page.locator('.svc tbody tr').count();
    assert.equal(rows, 3);
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText(), not the DOM property
    const text = await page.locator('#services').innerText();
    assert.match(text, /tcp:127\.0\.0\.1:\d+/);
    assert.match(text, /up/);
    // biome-ignore lint/performance/useDomNodeTextContent: Playwright's Locator.innerText(), not the DOM property
    const timeline = await page.locator('#events').innerText();
    assert.match(timeline, /DOWN/);
    assert.match(timeline, /UP/);
    mkdirSync('test-output', { recursive: true });
    const shot = join(process.cwd(), 'test-output', 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`# dashboard screenshot: ${shot}`);
  } finally {
    await browser.close();
    // a graceful stop, waited for: the demo removes its temporary directory as it exits
    const d = demo;
    const exited = new Promise((r) => d.once('exit', r));
    d.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  }
});
