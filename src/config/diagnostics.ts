/**
 * Diagnostic catalogue and collector. Every code here is documented in docs/errors.md
 * (test/config/errors-doc.test.ts keeps both in step). Parsing never stops at the first problem:
 * every stage reports into one DiagnosticBag and carries on.
 */
import type { Diagnostic, Severity, SourceLoc } from './model.js';

export interface CodeInfo {
  readonly severity: Severity;
  readonly title: string;
}

/** Stable codes. KV0xx: files and preprocessing; KV1xx: syntax and keywords; KV2xx: values; KV3xx: semantics. */
export const DIAGNOSTIC_CODES = {
  KV001: { severity: 'error', title: 'configuration file cannot be read' },
  KV002: { severity: 'error', title: 'strict include (includer/includem/includew/includeb/includea) failed' },
  KV003: { severity: 'note', title: 'include matched no file' },
  KV004: { severity: 'error', title: 'include loop' },
  KV005: { severity: 'error', title: 'includes nested too deeply' },
  KV010: { severity: 'error', title: 'bad parameter definition' },
  KV011: { severity: 'error', title: 'unterminated multi-line parameter definition' },
  KV012: { severity: 'error', title: 'parameter expansion too deep (recursive definition)' },
  KV013: { severity: 'warning', title: 'bad predefined parameter use' },
  KV020: { severity: 'error', title: 'bad ~SEQ or ~LST expression' },
  KV021: { severity: 'error', title: 'sequence or list expansion too large' },
  KV030: { severity: 'error', title: 'unterminated quoted string' },
  KV031: { severity: 'warning', title: 'conditional line with empty config id' },
  KV100: { severity: 'error', title: 'missing closing brace' },
  KV101: { severity: 'warning', title: 'unexpected closing brace' },
  KV102: { severity: 'error', title: 'block without a keyword' },
  KV103: { severity: 'error', title: 'keyword needs a { block }' },
  KV104: { severity: 'warning', title: 'keyword takes no block; block ignored' },
  KV105: { severity: 'error', title: 'blocks nested too deeply' },
  KV106: { severity: 'warning', title: "'{' after an unknown keyword ignored" },
  KV110: { severity: 'warning', title: 'unknown keyword' },
  KV111: { severity: 'warning', title: 'deprecated keyword' },
  KV112: { severity: 'warning', title: 'keyword not supported by keepvs' },
  KV113: { severity: 'error', title: 'missing argument' },
  KV114: { severity: 'warning', title: 'extra arguments ignored' },
  KV115: { severity: 'warning', title: 'keyword repeated; last value wins' },
  KV116: { severity: 'warning', title: 'keepvs keyword (keepalived does not have it)' },
  KV200: { severity: 'error', title: 'bad number' },
  KV201: { severity: 'error', title: 'number out of range' },
  KV202: { severity: 'error', title: 'bad boolean' },
  KV203: { severity: 'error', title: 'bad choice' },
  KV204: { severity: 'error', title: 'bad IP address' },
  KV205: { severity: 'error', title: 'bad prefix length or netmask' },
  KV206: { severity: 'error', title: 'bad port' },
  KV207: { severity: 'warning', title: 'unknown scheduler' },
  KV208: { severity: 'error', title: 'unknown forwarding method' },
  KV209: { severity: 'warning', title: 'auth_pass longer than 8 characters; truncated' },
  KV210: { severity: 'error', title: 'bad hex string' },
  KV211: { severity: 'warning', title: 'value adjusted' },
  KV300: { severity: 'error', title: 'duplicate VRID on one interface' },
  KV301: { severity: 'warning', title: 'duplicate real server; ignored' },
  KV302: { severity: 'error', title: 'duplicate name' },
  KV303: { severity: 'warning', title: 'reference to an undefined vrrp_script' },
  KV304: { severity: 'warning', title: 'reference to an undefined track_file' },
  KV305: { severity: 'warning', title: 'reference to an undefined vrrp_instance in a sync group' },
  KV306: { severity: 'error', title: 'reference to an undefined virtual_server_group' },
  KV307: { severity: 'warning', title: 'reference to an undefined vrrp_track_process' },
  KV308: { severity: 'error', title: 'vrrp_instance in more than one sync group' },
  KV309: { severity: 'error', title: 'required keyword missing' },
  KV310: { severity: 'warning', title: 'duplicate virtual server; ignored' },
  KV311: { severity: 'warning', title: 'setting has no effect here' },
  KV312: { severity: 'error', title: 'address family mismatch' },
  KV313: { severity: 'warning', title: 'sync group with a single instance' },
  KV314: { severity: 'warning', title: 'virtual server has no real servers; ignored' },
  KV315: { severity: 'error', title: 'virtual server needs the kernel data plane' },
  KV316: { severity: 'error', title: 'reference to an undefined local_address_group' },
  KV317: { severity: 'error', title: 'TUN variant the kernel TUN plane cannot forward' },
  KV318: { severity: 'warning', title: 'setting the kernel data plane does not apply' },
  KV319: { severity: 'warning', title: 'connection sync cannot run as configured' },
  KV320: { severity: 'warning', title: 'script disabled (script security)' },
  KV321: { severity: 'warning', title: 'scripts run as root without enable_script_security' },
  KV322: { severity: 'warning', title: 'interface does not exist on this host' },
  KV323: { severity: 'note', title: 'sync daemon setting conntrackd does not apply' },
  KV330: { severity: 'error', title: 'virtual server cannot be announced by BGP' },
  KV331: { severity: 'warning', title: 'VIP both announced by BGP and held by VRRP' },
  KV332: { severity: 'warning', title: 'BGP speaker cannot run on this host' },
  KV333: { severity: 'note', title: 'flow_pinning has no effect on this service' },
} as const satisfies Record<string, CodeInfo>;

export type DiagnosticCode = keyof typeof DIAGNOSTIC_CODES;

/** Collects diagnostics in order; severity comes from the catalogue unless overridden. */
export class DiagnosticBag {
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

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = above;
    }
  }
  return prev[b.length];
}

/** The closest candidate within a distance that scales with the word's length, if any. */
export function suggest(word: string, candidates: Iterable<string>): string | undefined {
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDist = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDist) {
      bestDist = d;
      best = c;
    }
  }
  return bestDist <= limit ? best : undefined;
}

export const didYouMean = (word: string, candidates: Iterable<string>): string => {
  const s = suggest(word, candidates);
  return s ? `; did you mean '${s}'?` : '';
};
