import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { expectCodes, only, parse, show } from './helpers.js';

const BLOCK = `bgp_announce {
  local_as 65001
  router_id 198.18.2.11
  neighbor 198.18.2.1 remote_as 65000 bfd
  neighbor 2001:2:0:2::1 remote_as 65000
  timers 1 3
  bfd_timers 100 3
  hold_down 10
  hold_down_max 120
  frr_dir /run/keepvs/frr
}
`;
const VS = (extra: string, head = '198.18.0.100 80') => `virtual_server ${head} {
  protocol TCP
  lvs_sched mh
  lvs_method DR
  ${extra}
  real_server 198.18.1.11 80 {
  }
}
`;

test('bgp_announce block and the virtual_server keyword: parsed into the model, KV116 for each keepvs word', () => {
  const r = parse(BLOCK + VS('bgp_announce min_healthy 2'));
  expectCodes(r, ['KV116', 'KV116']);
  const b = r.config?.bgpAnnounce;
  assert.ok(b);
  assert.equal(b.localAs, 65001);
  assert.equal(b.routerId, '198.18.2.11');
  assert.deepEqual(
    b.neighbors.map((n) => [n.address, n.family, n.remoteAs, n.bfd]),
    [
      ['198.18.2.1', 4, 65000, true],
      ['2001:2:0:2::1', 6, 65000, false],
    ],
  );
  assert.deepEqual(
    [b.keepaliveS, b.holdTimeS, b.bfdIntervalMs, b.bfdMultiplier, b.holdDownS, b.holdDownMaxS, b.frrDir],
    [1, 3, 100, 3, 10, 120, '/run/keepvs/frr'],
  );
  assert.equal(r.config?.virtualServers[0].bgpAnnounce?.minHealthy, 2);
});

test('defaults: timers 3 9, BFD 300 ms x 3, hold-down 5 s up to 60 s, min_healthy 1', () => {
  const r = parse(`bgp_announce {\n local_as 65001\n neighbor 198.18.2.1 remote_as 65000\n}\n${VS('bgp_announce')}`);
  const b = r.config?.bgpAnnounce;
  assert.deepEqual(
    [b?.keepaliveS, b?.holdTimeS, b?.bfdIntervalMs, b?.bfdMultiplier, b?.holdDownS, b?.holdDownMaxS],
    [3, 9, 300, 3, 5, 60],
  );
  assert.equal(r.config?.virtualServers[0].bgpAnnounce?.minHealthy, 1);
});

test('configurations without the keywords are untouched', () => {
  const r = parse(VS(''));
  expectCodes(r, []);
  assert.equal(r.config?.bgpAnnounce, undefined);
  assert.equal(r.config?.virtualServers[0].bgpAnnounce, undefined);
});

test('bad blocks: file:line diagnostics, the block or item dropped', () => {
  const noAs = parse('bgp_announce {\n  neighbor 198.18.2.1 remote_as 65000\n}\n');
  assert.equal(only(noAs, 'KV309').line, 1);
  assert.equal(noAs.config?.bgpAnnounce, undefined);
  const bad = parse(`bgp_announce {
  local_as 4294967296
  local_as 65001
  neighbor 198.18.2.1
  neighbor 198.18.2.300 remote_as 1
  neighbor 198.18.2.2 remote_as 65000 multihop
  timers 10 3
  bfd_timers 5 3
  router_id 2001:2::1
  frr_dir relative/dir
  hold_down 30
  hold_down_max 10
}
`);
  const at = (code: string) =>
    bad.diagnostics
      .filter((d) => d.code === code)
      .map((d) => d.line)
      .sort((a, b) => a - b);
  assert.deepEqual(at('KV201'), [2, 7, 8], bad.diagnostics.map(show).join('\n'));
  assert.deepEqual(at('KV309'), [4]);
  assert.deepEqual(at('KV204'), [5]);
  assert.deepEqual(at('KV114'), [6]);
  assert.deepEqual(at('KV312'), [9]);
  assert.deepEqual(at('KV203'), [10]);
  assert.deepEqual(at('KV211'), [1]);
  assert.deepEqual(
    bad.config?.bgpAnnounce?.neighbors.map((n) => n.address),
    ['198.18.2.2'],
  );
  assert.equal(bad.config?.bgpAnnounce?.holdDownMaxS, 30);
});

test('KV330: no block, fwmark services, no neighbor of the family; KV331: the VIP is also VRRP`s', () => {
  assert.match(only(parse(VS('bgp_announce')), 'KV330').message, /without a bgp_announce/);
  const fwm = parse(BLOCK + VS('bgp_announce', 'fwmark 7'));
  assert.match(only(fwm, 'KV330').message, /one address/);
  const v4only = 'bgp_announce {\n local_as 65001\n neighbor 198.18.2.1 remote_as 65000\n}\n';
  const v6 = parse(
    v4only +
      VS('bgp_announce', '2001:2::100 80').replace('real_server 198.18.1.11 80', 'real_server 2001:2:0:1::11 80'),
  );
  assert.match(only(v6, 'KV330').message, /no IPv6 neighbor/);
  const text = `${BLOCK}vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 51
  priority 100
  virtual_ipaddress {
    198.18.0.100/24
  }
}
${VS('bgp_announce')}`;
  const w = only(parse(text), 'KV331');
  assert.equal(w.severity, 'warning');
  assert.equal(w.line, text.split('\n').lastIndexOf('  bgp_announce') + 1);
});

test('keepvs -t reports them with file:line and keepalived`s exit status', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-bgp-t-'));
  try {
    const f = join(dir, 'keepalived.conf');
    writeFileSync(f, VS('bgp_announce'));
    const line = VS('bgp_announce').split('\n').indexOf('  bgp_announce') + 1;
    const r = spawnSync(process.execPath, ['bin/keepvs.js', '-t', '-f', f, '--no-interface-check'], {
      encoding: 'utf8',
    });
    const out = r.stdout + r.stderr;
    assert.match(out, new RegExp(`${f}:${line}:\\d+: error: .*bgp_announce without a bgp_announce .*\\[KV330\\]`));
    assert.match(out, /warning: 'bgp_announce' is a keepvs keyword .*\[KV116\]/);
    assert.notEqual(r.status, 0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
