// Both directors of a VRRP pair in one page, in the network lab: keepvs on lb1 (priority 100) and
// lb2 (90) share VI_1 and its VIP; the dashboard of lb1 (Chromium runs in lb1's namespace) shows
// lb2 through --peer-api, says which director holds the VIP, and after "Maintenance mode" on lb1
// (confirmed) shows the VIP moving to lb2. Needs root and the lab; skipped otherwise. Only the
// lab's own addresses are used; the lab is torn down at the end.
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js';

const LAB = join(process.cwd(), '..', 'shared', 'lab', 'lab.sh');
const P = `kvw${process.pid % 10000}`;
const canRun = process.getuid?.() === 0 && existsSync(LAB) && existsSync(CHROMIUM);
const dir = mkdtempSync(join(tmpdir(), 'kv-webcfg-lab-'));
const procs: ChildProcess[] = [];
const env = { ...process.env, LAB_PREFIX: P, LAB_RS: '1' };
let labUp = false;
let output = '';

function lab(...args: string[]): string {
  return execFileSync('bash', [LAB, ...args], { env, encoding: 'utf8' });
}

after(async () => {
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  for (const p of procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  if (labUp) lab('down');
  rmSync(dir, { recursive: true, force: true });
});

function startKeepvs(host: string, name: string, priority: number, api: string, extra: string[]): void {
  const conf = join(dir, `${host}.conf`);
  writeFileSync(
    conf,
    `global_defs {\n    router_id ${name}\n}\nvrrp_instance VI_1 {\n    state BACKUP\n    interface eth0\n    virtual_router_id 61\n    priority ${priority}\n    advert_int 1\n    virtual_ipaddress {\n        198.18.0.100/24 dev eth0\n    }\n}\n`,
  );
  const p = spawn(
    'ip',
    [
      'netns',
      'exec',
      `${P}-${host}`,
      process.execPath,
      'bin/keepvs.js',
      '-n',
      '-l',
      '-P',
      '-G',
      '-f',
      conf,
      '--socket',
      join(dir, `${host}.sock`),
      '--api',
      api,
      '-p',
      join(dir, `${host}.pid`),
      '-r',
      join(dir, `${host}-vrrp.pid`),
      '-c',
      join(dir, `${host}-checkers.pid`),
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  p.stdout?.on('data', (b) => (output += `[${host}] ${b}`));
  p.stderr?.on('data', (b) => (output += `[${host}] ${b}`));
  procs.push(p);
}

test('the dashboard shows both directors of a lab pair and which one holds the VIP', {
  skip: !canRun && 'needs root, ../shared/lab/lab.sh and Debian chromium',
  timeout: 90000,
}, async () => {
  lab('up');
  labUp = true;
  const apiPort = 19480 + (process.pid % 100);
  startKeepvs('lb2', 'director-two', 90, `198.18.0.2:${apiPort}`, ['--api-token', 'two-token']);
  startKeepvs('lb1', 'director-one', 100, `127.0.0.1:${apiPort}`, [
    '--api-token',
    'ops:one-token',
    '--peer-api',
    `http://198.18.0.2:${apiPort}`,
    '--peer-token',
    'two-token',
  ]);
  // Chromium runs inside lb1's namespace, where lb1's API listens on loopback
  const wrapper = join(dir, 'chromium-in-lb1');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${P}-lb1 ${CHROMIUM} "$@"\n`);
  chmodSync(wrapper, 0o755);
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: wrapper,
    args: CHROMIUM_ARGS,
  });
  const shots = join(process.cwd(), 'test-output', 'webcfg');
  mkdirSync(shots, { recursive: true });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const base = `http://127.0.0.1:${apiPort}/`;
    const deadline = Date.now() + 15000;
    for (;;) {
      try {
        await page.goto(base);
        break;
      } catch (e) {
        if (Date.now() > deadline) throw new Error(`${(e as Error).message}\n${output}`);
        await new Promise((r) => setTimeout(r, 300));
      }
    }
    await page.waitForSelector('body[data-ready="1"]');
    await page.fill('#token', 'one-token');
    await page.dispatchEvent('#token', 'change');
    const holder = page.locator('#vips tbody tr', { hasText: '198.18.0.100' }).locator('td').last();
    const waitHolder = async (name: string) => {
      const end = Date.now() + 25000;
      let seen: string | null = '';
      while (Date.now() < end) {
        seen = (await holder.count()) ? await holder.textContent() : '';
        // exactly this one: both MASTER for a moment (before the first adverts cross) is not it
        if (seen?.trim() === name) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`VIP never held by ${name}: '${seen}'\n${output.slice(-3000)}`);
    };
    await waitHolder('director-one');
    await page.locator('#directors [data-director="peer"]', { hasText: 'BACKUP' }).waitFor({ timeout: 10000 });
    const cards = (await page.locator('#directors').textContent()) ?? '';
    assert.match(cards, /director-one[\s\S]*MASTER[\s\S]*director-two[\s\S]*BACKUP/);
    const shot1 = join(shots, 'lab-1-pair.png');
    await page.screenshot({ path: shot1, fullPage: true });
    console.log(`# screenshot: ${shot1}`);

    // maintenance on lb1, confirmed: lb2 takes the VIP, and the page says so
    await page.click('#maintenance');
    assert.match((await page.locator('#confirm-text').textContent()) ?? '', /maintenance/);
    await page.click('#confirm-ok');
    await waitHolder('director-two');
    assert.match((await page.locator('#directors').textContent()) ?? '', /maintenance/);
    assert.ok(
      execFileSync('ip', ['-n', `${P}-lb2`, '-4', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).includes(
        '198.18.0.100/',
      ),
    );
    const shot2 = join(shots, 'lab-2-maintenance.png');
    await page.screenshot({ path: shot2, fullPage: true });
    console.log(`# screenshot: ${shot2}`);
  } finally {
    await browser.close();
  }
});
