/**
 * Loading keepalived.conf: preprocess -> statement tree -> per-block keyword tables -> one frozen
 * Config plus every diagnostic found (never stopping at the first).
 */
import { DiagnosticSink } from './diagnostics.js';
import { parseIpAddressBlock, parseRouteBlock, parseRuleBlock } from './grammar/addresses.js';
import { applyTable, argAt, type Ctx, type KeywordTable, unsupported } from './grammar/common.js';
import { defaultGlobalDefs, type GlobalBuilder, globalDefsTable } from './grammar/global.js';
import { parseSyncGroup } from './grammar/sync-group.js';
import { parseTrackFile, parseTrackProcess, parseVrrpScript } from './grammar/trackers.js';
import { parseVirtualServer, parseVirtualServerGroup } from './grammar/virtual-server.js';
import { parseVrrpInstance } from './grammar/vrrp-instance.js';
import { type Node, parseTree } from './lexer.js';
import type {
  Config,
  LoadResult,
  SyncGroup,
  TrackFile,
  TrackProcess,
  VirtualServer,
  VirtualServerGroup,
  VrrpInstance,
  VrrpScript,
} from './model.js';
import { type ConfigFs, Preprocessor } from './preprocess.js';
import { validateReferences } from './validate.js';

export { formatDiagnostic } from './diagnostics.js';
export type { ConfigFs } from './preprocess.js';

export interface LoadOptions {
  readonly fs: ConfigFs;
  /** `-i/--config-id`; default: the host name's first label */
  readonly configId?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly random?: () => number;
}

interface RootBuilder {
  globalDefs: GlobalBuilder;
  globalNode?: Node;
  staticIpaddresses: Config['staticIpaddresses'][number][];
  staticRoutes: Config['staticRoutes'][number][];
  staticRules: Config['staticRules'][number][];
  vrrpScriptNodes: Node[];
  trackFileNodes: Node[];
  trackProcessNodes: Node[];
  syncGroupNodes: Node[];
  instanceNodes: Node[];
  vsgNodes: Node[];
  vsNodes: Node[];
}

const rootTable: KeywordTable<RootBuilder> = {
  global_defs: { block: true, handle: (n, _c, r) => void (r.globalNode = n) },
  static_ipaddress: { block: true, handle: (n, c, r) => void r.staticIpaddresses.push(...parseIpAddressBlock(n, c)) },
  static_routes: { block: true, handle: (n, c, r) => void r.staticRoutes.push(...parseRouteBlock(n, c)) },
  static_rules: { block: true, handle: (n, c, r) => void r.staticRules.push(...parseRuleBlock(n, c)) },
  vrrp_script: { block: true, handle: (n, _c, r) => void r.vrrpScriptNodes.push(n) },
  track_file: { block: true, handle: (n, _c, r) => void r.trackFileNodes.push(n) },
  vrrp_track_file: { block: true, deprecated: 'track_file', handle: (n, _c, r) => void r.trackFileNodes.push(n) },
  vrrp_track_process: { block: true, handle: (n, _c, r) => void r.trackProcessNodes.push(n) },
  vrrp_sync_group: { block: true, handle: (n, _c, r) => void r.syncGroupNodes.push(n) },
  vrrp_instance: { block: true, handle: (n, _c, r) => void r.instanceNodes.push(n) },
  virtual_server_group: { block: true, handle: (n, _c, r) => void r.vsgNodes.push(n) },
  virtual_server: { handle: (n, _c, r) => void r.vsNodes.push(n), block: true },
  ...unsupported<RootBuilder>('BFD is not implemented', 'bfd_instance'),
  ...unsupported<RootBuilder>(
    'not implemented yet',
    'net_namespace',
    'net_namespace_ipvs',
    'namespace_with_ipsets',
    'instance',
    'use_pid_dir',
    'linkbeat_use_polling',
    'child_wait_time',
    'linkbeat_interfaces',
    'interface_up_down_delays',
    'track_group',
    'garp_group',
    'SSL',
  ),
};

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function collect<T extends { name: string; loc: { file: string; line: number } }>(
  nodes: Node[],
  parse: (n: Node) => T | undefined,
  ctx: Ctx,
  what: string,
): T[] {
  const out: T[] = [];
  const names = new Map<string, T>();
  for (const n of nodes) {
    const v = parse(n);
    if (!v) continue;
    const prev = names.get(v.name);
    if (prev) {
      ctx.diag.report('KV304', n.loc, `${what} '${v.name}' is already defined at ${prev.loc.file}:${prev.loc.line}`);
      continue;
    }
    names.set(v.name, v);
    out.push(v);
  }
  return out;
}

/** Parses config text as if it were the file `file`; includes are read through opts.fs. */
export function parseConfigText(text: string, file: string, opts: LoadOptions): LoadResult {
  return load(file, text, opts);
}

export function loadConfig(path: string, opts: LoadOptions): LoadResult {
  return load(path, undefined, opts);
}

function load(path: string, text: string | undefined, opts: LoadOptions): LoadResult {
  const diag = new DiagnosticSink();
  const pre = new Preprocessor(opts.fs, diag, {
    configId: opts.configId ?? 'keepvs',
    env: opts.env ?? {},
    ...(opts.random ? { random: opts.random } : {}),
  });
  const lines = pre.run(path, text);
  if (pre.files.length === 0) return { diagnostics: diag.items, usable: false };
  const tree = parseTree(lines, diag);
  const root: RootBuilder = {
    globalDefs: defaultGlobalDefs(),
    staticIpaddresses: [],
    staticRoutes: [],
    staticRules: [],
    vrrpScriptNodes: [],
    trackFileNodes: [],
    trackProcessNodes: [],
    syncGroupNodes: [],
    instanceNodes: [],
    vsgNodes: [],
    vsNodes: [],
  };
  const base: Ctx = { diag };
  applyTable(tree, rootTable, root, base, 'the top level');
  if (root.globalNode) applyTable(root.globalNode.children, globalDefsTable, root.globalDefs, base, 'global_defs');
  const ctx: Ctx = { diag, ...(root.globalDefs.scriptUser ? { scriptUser: root.globalDefs.scriptUser } : {}) };
  const g = root.globalDefs;
  const vrrpScripts: VrrpScript[] = collect(root.vrrpScriptNodes, (n) => parseVrrpScript(n, ctx), ctx, 'vrrp_script');
  const trackFiles: TrackFile[] = collect(root.trackFileNodes, (n) => parseTrackFile(n, ctx), ctx, 'track_file');
  const trackProcesses: TrackProcess[] = collect(
    root.trackProcessNodes,
    (n) => parseTrackProcess(n, ctx),
    ctx,
    'vrrp_track_process',
  );
  const syncGroups: SyncGroup[] = collect(root.syncGroupNodes, (n) => parseSyncGroup(n, ctx), ctx, 'vrrp_sync_group');
  const vrrpInstances: VrrpInstance[] = collect(
    root.instanceNodes,
    (n) => parseVrrpInstance(n, ctx, g),
    ctx,
    'vrrp_instance',
  );
  const virtualServerGroups: VirtualServerGroup[] = collect(
    root.vsgNodes,
    (n) => parseVirtualServerGroup(n, ctx),
    ctx,
    'virtual_server_group',
  );
  const virtualServers: VirtualServer[] = [];
  for (const n of root.vsNodes) {
    const vs = parseVirtualServer(n, ctx);
    if (vs) virtualServers.push(vs);
  }
  const config: Config = {
    files: pre.files,
    globalDefs: g,
    staticIpaddresses: root.staticIpaddresses,
    staticRoutes: root.staticRoutes,
    staticRules: root.staticRules,
    vrrpScripts,
    trackFiles,
    trackProcesses,
    syncGroups,
    vrrpInstances,
    virtualServerGroups,
    virtualServers,
  };
  validateReferences(config, diag);
  void argAt;
  return { config: deepFreeze(config), diagnostics: diag.items, usable: !diag.hasErrors() };
}
