/** `track_file NAME { file PATH; weight N [reverse]; init_file [VALUE] [overwrite] }` (alias vrrp_track_file). */
import type { TrackFile } from '../model.js';
import type { Node } from '../tree.js';
import { type Ctx, type Mutable, parseIntWord, runBlock, stringArg, table, value, weightWords } from './engine.js';

type Draft = Partial<Mutable<TrackFile>> & { name: string };

export const TRACK_FILE = table<Draft>([
  ['file', value((n, d, c) => (d.file = stringArg(n, c, 'a file path') ?? d.file))],
  [
    'weight',
    value((n, d, c) => {
      const w = weightWords([{ text: 'weight', loc: n.loc }, ...n.args], c, -254, 254, 'track_file');
      if (w.weight !== undefined) d.weight = w.weight;
      d.weightReverse = w.reverse;
    }),
  ],
  [
    'init_file',
    value((n, d, c) => {
      let v = 0;
      let overwrite = false;
      for (const a of n.args) {
        if (a.text === 'overwrite') overwrite = true;
        else v = parseIntWord(a, -2147483648, 2147483647, c, 'init_file value') ?? 0;
      }
      d.initFile = { value: v, overwrite };
    }),
  ],
]);

export function parseTrackFile(node: Node, ctx: Ctx): TrackFile | undefined {
  const name = node.args[0]?.text;
  if (!name) {
    ctx.report('KV113', node.loc, `'${node.keyword.text}' needs a name`);
    return undefined;
  }
  const d: Draft = { name };
  runBlock(node.children ?? [], TRACK_FILE, d, ctx, `track_file ${name}`);
  if (!d.file) {
    ctx.report('KV309', node.loc, `track_file ${name} has no 'file'; ignored`);
    return undefined;
  }
  return {
    name,
    file: d.file,
    weight: d.weight ?? 1,
    weightReverse: d.weightReverse ?? false,
    ...(d.initFile ? { initFile: d.initFile } : {}),
    loc: node.loc,
  };
}
