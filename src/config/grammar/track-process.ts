/** `vrrp_track_process NAME { ... }` (KA-man5 "VRRP track process"). */
import type { TrackProcess } from '../model.js';
import type { Node } from '../tree.js';
import {
  arg,
  boolArg,
  type Ctx,
  choiceWord,
  intArg,
  type Mutable,
  runBlock,
  table,
  timerArg,
  value,
  weightWords,
} from './engine.js';

type Draft = Partial<Mutable<TrackProcess>> & { name: string };

export const TRACK_PROCESS = table<Draft>([
  [
    'process',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'a process name');
      if (!w) return;
      d.process = w.text;
      if (n.args.length > 1)
        d.params = n.args
          .slice(1)
          .map((a) => a.text)
          .join(' ');
    }),
  ],
  [
    'param_match',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'initial|partial');
      if (w) d.paramMatch = choiceWord(w, ['initial', 'partial'] as const, c, 'param_match') ?? d.paramMatch;
    }),
  ],
  [
    'weight',
    value((n, d, c) => {
      const w = weightWords([{ text: 'weight', loc: n.loc }, ...n.args], c, -254, 254, 'vrrp_track_process');
      if (w.weight !== undefined) d.weight = w.weight;
      d.weightReverse = w.reverse;
    }),
  ],
  ['quorum', value((n, d, c) => (d.quorum = intArg(n, c, 1, 65535) ?? d.quorum))],
  ['quorum_max', value((n, d, c) => (d.quorumMax = intArg(n, c, 1, 65535) ?? d.quorumMax))],
  ['fork_delay', value((n, d, c) => (d.forkDelay = timerArg(n, c, 0, 3600) ?? d.forkDelay))],
  ['terminate_delay', value((n, d, c) => (d.terminateDelay = timerArg(n, c, 0, 3600) ?? d.terminateDelay))],
  [
    'delay',
    value((n, d, c) => {
      const v = timerArg(n, c, 0, 3600);
      if (v !== undefined) d.forkDelay = d.terminateDelay = v;
    }),
  ],
  ['full_command', value((n, d, c) => (d.fullCommand = boolArg(n, c) ?? d.fullCommand))],
]);

export function parseTrackProcess(node: Node, ctx: Ctx): TrackProcess | undefined {
  const name = node.args[0]?.text;
  if (!name) {
    ctx.report('KV113', node.loc, "'vrrp_track_process' needs a name");
    return undefined;
  }
  const d: Draft = { name };
  runBlock(node.children ?? [], TRACK_PROCESS, d, ctx, `vrrp_track_process ${name}`);
  if (!d.process) {
    ctx.report('KV309', node.loc, `vrrp_track_process ${name} has no 'process'; ignored`);
    return undefined;
  }
  if (d.quorumMax !== undefined && d.quorumMax < (d.quorum ?? 1))
    ctx.report('KV201', node.loc, `vrrp_track_process ${name}: quorum_max is below quorum`);
  return {
    name,
    process: d.process,
    ...(d.params !== undefined ? { params: d.params } : {}),
    ...(d.paramMatch ? { paramMatch: d.paramMatch } : {}),
    weight: d.weight ?? 0,
    weightReverse: d.weightReverse ?? false,
    quorum: d.quorum ?? 1,
    ...(d.quorumMax !== undefined ? { quorumMax: d.quorumMax } : {}),
    forkDelay: d.forkDelay ?? 0,
    terminateDelay: d.terminateDelay ?? 0,
    fullCommand: d.fullCommand ?? false,
    loc: node.loc,
  };
}
