import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GLOBAL_DEFS } from '../../src/config/grammar/global-defs.js';
import { ROOT } from '../../src/config/grammar/root.js';
import { VIRTUAL_SERVER } from '../../src/config/grammar/virtual-server.js';
import { VRRP_INSTANCE } from '../../src/config/grammar/vrrp-instance.js';
import { cfg, codes, expectCodes, parse, show } from './helpers.js';

test('global_defs: every supported keyword reaches the model', () => {
  const r = parse(`global_defs {
 router_id lb1
 notification_email {
  a@x.org
  b@x.org
 }
 notification_email_from lb@x.org
 smtp_server 10.0.0.25 2525
 smtp_helo_name lb1.x.org
 smtp_connect_timeout 12
 smtp_alert off
 smtp_alert_vrrp on
 smtp_alert_checker yes
 no_email_faults
 checker_log_all_failures true
 script_user nobody:nogroup
 enable_script_security
 vrrp_mcast_group4 224.0.0.19
 vrrp_mcast_group6 ff02::13
 vrrp_version 3
 vrrp_garp_master_delay 7
 vrrp_garp_master_repeat 2
 vrrp_garp_master_refresh 60
 vrrp_garp_master_refresh_repeat 3
 vrrp_garp_lower_prio_delay 4
 vrrp_garp_lower_prio_repeat 6
 vrrp_garp_interval 0.001
 vrrp_gna_interval 0.002
 vrrp_min_garp true
 vrrp_lower_prio_no_advert
 vrrp_higher_prio_send_advert
 vrrp_strict
 vrrp_skip_check_adv_addr
 vrrp_check_unicast_src
 vrrp_startup_delay 2.5
 v3_checksum_as_v2
 notify_fifo /run/ka.fifo
 notify_fifo_script "/bin/fifo reader" root
 vrrp_notify_fifo /run/vrrp.fifo
 lvs_notify_fifo /run/lvs.fifo
 lvs_timeouts tcp 7200 tcpfin 60 udp 300
 lvs_sync_daemon eth1 VI_1 id 5 maxlen 1400 port 8848 ttl 2 group 224.0.0.81
 lvs_flush
 lvs_flush_onstop
 dynamic_interfaces
 default_interface bond0
 startup_script /bin/up
 startup_script_timeout 20
 shutdown_script "/bin/down now"
 max_auto_priority 50
}
vrrp_instance VI_1 {
 interface eth1
 virtual_router_id 7
 priority 100
 virtual_ipaddress {
  198.18.0.100
 }
}
`);
  // KV323: conntrackd has no counterpart for maxlen, ttl and id (a note)
  assert.deepEqual(codes(r), ['KV111', 'KV323'], r.diagnostics.map(show).join('\n'));
  const g = r.config!.globalDefs;
  assert.equal(g.routerId, 'lb1');
  assert.deepEqual(g.notificationEmail, ['a@x.org', 'b@x.org']);
  assert.deepEqual(g.smtpServer, { host: '10.0.0.25', port: 2525 });
  assert.equal(g.smtpHeloName, 'lb1.x.org');
  assert.equal(g.smtpConnectTimeout, 12);
  assert.equal(g.smtpAlert, false);
  assert.equal(g.smtpAlertVrrp, true);
  assert.equal(g.smtpAlertChecker, true);
  assert.equal(g.noEmailFaults, true);
  assert.equal(g.checkerLogAllFailures, true);
  assert.deepEqual(g.scriptUser, { user: 'nobody', group: 'nogroup' });
  assert.equal(g.enableScriptSecurity, true);
  assert.equal(g.vrrpMcastGroup4, '224.0.0.19');
  assert.equal(g.vrrpMcastGroup6, 'ff02::13');
  assert.equal(g.vrrpVersion, 3);
  assert.deepEqual(
    [g.vrrpGarpMasterDelay, g.vrrpGarpMasterRepeat, g.vrrpGarpMasterRefresh, g.vrrpGarpMasterRefreshRepeat],
    [7, 2, 60, 3],
  );
  assert.deepEqual([g.vrrpGarpLowerPrioDelay, g.vrrpGarpLowerPrioRepeat], [4, 6]);
  assert.deepEqual([g.vrrpGarpInterval, g.vrrpGnaInterval], [0.001, 0.002]);
  assert.ok(
    g.vrrpMinGarp &&
      g.vrrpLowerPrioNoAdvert &&
      g.vrrpHigherPrioSendAdvert &&
      g.vrrpStrict &&
      g.vrrpSkipCheckAdvAddr &&
      g.vrrpCheckUnicastSrc &&
      g.v3ChecksumAsV2,
  );
  assert.equal(g.vrrpStartupDelay, 2.5);
  assert.equal(g.notifyFifo?.path, '/run/ka.fifo');
  assert.deepEqual(g.notifyFifo?.script?.argv, ['/bin/fifo', 'reader']);
  assert.equal(g.notifyFifo?.script?.user, 'root');
  assert.equal(g.vrrpNotifyFifo?.path, '/run/vrrp.fifo');
  assert.equal(g.lvsNotifyFifo?.path, '/run/lvs.fifo');
  assert.deepEqual(g.lvsTimeouts, { tcp: 7200, tcpfin: 60, udp: 300 });
  assert.deepEqual(g.lvsSyncDaemon, {
    interface: 'eth1',
    instance: 'VI_1',
    syncId: 5,
    maxlen: 1400,
    port: 8848,
    ttl: 2,
    group: '224.0.0.81',
    loc: g.lvsSyncDaemon?.loc,
  });
  assert.equal(g.lvsSyncDaemon?.loc?.line, 42);
  assert.ok(g.lvsFlush && g.lvsFlushOnStop && g.dynamicInterfaces);
  assert.equal(g.defaultInterface, 'bond0');
  assert.equal(g.startupScript?.command, '/bin/up');
  assert.equal(g.startupScriptTimeout, 20);
  assert.deepEqual(g.shutdownScript?.argv, ['/bin/down', 'now']);
  assert.equal(g.maxAutoPriority, 50);
});

test("global_defs defaults are keepalived's", () => {
  const g = cfg('').globalDefs;
  assert.equal(g.vrrpMcastGroup4, '224.0.0.18');
  assert.equal(g.vrrpMcastGroup6, 'ff02::12');
  assert.equal(g.vrrpVersion, 2);
  assert.equal(g.vrrpGarpMasterDelay, 5);
  assert.equal(g.vrrpGarpMasterRepeat, 5);
  assert.equal(g.vrrpGarpMasterRefresh, 0);
  assert.equal(g.vrrpGarpMasterRefreshRepeat, 1);
  assert.equal(g.smtpConnectTimeout, 30);
  assert.equal(g.defaultInterface, 'eth0');
  assert.equal(g.smtpAlert, false);
});

test('unsupported keepalived keywords are recognised and reported, never "unknown"', () => {
  const r = parse(
    'global_defs {\n enable_snmp_vrrp\n enable_dbus\n vrrp_rt_priority 50\n vrrp_netlink_cmd_rcv_bufs 1024\n nftables keepalived\n}\n' +
      'bfd_instance b {\n neighbor_ip 1.2.3.4\n}\nnet_namespace blue\n' +
      'vrrp_instance V {\n interface eth0\n virtual_router_id 1\n use_ipvlan\n virtual_ipaddress {\n  10.0.0.1 use_vmac\n }\n}\n',
  );
  assert.ok(r.usable);
  assert.ok(r.diagnostics.length >= 9);
  for (const d of r.diagnostics) {
    assert.equal(d.code, 'KV112', show(d));
    assert.match(d.message, /not supported by keepvs/);
  }
});

test('keyword tables: synonyms are separate entries and every table has the documented blocks', () => {
  for (const k of ['global_defs', 'vrrp_instance', 'virtual_server', 'track_file', 'vrrp_track_file', 'bfd_instance'])
    assert.ok(ROOT.has(k), k);
  assert.ok(VIRTUAL_SERVER.get('lb_algo')?.deprecatedFor === 'lvs_sched');
  assert.ok(VIRTUAL_SERVER.get('lb_kind')?.deprecatedFor === 'lvs_method');
  assert.ok(VRRP_INSTANCE.has('mcast_src_ip') && VRRP_INSTANCE.has('unicast_src_ip'));
  assert.ok(GLOBAL_DEFS.get('lvs_flush_onstop')?.deprecatedFor === 'lvs_flush_on_stop');
});

const INSTANCE = `vrrp_script chk {
 script "/usr/bin/pgrep -x haproxy"
 interval 2
 timeout 3
 weight -20 reverse
 rise 2
 fall 3
 user nobody
 init_fail
}
track_file tf {
 file /run/prio
 weight 5
 init_file 10 overwrite
}
vrrp_track_process haproxy {
 process haproxy -f /etc/h.cfg
 param_match initial
 weight 10
 quorum 2
 quorum_max 4
 delay 1.5
 full_command
}
vrrp_instance VI_1 {
 state MASTER
 interface eth0
 virtual_router_id 51
 priority 150
 advert_int 1
 preempt_delay 10
 down_timer_adverts 4
 mcast_src_ip 192.168.1.10
 unicast_peer {
  192.168.1.11
  192.168.1.12 min_ttl 250 max_ttl 255
 }
 unicast_ttl 5
 unicast_fault_no_peer
 authentication {
  auth_type PASS
  auth_pass secret
 }
 dont_track_primary
 track_interface {
  eth1 weight -10
  eth2
 }
 track_script {
  chk
 }
 track_file {
  tf weight 2 reverse
 }
 track_process {
  haproxy
 }
 virtual_ipaddress {
  192.168.1.100/24 brd 192.168.1.255 dev eth0 label eth0:vip scope global
  192.168.1.101 dev eth0 no_track noprefixroute
 }
 virtual_ipaddress_excluded {
  2001:db8::10/64 dev eth0
 }
 virtual_routes {
  10.10.0.0/16 via 192.168.1.1 dev eth0 table 100
  default via 192.168.1.254
 }
 virtual_rules {
  from 192.168.1.100 table 100
 }
 notify_master "/etc/keepalived/master.sh arg" root
 notify_backup /etc/keepalived/backup.sh
 notify_fault /etc/keepalived/fault.sh
 notify_stop /etc/keepalived/stop.sh
 notify_deleted /etc/keepalived/deleted.sh
 notify /etc/keepalived/notify.sh
 notify_master_rx_lower_pri /etc/keepalived/lower.sh
 smtp_alert
 garp_master_delay 1
 garp_master_repeat 3
 garp_master_refresh 30
 garp_master_refresh_repeat 2
 garp_lower_prio_delay 2
 garp_lower_prio_repeat 1
 no_accept
 skip_check_adv_addr
 lower_prio_no_advert
 higher_prio_send_advert
 owner_ignore_adverts
 check_unicast_src
 v3_checksum_as_v2
 promote_secondaries
 lvs_sync_daemon_interface eth1
}
vrrp_instance VI_2 {
 interface eth0
 virtual_router_id 52
 nopreempt
 virtual_ipaddress {
  fe80::1/64
  2001:db8::1
 }
}
vrrp_sync_group G {
 group {
  VI_1 VI_2
 }
 track_script {
  chk weight 0
 }
 notify_master /bin/gm
 notify /bin/gn
 sync_group_tracking_weight
 smtp_alert
}
`;

test('vrrp_script, track_file, vrrp_track_process, vrrp_instance, vrrp_sync_group: keywords and defaults', () => {
  const r = parse(INSTANCE);
  assert.deepEqual(
    r.diagnostics.map((d) => d.code),
    // the default route without dev and the rule without preference are reported as keepalived does
    ['KV311', 'KV211', 'KV111', 'KV311'],
    r.diagnostics.map(show).join('\n'),
  );
  const c = r.config!;
  const s = c.vrrpScripts[0];
  assert.deepEqual(s.script.argv, ['/usr/bin/pgrep', '-x', 'haproxy']);
  assert.equal(s.script.user, 'nobody');
  assert.deepEqual(
    [s.interval, s.timeout, s.weight, s.weightReverse, s.rise, s.fall, s.initFail],
    [2, 3, -20, true, 2, 3, true],
  );
  assert.deepEqual(c.trackFiles[0], {
    name: 'tf',
    file: '/run/prio',
    weight: 5,
    weightReverse: false,
    initFile: { value: 10, overwrite: true },
    loc: c.trackFiles[0].loc,
  });
  const p = c.trackProcesses[0];
  assert.deepEqual(
    [p.process, p.params, p.paramMatch, p.weight, p.quorum, p.quorumMax, p.forkDelay, p.terminateDelay, p.fullCommand],
    ['haproxy', '-f /etc/h.cfg', 'initial', 10, 2, 4, 1.5, 1.5, true],
  );
  const v = c.vrrpInstances[0];
  assert.deepEqual(
    [v.initialState, v.interface, v.vrid, v.priority, v.advertInt, v.version],
    ['MASTER', 'eth0', 51, 150, 1, 2],
  );
  assert.equal(v.preemptDelay, 0, 'preempt_delay needs BACKUP (KV311)');
  assert.equal(v.downTimerAdverts, 4);
  assert.equal(v.srcIp, '192.168.1.10');
  assert.deepEqual(v.unicastPeers, [
    { address: '192.168.1.11', family: 4 },
    { address: '192.168.1.12', family: 4, minTtl: 250, maxTtl: 255 },
  ]);
  assert.equal(v.unicastTtl, 5);
  assert.equal(v.unicastFaultNoPeer, true);
  assert.deepEqual(v.authentication, { type: 'PASS', pass: 'secret' });
  assert.equal(v.dontTrackPrimary, true);
  assert.deepEqual(
    v.trackInterfaces.map((t) => [t.name, t.weight, t.reverse]),
    [
      ['eth1', -10, false],
      ['eth2', undefined, false],
    ],
  );
  assert.deepEqual(
    v.trackFiles.map((t) => [t.name, t.weight, t.reverse]),
    [['tf', 2, true]],
  );
  assert.equal(v.trackProcesses[0].name, 'haproxy');
  const [a, b] = v.virtualIpaddresses;
  assert.deepEqual(
    [a.address, a.prefixLen, a.brd, a.dev, a.label, a.scope, a.noTrack],
    ['192.168.1.100', 24, '192.168.1.255', 'eth0', 'eth0:vip', 'global', false],
  );
  assert.deepEqual([b.prefixLen, b.noTrack, b.flags], [32, true, ['noprefixroute']]);
  assert.deepEqual(
    [v.virtualIpaddressesExcluded[0].address, v.virtualIpaddressesExcluded[0].family],
    ['2001:db8::10', 6],
  );
  assert.deepEqual(
    v.virtualRoutes.map((x) => [x.destination, x.via, x.dev, x.table]),
    [
      ['10.10.0.0/16', '192.168.1.1', 'eth0', '100'],
      ['default', '192.168.1.254', undefined, undefined],
    ],
  );
  assert.deepEqual(v.virtualRules[0].args, ['from', '192.168.1.100', 'table', '100']);
  assert.deepEqual(v.notify.master?.argv, ['/etc/keepalived/master.sh', 'arg']);
  assert.equal(v.notify.master?.user, 'root');
  for (const k of ['backup', 'fault', 'stop', 'deleted', 'notify', 'masterRxLowerPri'] as const)
    assert.ok(v.notify[k], k);
  assert.equal(v.smtpAlert, true);
  assert.deepEqual(
    [
      v.garpMasterDelay,
      v.garpMasterRepeat,
      v.garpMasterRefresh,
      v.garpMasterRefreshRepeat,
      v.garpLowerPrioDelay,
      v.garpLowerPrioRepeat,
    ],
    [1, 3, 30, 2, 2, 1],
  );
  assert.equal(v.accept, false);
  assert.ok(
    v.skipCheckAdvAddr &&
      v.lowerPrioNoAdvert &&
      v.higherPrioSendAdvert &&
      v.ownerIgnoreAdverts &&
      v.checkUnicastSrc &&
      v.v3ChecksumAsV2 &&
      v.promoteSecondaries,
  );
  assert.equal(v.lvsSyncDaemonInterface, 'eth1');
  const v2 = c.vrrpInstances[1];
  assert.deepEqual(
    [v2.initialState, v2.priority, v2.advertInt, v2.family, v2.version, v2.nopreempt],
    ['BACKUP', 100, 1, 6, 3, true],
  );
  assert.equal(v2.virtualIpaddresses[0].address, 'fe80::1');
  assert.equal(v2.accept, true);
  const g = c.syncGroups[0];
  assert.deepEqual(g.group, ['VI_1', 'VI_2']);
  assert.equal(g.trackScripts[0].weight, 0);
  assert.equal(g.notify.master?.command, '/bin/gm');
  assert.equal(g.notify.notify?.command, '/bin/gn');
  assert.equal(g.syncGroupTrackingWeight, true);
  assert.equal(g.smtpAlert, true);
});

test('vrrp_instance: VRRPv2 advert_int rounding, IPv6 forces v3, v3 centiseconds', () => {
  const base = (extra: string, vip = '10.0.0.1') =>
    parse(
      `vrrp_instance V {\n interface eth0\n virtual_router_id 1\n${extra}\n virtual_ipaddress {\n  ${vip}\n }\n}\n`,
    );
  let r = base(' advert_int 2.4');
  assert.equal(r.config!.vrrpInstances[0].advertInt, 2);
  expectCodes(r, ['KV211']);
  r = base(' version 3\n advert_int 0.333');
  assert.equal(r.config!.vrrpInstances[0].advertInt, 0.33);
  r = base(' version 2', 'fe80::1');
  assert.equal(r.config!.vrrpInstances[0].version, 3);
  expectCodes(r, ['KV211']);
  r = base(' strict_mode');
  assert.equal(r.config!.vrrpInstances[0].accept, false);
});

test('auth_pass longer than 8 characters is truncated as keepalived does', () => {
  const r = parse(
    'vrrp_instance V {\n interface eth0\n virtual_router_id 1\n authentication {\n  auth_type PASS\n  auth_pass 0123456789\n }\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n',
  );
  assert.equal(r.config!.vrrpInstances[0].authentication?.pass, '01234567');
  assert.equal(r.diagnostics[0].code, 'KV209');
  assert.equal(r.diagnostics[0].line, 6);
  assert.equal(r.diagnostics[0].col, 13);
  assert.ok(r.usable);
});

test('duplicate VRIDs are allowed on different interfaces, families, or with disjoint unicast peers', () => {
  const inst = (n: string, iface: string, vip: string, peers = '') =>
    `vrrp_instance ${n} {\n interface ${iface}\n virtual_router_id 9\n${peers} virtual_ipaddress {\n  ${vip}\n }\n}\n`;
  assert.deepEqual(codes(parse(inst('A', 'eth0', '10.0.0.1') + inst('B', 'eth1', '10.0.0.2'))), []);
  assert.deepEqual(codes(parse(inst('A', 'eth0', '10.0.0.1') + inst('B', 'eth0', 'fe80::2'))), []);
  const u = (p: string) => ` unicast_peer {\n  ${p}\n }\n`;
  assert.deepEqual(
    codes(parse(inst('A', 'eth0', '10.0.0.1', u('10.9.0.1')) + inst('B', 'eth0', '10.0.0.2', u('10.9.0.2')))),
    [],
  );
  assert.deepEqual(
    codes(parse(inst('A', 'eth0', '10.0.0.1', u('10.9.0.1')) + inst('B', 'eth0', '10.0.0.2', u('10.9.0.1')))),
    ['KV300'],
  );
});

test('static_ipaddress, static_routes, static_rules', () => {
  const c = cfg(`static_ipaddress {
 10.1.1.1/24 dev eth0 scope link
 2001:db8::5/64 dev eth1
}
static_routes {
 192.168.0.0/16 via 10.1.1.254 dev eth0
 blackhole 10.99.0.0/16
 2001:db8:1::/48 via 2001:db8::1
}
static_rules {
 from 10.1.1.0/24 table 50 priority 100
 to 2001:db8::/32 table 60
}
`);
  assert.deepEqual(
    c.staticIpaddresses.map((a) => [a.address, a.prefixLen, a.dev, a.scope, a.family]),
    [
      ['10.1.1.1', 24, 'eth0', 'link', 4],
      ['2001:db8::5', 64, 'eth1', undefined, 6],
    ],
  );
  assert.deepEqual(
    c.staticRoutes.map((r) => [r.destination, r.via, r.family]),
    [
      ['192.168.0.0/16', '10.1.1.254', 4],
      ['10.99.0.0/16', undefined, 4],
      ['2001:db8:1::/48', '2001:db8::1', 6],
    ],
  );
  assert.deepEqual(
    c.staticRules.map((r) => r.family),
    [4, 6],
  );
});

test("vrrp_instance completion follows keepalived's vrrp_complete_instance", () => {
  const one = (body: string, vip = '10.0.0.1') => {
    const r = parse(
      `vrrp_instance V {\n interface eth0\n virtual_router_id 1\n${body}\n virtual_ipaddress {\n  ${vip}\n }\n}\n`,
    );
    return { r, v: r.config!.vrrpInstances[0] };
  };
  // unset priority follows state; unset state follows priority
  assert.equal(one(' state MASTER').v.priority, 255);
  assert.equal(one('').v.priority, 100);
  assert.equal(one(' priority 255').v.initialState, 'MASTER');
  // VRRPv3 ignores authentication; AH + MASTER (not owner) starts as BACKUP
  let x = one(' version 3\n authentication {\n  auth_type PASS\n  auth_pass abc\n }');
  assert.equal(x.v.authentication, undefined);
  assert.deepEqual(codes(x.r), ['KV211']);
  x = one(' state MASTER\n priority 200\n authentication {\n  auth_type AH\n  auth_pass abc\n }');
  assert.equal(x.v.initialState, 'BACKUP');
  // strict mode: state must match ownership, accept cleared on v2, lower_prio_no_advert forced
  x = one(' strict_mode\n state MASTER\n priority 100');
  assert.deepEqual(
    [x.v.initialState, x.v.accept, x.v.lowerPrioNoAdvert, x.v.higherPrioSendAdvert],
    ['BACKUP', false, true, false],
  );
  // preemption conflicts
  x = one(' priority 255\n nopreempt');
  assert.equal(x.v.nopreempt, false);
  x = one(' nopreempt\n preempt_delay 5');
  assert.deepEqual([x.v.nopreempt, x.v.preemptDelay], [true, 0]);
  x = one(' preempt_delay 5');
  assert.equal(x.v.preemptDelay, 5);
  // VRRPv3 without any VIP is dropped
  const none = parse('vrrp_instance V {\n interface eth0\n virtual_router_id 1\n version 3\n}\n');
  assert.equal(none.config!.vrrpInstances.length, 0);
  assert.ok(codes(none).includes('KV309'));
  // VIPs that do not fit one advert move to the excluded list
  const many = Array.from({ length: 300 }, (_, i) => `10.1.${i >> 8}.${i & 255}`).join('\n  ');
  x = one('', many);
  assert.deepEqual([x.v.virtualIpaddresses.length, x.v.virtualIpaddressesExcluded.length], [255, 45]);
  // v3 advert_int in 10 ms units
  x = one(' version 3\n advert_int 0.125');
  assert.equal(x.v.advertInt, 0.13);
});

test('smtp_alert resolution (keepalived): instance/VS default false, real servers true, globals override', () => {
  const body =
    'vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n }\n}\n' +
    'virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n';
  let c = cfg(body);
  assert.deepEqual(
    [c.vrrpInstances[0].smtpAlert, c.virtualServers[0].smtpAlert, c.virtualServers[0].realServers[0].smtpAlert],
    [false, false, true],
  );
  c = cfg(`global_defs {\n smtp_alert\n smtp_alert_checker off\n}\n${body}`);
  assert.deepEqual(
    [c.vrrpInstances[0].smtpAlert, c.virtualServers[0].smtpAlert, c.virtualServers[0].realServers[0].smtpAlert],
    [true, false, false],
  );
});

test('global script_user applies to scripts without their own user', () => {
  const c = cfg(
    'global_defs {\n script_user runner ops\n}\nvrrp_script a {\n script /bin/a\n}\nvrrp_script b {\n script /bin/b\n user other\n}\n',
  );
  assert.deepEqual(
    c.vrrpScripts.map((s) => [s.script.user, s.script.group]),
    [
      ['runner', 'ops'],
      ['other', undefined],
    ],
  );
});

test('a top-level block inside another block hints at a missing brace', () => {
  const r = parse('vrrp_instance A {\n interface eth0\nvrrp_instance B {\n interface eth1\n}\n');
  const d = r.diagnostics.find((x) => x.code === 'KV110');
  assert.ok(d);
  assert.equal(d.line, 3);
  assert.match(d.message, /top-level block: is a '\}' missing before it\?/);
  assert.ok(r.diagnostics.some((x) => x.code === 'KV100' && x.line === 1));
});

test('virtual addresses without dev go on the instance interface', () => {
  const v = cfg(
    'vrrp_instance V {\n interface bond0\n virtual_router_id 1\n virtual_ipaddress {\n  10.0.0.1\n  10.0.0.2 dev eth9\n }\n virtual_ipaddress_excluded {\n  10.0.0.3\n }\n}\n',
  ).vrrpInstances[0];
  assert.deepEqual(
    [...v.virtualIpaddresses, ...v.virtualIpaddressesExcluded].map((a) => a.dev),
    ['bond0', 'eth9', 'bond0'],
  );
});
