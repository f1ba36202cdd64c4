/**
 * The SIGUSR1/SIGUSR2 dumps in keepalived 2.2.7's layouts, so parsers of keepalived's files (the
 * keepalived exporters read /tmp/keepalived.data, .stats and .json) read keepvs's:
 * - keepalived.data: the VRRP process's dump (vrrp_print.c vrrp_print_data, vrrp_data.c dump_vrrp /
 *   dump_vscript): "------< VRRP Topology >------", " VRRP Instance = VI_1", "   State = MASTER"...
 * - keepalived_check.data: the checker process's (check_data.c dump_vs / dump_rs, "_check" suffix);
 * - keepalived.stats: vrrp_print.c vrrp_print_stats (2.2.7: no authentication-extension block);
 * - keepalived.json: vrrp_json.c, an array of {data, stats} per instance.
 * Only lines keepvs has values for are written; their words, order and indentation are keepalived's.
 */
import type { DaemonStatus, VrrpInstanceStatus } from './status.js';

export type DumpKind = 'data' | 'stats';

const STATE_NUMBER: Record<string, number> = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3, STOP: 98 };
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/** keepalived's "%ld.%06ld (ctime_us_r)" of a transition time (epoch ms), in local time */
function transitionTime(ms: number): string {
  const d = new Date(ms);
  const us = `${String(d.getMilliseconds()).padStart(3, '0')}000`;
  const ctime = `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${us} ${d.getFullYear()}`;
  return `${Math.floor(ms / 1000)}.${us} (${ctime})`;
}

/** keepalived's ipaddresstos: the prefix only when it is not a host prefix */
function vipText(a: { address: string; prefixLen: number }): string {
  return a.prefixLen === (a.address.includes(':') ? 128 : 32) ? a.address : `${a.address}/${a.prefixLen}`;
}

function vips(i: VrrpInstanceStatus, excluded: boolean) {
  return (i.addresses ?? []).filter((a) => a.excluded === excluded);
}

/** dump_ipaddress: format_ipaddress, then " set" while the address is on the interface */
function vipLine(i: VrrpInstanceStatus, a: { address: string; prefixLen: number; dev?: string }): string {
  return `     ${vipText(a)} dev ${a.dev ?? i.interface ?? 'none'} scope global${i.state === 'MASTER' ? ' set' : ''}`;
}

export function formatVrrpData(s: DaemonStatus): string {
  const out = ['------< Global definitions >------'];
  if (s.routerId) out.push(` Router ID = ${s.routerId}`);
  out.push(` Configuration file = ${s.configFile}`);
  out.push('------< VRRP Topology >------');
  for (const i of s.vrrp) {
    const last = i.lastTransitions.at(-1);
    out.push(` VRRP Instance = ${i.name}`);
    out.push(`   State = ${i.state}`);
    out.push(`   Wantstate = ${i.state}`);
    if (last) out.push(`   Last transition = ${transitionTime(last.at)}`);
    out.push(`   Interface = ${i.interface ?? 'not configured'}`);
    out.push(`   Virtual Router ID = ${i.vrid}`);
    out.push(`   Priority = ${i.priority}`);
    out.push(`   Effective priority = ${i.effectivePriority}`);
    if (i.masterAddress) out.push(`   Master router = ${i.masterAddress}`);
    const v = vips(i, false);
    if (v.length) out.push(`   Virtual IP (${v.length}):`, ...v.map((a) => vipLine(i, a)));
    const e = vips(i, true);
    if (e.length) out.push('   Virtual IP Excluded :', ...e.map((a) => vipLine(i, a)));
    // keepvs's reason an instance does not run (not a keepalived line; the same words as the log and the API)
    if (i.note) out.push(`   Not running = ${i.note}`);
  }
  const scripts = s.vrrpScripts ?? [];
  if (scripts.length) {
    out.push('------< VRRP Scripts >------');
    for (const sc of scripts) {
      out.push(` VRRP Script = ${sc.name}`);
      out.push(`   Result = ${sc.result}`);
      if (sc.status !== 'INIT') out.push(`   Status = ${sc.status === 'OK' ? 'GOOD' : 'BAD'}`);
      else out.push('   Init state = INIT');
      out.push(`   State = ${sc.running ? 'running' : 'idle'}`);
    }
  }
  return `${out.join('\n')}\n`;
}

export function formatCheckData(s: DaemonStatus): string {
  const out = ['------< LVS Topology >------'];
  const health = new Map((s.lvs?.checks.servers ?? []).map((h) => [`${h.service} ${h.dest}`, h]));
  for (const svc of s.lvs?.table.services ?? []) {
    out.push(' ------< Virtual server >------');
    if (svc.key.kind === 'fwmark') out.push(` VS FWMARK = ${svc.key.fwmark}`);
    else out.push(` VS VIP = ${svc.key.address}, VPORT = ${svc.key.port}`);
    out.push(`   Address family = inet${svc.key.family === 6 ? '6' : ''}`);
    out.push(`   lvs_sched = ${svc.scheduler}`);
    out.push(`   One packet scheduling = ${svc.ops ? 'en' : 'dis'}abled`);
    if (svc.persistentTimeout !== undefined) out.push(`   persistence timeout = ${svc.persistentTimeout}`);
    out.push(`   protocol = ${svc.key.kind === 'addr' ? svc.key.protocol.toUpperCase() : 'none'}`);
    for (const d of svc.dests) {
      const h = health.get(`${svc.id} ${d.id}`);
      out.push('   ------< Real server >------');
      out.push(`   RIP = ${d.address}, RPORT = ${d.port}, WEIGHT = ${d.weight} EFF WEIGHT = ${d.weight}`);
      out.push(
        `   ${{ masq: 'NAT', route: 'DR', tunnel: 'IPIP', local: 'local', fullnat: 'FNAT' }[d.forward] ?? d.forward}`,
      );
      out.push(`   connection limit range = ${d.lThreshold} -> ${d.uThreshold}`);
      if (h) {
        out.push(`   alive = ${h.up ? 1 : 0}`);
        out.push(`   num failed checkers = ${h.checkers.filter((c) => !c.up).length}`);
      }
    }
  }
  return `${out.join('\n')}\n`;
}

export function formatStats(s: DaemonStatus): string {
  const out: string[] = [];
  for (const i of s.vrrp) {
    const n = (k: string) => i.stats[k] ?? 0;
    out.push(
      `VRRP Instance: ${i.name}`,
      '  Advertisements:',
      `    Received: ${n('advert_rcvd')}`,
      `    Sent: ${n('advert_sent')}`,
      `  Became master: ${n('become_master')}`,
      `  Released master: ${n('release_master')}`,
      '  Packet Errors:',
      `    Length: ${n('packet_len_err')}`,
      `    TTL: ${n('ip_ttl_err')}`,
      `    Invalid Type: ${n('invalid_type_rcvd')}`,
      `    Advertisement Interval: ${n('advert_interval_err')}`,
      `    Address List: ${n('addr_list_err')}`,
      '  Authentication Errors:',
      `    Invalid Type: ${n('invalid_authtype')}`,
      `    Type Mismatch: ${n('authtype_mismatch')}`,
      `    Failure: ${n('auth_failure')}`,
      '  Priority Zero:',
      `    Received: ${n('pri_zero_rcvd')}`,
      `    Sent: ${n('pri_zero_sent')}`,
    );
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** keepalived.json (vrrp_json.c vrrp_json_data_dump / vrrp_json_stats_dump), the fields keepvs has */
export function formatJson(s: DaemonStatus): string {
  return `${JSON.stringify(
    s.vrrp.map((i) => {
      const n = (k: string) => i.stats[k] ?? 0;
      const last = i.lastTransitions.at(-1);
      const v = vips(i, false);
      const e = vips(i, true);
      const line = (a: { address: string; prefixLen: number; dev?: string }) =>
        `${vipText(a)} dev ${a.dev ?? i.interface ?? 'none'} scope global`;
      return {
        data: {
          iname: i.name,
          ...(i.interface ? { ifp_ifname: i.interface } : {}),
          last_transition: last ? last.at / 1000 : 0,
          vrid: i.vrid,
          base_priority: i.priority,
          effective_priority: i.effectivePriority,
          vipset: i.state === 'MASTER',
          state: STATE_NUMBER[i.state] ?? 0,
          wantstate: STATE_NUMBER[i.state] ?? 0,
          ...(v.length ? { vips: v.map(line) } : {}),
          ...(e.length ? { evips: e.map(line) } : {}),
        },
        stats: {
          advert_rcvd: n('advert_rcvd'),
          advert_sent: n('advert_sent'),
          become_master: n('become_master'),
          release_master: n('release_master'),
          packet_len_err: n('packet_len_err'),
          advert_interval_err: n('advert_interval_err'),
          ip_ttl_err: n('ip_ttl_err'),
          invalid_type_rcvd: n('invalid_type_rcvd'),
          addr_list_err: n('addr_list_err'),
          invalid_authtype: n('invalid_authtype'),
          authtype_mismatch: n('authtype_mismatch'),
          auth_failure: n('auth_failure'),
          pri_zero_rcvd: n('pri_zero_rcvd'),
          pri_zero_sent: n('pri_zero_sent'),
        },
      };
    }),
    null,
    2,
  )}\n`;
}

/** The files of one signal: SIGUSR1 the data dumps and keepalived.json, SIGUSR2 the stats. */
export function dumpFiles(s: DaemonStatus, kind: DumpKind): [string, string][] {
  if (kind === 'stats') return [['keepalived.stats', formatStats(s)]];
  return [
    ['keepalived.data', formatVrrpData(s)],
    ['keepalived_check.data', formatCheckData(s)],
    // keepalived writes its JSON on SIGJSON, a real-time signal Node cannot take: here with SIGUSR1
    ['keepalived.json', formatJson(s)],
    // keepvs's whole status, as the API serves it
    ['keepvs.json', `${JSON.stringify(s, null, 2)}\n`],
  ];
}
