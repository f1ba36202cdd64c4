/** `vrrp_script NAME { ... }` (KA-man5 "VRRP script", vrrp_parser.c). */

import type { ScriptSpec, VrrpScript } from '../model.js';
import type { Node } from '../tree.js';
import {
  boolArg,
  type Ctx,
  intArg,
  type KeywordEntry,
  type Mutable,
  runBlock,
  scriptArg,
  table,
  timerArg,
  value,
  weightWords,
} from './engine.js';

type Draft = Partial<Mutable<VrrpScript>> & { name: string; user?: string; group?: string; timeoutSet?: boolean };
type E = KeywordEntry<Draft>;

export const VRRP_SCRIPT = table<Draft>([
  ['script', value((n, d, c) => (d.script = scriptArg(n, c, false) ?? d.script))],
  ['interval', value((n, d, c) => (d.interval = timerArg(n, c, 0.001, 86400) ?? d.interval))],
  ['timeout', value((n, d, c) => (d.timeout = timerArg(n, c, 0.001, 86400) ?? d.timeout))],
  [
    'weight',
    value((n, d, c) => {
      const w = weightWords([{ text: 'weight', loc: n.loc }, ...n.args], c, -253, 253, 'vrrp_script');
      if (w.weight !== undefined) d.weight = w.weight;
      d.weightReverse = w.reverse;
    }),
  ],
  ['rise', value((n, d, c) => (d.rise = intArg(n, c, 1, 1e6) ?? d.rise))],
  ['fall', value((n, d, c) => (d.fall = intArg(n, c, 1, 1e6) ?? d.fall))],
  ['init_fail', value((n, d, c) => (d.initFail = boolArg(n, c) ?? d.initFail))],
  [
    'user',
    value((n, d, c) => {
      if (!n.args[0]) return c.report('KV113', n.loc, "'user' needs a user name");
      const [u, g] = n.args[0].text.split(':');
      d.user = u;
      d.group = n.args[1]?.text ?? (g || undefined);
    }),
  ],
] satisfies (readonly [string, E])[]);

export function parseVrrpScript(node: Node, ctx: Ctx): VrrpScript | undefined {
  const name = node.args[0]?.text;
  if (!name) {
    ctx.report('KV113', node.loc, "'vrrp_script' needs a name");
    return undefined;
  }
  const d: Draft = { name };
  runBlock(node.children ?? [], VRRP_SCRIPT, d, ctx, `vrrp_script ${name}`);
  if (!d.script) {
    // keepalived: "No script set for vrrp_script X - removing"; instances tracking it drop it
    ctx.repair('KV309', node.loc, `vrrp_script ${name} has no 'script'; removed`);
    return undefined;
  }
  let script: ScriptSpec = d.script;
  if (d.user) script = { ...script, user: d.user, ...(d.group ? { group: d.group } : {}) };
  const interval = d.interval ?? 1;
  return {
    name,
    script,
    interval,
    timeout: d.timeout ?? interval,
    weight: d.weight ?? 0,
    weightReverse: d.weightReverse ?? false,
    rise: d.rise ?? 1,
    fall: d.fall ?? 1,
    initFail: d.initFail ?? false,
    loc: node.loc,
  };
}
