import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { secureScripts } from '../../src/config/script-security.js';
import { systemScriptSecurityPort } from '../../src/os/script-security-fs.js';
import { parse, show } from './helpers.js';
import { fakePort } from './script-fakes.js';

const dir = { kind: 'dir' as const, mode: 0o755 };
const conf = (globals: string) =>
  `global_defs {\n${globals}\n}\n` +
  'vrrp_script chk {\n script "/etc/ka/chk.sh"\n}\n' +
  'vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n' +
  ' track_script {\n  chk\n }\n notify_master "/etc/ka/chk.sh master"\n}\n' +
  'virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n  MISC_CHECK {\n   misc_path "/etc/ka/chk.sh"\n  }\n }\n}\n';

test('enable_script_security disables a root script in a directory other users can write to, as keepalived', () => {
  const port = fakePort({ '/etc': dir, '/etc/ka': { ...dir, mode: 0o777 }, '/etc/ka/chk.sh': {} });
  const r = secureScripts(parse(conf(' enable_script_security\n script_user root')), port);
  const c = r.config!;
  assert.deepEqual(c.vrrpScripts, []);
  assert.deepEqual(c.vrrpInstances[0].trackScripts, []);
  assert.equal(c.vrrpInstances[0].notify.master, undefined);
  assert.deepEqual(c.virtualServers[0].realServers[0].checkers, []);
  assert.ok(r.scriptLog.includes("Unsafe permissions found for script '/etc/ka/chk.sh' - disabling."));
  assert.ok(r.scriptLog.includes('Disabling track script chk due to insecure'));
  assert.ok(r.scriptLog.includes('Disabling misc script /etc/ka/chk.sh due to insecure'));
  const kv320 = r.diagnostics.filter((d) => d.code === 'KV320');
  assert.equal(kv320.length, 3, r.diagnostics.map(show).join('\n'));
  assert.deepEqual(
    kv320.map((d) => d.line),
    [6, 17, 23],
  );
});

test('without enable_script_security the insecure script runs, with keepalived SECURITY VIOLATION lines', () => {
  const port = fakePort({ '/etc': dir, '/etc/ka': dir, '/etc/ka/chk.sh': { mode: 0o757 } });
  const r = secureScripts(parse(conf(' router_id x')), port);
  assert.equal(r.config!.vrrpScripts.length, 1);
  assert.equal(r.config!.virtualServers[0].realServers[0].checkers.length, 1);
  assert.ok(r.scriptLog.includes("Unsafe permissions found for script '/etc/ka/chk.sh'."));
  assert.ok(
    r.scriptLog.includes(
      'SECURITY VIOLATION - scripts are being executed but script_security not enabled. There are insecure scripts.',
    ),
  );
  assert.ok(
    r.scriptLog.includes(
      'SECURITY VIOLATION - check scripts are being executed but script_security not enabled. There are insecure scripts.',
    ),
  );
  assert.ok(r.diagnostics.some((d) => d.code === 'KV321'));
});

test('secure scripts, sticky directories, owners and users: keepalived check_security rules', () => {
  // a sticky world-writable directory is fine, a group-writable one with a non-root group is not
  const sticky = fakePort({ '/etc': dir, '/etc/ka': { ...dir, mode: 0o1777 }, '/etc/ka/chk.sh': {} });
  const sec = ' enable_script_security\n script_user root';
  assert.equal(secureScripts(parse(conf(sec)), sticky).config!.vrrpScripts.length, 1);
  const groupW = fakePort({ '/etc': dir, '/etc/ka': { ...dir, gid: 50, mode: 0o775 }, '/etc/ka/chk.sh': {} });
  assert.equal(secureScripts(parse(conf(sec)), groupW).config!.vrrpScripts.length, 0);
  const owned = fakePort({ '/etc': dir, '/etc/ka': dir, '/etc/ka/chk.sh': { uid: 1000 } });
  assert.equal(secureScripts(parse(conf(sec)), owned).config!.vrrpScripts.length, 0);
  // run as an unprivileged user, a script it may write is its own business
  const asUser = fakePort(
    { '/etc': dir, '/etc/ka': { ...dir, mode: 0o777 }, '/etc/ka/chk.sh': {} },
    { nobody: { uid: 65534, gid: 65534 } },
  );
  const u = secureScripts(parse(conf(' enable_script_security\n script_user nobody')), asUser);
  assert.equal(u.config!.vrrpScripts.length, 1);
  assert.equal(u.config!.vrrpScripts[0].script.user, 'nobody');
  // default user: keepalived_script when it exists...
  const ks = fakePort(
    { '/etc': dir, '/etc/ka': dir, '/etc/ka/chk.sh': {} },
    { keepalived_script: { uid: 990, gid: 990 } },
  );
  const d = secureScripts(parse(conf(' enable_script_security')), ks);
  assert.equal(d.config!.vrrpScripts[0].script.user, 'keepalived_script');
  // ...else, with enable_script_security, scripts without a user are removed, as keepalived does
  const none = fakePort({ '/etc': dir, '/etc/ka': dir, '/etc/ka/chk.sh': {} });
  const n = secureScripts(parse(conf(' enable_script_security')), none);
  assert.equal(n.config!.vrrpScripts.length, 0);
  assert.ok(n.scriptLog.includes('Unable to set default user keepalived_script for script'));
  // a per-script user that does not exist disables that script
  const perScript = secureScripts(
    parse(conf(' script_user root').replace('script "/etc/ka/chk.sh"', 'script "/etc/ka/chk.sh"\n user ghost')),
    none,
  );
  assert.equal(perScript.config!.vrrpScripts.length, 0);
  assert.ok(perScript.scriptLog.includes("Script user 'ghost' does not exist"));
  // missing and non-executable scripts are disabled whatever the setting
  const missing = secureScripts(parse(conf(' script_user root')), fakePort({}));
  assert.equal(missing.config!.vrrpScripts.length, 0);
  const noX = secureScripts(
    parse(conf(' script_user root')),
    fakePort({ '/etc': dir, '/etc/ka': dir, '/etc/ka/chk.sh': { mode: 0o644 } }),
  );
  assert.ok(noX.scriptLog.includes("WARNING - script '/etc/ka/chk.sh' is not executable for uid:gid 0:0 - disabling."));
});

test('on the real file system (as root): a world-writable check script in a world-writable directory is disabled', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root: scripts only need protection when run as root');
  const base = mkdtempSync(join(tmpdir(), 'kv-ss-'));
  try {
    const ww = join(base, 'ww');
    mkdirSync(ww);
    chmodSync(ww, 0o777);
    const script = join(ww, 'chk.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n');
    chmodSync(script, 0o777);
    const text = conf(' enable_script_security\n script_user root').replaceAll('/etc/ka/chk.sh', script);
    const r = secureScripts(parse(text), systemScriptSecurityPort());
    assert.equal(r.config!.vrrpScripts.length, 0, r.scriptLog.join('\n'));
    assert.deepEqual(r.config!.virtualServers[0].realServers[0].checkers, []);
    chmodSync(ww, 0o755);
    chmodSync(script, 0o755);
    const ok = secureScripts(parse(text), systemScriptSecurityPort());
    assert.equal(ok.config!.vrrpScripts.length, 1, ok.scriptLog.join('\n'));
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
});
