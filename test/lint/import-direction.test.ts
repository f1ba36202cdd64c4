/**
 * The folder import rules of biome.json (docs/architecture.md, "Who may import what") fail on a
 * violation: probe files are linted with the repository's own biome.json in a scratch copy of the
 * layout, and every forbidden import is reported while the allowed ones are not.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';

const root = process.cwd();
const biome = join(root, 'node_modules', '.bin', 'biome');
const scratch = mkdtempSync(join(tmpdir(), 'keepvs-lint-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** [file, import line, forbidden?] */
const probes: [string, string, boolean][] = [
  ['src/lb/probe-daemon.ts', "import { startDaemon as x } from '../daemon/main.js';", true],
  ['src/lb/probe-api.ts', "import type { DaemonStatus as x } from '../api/types.js';", true],
  ['src/lb/probe-os.ts', "import { loadLibc as x } from '../os/libc.js';", true],
  ['src/vrrp/probe-node-os.ts', "import { networkInterfaces as x } from 'node:os';", true],
  ['src/util/probe-config.ts', "import type { Config as x } from '../config/model.js';", true],
  ['src/config/probe-lb.ts', "import { serviceId as x } from '../lb/ids.js';", true],
  ['src/codec/probe-fs.ts', "import { readFileSync as x } from 'node:fs';", true],
  ['src/check/policy-probe.ts', "import { readFileSync as x } from 'node:fs';", true],
  ['src/check/probe-dataplane.ts', "import { MemoryDataPlane as x } from '../dataplane/memory.js';", true],
  ['src/dataplane/probe-daemon.ts', "import type { LvsSnapshot as x } from '../daemon/status.js';", true],
  ['src/api/probe-cli.ts', "import { parseKeepvsArgs as x } from '../cli/keepvs-args.js';", true],
  ['src/api/probe-daemon-main.ts', "import { startDaemon as x } from '../daemon/main.js';", true],
  ['src/daemon/probe-cli.ts', "import { runDemo as x } from '../cli/demo.js';", true],
  // allowed: downward imports and the status contract
  ['src/lb/probe-util.ts', "import { canonicalAddress as x } from '../util/address.js';", false],
  ['src/check/probe-lb.ts', "import { destId as x } from '../lb/ids.js';", false],
  ['src/api/probe-status.ts', "import type { DaemonStatus as x } from '../daemon/status.js';", false],
  ['src/dataplane/probe-os.ts', "import { loadLibc as x } from '../os/libc.js';", false],
  ['src/daemon/probe-api.ts', "import { buildApi as x } from '../api/server.js';", false],
];

test('biome.json import-direction rules report each forbidden import and only those', () => {
  const config = JSON.parse(readFileSync(join(root, 'biome.json'), 'utf8'));
  delete config.$schema;
  config.vcs = { enabled: false };
  writeFileSync(join(scratch, 'biome.json'), JSON.stringify(config));
  for (const [file, line] of probes) {
    mkdirSync(dirname(join(scratch, file)), { recursive: true });
    writeFileSync(join(scratch, file), `${line}\n\nexport const y = x;\n`);
  }
  const r = spawnSync(biome, ['lint', '--reporter=json', '--max-diagnostics=none', 'src'], {
    cwd: scratch,
    encoding: 'utf8',
  });
  assert.ok(r.stdout, `biome printed nothing: ${r.stderr}`);
  const report = JSON.parse(r.stdout) as {
    diagnostics: { category: string; location: { path: { file: string } | string } }[];
  };
  const flagged = new Set(
    report.diagnostics
      .filter((d) => d.category === 'lint/style/noRestrictedImports')
      .map((d) => (typeof d.location.path === 'string' ? d.location.path : d.location.path.file)),
  );
  for (const [file, , forbidden] of probes)
    assert.equal(
      [...flagged].some((f) => f.endsWith(file)),
      forbidden,
      `${file}: ${forbidden ? 'a forbidden import was not reported' : 'an allowed import was reported'}`,
    );
  assert.notEqual(r.status, 0, 'biome exits non-zero on a violation');
});

test('every file a biome.json rule names exists (a renamed file must not leave its exemption behind)', () => {
  const config = JSON.parse(readFileSync(join(root, 'biome.json'), 'utf8')) as {
    overrides?: { includes?: string[] }[];
  };
  const named = (config.overrides ?? [])
    .flatMap((o) => o.includes ?? [])
    .map((p) => p.replace(/^!/, ''))
    .filter((p) => !/[*?[{]/.test(p));
  assert.ok(named.length > 0, 'biome.json names single files');
  assert.deepEqual(
    named.filter((p) => !existsSync(join(root, p))),
    [],
  );
});
