/** `vrrp_script`, `track_file` (alias `vrrp_track_file`) and `vrrp_track_process` blocks. */
import type { Node } from '../lexer.js';
import type { ScriptSpec, SourceLoc, TrackFile, TrackProcess, VrrpScript } from '../model.js';
import {
  applyTable,
  argAt,
  boolArg,
  type Ctx,
  intArg,
  type KeywordTable,
  noExtra,
  parseNumber,
  scriptArg,
  secondsArg,
  stringArg,
  weightWithReverse,
} from './common.js';

interface ScriptBuilder {
  script?: ScriptSpec;
  interval: number;
  timeout?: number;
  weight: number;
  weightReverse: boolean;
  rise: number;
  fall: number;
  initFail: boolean;
  user?: string;
  group?: string;
}

const vrrpScriptTable: KeywordTable<ScriptBuilder> = {
  script: { handle: (n, c, s) => void (s.script = scriptArg(n, c)) },
  interval: { handle: (n, c, s) => void (s.interval = secondsArg(n, c, 0.001, 86400) ?? 1) },
  timeout: { handle: (n, c, s) => void (s.timeout = secondsArg(n, c, 0.001, 86400)) },
  weight: {
    handle: (n, c, s) => {
      const w = weightWithReverse(n, c, -253, 253);
      s.weight = w.weight ?? 0;
      s.weightReverse = w.reverse;
    },
  },
  rise: { handle: (n, c, s) => void (s.rise = intArg(n, c, 1, 1_000_000) ?? 1) },
  fall: { handle: (n, c, s) => void (s.fall = intArg(n, c, 1, 1_000_000) ?? 1) },
  user: {
    handle: (n, c, s) => {
      noExtra(n, 2, c);
      s.user = argAt(n, 0, c, 'a user')?.text;
      s.group = n.args[1]?.text;
    },
  },
  init_fail: { handle: (n, c, s) => void (s.initFail = boolArg(n, c)) },
};

export function parseVrrpScript(n: Node, ctx: Ctx): VrrpScript | undefined {
  const name = argAt(n, 0, ctx, 'a name')?.text;
  const b: ScriptBuilder = { interval: 1, weight: 0, weightReverse: false, rise: 1, fall: 1, initFail: false };
  applyTable(n.children, vrrpScriptTable, b, ctx, `vrrp_script ${name ?? ''}`);
  if (!b.script) {
    ctx.diag.report('KV305', n.loc, `vrrp_script ${name ?? ''} has no 'script'`);
    return undefined;
  }
  if (!name) return undefined;
  const script =
    b.user !== undefined ? { ...b.script, user: b.user, ...(b.group ? { group: b.group } : {}) } : b.script;
  return {
    name,
    script,
    interval: b.interval,
    timeout: b.timeout ?? b.interval,
    weight: b.weight,
    weightReverse: b.weightReverse,
    rise: b.rise,
    fall: b.fall,
    initFail: b.initFail,
    loc: n.loc,
  };
}

interface FileBuilder {
  file?: string;
  weight: number;
  weightReverse: boolean;
  initFile?: { value: number; overwrite: boolean };
}

const trackFileTable: KeywordTable<FileBuilder> = {
  file: { handle: (n, c, f) => void (f.file = stringArg(n, c)) },
  weight: {
    handle: (n, c, f) => {
      const w = weightWithReverse(n, c, -254, 254);
      f.weight = w.weight ?? 1;
      f.weightReverse = w.reverse;
    },
  },
  init_file: {
    handle: (n, c, f) => {
      let value = 0;
      let overwrite = false;
      for (const a of n.args) {
        if (a.text === 'overwrite') overwrite = true;
        else value = parseNumber(a, c, { min: -1e9, max: 1e9, integer: true, what: 'init_file value' }) ?? 0;
      }
      f.initFile = { value, overwrite };
    },
  },
};

export function parseTrackFile(n: Node, ctx: Ctx): TrackFile | undefined {
  const name = argAt(n, 0, ctx, 'a name')?.text;
  const b: FileBuilder = { weight: 1, weightReverse: false };
  applyTable(n.children, trackFileTable, b, ctx, `track_file ${name ?? ''}`);
  if (!b.file) {
    ctx.diag.report('KV305', n.loc, `track_file ${name ?? ''} has no 'file'`);
    return undefined;
  }
  if (!name) return undefined;
  return {
    name,
    file: b.file,
    weight: b.weight,
    weightReverse: b.weightReverse,
    ...(b.initFile ? { initFile: b.initFile } : {}),
    loc: n.loc,
  };
}

interface ProcessBuilder {
  process?: string;
  params?: string;
  paramMatch?: 'initial' | 'partial';
  weight: number;
  weightReverse: boolean;
  quorum: number;
  quorumMax?: number;
  forkDelay: number;
  terminateDelay: number;
  fullCommand: boolean;
  loc?: SourceLoc;
}

const trackProcessTable: KeywordTable<ProcessBuilder> = {
  process: {
    handle: (n, c, p) => {
      p.process = argAt(n, 0, c, 'a process name')?.text;
      if (n.args.length > 1)
        p.params = n.args
          .slice(1)
          .map((a) => a.text)
          .join(' ');
    },
  },
  param_match: {
    handle: (n, c, p) => {
      const v = stringArg(n, c);
      if (v === 'initial' || v === 'partial') p.paramMatch = v;
      else if (v !== undefined)
        c.diag.report('KV203', n.args[0].loc, `param_match takes initial or partial, not '${v}'`);
    },
  },
  weight: {
    handle: (n, c, p) => {
      const w = weightWithReverse(n, c, -254, 254);
      p.weight = w.weight ?? 0;
      p.weightReverse = w.reverse;
    },
  },
  quorum: { handle: (n, c, p) => void (p.quorum = intArg(n, c, 0, 65535) ?? 1) },
  quorum_max: { handle: (n, c, p) => void (p.quorumMax = intArg(n, c, 0, 65535)) },
  fork_delay: { handle: (n, c, p) => void (p.forkDelay = secondsArg(n, c, 0, 3600) ?? 0) },
  terminate_delay: { handle: (n, c, p) => void (p.terminateDelay = secondsArg(n, c, 0, 3600) ?? 0) },
  delay: {
    handle: (n, c, p) => {
      const d = secondsArg(n, c, 0, 3600) ?? 0;
      p.forkDelay = d;
      p.terminateDelay = d;
    },
  },
  full_command: { handle: (n, c, p) => void (p.fullCommand = boolArg(n, c)) },
};

export function parseTrackProcess(n: Node, ctx: Ctx): TrackProcess | undefined {
  const name = argAt(n, 0, ctx, 'a name')?.text;
  const b: ProcessBuilder = {
    weight: 0,
    weightReverse: false,
    quorum: 1,
    forkDelay: 0,
    terminateDelay: 0,
    fullCommand: false,
  };
  applyTable(n.children, trackProcessTable, b, ctx, `vrrp_track_process ${name ?? ''}`);
  if (!b.process) {
    ctx.diag.report('KV305', n.loc, `vrrp_track_process ${name ?? ''} has no 'process'`);
    return undefined;
  }
  if (!name) return undefined;
  return {
    name,
    process: b.process,
    ...(b.params !== undefined ? { params: b.params } : {}),
    ...(b.paramMatch ? { paramMatch: b.paramMatch } : {}),
    weight: b.weight,
    weightReverse: b.weightReverse,
    quorum: b.quorum,
    ...(b.quorumMax !== undefined ? { quorumMax: b.quorumMax } : {}),
    forkDelay: b.forkDelay,
    terminateDelay: b.terminateDelay,
    fullCommand: b.fullCommand,
    loc: n.loc,
  };
}
