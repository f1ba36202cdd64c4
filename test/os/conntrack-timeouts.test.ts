import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parseConntrackLine } from '../../src/os/conntrack.js';
import { ctIdleSeconds, readCtTimeouts } from '../../src/os/conntrack-timeouts.js';

test("conntrack timeouts from the sysctls (the kernel's defaults where one is missing); an entry's idle time", () => {
  const dir = mkdtempSync(join(tmpdir(), 'kv-ctt-'));
  writeFileSync(join(dir, 'nf_conntrack_tcp_timeout_established'), '7200\n');
  writeFileSync(join(dir, 'nf_conntrack_udp_timeout_stream'), '180\n');
  const t = readCtTimeouts(dir);
  rmSync(dir, { recursive: true });
  assert.equal(t.tcp.ESTABLISHED, 7200);
  assert.equal(t.tcp.TIME_WAIT, 120);
  assert.equal(t.udpStream, 180);
  assert.equal(t.udp, 30);
  const e = (s: string) =>
    parseConntrackLine(
      `ipv4 2 ${s} src=198.18.0.10 dst=198.18.0.100 sport=40000 dport=80 src=198.18.1.11 dst=198.18.0.10 sport=80 dport=40000 mark=0 zone=0 use=2`,
    ) ?? assert.fail(s);
  assert.equal(ctIdleSeconds(e('tcp 6 7000 ESTABLISHED'), t), 200);
  assert.equal(ctIdleSeconds(e('tcp 6 100 TIME_WAIT'), t), 20);
  // with data not acknowledged yet the entry has the shorter timeout: taken for active 200 s ago, not 7100
  assert.equal(ctIdleSeconds(e('tcp 6 100 ESTABLISHED'), t), 200);
  assert.equal(ctIdleSeconds(e('udp 17 170'), t), 10);
  assert.equal(ctIdleSeconds(e('udp 17 25'), t), 5);
  assert.equal(ctIdleSeconds(e('sctp 132 25 ESTABLISHED'), t), null);
});
