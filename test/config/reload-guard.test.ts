import assert from 'node:assert/strict';
import { test } from 'node:test';
import { reloadRefusal } from '../../src/config/reload-guard.js';
import { cfg, parse } from './helpers.js';

const vs = (kw: string, port: number) =>
  `${kw} 10.0.0.1 ${port} {\n protocol TCP\n real_server 10.0.1.1 ${port} {\n }\n}\n`;
const vi = (kw: string, name: string) =>
  `${kw} ${name} {\n interface lo\n virtual_router_id 51\n priority 100\n virtual_ipaddress {\n  10.0.0.9\n }\n}\n`;

test('a typo in a block name that would delete a virtual server or VRRP instance refuses the reload', () => {
  const running = cfg(vs('virtual_server', 80) + vs('virtual_server', 81) + vi('vrrp_instance', 'VI_1'));
  const typoVs = parse(vs('virtual_server', 80) + vs('virtuad_server', 81) + vi('vrrp_instance', 'VI_1'));
  assert.equal(typoVs.usable, true, 'an unknown keyword is only a warning, as in keepalived');
  const r = reloadRefusal(running, typoVs);
  assert.ok(r);
  assert.deepEqual(r.removed, ['virtual_server [TCP]10.0.0.1:81']);
  assert.deepEqual(r.unknownBlocks, ["/etc/keepalived/keepalived.conf:6:1: 'virtuad_server'"]);
  assert.match(r.message, /^Reload refused: .*keepvs --force-reload$/);
  const typoVi = reloadRefusal(
    running,
    parse(vs('virtual_server', 80) + vs('virtual_server', 81) + vi('vrrp_instanse', 'VI_1')),
  );
  assert.deepEqual(typoVi?.removed, ['vrrp_instance VI_1']);
});

test('the guard lets through removals without unknown blocks, and unknown blocks that remove nothing', () => {
  const running = cfg(vs('virtual_server', 80) + vs('virtual_server', 81));
  assert.equal(reloadRefusal(running, parse(vs('virtual_server', 80))), undefined, 'a deliberate removal');
  assert.equal(
    reloadRefusal(
      running,
      parse(`${vs('virtual_server', 80) + vs('virtual_server', 81)}globl_defs {\n router_id x\n}\n`),
    ),
    undefined,
    'nothing removed',
  );
  // an unknown value keyword at the top level is not a block
  assert.equal(reloadRefusal(running, parse(`${vs('virtual_server', 80)}virtuad_server\n`)), undefined);
});
