/** Pieces shared by virtual_server, real_server and sorry_server: lvs_method with tunnel options. */
import type { LvsMethod, TunnelSpec } from '../model.js';
import type { Node } from '../tree.js';
import { arg, type Ctx, didYouMeanChoice, portWord } from './engine-extra.js';

export const LVS_METHODS: readonly LvsMethod[] = ['NAT', 'DR', 'TUN', 'FNAT'];

/** `NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]` */
export function parseMethod(n: Node, ctx: Ctx): { method: LvsMethod; tunnel?: TunnelSpec } | undefined {
  const w = arg(n, 0, ctx, 'NAT|DR|TUN|FNAT');
  if (!w) return undefined;
  if (!(LVS_METHODS as readonly string[]).includes(w.text)) {
    ctx.report(
      'KV208',
      w.loc,
      `unknown forwarding method '${w.text}' (NAT, DR, TUN or FNAT)${didYouMeanChoice(w.text.toUpperCase(), LVS_METHODS)}`,
    );
    return undefined;
  }
  const method = w.text as LvsMethod;
  if (method !== 'TUN') {
    if (n.args.length > 1)
      ctx.report('KV114', n.args[1].loc, `${n.keyword.text} ${method} takes no further options; ignored`);
    return { method };
  }
  const tunnel: { type: TunnelSpec['type']; port?: number; csum?: TunnelSpec['csum'] } = { type: 'ipip' };
  const rest = n.args.slice(1);
  for (let i = 0; i < rest.length; i++) {
    const t = rest[i].text;
    if (t === 'type') {
      const v = rest[++i];
      if (v && (v.text === 'ipip' || v.text === 'gue' || v.text === 'gre')) tunnel.type = v.text;
      else ctx.report('KV203', (v ?? rest[i - 1]).loc, 'TUN type must be ipip, gue or gre');
    } else if (t === 'port') {
      const v = rest[++i];
      if (v) tunnel.port = portWord(v, ctx, 'TUN port');
      else ctx.report('KV113', rest[i - 1].loc, 'TUN port needs a number');
    } else if (t === 'nocsum' || t === 'csum' || t === 'remcsum') tunnel.csum = t;
    else ctx.report('KV114', rest[i].loc, `unexpected '${t}' after TUN ignored`);
  }
  if (tunnel.type === 'gue' && tunnel.port === undefined) ctx.report('KV309', n.loc, 'TUN type gue needs a port');
  if (tunnel.type !== 'gue' && tunnel.port !== undefined)
    ctx.report('KV311', n.loc, 'TUN port only applies to type gue');
  return { method, tunnel };
}
