// The keepalived -t corpus (test/fixtures/corpus, test/fixtures/conf): what keepalived 2.2.7 -t and
// keepvs -t report on each file, reduced to what both print: the exit status and the lines named.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { configTestStatus } from '../../src/cli/config-test.js';
import { interfaceDiagnostics } from '../../src/config/host-checks.js';
import { loadConfig } from '../../src/config/index.js';
import type { Diagnostic } from '../../src/config/model.js';
import { secureScripts } from '../../src/config/script-security.js';
import { NodeConfigFs } from '../../src/os/config-fs.js';
import { hostInterfaceExists } from '../../src/os/interfaces.js';
import { systemScriptSecurityPort } from '../../src/os/script-security-fs.js';

export const ROOT = join(import.meta.dirname, '..', '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures');

export interface Verdict {
  readonly status: number;
  /** line numbers (in the file itself) with a reported problem, sorted, unique */
  readonly lines: readonly number[];
}

/** Corpus files, relative to test/fixtures. */
export function corpusFiles(): string[] {
  const out: string[] = [];
  for (const sub of ['corpus/keepalived-doc', 'corpus/public', 'corpus/handwritten', 'conf'])
    for (const f of readdirSync(join(FIXTURES, sub)).sort()) if (!f.endsWith('.md')) out.push(`${sub}/${f}`);
  return out;
}

export const fixturePath = (rel: string) => join(FIXTURES, rel);

const uniq = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);

/**
 * keepvs diagnostics whose keepalived counterpart carries no line number: keepalived reports them
 * after parsing (vrrp_complete_instance, validate_check_config, check_script_secure), where it
 * no longer knows the line. keepvs gives the line; such lines are not compared.
 */
export const linelessInKeepalived = (d: Diagnostic): boolean =>
  d.code === 'KV320' ||
  d.code === 'KV321' ||
  d.code === 'KV305' ||
  (d.code === 'KV211' && !/no preference/.test(d.message)) ||
  (d.code === 'KV311' && /will not work|own interface|protocol is ignored/.test(d.message));

export function keepvsVerdict(rel: string): Verdict {
  const file = fixturePath(rel);
  // config id as keepalived's default (the node name's first label) does not matter here: no '@' lines
  // as keepvs -t: load, script security against this host, then the interface check
  const r = secureScripts(loadConfig(file, { fs: new NodeConfigFs(), configId: 'corpus' }), systemScriptSecurityPort());
  const diags = [...r.diagnostics, ...(r.config ? interfaceDiagnostics(r.config, hostInterfaceExists) : [])];
  return {
    status: configTestStatus(diags),
    lines: uniq(
      diags.filter((d) => d.severity !== 'note' && d.file === file && !linelessInKeepalived(d)).map((d) => d.line),
    ),
  };
}

/** Runs the installed keepalived; undefined when it is not installed. */
export function keepalivedVerdict(rel: string): Verdict | undefined {
  const file = fixturePath(rel);
  const r = spawnSync('keepalived', ['-t', '-l', '-n', '-i', 'corpus', '-f', file], {
    encoding: 'utf8',
    timeout: 20000,
    cwd: ROOT,
  });
  if (r.error) return undefined;
  const out = `${r.stdout}${r.stderr}`;
  const lines: number[] = [];
  for (const m of out.matchAll(/^\((?:([^\n]*): )?Line (\d+)\)/gm)) {
    if (m[1] === undefined || m[1] === file || relative(ROOT, m[1]) === relative(ROOT, file)) lines.push(Number(m[2]));
  }
  return { status: r.status ?? -1, lines: uniq(lines) };
}

/** One difference per line or status, as docs/config-test-compat.md lists them. */
export function differences(rel: string, ka: Verdict, kv: Verdict): string[] {
  const out: string[] = [];
  if (ka.status !== kv.status) out.push(`${rel} status ${ka.status}/${kv.status}`);
  for (const l of ka.lines) if (!kv.lines.includes(l)) out.push(`${rel} line ${l} keepalived only`);
  for (const l of kv.lines) if (!ka.lines.includes(l)) out.push(`${rel} line ${l} keepvs only`);
  return out;
}
