import assert from 'node:assert/strict';
import { test } from 'node:test';
import { desiredTable } from '../../src/lb/desired.js';
import { cfg, expectCodes, parse } from './helpers.js';

const KERNEL = { dataplane: { name: 'nft', kernel: true, tun: true } } as const;
const vs = (extra: string, method = 'DR') =>
  `virtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_sched mh\n lvs_method ${method}\n${extra} real_server 10.0.1.1 80 {\n }\n}\n`;

test('flow_pinning: a keepvs keyword with an optional idle timeout (default 900 s) reaching the service params', () => {
  expectCodes(parse(vs(' flow_pinning\n'), KERNEL), ['KV116']);
  const c = cfg(vs(' flow_pinning 120\n'));
  assert.equal(c.virtualServers[0].flowPinning?.timeoutS, 120);
  assert.equal(cfg(vs(' flow_pinning\n')).virtualServers[0].flowPinning?.timeoutS, 900);
  const t = desiredTable(c, undefined);
  assert.equal(t.services[0].params.flowPinTimeout, 120);
  assert.equal(desiredTable(cfg(vs('')), undefined).services[0].params.flowPinTimeout, undefined);
});

test('flow_pinning: bad timeouts are errors with their line; no effect outside DR (KV333)', () => {
  expectCodes(parse(vs(' flow_pinning 0\n')), ['KV116', 'KV201']);
  expectCodes(parse(vs(' flow_pinning soon\n')), ['KV116', 'KV200']);
  expectCodes(parse(vs(' flow_pinning 60 extra\n')), ['KV116', 'KV114']);
  expectCodes(parse(vs(' flow_pinning\n', 'NAT'), KERNEL), ['KV116', 'KV333']);
  expectCodes(parse(vs(' flow_pinning\n persistence_timeout 60\n'), KERNEL), ['KV116', 'KV333']);
});
