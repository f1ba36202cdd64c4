import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRealserverArgs, type RealserverArgs, runRealserver } from '../../src/cli/realserver.js';
import type { RealserverSystem } from '../../src/os/realserver-system.js';

class FakeSystem implements RealserverSystem {
  lo = new Set<string>(['127.0.0.1', '::1']);
  sysctl = new Map<string, string>([
    ['net.ipv4.conf.all.arp_ignore', '0'],
    ['net.ipv4.conf.all.arp_announce', '0'],
    ['net.ipv4.conf.lo.arp_ignore', '0'],
    ['net.ipv4.conf.lo.arp_announce', '0'],
    ['net.ipv4.conf.all.rp_filter', '1'],
    ['net.ipv4.conf.eth0.rp_filter', '0'],
  ]);
  decap = new Map<string, { id: number; vips: readonly string[] }>();
  qdiscs = new Set<string>();
  nftTables = new Set<string>();
  state: string | undefined;
  nextId = 100;
  async addresses(): Promise<string[]> {
    return [...this.lo];
  }
  async addAddress(_dev: string, cidr: string): Promise<void> {
    this.lo.add(cidr.split('/')[0]);
  }
  async delAddress(_dev: string, cidr: string): Promise<void> {
    this.lo.delete(cidr.split('/')[0]);
  }
  readSysctl(key: string): string | undefined {
    return this.sysctl.get(key);
  }
  writeSysctl(key: string, value: string): void {
    this.sysctl.set(key, value);
  }
  upInterfaces(): string[] {
    return ['eth0'];
  }
  attachDecap(vips: readonly string[], ifnames: readonly string[]) {
    const id = this.nextId++;
    return ifnames.map((ifname) => {
      const createdQdisc = !this.qdiscs.has(ifname);
      this.qdiscs.add(ifname);
      this.decap.set(ifname, { id, vips });
      return { ifname, progId: id, createdQdisc };
    });
  }
  decapProgId(ifname: string): number | undefined {
    return this.decap.get(ifname)?.id;
  }
  detachDecap(ifname: string): boolean {
    return this.decap.delete(ifname);
  }
  async removeQdiscIfEmpty(ifname: string): Promise<boolean> {
    return this.qdiscs.delete(ifname);
  }
  async nft(script: string): Promise<void> {
    const m = /^delete table inet (\S+)/.exec(script);
    if (m) this.nftTables.delete(m[1]);
    else this.nftTables.add('keepvs_realserver');
  }
  async nftTableExists(_f: string, name: string): Promise<boolean> {
    return this.nftTables.has(name);
  }
  readState(): string | undefined {
    return this.state;
  }
  writeState(text: string): void {
    this.state = text;
  }
  removeState(): void {
    this.state = undefined;
  }
  footprint(): string {
    return JSON.stringify([
      [...this.lo].sort(),
      [...this.sysctl],
      [...this.decap],
      [...this.qdiscs],
      [...this.nftTables],
    ]);
  }
}

const args = (argv: string[]): RealserverArgs => {
  const a = parseRealserverArgs(argv);
  assert.ok(typeof a !== 'string', String(a));
  return a;
};
async function run(sys: FakeSystem, argv: string[]): Promise<{ code: number; out: string[] }> {
  const out: string[] = [];
  const code = await runRealserver(args(argv), sys, (l) => out.push(l));
  return { code, out };
}

test('realserver arguments: actions, addresses, interfaces and sizes are checked', () => {
  assert.match(String(parseRealserverArgs([])), /start, stop or status/);
  assert.match(String(parseRealserverArgs(['start'])), /at least one --vip/);
  assert.match(String(parseRealserverArgs(['start', '--vip', '198.18.0'])), /not an IP address/);
  assert.match(String(parseRealserverArgs(['start', '--vip', '10.0.0.1', '--dev', 'eth0'])), /only apply with --tun/);
  assert.match(String(parseRealserverArgs(['start', '--vip', '10.0.0.1', '--mss', '100'])), /between 536/);
  assert.match(String(parseRealserverArgs(['start', '--vip', '10.0.0.1', '--state', 'rel.json'])), /absolute/);
  assert.match(String(parseRealserverArgs(['start', '--vip', '10.0.0.1', '--tun', '--dev', '../x'])), /bad interface/);
  const a = args(['start', '--vip=2001:db8:0::1,10.0.0.1', '--vip', '10.0.0.1', '--tun']);
  assert.deepEqual(a.vips, ['2001:db8::1', '10.0.0.1']);
  assert.equal(a.tun, true);
});

test('start is idempotent, stop restores exactly the prior state', async () => {
  const sys = new FakeSystem();
  const before = sys.footprint();
  const first = await run(sys, ['start', '--vip', '198.18.0.100', '--vip', '2001:2::100', '--tun', '--mss', '1440']);
  assert.equal(first.code, 0);
  assert.ok(sys.lo.has('198.18.0.100') && sys.lo.has('2001:2::100'));
  assert.equal(sys.sysctl.get('net.ipv4.conf.all.arp_ignore'), '1');
  assert.equal(sys.sysctl.get('net.ipv4.conf.lo.arp_announce'), '2');
  assert.equal(sys.sysctl.get('net.ipv4.conf.all.rp_filter'), '2');
  assert.deepEqual(sys.decap.get('eth0')?.vips, ['198.18.0.100', '2001:2::100']);
  assert.ok(sys.nftTables.has('keepvs_realserver'));
  const mid = sys.footprint();
  const second = await run(sys, ['start', '--vip', '198.18.0.100', '--vip', '2001:2::100', '--tun', '--mss', '1440']);
  assert.deepEqual(second.out, ['realserver: started']);
  assert.equal(sys.footprint(), mid);
  assert.equal((await run(sys, ['status'])).code, 0);
  const stop = await run(sys, ['stop']);
  assert.equal(stop.code, 0);
  assert.equal(sys.footprint(), before);
  assert.equal(sys.state, undefined);
  assert.match((await run(sys, ['stop'])).out.join(), /nothing to undo/);
});

test('stop leaves what was there before start, and what was changed again since', async () => {
  const sys = new FakeSystem();
  sys.lo.add('198.18.0.100');
  sys.sysctl.set('net.ipv4.conf.all.arp_ignore', '2');
  await run(sys, ['start', '--vip', '198.18.0.100']);
  assert.equal(sys.sysctl.get('net.ipv4.conf.all.arp_ignore'), '2', 'a stricter value is kept');
  sys.sysctl.set('net.ipv4.conf.lo.arp_ignore', '8');
  const stop = await run(sys, ['stop']);
  assert.ok(sys.lo.has('198.18.0.100'), 'the VIP was not added by start');
  assert.equal(sys.sysctl.get('net.ipv4.conf.lo.arp_ignore'), '8');
  assert.match(stop.out.join('\n'), /left net\.ipv4\.conf\.lo\.arp_ignore = 8: changed since start set 1/);
  assert.equal(sys.sysctl.get('net.ipv4.conf.lo.arp_announce'), '0');
});

test('a second start with another VIP reloads the decapsulation for all of them; status names what is missing', async () => {
  const sys = new FakeSystem();
  await run(sys, ['start', '--vip', '198.18.0.100', '--tun']);
  const first = sys.decapProgId('eth0');
  await run(sys, ['start', '--vip', '198.18.0.101', '--tun']);
  assert.notEqual(sys.decapProgId('eth0'), first);
  assert.deepEqual(sys.decap.get('eth0')?.vips, ['198.18.0.100', '198.18.0.101']);
  sys.decap.delete('eth0');
  sys.lo.delete('198.18.0.101');
  const st = await run(sys, ['status']);
  assert.equal(st.code, 1);
  assert.ok(st.out.includes('MISSING 198.18.0.101/32 on lo'));
  assert.ok(st.out.includes('MISSING decapsulation on eth0'));
  assert.equal(st.out.at(-1), 'realserver: 2 missing');
  // start repairs it
  await run(sys, ['start', '--vip', '198.18.0.101', '--tun']);
  assert.equal((await run(sys, ['status'])).code, 0);
  await run(sys, ['stop']);
  assert.ok(!sys.lo.has('198.18.0.101') && !sys.lo.has('198.18.0.100'));
  assert.equal(sys.qdiscs.size, 0);
});

test('a state file that keepvs did not write is refused', async () => {
  const sys = new FakeSystem();
  sys.state = '{"hello": 1}';
  await assert.rejects(run(sys, ['stop']), /not one keepvs realserver wrote/);
});
