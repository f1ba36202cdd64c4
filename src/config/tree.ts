/**
 * Builds the block tree: `keyword args... [{ children }]`. The opening brace may sit on the
 * keyword's line or open the next line. Brace problems are reported and parsing continues.
 */
import type { DiagnosticBag } from './diagnostics.js';
import type { Token } from './lexer.js';
import type { SourceLoc } from './model.js';
import type { LogicalLine } from './preprocess.js';

export interface Word {
  readonly text: string;
  readonly loc: SourceLoc;
}

export interface Node {
  readonly keyword: Word;
  readonly args: readonly Word[];
  /** undefined = no block followed the keyword */
  readonly children?: readonly Node[];
  readonly loc: SourceLoc;
}

interface Flat {
  readonly tok: Token;
  readonly lineIndex: number;
  readonly file: string;
  readonly line: number;
}

const isOpen = (f: Flat) => f.tok.text === '{' && !f.tok.quoted;
const isClose = (f: Flat) => f.tok.text === '}' && !f.tok.quoted;
const wordOf = (f: Flat): Word => ({ text: f.tok.text, loc: { file: f.file, line: f.line, col: f.tok.col } });

export function buildTree(lines: readonly LogicalLine[], bag: DiagnosticBag): Node[] {
  const flat: Flat[] = [];
  lines.forEach((l, lineIndex) => {
    for (const tok of l.tokens) flat.push({ tok, lineIndex, file: l.file, line: l.line });
  });
  let pos = 0;

  const parseBlock = (opener: Flat | undefined): Node[] => {
    const nodes: Node[] = [];
    while (pos < flat.length) {
      const f = flat[pos];
      if (isClose(f)) {
        pos++;
        if (opener) return nodes;
        bag.report('KV101', wordOf(f).loc, "unexpected '}' with no open block; ignored");
        continue;
      }
      if (isOpen(f)) {
        pos++;
        bag.report('KV102', wordOf(f).loc, "'{' without a keyword before it; block ignored");
        parseBlock(f);
        continue;
      }
      pos++;
      const args: Word[] = [];
      while (pos < flat.length && flat[pos].lineIndex === f.lineIndex && !isOpen(flat[pos]) && !isClose(flat[pos])) {
        args.push(wordOf(flat[pos]));
        pos++;
      }
      let children: Node[] | undefined;
      if (pos < flat.length && isOpen(flat[pos])) {
        const open = flat[pos];
        pos++;
        children = parseBlock(open);
      }
      const keyword = wordOf(f);
      nodes.push(children ? { keyword, args, children, loc: keyword.loc } : { keyword, args, loc: keyword.loc });
    }
    if (opener) bag.report('KV100', wordOf(opener).loc, "missing '}': block opened here is not closed");
    return nodes;
  };

  return parseBlock(undefined);
}
