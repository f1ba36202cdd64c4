import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveTiming } from '../../src/config/grammar/checkers/common.js';
import type { Checker, VirtualServer } from '../../src/config/model.js';
import { cfg, codes, parse, show } from './helpers.js';

const vs = (body: string, head = '10.0.0.1 80'): VirtualServer => {
  const r = parse(`virtual_server ${head} {\n${body}\n}\n`);
  assert.ok(r.config?.virtualServers[0], r.diagnostics.map(show).join('\n'));
  return r.config.virtualServers[0];
};
const checker = (body: string, type: string, rsExtra = '', vsExtra = ''): Checker =>
  vs(`${vsExtra}\n real_server 10.0.1.1 80 {\n${rsExtra}\n  ${type} {\n${body}\n  }\n }`).realServers[0].checkers[0];

test('virtual_server without protocol: keepalived defaults to UDP and says so', () => {
  const r = parse('virtual_server 10.0.0.1 80 {\n real_server 10.0.1.1 80 {\n }\n}\n');
  assert.deepEqual(codes(r), ['KV211']);
  assert.match(r.diagnostics[0].message, /defaulting to UDP/);
  assert.equal(vs(' protocol TCP\n real_server 10.0.1.1 80 {\n }').protocol, 'TCP');
});

test('keepalived corrections: ops needs UDP, port 0 needs persistence, quorum capped, hysteresis < quorum, DR ports', () => {
  const r = parse(
    'virtual_server 10.0.0.1 0 {\n protocol TCP\n ops\n quorum 10\n hysteresis 5\n lvs_method DR\n real_server 10.0.1.1 8080 {\n  weight 3\n }\n}\n' +
      'virtual_server fwmark 3 {\n protocol TCP\n ha_suspend\n lvs_method DR\n real_server 10.0.1.1 80 {\n }\n}\n',
  );
  const [a, b] = r.config!.virtualServers;
  assert.deepEqual([a.ops, a.persistenceTimeout, a.quorum, a.hysteresis, a.realServers[0].port], [false, 360, 3, 2, 0]);
  assert.deepEqual([b.haSuspend, b.realServers[0].port], [false, 0]);
  // KV112: ha_suspend is parsed but not acted on
  assert.deepEqual(codes(r), ['KV112', 'KV211', 'KV211', 'KV211', 'KV211', 'KV211', 'KV311', 'KV211', 'KV211']);
});

test('virtual_server defaults as keepalived fills them', () => {
  const v = vs(' real_server 10.0.1.1 8080 {\n }\n real_server 10.0.1.2 {\n }');
  assert.deepEqual(
    [v.protocol, v.scheduler, v.method, v.delayLoop, v.quorum, v.hysteresis, v.persistenceTimeout, v.ops],
    ['UDP', 'wlc', 'NAT', 60, 1, 0, undefined, false],
  );
  assert.deepEqual(
    v.realServers.map((r) => [r.port, r.weight, r.method, r.inhibitOnFailure]),
    [
      [8080, 1, 'NAT', false],
      [80, 1, 'NAT', false],
    ],
  );
});

test('virtual_server keywords', () => {
  const v = vs(`
 lvs_sched sh
 sh-port
 sh-fallback
 ops
 lvs_method TUN type gue port 6080 remcsum
 persistence_timeout
 persistence_granularity 255.255.255.0
 persistence_engine sip
 protocol udp
 ha_suspend
 alpha
 omega
 quorum 3
 hysteresis 1
 quorum_up "/bin/up vs"
 quorum_down /bin/down
 inhibit_on_failure
 sorry_server 10.9.9.9 8080
 sorry_server_inhibit
 sorry_server_lvs_method DR
 virtualhost www.example.com
 smtp_alert
 weight 7
 delay_loop 3
 real_server 10.0.1.1 80 {
  lvs_method NAT
  uthreshold 100
  lthreshold 10
  notify_up "/bin/rs up"
  notify_down /bin/rsdown
 }
 real_server 10.0.1.2 80 {
  weight 0
  inhibit_on_failure off
 }`);
  assert.equal(v.scheduler, 'sh');
  assert.deepEqual(v.schedFlags, ['sh-port', 'sh-fallback']);
  assert.equal(v.ops, true);
  assert.deepEqual([v.method, v.tunnel], ['TUN', { type: 'gue', port: 6080, csum: 'remcsum' }]);
  assert.equal(v.persistenceTimeout, 360, 'persistence_timeout without a value is 360 s');
  assert.equal(v.persistenceGranularity, '255.255.255.0');
  assert.equal(v.persistenceEngine, 'sip');
  assert.equal(v.protocol, 'UDP');
  assert.ok(v.haSuspend && v.alpha && v.omega && v.inhibitOnFailure && v.sorryServerInhibit);
  assert.deepEqual([v.quorum, v.hysteresis], [3, 1]);
  assert.deepEqual(v.quorumUp?.argv, ['/bin/up', 'vs']);
  assert.equal(v.quorumDown?.command, '/bin/down');
  assert.deepEqual(v.sorryServer, { address: '10.9.9.9', family: 4, port: 80, method: 'DR' });
  assert.equal(v.virtualhost, 'www.example.com');
  assert.equal(v.smtpAlert, true);
  assert.equal(v.delayLoop, 3);
  const [a, b] = v.realServers;
  assert.deepEqual(
    [a.weight, a.method, a.tunnel, a.uthreshold, a.lthreshold, a.alpha],
    [7, 'NAT', undefined, 100, 10, true],
  );
  assert.deepEqual(a.notifyUp?.argv, ['/bin/rs', 'up']);
  assert.equal(a.notifyDown?.command, '/bin/rsdown');
  assert.equal(a.virtualhost, 'www.example.com');
  assert.deepEqual([b.weight, b.method, b.tunnel?.type, b.inhibitOnFailure], [0, 'TUN', 'gue', false]);
});

test('virtual_server keys: IPv6, fwmark with family, group', () => {
  const rs = ' protocol TCP\n real_server 10.0.1.1 {\n }';
  assert.deepEqual(vs(' protocol TCP\n real_server 2001:db8::2 {\n }', '2001:DB8::1 443').key, {
    kind: 'address',
    address: '2001:db8::1',
    family: 6,
    port: 443,
  });
  assert.deepEqual(vs(' real_server 2001:db8::2 {\n }', 'fwmark 7 inet6').key, {
    kind: 'fwmark',
    fwmark: 7,
    family: 6,
  });
  const fw = vs(rs.replace(' protocol TCP\n', ''), 'fwmark 7');
  assert.equal(fw.realServers[0].port, 0);
  const r = parse(
    'virtual_server_group G {\n 10.0.0.1 80\n}\nvirtual_server group G {\n lvs_sched rr\n protocol TCP\n real_server 10.0.1.1 80 {\n }\n}\n',
  );
  assert.deepEqual(codes(r), []);
  assert.deepEqual(r.config!.virtualServers[0].key, { kind: 'group', group: 'G' });
});

test('virtual_server_group entries: address, ranges, CIDR, fwmark', () => {
  const g = cfg(`virtual_server_group WEB {
 10.0.0.1 80
 10.0.0.10-20 80
 10.0.1.250-10.0.2.5 443
 192.168.0.0/30 8080
 2001:db8::1-ff 80
 2001:db8:1::/126 80
 fwmark 5
 fwmark 6 inet6
}
`).virtualServerGroups[0];
  assert.deepEqual(
    g.entries.map((e) =>
      e.kind === 'address' ? `${e.address}..${e.lastAddress}:${e.port}/${e.family}` : `fwm${e.fwmark}/${e.family}`,
    ),
    [
      '10.0.0.1..10.0.0.1:80/4',
      '10.0.0.10..10.0.0.20:80/4',
      '10.0.1.250..10.0.2.5:443/4',
      '192.168.0.0..192.168.0.3:8080/4',
      '2001:db8::1..2001:db8::ff:80/6',
      '2001:db8:1::..2001:db8:1::3:80/6',
      'fwm5/4',
      'fwm6/6',
    ],
  );
  const bad = parse('virtual_server_group G {\n 10.0.0.20-10 80\n 10.0.0.1/40\n}\n');
  assert.deepEqual(codes(bad), ['KV204', 'KV204', 'KV309']);
});

test('checker timing precedence: checker > real_server > virtual_server > default', () => {
  const all = checker(
    '   connect_timeout 1\n   retry 2\n   delay_before_retry 3\n   warmup 4\n   delay_loop 5',
    'TCP_CHECK',
    '  connect_timeout 11\n  retry 12\n  delay_before_retry 13\n  warmup 14\n  delay_loop 15',
    ' connect_timeout 21\n retry 22\n delay_before_retry 23\n warmup 24\n delay_loop 25',
  );
  assert.deepEqual([all.connectTimeout, all.retry, all.delayBeforeRetry, all.warmup, all.delayLoop], [1, 2, 3, 4, 5]);
  const rs = checker(
    '',
    'TCP_CHECK',
    '  connect_timeout 11\n  retry 12\n  delay_loop 15',
    ' connect_timeout 21\n delay_loop 25\n delay_before_retry 23',
  );
  assert.deepEqual([rs.connectTimeout, rs.retry, rs.delayBeforeRetry, rs.warmup, rs.delayLoop], [11, 12, 23, 15, 15]);
  const d = checker('', 'TCP_CHECK');
  assert.deepEqual([d.connectTimeout, d.retry, d.delayBeforeRetry, d.warmup, d.delayLoop], [5, 1, 1, 60, 60]);
});

test('per-checker retry / delay_before_retry defaults (check_*.c)', () => {
  assert.deepEqual(resolveTiming('HTTP_GET', []).delayBeforeRetry, 3);
  assert.deepEqual(resolveTiming('SSL_GET', []).retry, 1);
  const dns = resolveTiming('DNS_CHECK', [{ delayLoop: 7 }]);
  assert.deepEqual([dns.retry, dns.delayBeforeRetry], [3, 7]);
  assert.equal(resolveTiming('MISC_CHECK', []).retry, 0);
  assert.equal(resolveTiming('TCP_CHECK', []).connectTimeout, 5);
});

test('TCP_CHECK / PING_CHECK connection options', () => {
  const t = checker(
    '   connect_ip 10.0.2.2\n   connect_port 8080\n   bindto 10.0.0.5\n   bind_port 5000\n   bind_if eth1\n   fwmark 9\n   alpha\n   log_all_failures',
    'TCP_CHECK',
  );
  assert.ok(t.type === 'TCP_CHECK');
  assert.deepEqual(
    [t.connectIp, t.connectPort, t.bindTo, t.bindPort, t.bindIf, t.fwmark, t.alpha, t.logAllFailures],
    ['10.0.2.2', 8080, '10.0.0.5', 5000, 'eth1', 9, true, true],
  );
  assert.equal(checker('', 'PING_CHECK').type, 'PING_CHECK');
});

test('HTTP_GET / SSL_GET', () => {
  const h = checker(
    `   url {
    path /health
    digest 9B3A0C85A887A256D6939DA88AABD8CD
    status_code 200 301-302
    virtualhost api.example.com
    regex "ok|up"
    regex_no_match
   }
   url {
    path /
   }
   http_protocol 1.1
   virtualhost www.example.com
   fast_recovery
   nb_get_retry 4`,
    'HTTP_GET',
  );
  assert.ok(h.type === 'HTTP_GET');
  assert.equal(h.urls.length, 2);
  assert.deepEqual(h.urls[0].statusCodes, [
    [200, 200],
    [301, 302],
  ]);
  assert.equal(h.urls[0].digest, '9b3a0c85a887a256d6939da88aabd8cd');
  assert.deepEqual(
    [h.urls[0].virtualhost, h.urls[0].regex, h.urls[0].regexNoMatch],
    ['api.example.com', 'ok|up', true],
  );
  assert.deepEqual(h.urls[1].statusCodes, [[200, 299]]);
  assert.deepEqual(
    [h.httpProtocol, h.virtualhost, h.fastRecovery, h.retry, h.delayBeforeRetry],
    ['1.1', 'www.example.com', true, 4, 3],
  );
  const s = checker('   url {\n    path /\n   }\n   enable_sni', 'SSL_GET');
  assert.ok(s.type === 'SSL_GET' && s.enableSni && s.httpProtocol === '1.0');
  const r = parse(
    'virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n    digest xyz\n    status_code 99 300-200\n   }\n  }\n }\n}\n',
  );
  assert.deepEqual(codes(r), ['KV210', 'KV201', 'KV201']);
});

test('MISC_CHECK, SMTP_CHECK, DNS_CHECK, UDP_CHECK, FILE_CHECK', () => {
  const m = checker(
    '   misc_path "/bin/check --host 10.0.1.1"\n   misc_timeout 5\n   misc_dynamic\n   user nobody',
    'MISC_CHECK',
  );
  assert.ok(m.type === 'MISC_CHECK');
  assert.deepEqual(
    [m.miscPath.argv, m.miscPath.user, m.miscTimeout, m.miscDynamic, m.retry],
    [['/bin/check', '--host', '10.0.1.1'], 'nobody', 5, true, 0],
  );
  const m2 = checker('   misc_path /bin/c', 'MISC_CHECK', '', ' delay_loop 9');
  assert.ok(m2.type === 'MISC_CHECK' && m2.miscTimeout === 9);
  const smtp = checker('   helo_name lb.example.com\n   connect_port 25', 'SMTP_CHECK');
  assert.ok(smtp.type === 'SMTP_CHECK' && smtp.heloName === 'lb.example.com');
  const dns = checker('   type a\n   name example.com', 'DNS_CHECK');
  assert.ok(dns.type === 'DNS_CHECK');
  assert.deepEqual([dns.queryType, dns.name, dns.retry], ['A', 'example.com', 3]);
  const dnsDefault = checker('', 'DNS_CHECK');
  assert.ok(dnsDefault.type === 'DNS_CHECK' && dnsDefault.queryType === 'SOA' && dnsDefault.name === '.');
  const udp = checker(
    '   payload 0a0b\n   require_reply 0aXX\n   min_reply_length 2\n   max_reply_length 64',
    'UDP_CHECK',
  );
  assert.ok(udp.type === 'UDP_CHECK');
  assert.deepEqual([udp.payload, udp.requireReply, udp.minReplyLength, udp.maxReplyLength], ['0a0b', '0axx', 2, 64]);
  const r = parse(
    'track_file f {\n file /run/w\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.1.1 80 {\n  FILE_CHECK {\n   track_file f\n   weight 3 reverse\n   dynamic\n  }\n }\n}\n',
  );
  assert.deepEqual(codes(r), []);
  const f = r.config!.virtualServers[0].realServers[0].checkers[0];
  assert.ok(f.type === 'FILE_CHECK');
  assert.deepEqual([f.trackFile, f.weight, f.weightReverse, f.dynamic], ['f', 3, true, true]);
});

test('several checkers on one real server, in order; missing required checker keys drop the checker', () => {
  const v = vs(' real_server 10.0.1.1 80 {\n  TCP_CHECK {\n  }\n  MISC_CHECK {\n  }\n  PING_CHECK {\n  }\n }');
  assert.deepEqual(
    v.realServers[0].checkers.map((c) => c.type),
    ['TCP_CHECK', 'PING_CHECK'],
  );
});

test('unknown scheduler and forwarding method get suggestions', () => {
  const r = parse(
    'virtual_server 10.0.0.1 80 {\n protocol TCP\n lvs_sched wrrr\n lvs_method dr\n real_server 10.0.1.1 80 {\n }\n}\n',
  );
  assert.deepEqual(codes(r), ['KV207', 'KV208']);
  assert.match(r.diagnostics[0].message, /did you mean 'wrr'/);
  assert.match(r.diagnostics[1].message, /did you mean 'DR'/);
});

test('virtual_server group: fwmark-only groups take no protocol; address entries without a port need persistence', () => {
  const r = parse(
    'virtual_server_group M {\n fwmark 1\n}\nvirtual_server_group A {\n 10.0.0.1\n}\n' +
      'virtual_server group M {\n real_server 10.0.1.1 {\n }\n}\nvirtual_server group A {\n protocol TCP\n real_server 10.0.1.1 {\n }\n}\n',
  );
  assert.deepEqual(codes(r), ['KV211']);
  const [m, a] = r.config!.virtualServers;
  assert.equal(m.persistenceTimeout, undefined);
  assert.equal(a.persistenceTimeout, 360);
});

test('keepvs keywords: proxy_protocol in virtual_server, expire_nodest_conn in global_defs (KV116 says keepalived lacks them)', () => {
  const r = parse(
    'global_defs {\n expire_nodest_conn\n}\nvirtual_server 10.0.0.1 80 {\n protocol TCP\n proxy_protocol v1\n real_server 10.0.1.1 80 {\n }\n}\n' +
      'virtual_server 10.0.0.1 81 {\n protocol TCP\n proxy_protocol off\n real_server 10.0.1.1 80 {\n }\n}\n',
  );
  assert.deepEqual(codes(r), ['KV116', 'KV116', 'KV116']);
  assert.equal(r.config!.globalDefs.expireNodestConn, true);
  assert.deepEqual(
    r.config!.virtualServers.map((v) => v.proxyProtocol),
    ['v1', 'off'],
  );
  assert.deepEqual(
    codes(
      parse('virtual_server 10.0.0.1 80 {\n protocol TCP\n proxy_protocol v3\n real_server 10.0.1.1 80 {\n }\n}\n'),
    ),
    ['KV116', 'KV203'],
  );
  assert.equal(cfg('global_defs {\n expire_nodest_conn off\n}\n').globalDefs.expireNodestConn, false);
});
