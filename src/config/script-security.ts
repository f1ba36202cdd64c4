/**
 * enable_script_security and script_user as keepalived applies them (core/notify.c
 * check_script_secure/check_security, vrrp.c check_vrrp_script_security, check_data.c
 * check_check_script_security), as a pure transform of a loaded configuration over a file-system
 * port. Every script gets its user (its own `user`, else script_user, else keepalived_script when
 * that user exists, else root). A script run as root must not be writable by anyone but root, nor
 * any directory on its path (sticky directories excepted); otherwise it is insecure: with
 * enable_script_security it is disabled, without it keepvs warns as keepalived does. Missing or
 * non-executable scripts are disabled either way. Disabled scripts are removed from the
 * configuration (track_script references, MISC_CHECK checkers and notify entries with them).
 */
import type { Checker, Config, Diagnostic, LoadResult, NotifyScripts, ScriptSpec, SourceLoc } from './model.js';

export interface FileInfo {
  readonly kind: 'dir' | 'file' | 'link' | 'other';
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

/** What the check reads from the system (src/os/script-security-fs.ts; fakes in tests). */
export interface ScriptSecurityPort {
  /** the daemon's own uid/gid */
  readonly uid: number;
  readonly gid: number;
  /** without following a final symlink; undefined when missing (errno text in `error`) */
  lstat(path: string): FileInfo | undefined;
  /** following symlinks */
  stat(path: string): FileInfo | undefined;
  /** canonical path, or an errno text */
  realpath(path: string): { path: string } | { error: string };
  /** PATH search for a bare command name */
  which(name: string): string | undefined;
  user(name: string): { uid: number; gid: number } | undefined;
  group(name: string): number | undefined;
}

export const DEFAULT_SCRIPT_USER = 'keepalived_script';

const S_ISVTX = 0o1000;
const S_ISUID = 0o4000;
const S_ISGID = 0o2000;

type Verdict = 'ok' | 'insecure-warn' | 'disabled';

interface Checked {
  verdict: Verdict;
  /** the user to run it as, when it changed (keepalived_script by default) */
  user?: string;
  group?: string;
  isScript: boolean;
  insecure: boolean;
}

/** keepalived's is_executable(): root needs any x bit; others the bit of their class. */
function executableBy(f: FileInfo, uid: number, gid: number): boolean {
  if (uid === 0) return (f.mode & 0o111) !== 0;
  if (f.uid === uid) return (f.mode & 0o100) !== 0;
  if (f.gid === gid) return (f.mode & 0o010) !== 0;
  return (f.mode & 0o001) !== 0;
}

/** keepalived's check_security(): each prefix of the path, '/' first, not followed through symlinks. */
function unsafePath(path: string, port: ScriptSecurityPort): 'unsafe' | 'missing' | 'wrong-type' | undefined {
  const parts = path.split('/').filter(Boolean);
  const prefixes = ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
  for (let i = 0; i < prefixes.length; i++) {
    const last = i === prefixes.length - 1;
    const f = port.lstat(prefixes[i]);
    if (!f) return 'missing';
    if ((!last && f.kind !== 'dir') || (last && f.kind !== 'file' && f.kind !== 'link')) return 'wrong-type';
    const writableDirOrFile = (f.kind === 'dir' && !(f.mode & S_ISVTX)) || f.kind === 'file';
    if (f.uid !== 0 || (writableDirOrFile && ((f.gid !== 0 && f.mode & 0o020) || f.mode & 0o002))) return 'unsafe';
  }
  return undefined;
}

/**
 * Applies script security to a loaded configuration; other fields of the result are kept.
 * `scriptLog`: keepalived's log lines, in order (the same findings are diagnostics KV320/KV321).
 */
export function secureScripts(
  result: LoadResult,
  port: ScriptSecurityPort,
): LoadResult & { readonly scriptLog: readonly string[] } {
  if (!result.config) return { ...result, scriptLog: [] };
  const config = result.config;
  const security = config.globalDefs.enableScriptSecurity;
  const log: string[] = [];
  const diags: Diagnostic[] = [];
  const diag = (code: 'KV320' | 'KV321', loc: SourceLoc, message: string) =>
    diags.push({ code, severity: 'warning', file: loc.file, line: loc.line, col: loc.col, message });
  /** keepalived's log line, and a KV320 that says it in keepalived's words first */
  const disable = (loc: SourceLoc, line: string, detail: string) => {
    log.push(line);
    diag('KV320', loc, `${line} (${detail})`);
  };
  let defaultUser: { name: string; uid: number; gid: number } | null | undefined;
  const defaultFor = () => {
    if (defaultUser !== undefined) return defaultUser;
    const u = port.user(DEFAULT_SCRIPT_USER);
    defaultUser = u ? { name: DEFAULT_SCRIPT_USER, ...u } : null;
    if (!u && security) log.push(`Unable to set default user ${DEFAULT_SCRIPT_USER} for script`);
    return defaultUser;
  };
  const anyScript = { vrrp: false, check: false, insecure: { vrrp: false, check: false } };

  const check = (s: ScriptSpec, what: string, side: 'vrrp' | 'check'): Checked => {
    const name = s.argv[0] ?? '';
    // `</path`: keepalived's "file is openable" test, nothing is executed
    if (/^<\s*\//.test(name)) return { verdict: 'ok', isScript: false, insecure: false };
    let uid: number;
    let gid: number;
    let user: string | undefined;
    let group: string | undefined;
    if (s.user !== undefined) {
      const u = port.user(s.user);
      if (!u) {
        disable(
          s.loc,
          `Script user '${s.user}' does not exist`,
          `${what} '${s.command}' disabled: script user '${s.user}' does not exist`,
        );
        return { verdict: 'disabled', isScript: false, insecure: false };
      }
      uid = u.uid;
      gid = u.gid;
      if (s.group !== undefined) {
        const g = port.group(s.group);
        if (g === undefined) {
          disable(
            s.loc,
            `Script group '${s.group}' does not exist`,
            `${what} '${s.command}' disabled: script group '${s.group}' does not exist`,
          );
          return { verdict: 'disabled', isScript: false, insecure: false };
        }
        gid = g;
      }
    } else {
      const d = defaultFor();
      if (d) {
        ({ uid, gid } = d);
        user = d.name;
      } else if (security) {
        disable(
          s.loc,
          `Unable to set default user for ${what} - removing`,
          `${what} '${s.command}' disabled: user ${DEFAULT_SCRIPT_USER} does not exist and no script_user is set`,
        );
        return { verdict: 'disabled', isScript: false, insecure: false };
      } else {
        uid = port.uid;
        gid = port.gid;
      }
    }
    let path = name;
    if (!name.includes('/')) {
      const found = port.which(name);
      if (!found) {
        disable(
          s.loc,
          `Cannot find script ${name} in path - disabling`,
          `${what} '${s.command}' disabled: ${name} not found in PATH`,
        );
        return { verdict: 'disabled', isScript: false, insecure: false, ...(user ? { user } : {}) };
      }
      log.push(`WARNING - script \`${name}\` resolved by path search to \`${found}\`. Please specify full path.`);
      path = found;
    }
    const real = port.realpath(path);
    if ('error' in real) {
      disable(
        s.loc,
        `Script ${name} cannot be accessed - ${real.error}`,
        `${what} '${s.command}' disabled: ${name} cannot be accessed (${real.error})`,
      );
      return { verdict: 'disabled', isScript: false, insecure: false };
    }
    const file = port.stat(real.path);
    if (!file) {
      disable(
        s.loc,
        `Unable to access script \`${name}\` - disabling`,
        `${what} '${s.command}' disabled: ${name} cannot be accessed`,
      );
      return { verdict: 'disabled', isScript: false, insecure: false };
    }
    const withUser = { ...(user ? { user } : {}), ...(group ? { group } : {}) };
    if (!executableBy(file, uid, gid)) {
      disable(
        s.loc,
        `WARNING - script '${name}' is not executable for uid:gid ${uid}:${gid} - disabling.`,
        `${what} '${s.command}' disabled: not executable for uid:gid ${uid}:${gid}`,
      );
      return { verdict: 'disabled', isScript: true, insecure: false, ...withUser };
    }
    anyScript[side] = true;
    const asRoot =
      uid === 0 ||
      gid === 0 ||
      (file.uid === 0 && (file.mode & S_ISUID) !== 0) ||
      (file.gid === 0 && (file.mode & S_ISGID) !== 0);
    if (!asRoot) return { verdict: 'ok', isScript: true, insecure: false, ...withUser };
    const problems = [path, ...(real.path !== path ? [real.path] : [])].map((p) => unsafePath(p, port));
    if (problems.includes('wrong-type') || problems.includes('missing')) {
      disable(
        s.loc,
        `Wrong file type found in script path '${path}'.`,
        `${what} '${s.command}' disabled: wrong file type in its path`,
      );
      return { verdict: 'disabled', isScript: true, insecure: false, ...withUser };
    }
    if (!problems.includes('unsafe')) return { verdict: 'ok', isScript: true, insecure: false, ...withUser };
    anyScript.insecure[side] = true;
    const unsafe = `Unsafe permissions found for script '${path}'${security ? ' - disabling' : ''}.`;
    if (!security) {
      log.push(unsafe);
      diag(
        'KV321',
        s.loc,
        `${unsafe} (${what} runs as root and non-root users can change it; enable_script_security would disable it)`,
      );
      return { verdict: 'insecure-warn', isScript: true, insecure: true, ...withUser };
    }
    disable(s.loc, unsafe, `${what} disabled by enable_script_security`);
    return { verdict: 'disabled', isScript: true, insecure: true, ...withUser };
  };

  /** undefined: removed; else the spec with its user filled in */
  const keep = (s: ScriptSpec | undefined, what: string, side: 'vrrp' | 'check'): ScriptSpec | undefined => {
    if (!s) return undefined;
    const c = check(s, what, side);
    if (c.verdict === 'disabled') return undefined;
    return c.user && s.user === undefined ? { ...s, user: c.user, ...(c.group ? { group: c.group } : {}) } : s;
  };
  const opt = <K extends string>(key: K, v: ScriptSpec | undefined): { [P in K]?: ScriptSpec } =>
    (v ? { [key]: v } : {}) as { [P in K]?: ScriptSpec };
  const notifySet = (n: NotifyScripts, owner: string, side: 'vrrp' | 'check'): NotifyScripts => {
    const out: Record<string, unknown> = { ...n };
    for (const [k, v] of Object.entries(n as Record<string, unknown>)) {
      if (v && typeof v === 'object' && 'argv' in v) {
        const kept = keep(v as ScriptSpec, `notify script of ${owner}`, side);
        if (kept) out[k] = kept;
        else delete out[k];
      }
    }
    return out as NotifyScripts;
  };

  // VRRP side (vrrp.c check_vrrp_script_security)
  const vrrpScripts = config.vrrpScripts.flatMap((vs) => {
    const c = check(vs.script, `vrrp script ${vs.name}`, 'vrrp');
    if (c.verdict === 'disabled') {
      log.push(
        c.insecure
          ? `Disabling track script ${vs.name} due to insecure`
          : `Disabling track script ${vs.name} since not found/accessible`,
      );
      return [];
    }
    return [c.user && vs.script.user === undefined ? { ...vs, script: { ...vs.script, user: c.user } } : vs];
  });
  const liveScripts = new Set(vrrpScripts.map((s) => s.name));
  const vrrpInstances = config.vrrpInstances.map((vi) => ({
    ...vi,
    trackScripts: vi.trackScripts.filter((t) => liveScripts.has(t.name)),
    notify: notifySet(vi.notify, `vrrp_instance ${vi.name}`, 'vrrp'),
  }));
  const syncGroups = config.syncGroups.map((sg) => ({
    ...sg,
    trackScripts: sg.trackScripts.filter((t) => liveScripts.has(t.name)),
    notify: notifySet(sg.notify, `vrrp_sync_group ${sg.name}`, 'vrrp'),
  }));
  // checker side (check_data.c check_check_script_security)
  const virtualServers = config.virtualServers.map(({ quorumUp, quorumDown, ...vs }) => ({
    ...vs,
    ...opt('quorumUp', keep(quorumUp, 'quorum_up script', 'check')),
    ...opt('quorumDown', keep(quorumDown, 'quorum_down script', 'check')),
    realServers: vs.realServers.map((rs) => {
      const { notifyUp, notifyDown, ...rest } = rs;
      return {
        ...rest,
        ...opt('notifyUp', keep(notifyUp, 'notify_up script', 'check')),
        ...opt('notifyDown', keep(notifyDown, 'notify_down script', 'check')),
        checkers: rs.checkers.flatMap((ck): Checker[] => {
          if (ck.type !== 'MISC_CHECK') return [ck];
          const c = check(ck.miscPath, `misc script '${ck.miscPath.command}'`, 'check');
          if (c.verdict !== 'disabled')
            return [
              c.user && ck.miscPath.user === undefined ? { ...ck, miscPath: { ...ck.miscPath, user: c.user } } : ck,
            ];
          log.push(
            c.insecure
              ? `Disabling misc script ${ck.miscPath.command} due to insecure`
              : `Disabling misc script ${ck.miscPath.command} since not found/accessible`,
          );
          return [];
        }),
      };
    }),
  }));
  const g = config.globalDefs;
  const fifo = (f: typeof g.notifyFifo, side: 'vrrp' | 'check') =>
    f ? { path: f.path, ...opt('script', keep(f.script, `notify_fifo script ${f.path}`, side)) } : undefined;
  const globalDefs = {
    ...g,
    ...(g.notifyFifo ? { notifyFifo: fifo(g.notifyFifo, 'vrrp') } : {}),
    ...(g.vrrpNotifyFifo ? { vrrpNotifyFifo: fifo(g.vrrpNotifyFifo, 'vrrp') } : {}),
    ...(g.lvsNotifyFifo ? { lvsNotifyFifo: fifo(g.lvsNotifyFifo, 'check') } : {}),
  };
  if (!security) {
    const at = { file: config.files[0] ?? '', line: 1, col: 1 };
    if (anyScript.vrrp && config.vrrpInstances.length > 0) {
      const m = `SECURITY VIOLATION - scripts are being executed but script_security not enabled.${anyScript.insecure.vrrp ? ' There are insecure scripts.' : ''}`;
      log.push(m);
      if (port.uid === 0) diag('KV321', at, m);
    }
    if (anyScript.check && config.virtualServers.length > 0) {
      const m = `SECURITY VIOLATION - check scripts are being executed but script_security not enabled.${anyScript.insecure.check ? ' There are insecure scripts.' : ''}`;
      log.push(m);
      if (port.uid === 0) diag('KV321', at, m);
    }
  }
  const secured = { ...config, globalDefs, vrrpScripts, vrrpInstances, syncGroups, virtualServers } as Config;
  return { ...result, config: secured, diagnostics: [...result.diagnostics, ...diags], scriptLog: log };
}
