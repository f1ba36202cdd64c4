/**
 * Config loader: preprocess (includes, parameters, conditionals, sequences) -> block tree ->
 * per-block keyword tables -> resolved, frozen Config plus every diagnostic (never stops early).
 */
import { posix as path } from 'node:path';
import { DiagnosticBag } from './diagnostics.js';
import type { ConfigFs } from './fs-port.js';
import { MemoryConfigFs } from './fs-port.js';
import { isKnownKeyword, makeCtx, runBlock, TOP_LEVEL } from './grammar/engine.js';
import { newRootDraft, ROOT } from './grammar/root.js';
import type { DataplaneCapabilities, LoadResult } from './model.js';
import { Preprocessor } from './preprocess.js';
import { resolveConfig } from './resolve.js';
import { buildTree } from './tree.js';

export { formatDiagnostic } from './format.js';
export type { ConfigFs } from './fs-port.js';
export { MemoryConfigFs } from './fs-port.js';

export interface LoadOptions {
  /** `-i/--config-id`: selects `@id` lines; the CLI passes the host name's first label by default */
  readonly configId?: string;
  readonly fs: ConfigFs;
  /** for ${_ENV NAME} */
  readonly env?: Record<string, string>;
  /** random source for ${_RANDOM}; deterministic when absent */
  readonly random?: () => number;
  /** cap on logical lines after ~SEQ/~LST and macro expansion (default 1,000,000) */
  readonly maxLines?: number;
  /** the data plane that will run this config: services it cannot forward are KV315 errors */
  readonly dataplane?: DataplaneCapabilities;
}

function run(pre: Preprocessor, bag: DiagnosticBag, plane?: DataplaneCapabilities): LoadResult {
  const tree = buildTree(pre.lines, bag, isKnownKeyword);
  const ctx = makeCtx(bag);
  const draft = newRootDraft();
  runBlock(tree, ROOT, draft, ctx, TOP_LEVEL);
  const config = resolveConfig(draft, pre.files, ctx, plane);
  const unknownTopLevelBlocks = tree
    .filter((n) => n.children && !ROOT.has(n.keyword.text))
    .map((n) => ({ keyword: n.keyword.text, loc: n.loc }));
  return { config, diagnostics: bag.items, usable: !bag.hasErrors(), unknownTopLevelBlocks };
}

/** Loads a keepalived.conf (path absolute or relative to the fs's working directory) and everything it includes. */
export function loadConfig(file: string, options: LoadOptions): LoadResult {
  const bag = new DiagnosticBag();
  const abs = path.resolve('/', file);
  const pre = new Preprocessor({ ...options, bag });
  pre.processFile(abs);
  if (pre.files.length === 0) return { diagnostics: bag.items, usable: false };
  return run(pre, bag, options.dataplane);
}

/** Parses config text; includes are resolved through options.fs (an empty in-memory fs when absent). */
export function parseConfigText(text: string, file: string, options: Partial<LoadOptions> = {}): LoadResult {
  const bag = new DiagnosticBag();
  const pre = new Preprocessor({ ...options, fs: options.fs ?? new MemoryConfigFs(), bag });
  pre.processText(text, path.resolve('/', file));
  return run(pre, bag, options.dataplane);
}
