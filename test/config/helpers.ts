import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/config/index.js';
import type { Config, Diagnostic, LoadResult } from '../../src/config/model.js';

export const FILE = '/etc/keepalived/keepalived.conf';

export const parse = (text: string, options: Parameters<typeof parseConfigText>[2] = {}): LoadResult =>
  parseConfigText(text, FILE, options);

export function cfg(text: string): Config {
  const r = parse(text);
  assert.ok(r.config, 'config expected');
  return r.config;
}

export const codes = (r: LoadResult): string[] => r.diagnostics.map((d) => d.code);

/** Asserts that exactly the given codes were reported (order-insensitive, with multiplicity). */
export function expectCodes(r: LoadResult, expected: string[]): void {
  assert.deepEqual([...codes(r)].sort(), [...expected].sort(), r.diagnostics.map(show).join('\n'));
}

export const show = (d: Diagnostic): string => `${d.line}:${d.col} ${d.code} ${d.severity} ${d.message}`;

export function only(r: LoadResult, code: string): Diagnostic {
  const found = r.diagnostics.filter((d) => d.code === code);
  assert.equal(found.length, 1, `one ${code} expected, got:\n${r.diagnostics.map(show).join('\n')}`);
  return found[0];
}
