import type { Config, TrackFile, TrackProcess, VrrpInstance, VrrpScript, WeightedTrack } from '../config/model.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { ProcessRunner } from '../util/ports.js';
import { binaryContribution, type Contribution, fileContribution, parseTrackFileValue } from './contribution.js';
import type { Closable, FileWatcherPort, LinkWatcherPort, ProcessListerPort } from './ports.js';
import { computePriority, type PriorityResult, type TrackedItem } from './priority.js';
import { processMatches, processQuorumUp } from './process-match.js';
import { initialScriptState, type ScriptState, scriptUp, stepScript } from './script-state.js';

export interface TrackingState extends PriorityResult {}
export type TrackingListener = (instance: string, state: TrackingState) => void;

export interface TrackManagerOptions {
  readonly config: Config;
  readonly clock: Clock;
  readonly runner: ProcessRunner;
  readonly fileWatcher: FileWatcherPort;
  readonly linkWatcher: LinkWatcherPort;
  readonly processLister: ProcessListerPort;
  readonly logger: Logger;
  readonly onChange?: TrackingListener;
  /** periodic re-read of track files besides the watch (default 1000 ms) */
  readonly fileRereadMs?: number;
  /** interface link polling (default 500 ms) */
  readonly linkPollMs?: number;
  /** /proc polling for vrrp_track_process (default 1000 ms; keepalived uses the proc connector) */
  readonly processPollMs?: number;
}

export interface TrackSnapshot {
  readonly scripts: readonly { name: string; status: 'OK' | 'FAILED' | 'INIT'; result: number; running: boolean }[];
  readonly files: readonly { name: string; file: string; value: number | undefined }[];
  readonly processes: readonly { name: string; count: number | undefined; up: boolean | undefined }[];
  readonly interfaces: readonly { name: string; up: boolean | undefined }[];
  readonly instances: readonly ({ name: string; base: number } & TrackingState)[];
}

/** Linux signal numbers keepalived's "due to signal N" prints (the usual ones; others by name) */
const SIGNAL_NUMBER: Record<string, number> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGABRT: 6,
  SIGKILL: 9,
  SIGSEGV: 11,
  SIGPIPE: 13,
  SIGTERM: 15,
};

/** One vrrp_script and its schedule. */
class ScriptTracker {
  state: ScriptState;
  running = false;
  /** the last exit status, for keepalived's "now returning" line */
  private lastStatus: number | undefined;
  private timer: TimerHandle | undefined;
  private abort: AbortController | undefined;
  private stopped = true;

  constructor(
    readonly spec: VrrpScript,
    private readonly deps: { clock: Clock; runner: ProcessRunner; logger: Logger; changed: () => void },
    private readonly defaultUser: { user: string; group?: string } | undefined,
  ) {
    this.state = initialScriptState(spec.rise, spec.initFail);
  }

  up(): boolean | undefined {
    return scriptUp(this.state, this.spec.rise);
  }

  start(): void {
    this.stopped = false;
    this.tick();
  }

  stop(): void {
    this.stopped = true;
    this.timer?.cancel();
    this.abort?.abort();
  }

  private tick(): void {
    if (this.stopped) return;
    this.timer = this.deps.clock.setTimer(this.spec.interval * 1000, () => this.tick());
    if (this.running) {
      // vrrp_scheduler.c: a run still in progress makes this one be skipped
      this.deps.logger.log('warning', `VRRP_Script(${this.spec.name}) still running, skipping this run`);
      return;
    }
    void this.runOnce();
  }

  private async runOnce(): Promise<void> {
    this.running = true;
    this.abort = new AbortController();
    const user = this.spec.script.user ?? this.defaultUser?.user;
    const group = this.spec.script.user ? this.spec.script.group : this.defaultUser?.group;
    let success = false;
    let why = '';
    let exitType = 'failed';
    try {
      const r = await this.deps.runner.run(this.spec.script.argv, {
        user,
        group,
        timeoutMs: this.spec.timeout * 1000,
        signal: this.abort.signal,
      });
      // keepalived's words (vrrp_scheduler.c vrrp_script_child_thread): "Script `chk` now returning 1"
      // when the exit status changes, then "VRRP_Script(chk) failed (exited with status 1)",
      // "failed (due to signal 9)" or "timed_out" when the result flips
      if (r.exitCode !== null && !r.timedOut && r.exitCode !== this.lastStatus) {
        this.deps.logger.log('info', `Script \`${this.spec.name}\` now returning ${r.exitCode}`);
        this.lastStatus = r.exitCode;
      }
      if (r.spawnError) why = ` (cannot run: ${r.spawnError})`;
      else if (r.timedOut) exitType = 'timed_out';
      else if (r.exitCode === 0) success = true;
      else
        why =
          r.exitCode === null
            ? ` (due to signal ${SIGNAL_NUMBER[r.signal ?? ''] ?? r.signal})`
            : ` (exited with status ${r.exitCode})`;
    } catch (e) {
      why = ` (cannot run: ${(e as Error).message})`;
    }
    this.running = false;
    if (this.stopped) return;
    const before = this.up();
    this.state = stepScript(this.state, success, this.spec.rise, this.spec.fall);
    const after = this.up();
    if (before !== after) {
      this.deps.logger.log('info', `VRRP_Script(${this.spec.name}) ${after ? 'succeeded' : `${exitType}${why}`}`);
      this.deps.changed();
    }
  }
}

/** One vrrp_track_process with fork/terminate delays applied to count changes. */
class ProcessTracker {
  count: number | undefined;
  private pending: { count: number; due: number } | undefined;

  constructor(readonly spec: TrackProcess) {}

  up(): boolean | undefined {
    return this.count === undefined ? undefined : processQuorumUp(this.spec, this.count);
  }

  /** returns true when the accepted count changed */
  observe(seen: number, now: number): boolean {
    if (this.count === undefined || seen === this.count) {
      const changed = this.count !== seen;
      this.count = seen;
      this.pending = undefined;
      return changed;
    }
    const delayMs = (seen > this.count ? this.spec.forkDelay : this.spec.terminateDelay) * 1000;
    const sameDirection = this.pending && this.pending.count > this.count === seen > this.count;
    if (!this.pending || !sameDirection) this.pending = { count: seen, due: now + delayMs };
    else this.pending = { count: seen, due: this.pending.due };
    if (now >= this.pending.due) {
      this.count = seen;
      this.pending = undefined;
      return true;
    }
    return false;
  }
}

interface ResolvedTrack {
  readonly kind: TrackedItem['kind'];
  readonly name: string;
  readonly weight: number;
  readonly reverse: boolean;
}

const specKey = (o: object): string => JSON.stringify(o, (k, v) => (k === 'loc' ? undefined : v));

/**
 * Computes every VRRP instance's effective priority and FAULT flag from its trackers
 * (vrrp_script, track_file, vrrp_track_process, track_interface, sync group trackers).
 */
export class TrackManager {
  private config: Config;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly opts: TrackManagerOptions;
  private readonly listeners = new Set<TrackingListener>();
  private scripts = new Map<string, ScriptTracker>();
  private fileSpecs = new Map<string, TrackFile>();
  private fileValues = new Map<string, number>();
  private fileWatches = new Map<string, Closable>();
  private processes = new Map<string, ProcessTracker>();
  private links = new Map<string, boolean | undefined>();
  private instanceTracks = new Map<string, ResolvedTrack[]>();
  private last = new Map<string, TrackingState>();
  private timers: TimerHandle[] = [];
  private running = false;

  constructor(options: TrackManagerOptions) {
    this.opts = options;
    this.config = options.config;
    this.clock = options.clock;
    this.logger = options.logger.child('track: ');
    if (options.onChange) this.listeners.add(options.onChange);
  }

  /** Subscribes to (instance, {effective, fault, reason}) changes; returns the unsubscribe. */
  onChange(listener: TrackingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.build(new Map(), new Map(), new Map());
    this.startPolling();
    this.recompute();
  }

  stop(): void {
    this.running = false;
    for (const s of this.scripts.values()) s.stop();
    for (const w of this.fileWatches.values()) w.close();
    this.fileWatches.clear();
    for (const t of this.timers) t.cancel();
    this.timers = [];
  }

  /** Applies a new config; trackers whose definition did not change keep their state. */
  reload(config: Config): void {
    const oldScripts = this.scripts;
    const oldProcesses = this.processes;
    const oldFileValues = new Map<string, { key: string; value: number }>();
    for (const [name, spec] of this.fileSpecs) {
      const v = this.fileValues.get(name);
      if (v !== undefined) oldFileValues.set(name, { key: specKey(spec), value: v });
    }
    for (const w of this.fileWatches.values()) w.close();
    this.fileWatches.clear();
    this.config = config;
    if (!this.running) return;
    this.build(oldScripts, oldProcesses, oldFileValues);
    // instances that disappeared forget their last state
    for (const name of [...this.last.keys()]) if (!this.instanceTracks.has(name)) this.last.delete(name);
    this.recompute();
  }

  snapshot(): TrackSnapshot {
    return {
      scripts: [...this.scripts.values()].map((s) => {
        const up = s.up();
        return {
          name: s.spec.name,
          status: up === undefined ? 'INIT' : up ? 'OK' : 'FAILED',
          result: s.state.result,
          running: s.running,
        };
      }),
      files: [...this.fileSpecs.values()].map((f) => ({
        name: f.name,
        file: f.file,
        value: this.fileValues.get(f.name),
      })),
      processes: [...this.processes.values()].map((p) => ({ name: p.spec.name, count: p.count, up: p.up() })),
      interfaces: [...this.links.entries()].map(([name, up]) => ({ name, up })),
      instances: this.config.vrrpInstances.map((i) => ({
        name: i.name,
        base: i.priority,
        ...(this.last.get(i.name) ?? this.evaluate(i)),
      })),
    };
  }

  /** Current result for one instance (computed on demand). */
  stateOf(instance: string): TrackingState | undefined {
    const vi = this.config.vrrpInstances.find((i) => i.name === instance);
    return vi ? this.evaluate(vi) : undefined;
  }

  private build(
    oldScripts: Map<string, ScriptTracker>,
    oldProcesses: Map<string, ProcessTracker>,
    oldFileValues: Map<string, { key: string; value: number }>,
  ): void {
    const cfg = this.config;
    const changed = () => this.recompute();
    const scripts = new Map<string, ScriptTracker>();
    for (const spec of cfg.vrrpScripts) {
      const prev = oldScripts.get(spec.name);
      if (prev && specKey(prev.spec) === specKey(spec)) {
        scripts.set(spec.name, prev);
        oldScripts.delete(spec.name);
        continue;
      }
      // script lines carry keepalived's own words, without the track: prefix
      const t = new ScriptTracker(
        spec,
        { clock: this.clock, runner: this.opts.runner, logger: this.opts.logger, changed },
        cfg.globalDefs.scriptUser,
      );
      scripts.set(spec.name, t);
      t.start();
    }
    for (const s of oldScripts.values()) s.stop();
    this.scripts = scripts;

    const processes = new Map<string, ProcessTracker>();
    for (const spec of cfg.trackProcesses) {
      const prev = oldProcesses.get(spec.name);
      processes.set(spec.name, prev && specKey(prev.spec) === specKey(spec) ? prev : new ProcessTracker(spec));
    }
    this.processes = processes;

    this.fileSpecs = new Map(cfg.trackFiles.map((f) => [f.name, f]));
    this.fileValues = new Map();
    for (const f of cfg.trackFiles) {
      const prev = oldFileValues.get(f.name);
      if (prev && prev.key === specKey(f)) this.fileValues.set(f.name, prev.value);
      void this.initFile(f);
    }

    this.instanceTracks = new Map(cfg.vrrpInstances.map((vi) => [vi.name, this.resolveTracks(vi)]));
    const wanted = new Set<string>();
    for (const tracks of this.instanceTracks.values())
      for (const t of tracks) if (t.kind === 'interface') wanted.add(t.name);
    for (const name of [...this.links.keys()]) if (!wanted.has(name)) this.links.delete(name);
    for (const name of wanted) if (!this.links.has(name)) this.links.set(name, undefined);
  }

  private resolveTracks(vi: VrrpInstance): ResolvedTrack[] {
    const cfg = this.config;
    const group = cfg.syncGroups.find((g) => g.group.includes(vi.name));
    const out: ResolvedTrack[] = [];
    const add = (kind: ResolvedTrack['kind'], list: readonly WeightedTrack[], fromGroup: boolean) => {
      for (const t of list) {
        let def: { weight: number; weightReverse: boolean } | undefined;
        if (kind === 'script') def = cfg.vrrpScripts.find((s) => s.name === t.name);
        else if (kind === 'file') def = cfg.trackFiles.find((s) => s.name === t.name);
        else if (kind === 'process') def = cfg.trackProcesses.find((s) => s.name === t.name);
        else def = { weight: 0, weightReverse: false };
        const own = def && { weight: def.weight, reverse: def.weightReverse };
        if (!own) {
          this.logger.log('warning', `(${vi.name}) tracked ${kind} ${t.name} is not defined, ignoring it`);
          continue;
        }
        let weight = t.weight ?? own.weight;
        const reverse = t.weight !== undefined ? t.reverse : own.reverse || t.reverse;
        // keepalived: sync group members track with weight 0 unless sync_group_tracking_weight
        if (group && !group.syncGroupTrackingWeight && weight !== 0) {
          this.logger.log(
            'warning',
            `(${vi.name}) is in sync group ${group.name}: ${kind} ${t.name} weight ${weight} ignored ` +
              `(set sync_group_tracking_weight to use it)`,
          );
          weight = 0;
        }
        const dupe = out.findIndex((o) => o.kind === kind && o.name === t.name);
        // a tracker listed by both the instance and its group counts once, the instance's entry winning
        if (dupe >= 0) {
          if (fromGroup) continue;
          out.splice(dupe, 1);
        }
        out.push({ kind, name: t.name, weight, reverse });
      }
    };
    if (vi.interface && !vi.dontTrackPrimary) {
      add('interface', [{ name: vi.interface, weight: 0, reverse: false, loc: vi.loc }], false);
    }
    add('interface', vi.trackInterfaces, false);
    add('script', vi.trackScripts, false);
    add('file', vi.trackFiles, false);
    add('process', vi.trackProcesses, false);
    if (group) {
      add('interface', group.trackInterfaces, true);
      add('script', group.trackScripts, true);
      add('file', group.trackFiles, true);
      add('process', group.trackProcesses, true);
    }
    return out;
  }

  private async initFile(f: TrackFile): Promise<void> {
    const fw = this.opts.fileWatcher;
    if (f.initFile) {
      try {
        await fw.writeInitial(f.file, `${f.initFile.value}\n`, f.initFile.overwrite);
      } catch (e) {
        this.logger.log('error', `track_file ${f.name}: cannot create ${f.file}: ${(e as Error).message}`);
      }
    }
    if (!this.running || this.fileSpecs.get(f.name) !== f) return;
    try {
      this.fileWatches.set(
        f.name,
        fw.watch(f.file, () => void this.readFile(f)),
      );
    } catch (e) {
      this.logger.log('warning', `track_file ${f.name}: cannot watch ${f.file} (${(e as Error).message}), polling`);
    }
    await this.readFile(f);
  }

  private async readFile(f: TrackFile): Promise<void> {
    let text: string | undefined;
    try {
      text = await this.opts.fileWatcher.read(f.file);
    } catch {
      text = undefined;
    }
    if (!this.running || this.fileSpecs.get(f.name) !== f) return;
    // track_file.c: an unreadable or empty file reads as 0
    const value = text === undefined ? 0 : parseTrackFileValue(text);
    if (value === undefined) {
      this.logger.log('info', `track_file ${f.name}: invalid number in ${f.file}, ignoring`);
      return;
    }
    if (this.fileValues.get(f.name) === value) return;
    this.fileValues.set(f.name, value);
    this.logger.log('info', `track_file ${f.name}: ${f.file} now ${value}`);
    this.recompute();
  }

  private startPolling(): void {
    const every = (ms: number, fn: () => Promise<void>) => {
      let busy = false;
      const loop = () => {
        if (!this.running) return;
        const h = this.clock.setTimer(ms, loop);
        this.timers = this.timers.filter((t) => t !== h);
        this.timers.push(h);
        if (busy) return;
        busy = true;
        fn()
          .catch((e: Error) => this.logger.log('warning', e.message))
          .finally(() => {
            busy = false;
          });
      };
      loop();
    };
    every(this.opts.fileRereadMs ?? 1000, async () => {
      await Promise.all([...this.fileSpecs.values()].map((f) => this.readFile(f)));
    });
    every(this.opts.linkPollMs ?? 500, async () => {
      const names = [...this.links.keys()];
      const states = await Promise.all(names.map((n) => this.opts.linkWatcher.linkUp(n).catch(() => undefined)));
      let changed = false;
      names.forEach((n, i) => {
        if (!this.links.has(n) || this.links.get(n) === states[i]) return;
        const was = this.links.get(n);
        this.links.set(n, states[i]);
        if (was !== undefined || states[i] !== true) {
          this.logger.log(
            'info',
            `interface ${n} is ${states[i] === undefined ? 'missing' : states[i] ? 'UP' : 'DOWN'}`,
          );
        }
        changed = true;
      });
      if (changed) this.recompute();
    });
    every(this.opts.processPollMs ?? 1000, async () => {
      if (this.processes.size === 0) return;
      const list = await this.opts.processLister.list();
      const now = this.clock.now();
      let changed = false;
      for (const p of this.processes.values()) {
        const seen = list.filter((x) => processMatches(p.spec, x)).length;
        const before = p.up();
        if (p.observe(seen, now) && p.up() !== before) {
          this.logger.log('info', `track_process ${p.spec.name}: ${p.count} running, quorum ${p.up() ? 'UP' : 'DOWN'}`);
          changed = true;
        }
      }
      if (changed) this.recompute();
    });
  }

  private itemOf(t: ResolvedTrack): TrackedItem {
    let contribution: Contribution | undefined;
    let blocksUntilKnown = false;
    if (t.kind === 'file') {
      const v = this.fileValues.get(t.name);
      contribution = v === undefined ? undefined : fileContribution(v, t.weight, t.reverse);
    } else {
      let up: boolean | undefined;
      if (t.kind === 'script') {
        up = this.scripts.get(t.name)?.up();
        blocksUntilKnown = t.weight === 0;
      } else if (t.kind === 'process') {
        up = this.processes.get(t.name)?.up();
      } else {
        up = this.links.get(t.name);
      }
      contribution = up === undefined ? undefined : binaryContribution(up, t.weight, t.reverse);
    }
    return { kind: t.kind, name: t.name, contribution, blocksUntilKnown };
  }

  private evaluate(vi: VrrpInstance): TrackingState {
    const tracks = this.instanceTracks.get(vi.name) ?? this.resolveTracks(vi);
    return computePriority(
      vi.priority,
      tracks.map((t) => this.itemOf(t)),
    );
  }

  private recompute(): void {
    if (!this.running) return;
    for (const vi of this.config.vrrpInstances) {
      const next = this.evaluate(vi);
      const prev = this.last.get(vi.name);
      if (
        prev &&
        prev.effective === next.effective &&
        prev.fault === next.fault &&
        prev.initializing === next.initializing
      )
        continue;
      this.last.set(vi.name, next);
      if (prev && prev.fault !== next.fault) {
        this.logger.log('info', `(${vi.name}) ${next.fault ? `entering FAULT: ${next.reason}` : 'leaving FAULT'}`);
      }
      for (const l of this.listeners) {
        try {
          l(vi.name, next);
        } catch (e) {
          this.logger.log('error', `tracking listener failed: ${(e as Error).message}`);
        }
      }
    }
  }
}
