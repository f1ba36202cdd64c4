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

const isBrace = (t: Token, brace: '{' | '}') => t.text === brace && !t.quoted;

export function buildTree(lines: readonly LogicalLine[], bag: DiagnosticBag): Node[] {
  // Cursor over (line, token) without materialising a flat token list (keeps GC low on big files).
  let li = 0;
  let ti = 0;
  const skipEmpty = () => {
    while (li < lines.length && ti >= lines[li].tokens.length) {
      li++;
      ti = 0;
    }
  };
  const wordAt = (l: number, t: number): Word => lines[l].tokens[t];

  const parseBlock = (opener: Word | undefined): Node[] => {
    const nodes: Node[] = [];
    for (skipEmpty(); li < lines.length; skipEmpty()) {
      const tok = lines[li].tokens[ti];
      if (isBrace(tok, '}')) {
        const w = wordAt(li, ti);
        ti++;
        if (opener) return nodes;
        bag.report('KV101', w.loc, "unexpected '}' with no open block; ignored");
        continue;
      }
      if (isBrace(tok, '{')) {
        const w = wordAt(li, ti);
        ti++;
        bag.report('KV102', w.loc, "'{' without a keyword before it; block ignored");
        parseBlock(w);
        continue;
      }
      const keyword = wordAt(li, ti);
      const line = lines[li];
      ti++;
      const args: Word[] = [];
      while (ti < line.tokens.length && !isBrace(line.tokens[ti], '{') && !isBrace(line.tokens[ti], '}')) {
        args.push(wordAt(li, ti));
        ti++;
      }
      skipEmpty();
      let children: Node[] | undefined;
      if (li < lines.length && isBrace(lines[li].tokens[ti], '{')) {
        const open = wordAt(li, ti);
        ti++;
        children = parseBlock(open);
      }
      nodes.push(children ? { keyword, args, children, loc: keyword.loc } : { keyword, args, loc: keyword.loc });
    }
    if (opener) bag.report('KV100', opener.loc, "missing '}': block opened here is not closed");
    return nodes;
  };

  return parseBlock(undefined);
}
