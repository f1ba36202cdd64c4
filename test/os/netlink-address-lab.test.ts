import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { haveLab, Lab } from '../vrrp/lab-peers.js';

const MODULE = fileURLToPath(new URL('../../src/os/netlink-address.js', import.meta.url));

/** Runs changes through NetlinkAddresses inside the lab host's namespace; their outcomes. */
function inNamespace(lab: Lab, host: string, changes: object[]): { ok: boolean; error?: string }[] {
  const script = `import { NetlinkAddresses } from ${JSON.stringify(MODULE)};
const nl = NetlinkAddresses.open();
process.stdout.write(JSON.stringify(${JSON.stringify(changes)}.map((c) => nl.change(c))));
nl.close();`;
  const out = execFileSync(
    'ip',
    ['netns', 'exec', lab.ns(host), process.execPath, '--input-type=module', '-e', script],
    {
      encoding: 'utf8',
    },
  );
  return JSON.parse(out);
}

// (a secondary address in an existing subnet must have the primary's scope: hence 198.18.5.0/24)
test('rtnetlink adds and removes VIPs as `ip addr` does (IPv4 with brd/scope/label, IPv6 without DAD)', {
  skip: !haveLab,
}, async () => {
  const lab = new Lab(`kvnl${process.pid % 10000}`);
  lab.up();
  try {
    const v4 = {
      op: 'add',
      family: 4,
      address: '198.18.5.150',
      prefixLen: 24,
      dev: 'eth0',
      brd: '198.18.5.255',
      scope: 'link',
      label: 'eth0:vip',
    };
    const v6 = { op: 'add', family: 6, address: '2001:2::150', prefixLen: 64, dev: 'eth0' };
    const r = inNamespace(lab, 'lb1', [v4, v6, v4, { ...v4, dev: 'nosuch0' }]);
    assert.deepEqual(r, [{ ok: true }, { ok: true }, { ok: false, error: 'EEXIST' }, { ok: false, error: 'ENODEV' }]);
    const a4 = lab.ip('lb1', '-4', 'addr', 'show', 'dev', 'eth0');
    assert.match(a4, /inet 198\.18\.5\.150\/24 brd 198\.18\.5\.255 scope link eth0:vip/);
    const a6 = lab.ip('lb1', '-6', 'addr', 'show', 'dev', 'eth0');
    // nodad: usable at once, never "tentative"
    assert.match(a6, /inet6 2001:2::150\/64 scope global nodad/);
    assert.doesNotMatch(a6, /2001:2::150\/64[^\n]*tentative/);
    const d = inNamespace(lab, 'lb1', [
      { ...v4, op: 'del' },
      { ...v6, op: 'del' },
      { ...v6, op: 'del' },
    ]);
    assert.deepEqual(d.slice(0, 2), [{ ok: true }, { ok: true }]);
    assert.equal(d[2].ok, false); // already gone: the caller treats it as done
    assert.doesNotMatch(lab.ip('lb1', 'addr', 'show', 'dev', 'eth0'), /198\.18\.5\.150|2001:2::150/);
  } finally {
    await lab.down();
  }
});
