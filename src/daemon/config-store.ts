/**
 * The configuration editor behind /api/v1/config: keepvs owns one include file (the managed file,
 * `keepvs-managed.conf` beside the main file by default) and rewrites it whole from the edited
 * specs. Every change is loaded with the same loader as SIGHUP (the candidate text in place of the
 * managed file) and refused with its diagnostics when it has errors; a good one is written
 * atomically, the previous text is kept as `<managed>.prev` for rollback, and the daemon reloads.
 * The version is a hash of the managed file's text: a write must name the version it was made
 * against (If-Match), so two editors never overwrite each other silently.
 */
import { createHash } from 'node:crypto';
import {
  type Applied,
  applyChange,
  type ConfigChange,
  type FieldDiagnostic,
  type Preview,
  previewSpec,
  previewText,
} from '../config/edit/edit.js';
import { managedSpecOf, virtualServerSpec, vrrpInstanceSpec } from '../config/edit/from-model.js';
import {
  type ManagedSpec,
  type VirtualServerSpec,
  type VrrpInstanceSpec,
  virtualServerSpecId,
} from '../config/edit/spec.js';
import type { Diagnostic, LoadResult, SourceLoc } from '../config/model.js';
import { readRegularFile, writeFileAtomic } from '../os/atomic-file.js';
import { err, ok, type Result } from '../util/result.js';

/** Loads the configuration, optionally with some files' text replaced (the daemon's loader). */
export type ConfigLoader = (overlay?: ReadonlyMap<string, string>) => LoadResult;

export interface ConfigStoreOptions {
  readonly mainFile: string;
  readonly managedFile: string;
  readonly load: ConfigLoader;
  /** the SIGHUP reload */
  readonly reload: () => { ok: boolean; message: string };
  readonly audit: (entry: AuditEntry) => void;
  readonly now?: () => number;
}

export interface AuditEntry {
  readonly who: string;
  readonly action: 'apply' | 'rollback';
  readonly summary: string;
  readonly version: string;
  readonly previousVersion: string;
  readonly reloadOk: boolean;
  readonly message: string;
  readonly at: number;
}

export interface ConfigBlock<S> {
  readonly id: string;
  /** true: in the managed file, editable here; false: in the operator's files */
  readonly managed: boolean;
  readonly loc: SourceLoc;
  readonly spec?: S;
}

export interface ConfigState {
  readonly version: string;
  readonly mainFile: string;
  readonly managedFile: string;
  /** the operator's configuration includes the managed file */
  readonly included: boolean;
  readonly managedText: string;
  readonly canRollback: boolean;
  readonly previousVersion?: string;
  readonly lastChange?: AuditEntry;
  readonly virtualServers: readonly ConfigBlock<VirtualServerSpec>[];
  readonly vrrpInstances: readonly ConfigBlock<VrrpInstanceSpec>[];
  /** the running file's diagnostics (as `keepvs -t` prints them) */
  readonly diagnostics: readonly Diagnostic[];
}

export interface StoreError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
  readonly version?: string;
  readonly diagnostics?: readonly FieldDiagnostic[];
  readonly diff?: string;
}

export interface PreviewBody {
  readonly version: string;
  readonly newVersion: string;
  readonly summary: string;
  readonly target?: string;
  readonly diff: string;
  readonly diagnostics: readonly FieldDiagnostic[];
  readonly usable: boolean;
}

export interface ApplyBody extends PreviewBody {
  readonly applied: true;
  readonly reload: { readonly ok: boolean; readonly message: string };
}

export const versionOf = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, 16);

export class ConfigStore {
  private last: AuditEntry | undefined;
  constructor(private readonly o: ConfigStoreOptions) {}

  get prevFile(): string {
    return `${this.o.managedFile}.prev`;
  }

  private current(): string {
    return readRegularFile(this.o.managedFile) ?? '';
  }

  private loadWith(text: string): LoadResult {
    return this.o.load(new Map([[this.o.managedFile, text]]));
  }

  state(): Result<ConfigState, StoreError> {
    let text: string;
    let prev: string | undefined;
    try {
      text = this.current();
      prev = readRegularFile(this.prevFile);
    } catch (e) {
      return err({ status: 500, code: 'KV_API_CONFIG_FILE', message: (e as Error).message });
    }
    const r = this.loadWith(text);
    const c = r.config;
    const managed = this.o.managedFile;
    const vss: ConfigBlock<VirtualServerSpec>[] = (c?.virtualServers ?? []).map((vs) => {
      const spec = virtualServerSpec(vs);
      return {
        id: spec ? virtualServerSpecId(spec) : `group:${vs.key.kind === 'group' ? vs.key.group : ''}`,
        managed: vs.loc.file === managed,
        loc: vs.loc,
        ...(spec ? { spec } : {}),
      };
    });
    const vrrps: ConfigBlock<VrrpInstanceSpec>[] = (c?.vrrpInstances ?? []).map((v) => ({
      id: v.name,
      managed: v.loc.file === managed,
      loc: v.loc,
      spec: vrrpInstanceSpec(v),
    }));
    return ok({
      version: versionOf(text),
      mainFile: this.o.mainFile,
      managedFile: managed,
      included: c?.files.includes(managed) ?? false,
      managedText: text,
      canRollback: prev !== undefined,
      ...(prev !== undefined ? { previousVersion: versionOf(prev) } : {}),
      ...(this.last ? { lastChange: this.last } : {}),
      virtualServers: vss,
      vrrpInstances: vrrps,
      diagnostics: r.diagnostics,
    });
  }

  /** The change applied to the current managed blocks, and its preview; nothing is written. */
  private prepare(change: ConfigChange): Result<{ text: string; applied: Applied; preview: Preview }, StoreError> {
    let text: string;
    try {
      text = this.current();
    } catch (e) {
      return err({ status: 500, code: 'KV_API_CONFIG_FILE', message: (e as Error).message });
    }
    const r = this.loadWith(text);
    if (!r.config)
      return err({
        status: 409,
        code: 'KV_API_CONFIG_UNREADABLE',
        message: 'the running configuration cannot be read',
      });
    const managed = this.o.managedFile;
    const spec: ManagedSpec = managedSpecOf(r.config, managed);
    const outsideVs = new Map<string, SourceLoc>();
    for (const vs of r.config.virtualServers) {
      const s = vs.loc.file === managed ? undefined : virtualServerSpec(vs);
      if (s) outsideVs.set(virtualServerSpecId(s), vs.loc);
    }
    const outsideVrrp = new Map(
      r.config.vrrpInstances.filter((v) => v.loc.file !== managed).map((v) => [v.name, v.loc] as const),
    );
    const applied = applyChange(spec, change, { virtualServers: outsideVs, vrrpInstances: outsideVrrp });
    if (!applied.ok) return err({ ...applied.error, version: versionOf(text) });
    const preview = previewSpec(managed, text, applied.value.spec, applied.value.target, (t) => this.loadWith(t));
    return ok({ text, applied: applied.value, preview });
  }

  private body(text: string, summary: string, target: string | undefined, p: Preview): PreviewBody {
    return {
      version: versionOf(text),
      newVersion: versionOf(p.text),
      summary,
      ...(target !== undefined ? { target } : {}),
      diff: p.diff,
      diagnostics: p.diagnostics,
      usable: p.usable,
    };
  }

  dryRun(change: ConfigChange): Result<PreviewBody, StoreError> {
    const p = this.prepare(change);
    if (!p.ok) return p;
    return ok(this.body(p.value.text, p.value.applied.summary, p.value.applied.target, p.value.preview));
  }

  private refuse(text: string, p: Preview): StoreError | undefined {
    if (!p.included)
      return {
        status: 409,
        code: 'KV_API_NOT_INCLUDED',
        message: `${this.o.mainFile} does not include ${this.o.managedFile}; add the line 'include ${this.o.managedFile}' to it`,
        version: versionOf(text),
        diagnostics: p.diagnostics,
        diff: p.diff,
      };
    if (p.dropped && p.included && p.diagnostics.every((d) => d.severity !== 'error'))
      return {
        status: 422,
        code: 'KV_API_IGNORED',
        message: 'the parser would ignore part of this change (see the warnings); nothing was written',
        version: versionOf(text),
        diagnostics: p.diagnostics,
        diff: p.diff,
      };
    if (!p.usable)
      return {
        status: 422,
        code: 'KV_API_INVALID_CONFIG',
        message: 'the change gives a configuration with errors; nothing was written',
        version: versionOf(text),
        diagnostics: p.diagnostics,
        diff: p.diff,
      };
    return undefined;
  }

  private conflict(ifMatch: string | undefined, text: string): StoreError | undefined {
    const version = versionOf(text);
    if (ifMatch === undefined)
      return {
        status: 428,
        code: 'KV_API_VERSION_REQUIRED',
        message: 'name the version you edited (If-Match header or "version")',
        version,
      };
    if (ifMatch !== version) {
      const by = this.last ? ` (last change: ${this.last.summary} by ${this.last.who})` : '';
      return {
        status: 412,
        code: 'KV_API_CONFLICT',
        message: `the configuration changed since version ${ifMatch} was read${by}; reload it and redo your change`,
        version,
      };
    }
    return undefined;
  }

  private write(
    who: string,
    action: AuditEntry['action'],
    summary: string,
    oldText: string,
    newText: string,
  ): Result<AuditEntry, StoreError> {
    try {
      writeFileAtomic(this.prevFile, oldText);
      writeFileAtomic(this.o.managedFile, newText);
    } catch (e) {
      return err({ status: 500, code: 'KV_API_CONFIG_WRITE', message: `cannot write: ${(e as Error).message}` });
    }
    const reload = this.o.reload();
    if (!reload.ok) {
      // the daemon kept its running configuration (e.g. the reload guard): so does the file
      try {
        writeFileAtomic(this.o.managedFile, oldText);
      } catch (e) {
        return err({
          status: 500,
          code: 'KV_API_CONFIG_WRITE',
          message: `reload refused (${reload.message}); cannot restore the file: ${(e as Error).message}`,
        });
      }
      return err({
        status: 409,
        code: 'KV_API_RELOAD_REFUSED',
        message: `the daemon refused the reload, the file is restored: ${reload.message}`,
        version: versionOf(oldText),
      });
    }
    const entry: AuditEntry = {
      who,
      action,
      summary,
      version: versionOf(newText),
      previousVersion: versionOf(oldText),
      reloadOk: reload.ok,
      message: reload.message,
      at: (this.o.now ?? Date.now)(),
    };
    this.last = entry;
    this.o.audit(entry);
    return ok(entry);
  }

  apply(change: ConfigChange, ifMatch: string | undefined, who: string): Result<ApplyBody, StoreError> {
    const p = this.prepare(change);
    if (!p.ok) return p;
    const { text, applied, preview } = p.value;
    const refused = this.conflict(ifMatch, text) ?? this.refuse(text, preview);
    if (refused) return err(refused);
    const w = this.write(who, 'apply', applied.summary, text, preview.text);
    if (!w.ok) return w;
    return ok({
      ...this.body(text, applied.summary, applied.target, preview),
      applied: true,
      reload: { ok: w.value.reloadOk, message: w.value.message },
    });
  }

  /** Swaps the managed file with the kept previous text (dry run: only the preview). */
  rollback(ifMatch: string | undefined, who: string, dryRun: boolean): Result<PreviewBody | ApplyBody, StoreError> {
    let text: string;
    let prev: string | undefined;
    try {
      text = this.current();
      prev = readRegularFile(this.prevFile);
    } catch (e) {
      return err({ status: 500, code: 'KV_API_CONFIG_FILE', message: (e as Error).message });
    }
    if (prev === undefined)
      return err({
        status: 409,
        code: 'KV_API_NO_PREVIOUS',
        message: 'no previous version kept yet',
        version: versionOf(text),
      });
    const summary = `roll back to version ${versionOf(prev)}`;
    const preview = previewText(
      this.o.managedFile,
      text,
      prev,
      () => undefined,
      undefined,
      (t) => this.loadWith(t),
    );
    if (dryRun) return ok(this.body(text, summary, undefined, preview));
    const refused = this.conflict(ifMatch, text) ?? this.refuse(text, preview);
    if (refused) return err(refused);
    const w = this.write(who, 'rollback', summary, text, prev);
    if (!w.ok) return w;
    return ok({
      ...this.body(text, summary, undefined, preview),
      applied: true,
      reload: { ok: w.value.reloadOk, message: w.value.message },
    });
  }
}
