/**
 * Interop with Debian's keepalived in the network lab (../shared/lab/lab.sh), second half (the
 * runner gives each file 120 s): v2 unicast peers with link-down, and keepvs as the backup.
 * Needs root, keepalived and the lab; skipped otherwise. Only the lab's own addresses are used; the lab is torn down at the end.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { keepalivedPair } from './keepalived-pair.js';

const { P, opts, hasVip, setVip, conf, startKeepalived, startKeepvs, until, stop } = keepalivedPair('kvu');

test(
  'VRRPv2 unicast peers: keepvs and keepalived elect over unicast; link-down of the master moves the VIP',
  opts,
  async () => {
    setVip('198.18.0.100');
    const ka = startKeepalived(
      'lb2',
      conf('ka-uc', 90, 2, '  unicast_src_ip 198.18.0.2\n  unicast_peer {\n    198.18.0.1\n  }'),
    );
    const kv = startKeepvs(
      'lb1',
      conf('kv-uc', 100, 2, '  unicast_src_ip 198.18.0.1\n  unicast_peer {\n    198.18.0.2\n  }'),
    );
    try {
      await until('keepvs master over unicast', () => hasVip('lb1') && !hasVip('lb2'), 15000);
      // the master's interface goes down: its own interface is tracked, so it goes FAULT and releases the VIP
      execFileSync('ip', ['-n', `${P}-lb1`, 'link', 'set', 'eth0', 'down']);
      await until('keepalived takes over after link-down', () => hasVip('lb2'), 8000);
      execFileSync('ip', ['-n', `${P}-lb1`, 'link', 'set', 'eth0', 'up']);
      await until('keepvs back as master after link-up', () => hasVip('lb1') && !hasVip('lb2'), 15000);
    } finally {
      execFileSync('ip', ['-n', `${P}-lb1`, 'link', 'set', 'eth0', 'up']);
      await stop(kv, 'SIGKILL');
      await stop(ka, 'SIGKILL');
    }
  },
);

test(
  'the reverse: keepalived master (100), keepvs backup (90) takes over on stop, link-down and crash',
  opts,
  async () => {
    setVip('198.18.0.100');
    const kaConf = conf('ka-rev', 100, 3, '');
    const kv = startKeepvs('lb2', conf('kv-rev', 90, 3, ''));
    let ka = startKeepalived('lb1', kaConf);
    try {
      await until('keepalived master, keepvs backup', () => hasVip('lb1') && !hasVip('lb2'), 15000);
      // settled: a SIGTERM in the very moment keepalived takes over is not this test's subject
      await new Promise((r) => setTimeout(r, 1000));
      await stop(ka);
      const graceful = await until('keepvs takes over on a graceful stop', () => hasVip('lb2') && !hasVip('lb1'), 5000);
      assert.ok(graceful < 3000, `took ${graceful} ms`);
      ka = startKeepalived('lb1', kaConf);
      await until('keepalived preempts back', () => hasVip('lb1') && !hasVip('lb2'), 15000);
      execFileSync('ip', ['-n', `${P}-lb1`, 'link', 'set', 'eth0', 'down']);
      await until('keepvs takes over when the master loses its link', () => hasVip('lb2'), 8000);
      execFileSync('ip', ['-n', `${P}-lb1`, 'link', 'set', 'eth0', 'up']);
      await until('keepalived preempts back after link-up', () => !hasVip('lb2'), 15000);
      await stop(ka, 'SIGKILL');
      await until('keepvs takes over after keepalived crashed', () => hasVip('lb2'), 8000);
    } finally {
      execFileSync('ip', ['-n', `${P}-lb1`, 'link', 'set', 'eth0', 'up']);
      await stop(kv, 'SIGKILL');
      await stop(ka, 'SIGKILL');
    }
  },
);
