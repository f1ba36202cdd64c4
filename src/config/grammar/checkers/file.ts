/** FILE_CHECK: real server weight from a track_file (check_file.c). */
import { boolArg, stringArg, table, value, weightWords } from '../engine.js';
import { baseEntries, type CheckerSpec } from './common.js';

export const FILE_CHECK: CheckerSpec = {
  table: table(baseEntries(), [
    [
      'track_file',
      value((n, d, c) => (d.specific.trackFile = stringArg(n, c, 'a track_file name') ?? d.specific.trackFile)),
    ],
    ['dynamic', value((n, d, c) => (d.specific.dynamic = boolArg(n, c) ?? d.specific.dynamic))],
    [
      'weight',
      value((n, d, c) => {
        const w = weightWords([{ text: 'weight', loc: n.loc }, ...n.args], c, -254, 254, 'FILE_CHECK');
        if (w.weight !== undefined) d.specific.weight = w.weight;
        d.specific.weightReverse = w.reverse;
      }),
    ],
  ]),
  finish: (node, d, c) => {
    if (!d.specific.trackFile) {
      c.report('KV309', node.loc, 'FILE_CHECK has no track_file; checker ignored');
      return undefined;
    }
    return {
      trackFile: d.specific.trackFile,
      dynamic: (d.specific.dynamic as boolean | undefined) ?? false,
      weight: (d.specific.weight as number | undefined) ?? 1,
      weightReverse: (d.specific.weightReverse as boolean | undefined) ?? false,
    };
  },
};
