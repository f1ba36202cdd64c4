/**
 * keepvs block (keepalived has no such block): `bgp_announce { local_as N; router_id A.B.C.D;
 * neighbor ADDR remote_as N [bfd]; timers KEEPALIVE HOLD; bfd_timers MS MULT; hold_down S;
 * hold_down_max S; frr_dir PATH }`. keepvs drives FRR's bgpd with it to announce the VIPs of the
 * virtual servers marked `bgp_announce` (docs/scale-out.md).
 */
import type { BgpAnnounce, BgpNeighbor } from '../model.js';
import type { Node } from '../tree.js';
import {
  arg,
  type Ctx,
  intArg,
  ipWord,
  type Mutable,
  noExtra,
  parseIntWord,
  runBlock,
  table,
  timerArg,
  value,
} from './engine.js';

const MAX_ASN = 4294967295;

type Draft = Partial<Mutable<Omit<BgpAnnounce, 'neighbors'>>> & { neighbors: BgpNeighbor[] };

function parseNeighbor(n: Node, d: Draft, c: Ctx): void {
  const a = arg(n, 0, c, 'a neighbor address');
  const ip = a && ipWord(a, c, 'neighbor');
  if (!ip) return;
  let remoteAs: number | undefined;
  let bfd = false;
  for (let i = 1; i < n.args.length; i++) {
    const w = n.args[i];
    if (w.text === 'bfd') bfd = true;
    else if (w.text === 'remote_as') {
      const v = n.args[++i];
      if (!v) c.report('KV113', w.loc, "'remote_as' needs an AS number");
      else remoteAs = parseIntWord(v, 1, MAX_ASN, c, 'remote_as');
    } else c.report('KV114', w.loc, `neighbor ${ip.address}: '${w.text}' is not remote_as N or bfd; ignored`);
  }
  if (remoteAs === undefined) {
    if (!n.args.some((w) => w.text === 'remote_as'))
      c.report('KV309', n.loc, `neighbor ${ip.address} needs remote_as N; ignored`);
    return;
  }
  if (d.neighbors.some((x) => x.address === ip.address))
    return void c.report('KV114', n.loc, `neighbor ${ip.address} is listed twice; the second is ignored`);
  d.neighbors.push({ address: ip.address, family: ip.family, remoteAs, bfd, loc: n.loc });
}

export const BGP_ANNOUNCE = table<Draft>([
  ['local_as', value((n, d, c) => (d.localAs = intArg(n, c, 1, MAX_ASN) ?? d.localAs))],
  [
    'router_id',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'an IPv4 router id');
      const ip = w && ipWord(w, c, 'router_id');
      noExtra(n, 1, c);
      if (ip && ip.family !== 4) c.report('KV312', n.loc, 'router_id is an IPv4 address (a 32-bit BGP identifier)');
      else if (ip) d.routerId = ip.address;
    }),
  ],
  ['neighbor', value(parseNeighbor, { repeatable: true })],
  [
    'timers',
    value((n, d, c) => {
      const k = arg(n, 0, c, 'KEEPALIVE HOLD (seconds)');
      const h = arg(n, 1, c, 'a hold time (seconds)');
      noExtra(n, 2, c);
      const keepalive = k && parseIntWord(k, 1, 21845, c, 'timers keepalive');
      const hold = h && parseIntWord(h, 3, 65535, c, 'timers hold time');
      if (keepalive === undefined || hold === undefined) return;
      // RFC 4271 §10: the keepalive is about a third of the hold time; more than the hold time never works
      if (keepalive > hold) return void c.report('KV201', n.loc, `timers: keepalive ${keepalive} exceeds hold ${hold}`);
      d.keepaliveS = keepalive;
      d.holdTimeS = hold;
    }),
  ],
  [
    'bfd_timers',
    value((n, d, c) => {
      const i = arg(n, 0, c, 'INTERVAL_MS MULTIPLIER');
      const m = arg(n, 1, c, 'a detect multiplier');
      noExtra(n, 2, c);
      const interval = i && parseIntWord(i, 10, 60000, c, 'bfd_timers interval (ms)');
      const mult = m && parseIntWord(m, 2, 255, c, 'bfd_timers multiplier');
      if (interval !== undefined && mult !== undefined) {
        d.bfdIntervalMs = interval;
        d.bfdMultiplier = mult;
      }
    }),
  ],
  ['hold_down', value((n, d, c) => (d.holdDownS = timerArg(n, c, 0, 3600) ?? d.holdDownS))],
  ['hold_down_max', value((n, d, c) => (d.holdDownMaxS = timerArg(n, c, 0, 86400) ?? d.holdDownMaxS))],
  [
    'frr_dir',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'a directory');
      noExtra(n, 1, c);
      if (!w) return;
      if (!w.text.startsWith('/') || w.text.includes('\0'))
        return void c.report('KV203', w.loc, `frr_dir: '${w.text}' is not an absolute path`);
      d.frrDir = w.text;
    }),
  ],
]);

export function parseBgpAnnounce(node: Node, ctx: Ctx): BgpAnnounce | undefined {
  ctx.report('KV116', node.loc, "'bgp_announce' is a keepvs block (keepalived would report it as unknown)");
  if (node.args.length) ctx.report('KV114', node.args[0].loc, "'bgp_announce' takes no name; extra words ignored");
  const d: Draft = { neighbors: [] };
  runBlock(node.children ?? [], BGP_ANNOUNCE, d, ctx, 'bgp_announce');
  if (d.localAs === undefined) return void ctx.report('KV309', node.loc, 'bgp_announce needs local_as N; ignored');
  if (d.neighbors.length === 0)
    return void ctx.report('KV309', node.loc, 'bgp_announce needs at least one neighbor; ignored');
  const holdDownS = d.holdDownS ?? 5;
  let holdDownMaxS = d.holdDownMaxS ?? Math.max(60, holdDownS);
  if (holdDownMaxS < holdDownS) {
    ctx.repair('KV211', node.loc, `hold_down_max ${holdDownMaxS} is below hold_down ${holdDownS}; set to ${holdDownS}`);
    holdDownMaxS = holdDownS;
  }
  return {
    localAs: d.localAs,
    ...(d.routerId ? { routerId: d.routerId } : {}),
    neighbors: d.neighbors,
    keepaliveS: d.keepaliveS ?? 3,
    holdTimeS: d.holdTimeS ?? 9,
    bfdIntervalMs: d.bfdIntervalMs ?? 300,
    bfdMultiplier: d.bfdMultiplier ?? 3,
    holdDownS,
    holdDownMaxS,
    ...(d.frrDir ? { frrDir: d.frrDir } : {}),
    loc: node.loc,
  };
}

/** The virtual_server keyword `bgp_announce [min_healthy N]` (default 1). */
export function parseVsBgpAnnounce(n: Node, ctx: Ctx): { minHealthy: number; loc: Node['loc'] } | undefined {
  ctx.report('KV116', n.loc, "'bgp_announce' is a keepvs keyword (keepalived would report it as unknown)");
  let minHealthy = 1;
  for (let i = 0; i < n.args.length; i++) {
    const w = n.args[i];
    if (w.text !== 'min_healthy') {
      ctx.report('KV114', w.loc, `bgp_announce: '${w.text}' is not min_healthy N; ignored`);
      continue;
    }
    const v = n.args[++i];
    if (!v) return void ctx.report('KV113', w.loc, "'min_healthy' needs a number");
    const m = parseIntWord(v, 1, 65535, ctx, 'min_healthy');
    if (m === undefined) return undefined;
    minHealthy = m;
  }
  return { minHealthy, loc: n.loc };
}
