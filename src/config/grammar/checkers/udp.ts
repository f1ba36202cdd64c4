/** UDP_CHECK: send a payload, optionally require a matching reply (check_udp.c). */

import type { Word } from '../../tree.js';
import { arg, type Ctx, intArg, table, value } from '../engine.js';
import { type CheckerSpec, connectionEntries } from './common.js';

function hex(w: Word, ctx: Ctx, wildcard: boolean): string | undefined {
  const re = wildcard ? /^[0-9a-fA-FxX]+$/ : /^[0-9a-fA-F]+$/;
  const t = w.text.replace(/^0x/i, '');
  if (!re.test(t) || t.length % 2 !== 0) {
    ctx.report('KV210', w.loc, `'${w.text}' is not an even-length hex string${wildcard ? ' (X = any nibble)' : ''}`);
    return undefined;
  }
  return t.toLowerCase();
}

export const UDP_CHECK: CheckerSpec = {
  table: table(connectionEntries(), [
    [
      'payload',
      value((n, d, c) => {
        const w = arg(n, 0, c, 'a hex payload');
        if (w) d.specific.payload = hex(w, c, false) ?? d.specific.payload;
      }),
    ],
    [
      'require_reply',
      value((n, d, c) => {
        d.specific.requireReply = n.args[0] ? (hex(n.args[0], c, true) ?? '') : '';
      }),
    ],
    ['min_reply_length', value((n, d, c) => (d.specific.minReplyLength = intArg(n, c, 0, 65535)))],
    ['max_reply_length', value((n, d, c) => (d.specific.maxReplyLength = intArg(n, c, 0, 65535)))],
  ]),
  finish: (node, d, c) => {
    const min = (d.specific.minReplyLength as number | undefined) ?? 0;
    const max = (d.specific.maxReplyLength as number | undefined) ?? 255;
    if (max < min) c.report('KV201', node.loc, `UDP_CHECK: max_reply_length ${max} is below min_reply_length ${min}`);
    return {
      ...(d.specific.payload !== undefined ? { payload: d.specific.payload } : {}),
      ...(d.specific.requireReply !== undefined ? { requireReply: d.specific.requireReply } : {}),
      minReplyLength: min,
      maxReplyLength: Math.max(min, max),
    };
  },
};
