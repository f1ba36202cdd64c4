/**
 * VRRP against keepalived 2.2.7: 50-instance graceful stop ordering, per-instance reload, the status
 * API's push on state change, use_vmac. One lab, cases one after the other. Needs root, keepalived
 * and ../shared/lab; skipped otherwise.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { globalDefs, holds, instance, keepalivedLab, sleep, stopProc, until } from './lab-peers.js';

const { lab, opts, VIP, one } = keepalivedLab('kvs');

test('graceful stop of 50 instances: all priority-0 adverts within 200 ms, before any address goes', opts, async () => {
  const n = 50;
  const conf =
    globalDefs('kv') +
    Array.from({ length: n }, (_, k) =>
      instance({ name: `VI_${k + 1}`, vrid: k + 1, priority: 255, vips: [`198.18.0.${101 + k}`] }).replace(
        'state BACKUP',
        'state MASTER',
      ),
    ).join('');
  const kv = lab.keepvs('lb1', conf, 'fifty-kv');
  const dump = spawn(
    'ip',
    ['netns', 'exec', lab.ns('lb2'), 'tcpdump', '-i', 'eth0', '-n', '-l', '-tt', '-Q', 'in', 'ip proto 112'],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  const monitor = spawn('ip', ['-n', lab.ns('lb1'), '-ts', '-o', 'monitor', 'address'], {
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  let dumped = '';
  let monitored = '';
  dump.stdout.on('data', (b) => {
    dumped += b;
  });
  monitor.stdout.on('data', (b) => {
    monitored += b;
  });
  try {
    await until(
      'all 50 VIPs on lb1',
      () => lab.ip('lb1', '-4', 'addr', 'show', 'dev', 'eth0').split('198.18.0.1').length > n,
      20000,
    );
    await sleep(1000);
    const t0 = Date.now();
    process.kill(-kv.proc.pid!, 'SIGTERM');
    await until('keepvs exits', () => kv.proc.exitCode !== null || kv.proc.signalCode !== null, 10000);
    await sleep(300);
    const zero = dumped
      .split('\n')
      .filter((l) => /prio 0\b/.test(l))
      .map((l) => Number(l.split(' ')[0]) * 1000);
    assert.equal(zero.length, n, `priority-0 adverts seen: ${zero.length}`);
    const last = Math.max(...zero);
    assert.ok(last - t0 < 200, `last priority-0 advert ${Math.round(last - t0)} ms after the signal`);
    const deleted = monitored
      .split('\n')
      .filter((l) => l.includes('Deleted') && / inet 198\.18\.0\.1\d\d\//.test(l))
      .map((l) => Date.parse(/^\[([^\]]+)\]/.exec(l)?.[1] ?? ''));
    assert.equal(deleted.length, n, 'every VIP removed');
    // ip monitor stamps when it reads the event, so this can only err on the late side
    assert.ok(Math.min(...deleted) >= last - 5, 'no address went before the last priority-0 advert');
  } finally {
    await stopProc(kv.proc, 'SIGKILL', true);
    dump.kill('SIGKILL');
    monitor.kill('SIGKILL');
  }
});

test(
  'reload: changing one instance (or nothing) leaves the others alone: no transition, no priority 0',
  opts,
  async () => {
    const conf = (prioB: number) =>
      globalDefs('kv') +
      instance({ name: 'VI_A', vrid: 71, priority: 100, vips: ['198.18.0.171'] }) +
      instance({ name: 'VI_B', vrid: 72, priority: prioB, vips: ['198.18.0.172'] });
    const kv = lab.keepvs('lb1', conf(100), 'rl-kv');
    await sleep(300);
    const ka = lab.keepalived(
      'lb2',
      globalDefs('ka') +
        instance({ name: 'VI_A', vrid: 71, priority: 90, vips: ['198.18.0.171'] }) +
        instance({ name: 'VI_B', vrid: 72, priority: 90, vips: ['198.18.0.172'] }),
      'rl-ka',
    );
    try {
      await until('keepvs holds both', () => one('198.18.0.171', 'lb1')() && one('198.18.0.172', 'lb1')(), 15000);
      await sleep(1000);
      const before = lab.keepvsLog('rl-kv').split('Entering').length;
      const kaBefore = lab.keepaliveLog('rl-ka').length;
      lab.write('rl-kv-kv.conf', conf(110));
      process.kill(kv.proc.pid!, 'SIGHUP');
      await holds(
        'VI_A and VI_B stay on keepvs',
        () => one('198.18.0.171', 'lb1')() && one('198.18.0.172', 'lb1')(),
        3000,
        25,
      );
      // and a reload that changes nothing
      process.kill(kv.proc.pid!, 'SIGHUP');
      await holds('still on keepvs', () => one('198.18.0.171', 'lb1')() && one('198.18.0.172', 'lb1')(), 2000, 25);
      assert.equal(lab.keepvsLog('rl-kv').split('Entering').length, before, 'no state change in keepvs');
      const kaAfter = lab.keepaliveLog('rl-ka').slice(kaBefore);
      assert.doesNotMatch(kaAfter, /priority 0|Entering MASTER/, kaAfter);
    } finally {
      await stopProc(kv.proc, 'SIGKILL', true);
      await stopProc(ka, 'SIGKILL');
    }
  },
);

test('the status API shows a VRRP state change as soon as its event is out', opts, async () => {
  const ka = lab.keepalived('lb1', globalDefs('ka') + instance({ priority: 100, vips: [VIP] }), 'st-ka');
  const kv = lab.keepvs('lb2', globalDefs('kv') + instance({ priority: 90, vips: [VIP] }), 'st-kv');
  const script = `
const base = 'http://127.0.0.1:${kv.port}';
const h = { authorization: 'Bearer lab-token' };
const res = await fetch(base + '/api/v1/events/stream', { headers: h });
const dec = new TextDecoder();
let buf = '';
for await (const chunk of res.body) {
  buf += dec.decode(chunk);
  if (/"type":"vrrp-state"[^\\n]*"to":"MASTER"/.test(buf)) {
    const s = await (await fetch(base + '/api/v1/status', { headers: h })).json();
    console.log('STATE ' + s.vrrp[0].state);
    process.exit(0);
  }
}`;
  try {
    await until('keepalived master', one(VIP, 'lb1'), 15000);
    await until('keepvs API up', () => lab.vrrpStatus('lb2', kv.port).length === 1, 10000);
    const watcher = spawn(
      'ip',
      ['netns', 'exec', lab.ns('lb2'), process.execPath, '--input-type=module', '-e', script],
      {
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    );
    let out = '';
    watcher.stdout.on('data', (b) => {
      out += b;
    });
    await sleep(500);
    await stopProc(ka);
    await until('watcher saw the event', () => out.includes('STATE'), 5000);
    watcher.kill('SIGKILL');
    // before: the status lagged by up to a second (a timer sent the snapshot)
    assert.match(out, /STATE MASTER/);
  } finally {
    await stopProc(kv.proc, 'SIGKILL', true);
    await stopProc(ka, 'SIGKILL');
  }
});

test(
  'use_vmac: VIP on a macvlan with 00-00-5E-00-01-VRID, keepvs and keepalived both with VMAC, one holder at each step',
  opts,
  async () => {
    const vmac = '  use_vmac\n';
    const kvConf = globalDefs('kv') + instance({ vrid: 51, priority: 100, vips: [VIP], extra: vmac, dev: 'eth0' });
    const holdsOn = (host: string) => {
      try {
        return lab.hasVip(host, VIP, 'vrrp.51');
      } catch {
        return false;
      }
    };
    const only = (host: string) => () => holdsOn(host) && !holdsOn(host === 'lb1' ? 'lb2' : 'lb1');
    let kv = lab.keepvs('lb1', kvConf, 'vm-kv');
    await sleep(300);
    const ka = lab.keepalived(
      'lb2',
      globalDefs('ka') + instance({ vrid: 51, priority: 90, vips: [VIP], extra: vmac }),
      'vm-ka',
    );
    try {
      await until('keepvs holds the VIP on vrrp.51', only('lb1'), 15000);
      assert.match(lab.ip('lb1', 'link', 'show', 'dev', 'vrrp.51'), /00:00:5e:00:01:33/);
      // the client learns the virtual MAC for the VIP (the first ping lets the director learn the
      // client's MAC, so the second exchange is the client's ARP request and the VMAC's reply alone)
      lab.exec('client', ['ping', '-c', '1', '-W', '1', VIP]);
      lab.ip('client', 'neigh', 'flush', 'dev', 'eth0');
      lab.exec('client', ['ping', '-c', '1', '-W', '1', VIP]);
      assert.match(lab.ip('client', 'neigh', 'show', VIP), /00:00:5e:00:01:33/);
      await holds('keepvs the only holder', only('lb1'), 2000);
      await stopProc(kv.proc, 'SIGTERM', true);
      await until('keepalived takes over', only('lb2'), 3000);
      assert.throws(() => lab.ip('lb1', 'link', 'show', 'dev', 'vrrp.51'), 'keepvs removed its VMAC interface on stop');
      kv = lab.keepvs('lb1', kvConf, 'vm-kv2');
      await until('keepvs preempts back', only('lb1'), 15000);
    } finally {
      await stopProc(kv.proc, 'SIGKILL', true);
      await stopProc(ka);
      try {
        lab.ip('lb1', 'link', 'del', 'vrrp.51');
      } catch {}
    }
  },
);
