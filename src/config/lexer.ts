/**
 * Line tokenizer: keepalived.conf words, braces, quoted strings with shell-like escapes
 * (KA-man5 "Quoted strings"). Comments (`#`, `!`) are stripped before tokenizing by stripComment.
 */
import type { DiagnosticBag } from './diagnostics.js';
import type { SourceLoc } from './model.js';

/**
 * A token with its position. It doubles as the tree's Word: the `loc` object is only built when
 * a grammar asks for it, so the common case allocates one object per token.
 */
export class Token {
  private cached?: SourceLoc;
  constructor(
    readonly text: string,
    /** 1-based column of the token's first character in its source line */
    readonly col: number,
    /** true when any part of the token was quoted (so `{`/`}` inside are plain text) */
    readonly quoted: boolean,
    readonly file = '',
    readonly line = 0,
  ) {}
  get loc(): SourceLoc {
    this.cached ??= { file: this.file, line: this.line, col: this.col };
    return this.cached;
  }
  /** The same token reported at another column (after parameter substitution). */
  at(col: number): Token {
    return new Token(this.text, col, this.quoted, this.file, this.line);
  }
}

/** Removes a `#` or `!` comment that starts outside quotes; returns the text before it. */
export function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '\\') i++;
    else if (c === '#' || c === '!') return line.slice(0, i);
  }
  return line;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  E: '\x1b',
  e: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/** Decodes one escape starting after the backslash at s[i]; returns [text, next index]. */
function decodeEscape(s: string, i: number): [string, number] {
  const c = s[i];
  if (c === undefined) return ['\\', i];
  if (c in SIMPLE_ESCAPES) return [SIMPLE_ESCAPES[c], i + 1];
  if (c >= '0' && c <= '7') {
    let j = i;
    while (j < s.length && j < i + 3 && s[j] >= '0' && s[j] <= '7') j++;
    return [String.fromCharCode(Number.parseInt(s.slice(i, j), 8) & 0xff), j];
  }
  if (c === 'x') {
    let j = i + 1;
    while (j < s.length && j < i + 3 && /[0-9a-fA-F]/.test(s[j])) j++;
    if (j === i + 1) return ['x', i + 1];
    return [String.fromCharCode(Number.parseInt(s.slice(i + 1, j), 16)), j];
  }
  if (c === 'c' && i + 1 < s.length) return [String.fromCharCode(s.charCodeAt(i + 1) & 0x1f), i + 2];
  return [c, i + 1];
}

/**
 * Splits a (comment-free) line into tokens. Whitespace separates; `{` and `}` are tokens of their
 * own; quotes are removed and adjacent quoted/unquoted text joins into one token.
 */
export function tokenizeLine(line: string, report?: { bag?: DiagnosticBag; file: string; line: number }): Token[] {
  const file = report?.file ?? '';
  const lineNo = report?.line ?? 0;
  const tokens: Token[] = [];
  let i = 0;
  const n = line.length;
  while (i < n) {
    const c = line[i];
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '\f' || c === '\v') {
      i++;
      continue;
    }
    if (c === '{' || c === '}') {
      tokens.push(new Token(c, i + 1, false, file, lineNo));
      i++;
      continue;
    }
    const start = i;
    // Fast path: a plain word (no quotes or escapes) is one slice.
    let end = i;
    while (end < n) {
      const ch = line.charCodeAt(end);
      // space, tab, CR, LF, { } " ' \\
      if (ch === 32 || ch === 9 || ch === 13 || ch === 10 || ch === 123 || ch === 125) break;
      if (ch === 34 || ch === 39 || ch === 92) {
        end = -1;
        break;
      }
      end++;
    }
    if (end >= 0) {
      tokens.push(new Token(line.slice(start, end), start + 1, false, file, lineNo));
      i = end;
      continue;
    }
    let text = '';
    let quoted = false;
    while (i < n) {
      const ch = line[i];
      if (ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n' || ch === '{' || ch === '}') break;
      if (ch === '"' || ch === "'") {
        quoted = true;
        const close = ch;
        i++;
        let closed = false;
        while (i < n) {
          const q = line[i];
          if (q === close) {
            closed = true;
            i++;
            break;
          }
          if (q === '\\' && close === '"') {
            const [dec, next] = decodeEscape(line, i + 1);
            text += dec;
            i = next;
          } else {
            text += q;
            i++;
          }
        }
        if (!closed && report?.bag) {
          report.bag.report(
            'KV030',
            { file: report.file, line: report.line, col: start + 1 },
            `unterminated quoted string (missing ${close}); taken to the end of the line`,
          );
        }
        continue;
      }
      if (ch === '\\') {
        const [dec, next] = decodeEscape(line, i + 1);
        text += dec;
        i = next;
        continue;
      }
      text += ch;
      i++;
    }
    tokens.push(new Token(text, start + 1, quoted, file, lineNo));
  }
  return tokens;
}
