import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { daemonOptions } from '../../src/cli/daemon-options.js';
import { parseKeepvsArgs } from '../../src/cli/keepvs-args.js';

const dir = mkdtempSync(join(tmpdir(), 'kv-webopts-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('--api-token NAME:TOKEN repeats into named tokens; a plain one stays the default token', () => {
  const r = parseKeepvsArgs(['--api-token', 'alice:s3cret', '--api-token=plain', '--api-token', 'bob:t:k']);
  assert.ok(r.ok);
  assert.equal(r.value.apiToken, 'plain');
  assert.deepEqual(r.value.apiTokens, [
    { name: 'alice', token: 's3cret' },
    { name: 'bob', token: 't:k' },
  ]);
  const d = daemonOptions(r.value, '/etc/keepalived/keepalived.conf');
  assert.equal(d.managedConfig, '/etc/keepalived/keepvs-managed.conf');
  assert.deepEqual(
    d.apiTokens.map((t) => t.name),
    ['alice', 'bob'],
  );
});

test('--peer-api needs an http(s) URL; --managed-config and --peer-token reach the daemon options', () => {
  const bad = parseKeepvsArgs(['--peer-api', '198.18.0.2:9180']);
  assert.ok(!bad.ok);
  assert.match(bad.error.message, /invalid --peer-api/);
  const r = parseKeepvsArgs([
    '--peer-api',
    'http://198.18.0.2:9180/',
    '--peer-token',
    'pt',
    '--managed-config',
    '/srv/m.conf',
  ]);
  assert.ok(r.ok);
  const d = daemonOptions(r.value, '/etc/keepalived/keepalived.conf');
  assert.deepEqual(d.peer, { url: 'http://198.18.0.2:9180', token: 'pt' });
  assert.equal(d.managedConfig, '/srv/m.conf');
});

test('keepvs -t reports the managed file and the peer director the dashboard will use', () => {
  const conf = join(dir, 'keepalived.conf');
  writeFileSync(conf, 'global_defs {\n    router_id t\n}\n');
  const t = spawnSync(process.execPath, ['bin/keepvs.js', '-t', '-f', conf, '--peer-api', 'http://198.18.0.2:9180'], {
    encoding: 'utf8',
  });
  assert.equal(t.status, 0, t.stderr);
  assert.match(t.stderr, new RegExp(`config API writes ${join(dir, 'keepvs-managed.conf')}`));
  assert.match(t.stderr, /peer director API http:\/\/198\.18\.0\.2:9180 \(without a token for actions\)/);
});
