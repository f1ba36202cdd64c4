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

const MAX_DEPTH = 64;

const isBrace = (t: Token, brace: '{' | '}') => t.text === brace && !t.quoted;

/**
 * `isKnownKeyword`: whether any block of the grammar has this keyword. Inside a block, an unknown
 * keyword followed by `{` is recovered from as keepalived's parser does (lib/parser.c: "Unknown
 * keyword", then "Unexpected '{' - ignoring"): the brace is dropped, so the lines after it are read
 * as part of the enclosing block and its `}` closes that block. A typo'd `FOO_CHECK {` in a
 * real_server thus runs the same servers and checks as keepalived. At the top level the block is
 * kept (and skipped whole by the grammar): keepalived ends with the same definitions there.
 */
export function buildTree(
  lines: readonly LogicalLine[],
  bag: DiagnosticBag,
  isKnownKeyword?: (keyword: string) => boolean,
): Node[] {
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

  let depth = 0;
  let tooDeep = false;
  const parseBlock = (opener: Word | undefined): Node[] => {
    const nodes: Node[] = [];
    if (opener && depth >= MAX_DEPTH) {
      // Skip to the matching brace without recursing (bounded stack on hostile input).
      if (!tooDeep) bag.report('KV105', opener.loc, `blocks nested more than ${MAX_DEPTH} deep; contents skipped`);
      tooDeep = true;
      let level = 1;
      for (skipEmpty(); li < lines.length && level > 0; ti++, skipEmpty()) {
        const t = lines[li].tokens[ti];
        if (isBrace(t, '{')) level++;
        else if (isBrace(t, '}')) level--;
      }
      return nodes;
    }
    depth++;
    try {
      return parseInner(opener, nodes);
    } finally {
      depth--;
    }
  };

  const parseInner = (opener: Word | undefined, nodes: Node[]): Node[] => {
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
        if (opener && isKnownKeyword && !isKnownKeyword(keyword.text))
          bag.report(
            'KV106',
            open.loc,
            `unexpected '{' after unknown keyword '${keyword.text}'; ignored, as keepalived does: the lines after it belong to the enclosing block, which its '}' closes`,
          );
        else children = parseBlock(open);
      }
      nodes.push(children ? { keyword, args, children, loc: keyword.loc } : { keyword, args, loc: keyword.loc });
    }
    if (opener) bag.report('KV100', opener.loc, "missing '}': block opened here is not closed");
    return nodes;
  };

  return parseBlock(undefined);
}
