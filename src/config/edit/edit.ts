/**
 * Changes to the managed blocks and their preview: apply a change to the managed spec, render the
 * file, run it through the same loader as the daemon, and map each diagnostic to the field it is
 * about. Pure: the loader is passed in (the daemon's ConfigStore gives it the real files).
 */
import { createTwoFilesPatch } from 'diff';
import { err, ok, type Result } from '../../util/result.js';
import type { LoadResult, Severity, SourceLoc } from '../model.js';
import { managedSpecOf } from './from-model.js';
import { fieldAt, managedText, renderManaged } from './render.js';
import {
  type ManagedSpec,
  type RealServerSpec,
  realServerSpecId,
  type VirtualServerSpec,
  type VrrpInstanceSpec,
  virtualServerSpecId,
} from './spec.js';

export type ConfigChange =
  | { readonly kind: 'virtual-server'; readonly op: 'put'; readonly id?: string; readonly spec: VirtualServerSpec }
  | { readonly kind: 'virtual-server'; readonly op: 'delete'; readonly id: string }
  | {
      readonly kind: 'real-server';
      readonly op: 'put';
      readonly service: string;
      readonly id?: string;
      readonly spec: RealServerSpec;
    }
  | { readonly kind: 'real-server'; readonly op: 'delete'; readonly service: string; readonly id: string }
  | { readonly kind: 'vrrp-instance'; readonly op: 'put'; readonly name?: string; readonly spec: VrrpInstanceSpec }
  | { readonly kind: 'vrrp-instance'; readonly op: 'delete'; readonly name: string };

export interface ChangeError {
  /** HTTP status the API answers with */
  readonly status: 404 | 409;
  readonly code: 'KV_API_NOT_FOUND' | 'KV_API_EXISTS' | 'KV_API_NOT_MANAGED';
  readonly message: string;
}

/** Blocks of the operator's own files: visible, not editable through keepvs. */
export interface Unmanaged {
  readonly virtualServers: ReadonlyMap<string, SourceLoc>;
  readonly vrrpInstances: ReadonlyMap<string, SourceLoc>;
}

export interface Applied {
  readonly spec: ManagedSpec;
  /** spec path of the changed object (`virtualServers[1].realServers[0]`); absent for a delete */
  readonly target?: string;
  /** one line for the audit trail */
  readonly summary: string;
}

const where = (l: SourceLoc) => `${l.file}:${l.line}`;
const notManaged = (what: string, l: SourceLoc): ChangeError => ({
  status: 409,
  code: 'KV_API_NOT_MANAGED',
  message: `${what} is defined in ${where(l)}, not in the keepvs-managed file; edit it there`,
});
const notFound = (what: string): ChangeError => ({
  status: 404,
  code: 'KV_API_NOT_FOUND',
  message: `${what} not found`,
});
const exists = (what: string): ChangeError => ({
  status: 409,
  code: 'KV_API_EXISTS',
  message: `${what} already exists`,
});

export function applyChange(spec: ManagedSpec, change: ConfigChange, outside: Unmanaged): Result<Applied, ChangeError> {
  const vss = [...spec.virtualServers];
  const vrrps = [...spec.vrrpInstances];
  const vsIndex = (id: string) => vss.findIndex((v) => virtualServerSpecId(v) === id);
  switch (change.kind) {
    case 'virtual-server': {
      const oldId = change.id;
      const at = oldId === undefined ? -1 : vsIndex(oldId);
      if (oldId !== undefined && at < 0) {
        const l = outside.virtualServers.get(oldId);
        return err(l ? notManaged(`virtual server ${oldId}`, l) : notFound(`virtual server ${oldId}`));
      }
      if (change.op === 'delete') {
        vss.splice(at, 1);
        return ok({ spec: { virtualServers: vss, vrrpInstances: vrrps }, summary: `delete virtual server ${oldId}` });
      }
      const newId = virtualServerSpecId(change.spec);
      const clash = vsIndex(newId);
      if (clash >= 0 && clash !== at) return err(exists(`virtual server ${newId}`));
      const l = outside.virtualServers.get(newId);
      if (l) return err(notManaged(`virtual server ${newId}`, l));
      const index = at < 0 ? vss.length : at;
      vss[index] = change.spec;
      return ok({
        spec: { virtualServers: vss, vrrpInstances: vrrps },
        target: `virtualServers[${index}]`,
        summary: `${at < 0 ? 'create' : 'edit'} virtual server ${newId}`,
      });
    }
    case 'real-server': {
      const vi = vsIndex(change.service);
      if (vi < 0) {
        const l = outside.virtualServers.get(change.service);
        return err(
          l ? notManaged(`virtual server ${change.service}`, l) : notFound(`virtual server ${change.service}`),
        );
      }
      const rss = [...(vss[vi].realServers ?? [])];
      const at = change.id === undefined ? -1 : rss.findIndex((r) => realServerSpecId(r) === change.id);
      if (change.id !== undefined && at < 0) return err(notFound(`real server ${change.id} in ${change.service}`));
      if (change.op === 'delete') {
        rss.splice(at, 1);
        vss[vi] = { ...vss[vi], realServers: rss };
        return ok({
          spec: { virtualServers: vss, vrrpInstances: vrrps },
          summary: `delete real server ${change.id} from ${change.service}`,
        });
      }
      const newId = realServerSpecId(change.spec);
      const clash = rss.findIndex((r) => realServerSpecId(r) === newId);
      if (clash >= 0 && clash !== at) return err(exists(`real server ${newId} in ${change.service}`));
      const index = at < 0 ? rss.length : at;
      rss[index] = change.spec;
      vss[vi] = { ...vss[vi], realServers: rss };
      return ok({
        spec: { virtualServers: vss, vrrpInstances: vrrps },
        target: `virtualServers[${vi}].realServers[${index}]`,
        summary: `${at < 0 ? 'add' : 'edit'} real server ${newId} in ${change.service}`,
      });
    }
    case 'vrrp-instance': {
      const oldName = change.name;
      const at = oldName === undefined ? -1 : vrrps.findIndex((v) => String(v.name) === oldName);
      if (oldName !== undefined && at < 0) {
        const l = outside.vrrpInstances.get(oldName);
        return err(l ? notManaged(`vrrp_instance ${oldName}`, l) : notFound(`vrrp_instance ${oldName}`));
      }
      if (change.op === 'delete') {
        vrrps.splice(at, 1);
        return ok({ spec: { virtualServers: vss, vrrpInstances: vrrps }, summary: `delete vrrp_instance ${oldName}` });
      }
      const newName = String(change.spec.name);
      const clash = vrrps.findIndex((v) => String(v.name) === newName);
      if (clash >= 0 && clash !== at) return err(exists(`vrrp_instance ${newName}`));
      const l = outside.vrrpInstances.get(newName);
      if (l) return err(notManaged(`vrrp_instance ${newName}`, l));
      const index = at < 0 ? vrrps.length : at;
      vrrps[index] = change.spec;
      return ok({
        spec: { virtualServers: vss, vrrpInstances: vrrps },
        target: `vrrpInstances[${index}]`,
        summary: `${at < 0 ? 'create' : 'edit'} vrrp_instance ${newName}`,
      });
    }
  }
}

export interface FieldDiagnostic {
  readonly code: string;
  readonly severity: Severity;
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
  /** spec path in the managed file (`virtualServers[0].realServers[1].weight`) */
  readonly field?: string;
  /** the same path relative to the changed object (`weight`), when inside it */
  readonly targetField?: string;
}

export interface Preview {
  readonly text: string;
  readonly diff: string;
  readonly diagnostics: readonly FieldDiagnostic[];
  readonly usable: boolean;
  /** the loader read the managed file (the operator's file includes it) */
  readonly included: boolean;
  /** some of the rendered blocks did not survive the parser (ignored with a warning) */
  readonly dropped: boolean;
}

/** Blocks of `spec` the parser kept: a change must not silently vanish (e.g. KV314, KV301). */
function droppedBlocks(spec: ManagedSpec | undefined, managedFile: string, r: LoadResult): boolean {
  if (!spec || !r.config) return false;
  const back = managedSpecOf(r.config, managedFile);
  if (back.virtualServers.length !== spec.virtualServers.length) return true;
  if (back.vrrpInstances.length !== spec.vrrpInstances.length) return true;
  return spec.virtualServers.some(
    (vs, i) => (vs.realServers ?? []).length !== (back.virtualServers[i].realServers ?? []).length,
  );
}

/** Renders `next`, loads it in place of the managed file and maps the diagnostics to fields. */
export function previewText(
  managedFile: string,
  currentText: string,
  nextText: string,
  fieldOf: (line: number, col: number) => string | undefined,
  target: string | undefined,
  load: (managedText: string) => LoadResult,
  spec?: ManagedSpec,
): Preview {
  const r = load(nextText);
  const diagnostics = r.diagnostics.map((d): FieldDiagnostic => {
    const field = d.file === managedFile ? fieldOf(d.line, d.col) : undefined;
    const inside = field !== undefined && target !== undefined && (field === target || field.startsWith(`${target}.`));
    return {
      ...d,
      ...(field ? { field } : {}),
      ...(inside ? { targetField: field === target ? '' : field.slice(target.length + 1) } : {}),
    };
  });
  const included = r.config?.files.includes(managedFile) ?? false;
  const dropped = droppedBlocks(spec, managedFile, r);
  return {
    text: nextText,
    diff: unifiedDiff(managedFile, currentText, nextText),
    diagnostics,
    usable: r.usable && included && !dropped,
    included,
    dropped,
  };
}

export function previewSpec(
  managedFile: string,
  currentText: string,
  next: ManagedSpec,
  target: string | undefined,
  load: (managedText: string) => LoadResult,
): Preview {
  const lines = renderManaged(next);
  return previewText(managedFile, currentText, managedText(lines), (l, c) => fieldAt(lines, l, c), target, load, next);
}

export function unifiedDiff(file: string, before: string, after: string): string {
  return createTwoFilesPatch(file, file, before, after, 'running', 'proposed', { context: 3 });
}
