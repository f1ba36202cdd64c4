/**
 * What the package ships: package.json fields, the systemd unit (Type=notify, KillMode, hardening
 * measured by systemd-analyze security), the man pages (render cleanly, name every option of
 * --help), the bash completion of keepvsadm. The installs themselves (npm install -g from a clone
 * and from the npm pack tarball) reach the npm registry, so they run in CI (.ci/package-install.sh),
 * not here.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { parseKeepvsArgs } from '../../src/cli/keepvs-args.js';

const root = process.cwd();
const read = (f: string) => readFileSync(join(root, f), 'utf8');
const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
const tmp = mkdtempSync(join(tmpdir(), 'kv-pkg-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

test('package.json: bin, man, engines, files (dist, man, completions, contrib), a prepare build', () => {
  const p = JSON.parse(read('package.json'));
  assert.deepEqual(Object.keys(p.bin).sort(), ['keepvs', 'keepvsadm']);
  assert.deepEqual(p.man, ['./man/keepvs.8', './man/keepvsadm.8', './man/keepvs.conf.5']);
  assert.match(p.engines.node, /^>=20/);
  for (const f of ['dist/src', 'man', 'completions', 'contrib', 'LICENSE', 'scripts/prepare.mjs'])
    assert.ok(p.files.includes(f), `files lacks ${f}`);
  assert.equal(p.scripts.prepare, 'node scripts/prepare.mjs');
  assert.equal(p.scripts.prepack, 'node scripts/prepare.mjs');
  // run time needs no dev dependency: nothing under dist/src imports one
  const dev = Object.keys(p.devDependencies);
  const r = spawnSync('grep', ['-rlE', `from '(${dev.map((d) => d.replace('/', '\\/')).join('|')})`, 'src'], {
    cwd: root,
  });
  assert.equal(r.stdout.toString(), '', 'src/ imports a dev dependency');
});

function unit(): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of read('contrib/keepvs.service').split('\n')) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (kv) m.set(kv[1], [...(m.get(kv[1]) ?? []), kv[2]]);
  }
  return m;
}

test('systemd unit: Type=notify from the main process, KillMode=process, ExecStart/ExecStartPre that keepvs accepts', () => {
  const u = unit();
  assert.deepEqual(u.get('Type'), ['notify']);
  assert.deepEqual(u.get('NotifyAccess'), ['main']);
  // SIGTERM to the supervisor, which stops its workers in order (docs/vrrp.md graceful stop); a
  // crashed supervisor leaves the proxy workers forwarding for the restarted keepvs to adopt
  assert.deepEqual(u.get('KillMode'), ['process']);
  assert.deepEqual(u.get('RuntimeDirectoryPreserve'), ['yes']);
  assert.deepEqual(u.get('KillSignal'), ['SIGTERM']);
  assert.deepEqual(u.get('ExecReload'), ['/bin/kill -HUP $MAINPID']);
  const caps = (u.get('CapabilityBoundingSet') ?? [''])[0].split(' ');
  for (const c of ['CAP_NET_ADMIN', 'CAP_NET_RAW']) assert.ok(caps.includes(c), c);
  for (const key of ['ExecStart', 'ExecStartPre']) {
    const argv = (u.get(key) ?? [''])[0].split(' ');
    assert.equal(argv[0], 'keepvs');
    const parsed = parseKeepvsArgs(argv.slice(1));
    assert.ok(parsed.ok, `${key}: ${JSON.stringify(parsed)}`);
  }
  const pre = parseKeepvsArgs((u.get('ExecStartPre') ?? [''])[0].split(' ').slice(1));
  // a warning must not keep the service from starting: -t --lenient exits 0 when the config can run
  assert.ok(pre.ok && pre.value.command === 'config-test' && pre.value.lenient, JSON.stringify(pre));
});

test('systemd unit: systemd-analyze security exposure below 5', {
  skip: !have('systemd-analyze') && 'no systemd-analyze',
}, () => {
  const r = spawnSync('systemd-analyze', ['security', '--offline=yes', join(root, 'contrib', 'keepvs.service')], {
    encoding: 'utf8',
  });
  const m = /Overall exposure level for keepvs\.service: ([\d.]+)/.exec(r.stdout);
  assert.ok(m, r.stdout + r.stderr);
  assert.ok(Number(m[1]) < 5, `exposure ${m[1]}`);
});

test('man pages: render without warnings and name every long option of --help', {
  skip: !have('groff') && 'no groff',
}, () => {
  for (const [page, help] of [
    ['man/keepvs.8', spawnSync(process.execPath, [join(root, 'bin', 'keepvs.js'), '--help'], { encoding: 'utf8' })],
    ['man/keepvsadm.8', spawnSync(process.execPath, [join(root, 'bin', 'keepvsadm.js'), '-h'], { encoding: 'utf8' })],
  ] as const) {
    const r = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', join(root, page)], {
      encoding: 'utf8',
      env: { ...process.env, LC_ALL: 'C' },
    });
    assert.equal(r.stderr, '', `${page}: ${r.stderr}`);
    const text = read(page).replace(/\\-/g, '-');
    const longs = new Set(
      [...`${help.stdout}${help.stderr}`.matchAll(/(?<![\w-])--[a-z][a-z0-9_-]*/g)].map((x) => x[0]),
    );
    assert.ok(longs.size > 10, `${page}: options found in the help`);
    assert.deepEqual(
      [...longs].filter((o) => !text.includes(o)),
      [],
      `${page} does not name these options of the help`,
    );
  }
});

test('keepvs.conf(5) names every keepvs keyword (those keepvs -t reports with KV116)', {
  skip: !have('groff') && 'no groff',
}, () => {
  const r = spawnSync('grep', ['-rhoE', "'[a-z_]+' is a keepvs keyword", 'src/config'], {
    cwd: root,
    encoding: 'utf8',
  });
  const words = [...new Set([...r.stdout.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]))];
  assert.ok(words.length >= 2, r.stdout);
  const page = read('man/keepvs.conf.5').replace(/\\-/g, '-');
  assert.deepEqual(
    words.filter((w) => !page.includes(w)),
    [],
    'keywords missing from man/keepvs.conf.5',
  );
  const g = spawnSync('groff', ['-man', '-Tutf8', '-ww', '-z', join(root, 'man', 'keepvs.conf.5')], {
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
  assert.equal(g.stderr, '');
});

function complete(words: string[], fakeSave = ''): string[] {
  // a stand-in keepvsadm on PATH answers -Sn as a running daemon would
  const bin = join(tmp, 'bin');
  spawnSync('mkdir', ['-p', bin]);
  writeFileSync(join(bin, 'keepvsadm'), `#!/bin/sh\nprintf '%s' '${fakeSave}'\n`);
  chmodSync(join(bin, 'keepvsadm'), 0o755);
  const script = `source '${join(root, 'completions', 'keepvsadm')}'
COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}
_keepvsadm; printf '%s\\n' "\${COMPREPLY[@]}"`;
  const r = spawnSync('bash', ['-c', script], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` },
  });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean);
}

test('bash completion: schedulers as -h lists them, services and real servers from the running table', () => {
  const help = spawnSync(process.execPath, [join(root, 'bin', 'keepvsadm.js'), '-h'], { encoding: 'utf8' }).stdout;
  const listed = /one of ([a-z|]+),/.exec(help)![1].split('|').sort();
  assert.deepEqual(complete(['keepvsadm', '-A', '-s', '']).sort(), listed);
  assert.deepEqual(complete(['keepvsadm', '-s', 'w']).sort(), ['wlc', 'wrr']);
  const save = '-A -t 192.0.2.1:80 -s rr\n-a -t 192.0.2.1:80 -r 10.0.0.1:80 -m -w 1\n-A -u 192.0.2.1:53 -s rr\n';
  assert.deepEqual(complete(['keepvsadm', '-a', '-t', ''], save), ['192.0.2.1:80']);
  assert.deepEqual(complete(['keepvsadm', '-d', '-t', '192.0.2.1:80', '-r', ''], save), ['10.0.0.1:80']);
  assert.ok(complete(['keepvsadm', '--ed']).includes('--edit-service'));
  assert.ok(!complete(['keepvsadm', '-L', '--c']).includes('--clear'), 'after a command: options only');
});
