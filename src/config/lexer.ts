/**
 * Tokens of a logical line and the block tree built from them. Braces may stand on the keyword's
 * line or on their own; quoted strings keep spaces and take shell-like escapes (keepalived.conf(5)
 * "Quoted strings"); adjacent quoted and unquoted text joins into one word.
 */
import type { DiagnosticSink } from './diagnostics.js';
import type { SourceLoc } from './model.js';
import type { LogicalLine } from './preprocess.js';

export interface Word {
  readonly text: string;
  readonly loc: SourceLoc;
}

type Token = Word & { readonly brace?: '{' | '}' };

const ESCAPES: Record<string, string> = { a: '\x07', b: '\b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

export function tokenize(line: LogicalLine, diag: DiagnosticSink): Token[] {
  const out: Token[] = [];
  const s = line.text;
  let i = 0;
  const at = (col: number): SourceLoc => ({ file: line.loc.file, line: line.loc.line, col: line.loc.col + col });
  while (i < s.length) {
    const c = s[i];
    if (c === ' ' || c === '\t') {
      i++;
      continue;
    }
    if (c === '{' || c === '}') {
      out.push({ text: c, brace: c, loc: at(i) });
      i++;
      continue;
    }
    const start = i;
    let text = '';
    while (i < s.length && s[i] !== ' ' && s[i] !== '\t' && s[i] !== '{' && s[i] !== '}') {
      const q = s[i];
      if (q === '"' || q === "'") {
        i++;
        let closed = false;
        while (i < s.length) {
          const d = s[i];
          if (d === q) {
            closed = true;
            i++;
            break;
          }
          if (d === '\\' && q === '"' && i + 1 < s.length) {
            const [value, used] = unescape1(s, i + 1);
            text += value;
            i += 1 + used;
            continue;
          }
          text += d;
          i++;
        }
        if (!closed) diag.report('KV004', at(start), 'quoted string is not closed on this line');
      } else {
        text += q;
        i++;
      }
    }
    out.push({ text, loc: at(start) });
  }
  return out;
}

function unescape1(s: string, i: number): [string, number] {
  const c = s[i];
  if (c in ESCAPES) return [ESCAPES[c], 1];
  if (c >= '0' && c <= '7') {
    const m = /^[0-7]{1,3}/.exec(s.slice(i))![0];
    return [String.fromCharCode(Number.parseInt(m, 8) & 0xff), m.length];
  }
  if (c === 'x') {
    const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 1));
    if (m) return [String.fromCharCode(Number.parseInt(m[0], 16)), 1 + m[0].length];
  }
  if (c === 'c' && i + 1 < s.length) return [String.fromCharCode(s.charCodeAt(i + 1) & 0x1f), 2];
  return [c, 1];
}

/** A statement: keyword, arguments, and a block if braces followed it. */
export interface Node {
  readonly keyword: string;
  readonly args: readonly Word[];
  readonly loc: SourceLoc;
  children?: Node[];
  /** where the closing brace was (for diagnostics) */
  closeLoc?: SourceLoc;
}

/** Builds the statement tree, reporting unbalanced braces without stopping. */
export function parseTree(lines: readonly LogicalLine[], diag: DiagnosticSink): Node[] {
  const root: Node[] = [];
  const stack: { node: Node | undefined; children: Node[] }[] = [{ node: undefined, children: root }];
  let last: Node | undefined; // the most recent statement, which a lone `{` line may open
  for (const line of lines) {
    const tokens = tokenize(line, diag);
    let words: Word[] = [];
    const flush = () => {
      if (words.length === 0) return;
      const node: Node = { keyword: words[0].text, args: words.slice(1), loc: words[0].loc };
      stack[stack.length - 1].children.push(node);
      last = node;
      words = [];
    };
    for (const t of tokens) {
      if (t.brace === '{') {
        let opener: Node | undefined;
        if (words.length > 0) {
          flush();
          opener = last;
        } else if (last && !last.children && stack[stack.length - 1].children.at(-1) === last) opener = last;
        if (!opener) {
          diag.report('KV005', t.loc, "'{' without a keyword before it");
          opener = { keyword: '', args: [], loc: t.loc };
        }
        opener.children = [];
        stack.push({ node: opener, children: opener.children });
        last = undefined;
      } else if (t.brace === '}') {
        flush();
        if (stack.length === 1) diag.report('KV005', t.loc, "'}' without a matching '{'");
        else {
          const closed = stack.pop()!;
          if (closed.node) closed.node.closeLoc = t.loc;
          last = closed.node;
        }
      } else words.push(t);
    }
    flush();
  }
  for (let i = stack.length - 1; i > 0; i--) {
    const n = stack[i].node!;
    diag.report('KV005', n.loc, `block '${n.keyword}' is not closed (missing '}')`);
  }
  return root;
}
