import type { Diagnostic, Severity, SourceLoc } from './model.js';

/**
 * Every diagnostic code keepvs emits, with its severity. docs/errors.md lists the same codes;
 * test/config/errors-doc.test.ts keeps the two in step.
 */
export const DIAGNOSTIC_CODES = {
  KV001: { severity: 'error', title: 'file cannot be read' },
  KV002: { severity: 'warning', title: 'include matched no file' },
  KV003: { severity: 'error', title: 'include loop' },
  KV004: { severity: 'error', title: 'unterminated quoted string' },
  KV005: { severity: 'error', title: 'unbalanced braces' },
  KV006: { severity: 'error', title: 'bad ~SEQ / ~LST expression' },
  KV101: { severity: 'warning', title: 'unknown keyword (ignored, as keepalived does)' },
  KV102: { severity: 'warning', title: 'keyword not supported by keepvs' },
  KV103: { severity: 'warning', title: 'deprecated keyword' },
  KV104: { severity: 'error', title: 'missing or extra argument' },
  KV105: { severity: 'error', title: 'keyword needs a block' },
  KV106: { severity: 'error', title: 'block given to a keyword that takes none' },
  KV201: { severity: 'error', title: 'bad number or out of range' },
  KV202: { severity: 'error', title: 'bad address or prefix' },
  KV203: { severity: 'error', title: 'bad value (not one of the allowed words)' },
  KV204: { severity: 'warning', title: 'value truncated' },
  KV301: { severity: 'error', title: 'duplicate VRID on an interface' },
  KV302: { severity: 'warning', title: 'duplicate real server' },
  KV303: { severity: 'error', title: 'reference to an undefined object' },
  KV304: { severity: 'error', title: 'duplicate name' },
  KV305: { severity: 'error', title: 'required keyword missing' },
  KV306: { severity: 'warning', title: 'inconsistent setting' },
} as const satisfies Record<string, { severity: Severity; title: string }>;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

/** Collects diagnostics; parsing never stops at the first one. */
export class DiagnosticSink {
  readonly items: Diagnostic[] = [];
  report(code: DiagnosticCode, loc: SourceLoc, message: string, severity?: Severity): void {
    this.items.push({
      code,
      severity: severity ?? DIAGNOSTIC_CODES[code].severity,
      file: loc.file,
      line: loc.line,
      col: loc.col,
      message,
    });
  }
  hasErrors(): boolean {
    return this.items.some((d) => d.severity === 'error');
  }
}

/** `FILE:LINE:COL: error|warning: message [CODE]` */
export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.severity}: ${d.message} [${d.code}]`;
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestD = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestD) {
      bestD = d;
      best = c;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}
