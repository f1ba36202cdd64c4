/**
 * Scrapes /metrics from a running daemon and checks every series against docs/metrics.md (name,
 * # TYPE, label names), both ways, and the exporter series against the names and labels their
 * sources use (mehdy/keepalived-exporter collector.go, gen2brain/keepalived_exporter collector.go,
 * node_exporter collector/ipvs_linux.go), so that a typo in the doc fails too.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type http from 'node:http';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { type DaemonUnderTest, freePort, get, httpRealServer, startDaemon, until } from '../e2e/harness.js';

interface Row {
  readonly type: string;
  readonly labels: readonly string[];
}

function documented(): Map<string, Row> {
  const rows = new Map<string, Row>();
  for (const line of readFileSync(join(process.cwd(), 'docs', 'metrics.md'), 'utf8').split('\n')) {
    const m = /^\| `([a-z_]+)` \| (gauge|counter) \| ([^|]*) \|/.exec(line);
    if (!m) continue;
    const labels = [...m[3].matchAll(/`([a-z_]+)`/g)].map((x) => x[1]);
    assert.ok(!rows.has(m[1]), `${m[1]} documented twice`);
    rows.set(m[1], { type: m[2], labels });
  }
  return rows;
}

// the exporters' own names, types and labels, as their sources declare them
const vrrpCommon = ['iname', 'intf', 'vrid'];
const perVip = ['iname', 'intf', 'vrid', 'ip_address'];
const ipvsBackend = ['local_address', 'local_port', 'remote_address', 'remote_port', 'proto', 'local_mark'];
const EXPORTERS: Record<string, Row> = {
  keepalived_up: { type: 'gauge', labels: [] },
  keepalived_vrrp_state: { type: 'gauge', labels: perVip },
  keepalived_vrrp_excluded_state: { type: 'gauge', labels: perVip },
  keepalived_script_status: { type: 'gauge', labels: ['name'] },
  keepalived_script_state: { type: 'gauge', labels: ['name'] },
  ...Object.fromEntries(
    [
      'advertisements_received',
      'advertisements_sent',
      'become_master',
      'release_master',
      'packet_length_errors',
      'advertisements_interval_errors',
      'ip_ttl_errors',
      'invalid_type_received',
      'address_list_errors',
      'authentication_invalid',
      'authentication_mismatch',
      'authentication_failure',
      'priority_zero_received',
      'priority_zero_sent',
    ].map((n) => [`keepalived_${n}_total`, { type: 'counter', labels: vrrpCommon }]),
  ),
  ...Object.fromEntries(
    ['vip', 'rs'].flatMap((w) =>
      ['in_packets', 'out_packets', 'in_bytes', 'out_bytes', 'conn'].map((n) => [
        `keepalived_lvs_${w}_${n}`,
        { type: 'counter', labels: ['addr', 'proto'] },
      ]),
    ),
  ),
  ...Object.fromEntries(
    ['connections', 'incoming_packets', 'outgoing_packets', 'incoming_bytes', 'outgoing_bytes'].map((n) => [
      `node_ipvs_${n}_total`,
      { type: 'counter', labels: [] },
    ]),
  ),
  node_ipvs_backend_connections_active: { type: 'gauge', labels: ipvsBackend },
  node_ipvs_backend_connections_inactive: { type: 'gauge', labels: ipvsBackend },
  node_ipvs_backend_weight: { type: 'gauge', labels: ipvsBackend },
};

/** `# TYPE` lines and the label names of each sample, per series */
function parse(text: string) {
  const types = new Map<string, string>();
  const samples = new Map<string, Set<string>>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (t) types.set(t[1], t[2]);
    if (!line || line.startsWith('#')) continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(s, `unparsable sample line: ${line}`);
    const names = [...(s[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="(?:[^"\\]|\\.)*"/g)].map((x) => x[1]);
    const set = samples.get(s[1]) ?? new Set<string>();
    set.add(names.join(','));
    samples.set(s[1], set);
  }
  return { types, samples };
}

let rs: http.Server;
let d: DaemonUnderTest;

before(async () => {
  const rsPort = await freePort();
  const vipPort = await freePort();
  rs = await httpRealServer(rsPort, 'rs');
  // the VRRP instance is on an interface this host lacks: it is listed (and its series emitted)
  // without any address or advert ever touching the host's interfaces
  const conf = `global_defs {
  router_id METRICS
}
vrrp_script chk_true {
  script "/usr/bin/true"
  interval 1
}
vrrp_instance VI_M {
  state BACKUP
  interface kvmetrics0
  virtual_router_id 77
  priority 100
  virtual_ipaddress {
    198.18.77.1
    198.18.77.2/24
  }
  virtual_ipaddress_excluded {
    2001:db8:77::1
  }
  track_script {
    chk_true
  }
}
virtual_server 127.0.0.1 ${vipPort} {
  delay_loop 1
  lvs_sched rr
  protocol TCP
  real_server 127.0.0.1 ${rsPort} {
    TCP_CHECK {
      connect_timeout 1
    }
  }
}
`;
  d = await startDaemon(conf, [], (s) => Boolean(s.lvs?.checks.servers.every((x) => x.up)));
  await until('one connection', async () => (await get(vipPort)).body === 'rs');
});

after(async () => {
  await d?.stop();
  await new Promise((r) => rs?.close(r));
});

test('/metrics: every series as docs/metrics.md says (type, labels), both ways; exporter names as the exporters', async () => {
  const doc = documented();
  for (const [name, want] of Object.entries(EXPORTERS))
    assert.deepEqual(doc.get(name), want, `docs/metrics.md row of ${name} differs from the exporter's source`);
  const exportedByKeepvs = [...doc.keys()].filter((n) => !n.startsWith('keepvs_'));
  assert.deepEqual(exportedByKeepvs.sort(), Object.keys(EXPORTERS).sort(), 'exporter rows in docs/metrics.md');
  // the script must have run once for keepalived_script_status to be there (INIT is left out),
  const text = await until(
    'a scrape with the script result',
    async () => {
      const body = (await get(d.apiPort, '/metrics')).body;
      // and the connection made in before(), once the LVS worker's snapshot has it
      return /^keepalived_script_status\{/m.test(body) && /^keepalived_lvs_vip_conn\{.*\} [1-9]/m.test(body) && body;
    },
    15000,
    () => d.output,
  );
  const { types, samples } = parse(text);
  for (const [name, row] of doc) {
    assert.equal(types.get(name), row.type, `# TYPE of ${name}`);
    assert.ok(!row.labels.includes('instance'), `${name} has an instance label`);
  }
  for (const name of types.keys()) assert.ok(doc.has(name), `${name} is scraped but not in docs/metrics.md`);
  // transitions are counted from events, and a VRRP instance that never ran has counted nothing
  const mayBeEmpty = new Set([
    'keepvs_vrrp_transitions_total',
    'keepvs_real_server_transitions_total',
    'keepvs_vrrp_packets_total',
    // the proxy reports its limits once a worker has counted one
    'keepvs_dataplane_limits_total',
    // BGP series exist only with bgp_announce (test/api/metrics.test.ts has their values)
    'keepvs_bgp_speaker_up',
    'keepvs_bgp_vip_announced',
    'keepvs_bgp_vip_hold_down_seconds',
    'keepvs_bgp_vip_withdrawals_total',
    'keepvs_bgp_neighbor_established',
    'keepvs_bgp_neighbor_bfd_up',
  ]);
  const missing = [...doc.keys()].filter((n) => !samples.has(n) && !mayBeEmpty.has(n));
  assert.deepEqual(missing, [], 'series without a sample');
  for (const [name, got] of samples) assert.deepEqual([...got], [doc.get(name)?.labels.join(',')], `labels of ${name}`);
  // the per-VIP state series, as keepalived writes the addresses (/32 left out, /24 kept)
  assert.match(
    text,
    /^keepalived_vrrp_state\{iname="VI_M",intf="kvmetrics0",vrid="77",ip_address="198.18.77.1"\} \d+$/m,
  );
  assert.match(
    text,
    /^keepalived_vrrp_state\{iname="VI_M",intf="kvmetrics0",vrid="77",ip_address="198.18.77.2\/24"\} /m,
  );
  assert.match(text, /^keepalived_vrrp_excluded_state\{[^}]*ip_address="2001:db8:77::1"\} /m);
  assert.match(text, /^keepalived_script_status\{name="chk_true"\} 1$/m);
  assert.match(text, /^keepalived_lvs_vip_conn\{addr="127.0.0.1:\d+",proto="6"\} [1-9]/m);
  assert.match(text, /^node_ipvs_connections_total [1-9]/m);
  assert.match(
    text,
    /^node_ipvs_backend_weight\{local_address="127.0.0.1",local_port="\d+",remote_address="127.0.0.1",remote_port="\d+",proto="TCP",local_mark=""\} 1$/m,
  );
});
