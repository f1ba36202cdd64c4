/**
 * Run by netlink-elements-lab.test.ts inside a lab namespace, as `node ... netlink|libnftables`:
 * one kernel plane (real libnftables; with `netlink` also the nfnetlink element writer) taken
 * through a fixed sequence of ticks. After each tick it prints one JSON line: the step, the keepvs
 * tables in canonical form (`nft -j list ruleset` without handles, sets and elements sorted), how
 * many netlink batches and libnftables transactions ran so far, and the log lines.
 */
import { execFileSync } from 'node:child_process';
import { statKeyText } from '../../../src/codec/nftables.js';
import { NftDataPlane, parseCounterSet } from '../../../src/dataplane/nft/plane.js';
import type { DestParams, ServiceKey, ServiceParams, TableOp } from '../../../src/lb/types.js';
import { LibNftables } from '../../../src/os/libnftables.js';
import { NftNetlink } from '../../../src/os/nft-netlink.js';

const mode = process.argv[2];
const logs: string[] = [];
const logger = { log: (_l: string, m: string) => void logs.push(m), child: () => logger };
const net = {
  deviceOf: async () => 'lo',
  routeDevice: async () => 'lo',
  linkMac: async () => '02:00:00:00:00:aa',
  neighbourMac: async (a: string) => `02:00:00:00:00:${Number(a.split('.').pop()).toString(16).padStart(2, '0')}`,
};
const conntrack = { list: async () => [], flushDest: async () => {} };
const elements = mode === 'netlink' ? NftNetlink.open() : null;
if (mode === 'netlink' && !elements) throw new Error('no NETLINK_NETFILTER socket');
const plane = new NftDataPlane({
  nft: new LibNftables(),
  ...(elements ? { elements } : {}),
  net,
  conntrack,
  logger,
  pollMs: 0,
  context: (id) => (id.includes('10.0.0.6') ? { localAddresses: ['10.9.0.1', '10.9.0.2'] } : undefined),
});

const tcp = (address: string, port: number, family: 4 | 6 = 4): ServiceKey => ({
  kind: 'addr',
  protocol: 'tcp',
  family,
  address,
  port,
});
const NAT = tcp('10.0.0.1', 80);
const NAT6 = tcp('2001:db8::1', 80, 6);
const DR = tcp('10.0.0.2', 80);
const PERSIST = tcp('10.0.0.3', 443);
const PINNED = tcp('10.0.0.4', 80);
const FWM: ServiceKey = { kind: 'fwmark', fwmark: 5, family: 4 };
const FNAT = tcp('10.0.0.6', 80);
const sp = (scheduler: string, extra: Partial<ServiceParams> = {}): ServiceParams => ({
  scheduler,
  schedFlags: [],
  ops: false,
  ...extra,
});
const dp = (forward: DestParams['forward'], weight: number): DestParams => ({
  forward,
  weight,
  uThreshold: 0,
  lThreshold: 0,
});
const dest = (
  key: ServiceKey,
  address: string,
  forward: DestParams['forward'],
  weight: number,
  op: 'add-dest' | 'edit-dest' = 'edit-dest',
): TableOp => ({
  op,
  key,
  dest: { address, port: key.kind === 'addr' && forward !== 'route' ? 8080 : 0 },
  params: dp(forward, weight),
});
const service = (key: ServiceKey, params: ServiceParams, forward: DestParams['forward'], rs: string[], w: number[]) => [
  { op: 'add-service', key, params } as TableOp,
  ...rs.map((a, i) => dest(key, a, forward, w[i], 'add-dest')),
];

const nft = (...args: string[]) => execFileSync('nft', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });

/** The keepvs tables in a form two ways of reaching the same state print the same. */
function canonical(): unknown {
  const doc = JSON.parse(nft('-j', 'list', 'ruleset')) as { nftables: Record<string, Record<string, unknown>>[] };
  const objects: string[] = [];
  const rules = new Map<string, string[]>();
  for (const item of doc.nftables) {
    const [kind, body] = Object.entries(item)[0];
    if (kind === 'metainfo' || body.table !== 'keepvs') continue;
    const { handle: _h, ...rest } = body;
    if (kind === 'rule') {
      const k = `${rest.family} ${rest.chain}`;
      rules.set(k, [...(rules.get(k) ?? []), JSON.stringify(rest)]);
      continue;
    }
    // an element's seconds left (`expires`, the nodest sets') depend on when it is listed
    if (Array.isArray(rest.elem))
      rest.elem = rest.elem.map((e) => JSON.stringify(e).replace(/,\\?"expires\\?":\d+/g, '')).sort();
    objects.push(`${kind} ${JSON.stringify(rest)}`);
  }
  // nft 1.0.6's JSON leaves out a rule's `update @map { ... }` statement ("stmt ops map have no json
  // callback"): each chain's rules in the nft language too
  const text = [...rules.keys()].sort().map((k) => {
    const [family, chain] = k.split(' ');
    return nft('list', 'chain', family, 'keepvs', chain)
      .split('\n')
      .filter((l) => !/^\s*(table|chain|type|\}|$)/.test(l))
      .map((l) => l.trim());
  });
  return { objects: objects.sort(), rules: [...rules].sort(([a], [b]) => a.localeCompare(b)), text };
}

const slots = 's_tcp_10_0_0_1_80_slots';
const steps: [string, () => TableOp[]][] = [
  [
    'load',
    () => [
      ...service(NAT, sp('wrr'), 'masq', ['172.16.0.1', '172.16.0.2', '172.16.0.3'], [1, 3, 2]),
      ...service(NAT6, sp('rr'), 'masq', ['2001:db8:1::1', '2001:db8:1::2'], [1, 1]),
      ...service(DR, sp('mh'), 'route', ['172.16.1.1', '172.16.1.2', '172.16.1.3'], [1, 1, 1]),
      ...service(PERSIST, sp('wrr', { persistentTimeout: 300 }), 'masq', ['172.16.2.1', '172.16.2.2'], [1, 2]),
      ...service(PINNED, sp('wrr', { flowPinTimeout: 900 }), 'route', ['172.16.3.1', '172.16.3.2'], [1, 1]),
      ...service(FWM, sp('wrr'), 'masq', ['172.16.4.1', '172.16.4.2'], [2, 1]),
      ...service(FNAT, sp('wrr'), 'fullnat', ['172.16.5.1', '172.16.5.2'], [1, 1]),
    ],
  ],
  // the wrr period changes (1:3:2 -> 5:3:2): rules' modulus and the slot map
  ['weight, new period', () => [dest(NAT, '172.16.0.1', 'masq', 5)]],
  ['quiesce', () => [dest(NAT, '172.16.0.2', 'masq', 0)]],
  ['real server down', () => [{ op: 'del-dest', key: NAT, dest: { address: '172.16.0.3', port: 8080 } }]],
  [
    'real server up',
    () => [dest(NAT, '172.16.0.7', 'masq', 4, 'add-dest'), dest(NAT, '172.16.0.8', 'masq', 1, 'add-dest')],
  ],
  // expire_nodest_conn 0 (above) lists the removed server in @nodest with drop chains: libnftables;
  // with 1 a removal is content only
  [
    'real server down, expire_nodest_conn 1',
    () => {
      plane.setOptions({ expireNodestConn: 'close' });
      return [{ op: 'del-dest', key: NAT, dest: { address: '172.16.0.8', port: 8080 } }];
    },
  ],
  [
    'one tick, every kind',
    () => [
      dest(NAT6, '2001:db8:1::1', 'masq', 3),
      dest(DR, '172.16.1.2', 'route', 0),
      // 1:2 -> 2:2: the period goes from 3 to 2 in a rule that also updates the persistence map
      dest(PERSIST, '172.16.2.1', 'masq', 2),
      dest(PINNED, '172.16.3.2', 'route', 5),
      dest(FWM, '172.16.4.2', 'masq', 3),
      dest(FNAT, '172.16.5.1', 'fullnat', 2),
    ],
  ],
  ['DR real server down', () => [{ op: 'del-dest', key: DR, dest: { address: '172.16.1.3', port: 0 } }]],
  [
    'slot map emptied behind keepvs, then a weight change',
    () => {
      nft('flush', 'map', 'ip', 'keepvs', slots);
      return [dest(NAT, '172.16.0.1', 'masq', 6)];
    },
  ],
  ['scheduler change', () => [{ op: 'edit-service', key: NAT, params: sp('rr') }]],
];

for (const [step, ops] of steps) {
  await plane.apply(ops());
  console.log(
    JSON.stringify({
      step,
      tables: canonical(),
      netlink: plane.netlinkBatches,
      transactions: plane.transactions,
      logs: logs.splice(0),
    }),
  );
}
// the counter sets as the nfnetlink dump reads them and as `nft -j list set` prints them (one
// element seeded with counts: a set of 10,000 such elements is what the plane reads each second)
if (elements) {
  nft('add', 'element', 'ip', 'keepvs', 'st_in', '{ 172.16.9.9 . tcp . 8080 counter packets 5 bytes 300 }');
  nft('add', 'element', 'ip6', 'keepvs', 'st_out', '{ 2001:db8:9::9 . udp . 53 counter packets 7 bytes 700 }');
  const sets: { netlink: unknown[]; nft: unknown[] }[] = [];
  for (const [f, set] of [
    ['ip', 'st_in'],
    ['ip', 'st_out'],
    ['ip6', 'st_out'],
  ] as const) {
    const dumped = elements.listSet(f, 'keepvs', set) ?? [];
    const sort = (a: { key: string }[]) => [...a].sort((x, y) => x.key.localeCompare(y.key));
    sets.push({
      netlink: sort(
        dumped.map((e) => ({
          key: statKeyText(e.key, f === 'ip' ? 4 : 6) ?? '?',
          packets: e.counter?.packets ?? -1,
          bytes: e.counter?.bytes ?? -1,
        })),
      ),
      nft: sort(parseCounterSet(nft('-j', 'list', 'set', f, 'keepvs', set))),
    });
  }
  console.log(JSON.stringify({ counters: sets }));
}
await plane.stop(0);
elements?.close();
