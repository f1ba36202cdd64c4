/** MISC_CHECK: run a script; exit 0 = up (misc_dynamic: 2..255 = up with weight exit-2) (check_misc.c). */
import type { ScriptSpec } from '../../model.js';
import { boolArg, scriptArg, table, timerArg, value } from '../engine.js';
import { baseEntries, type CheckerSpec } from './common.js';

export const MISC_CHECK: CheckerSpec = {
  table: table(baseEntries(), [
    ['misc_path', value((n, d, c) => (d.specific.miscPath = scriptArg(n, c, false) ?? d.specific.miscPath))],
    ['misc_timeout', value((n, d, c) => (d.specific.miscTimeout = timerArg(n, c, 0, 86400) ?? d.specific.miscTimeout))],
    ['misc_dynamic', value((n, d, c) => (d.specific.miscDynamic = boolArg(n, c) ?? d.specific.miscDynamic))],
    [
      'user',
      value((n, d, c) => {
        if (!n.args[0]) return c.report('KV113', n.loc, "'user' needs a user name");
        const [u, g] = n.args[0].text.split(':');
        d.specific.user = u;
        d.specific.group = n.args[1]?.text ?? (g || undefined);
      }),
    ],
  ]),
  finish: (node, d, c, delayLoop) => {
    let path = d.specific.miscPath as ScriptSpec | undefined;
    if (!path) {
      c.report('KV309', node.loc, 'MISC_CHECK has no misc_path; checker ignored');
      return undefined;
    }
    if (d.specific.user)
      path = {
        ...path,
        user: d.specific.user as string,
        ...(d.specific.group ? { group: d.specific.group as string } : {}),
      };
    return {
      miscPath: path,
      miscTimeout: (d.specific.miscTimeout as number | undefined) ?? delayLoop,
      miscDynamic: (d.specific.miscDynamic as boolean | undefined) ?? false,
    };
  },
};
