/** `global_defs { ... }` (KA-man5 "GLOBAL DEFINITIONS", keepalived/core/global_parser.c). */
import type { GlobalDefs, ScriptSpec } from '../model.js';
import type { Node } from '../tree.js';
import {
  arg,
  block,
  boolArg,
  type Ctx,
  deprecated,
  intArg,
  ipWord,
  type KeywordEntry,
  type Mutable,
  noExtra,
  parseIntWord,
  parseIp,
  portWord,
  scriptArg,
  stringArg,
  table,
  timerArg,
  unsupportedAll,
  value,
} from './engine.js';

export type GlobalDraft = Mutable<GlobalDefs> & { smtpAlertSet: boolean; notificationEmail: string[] };

export const newGlobalDraft = (): GlobalDraft => ({
  notificationEmail: [],
  smtpConnectTimeout: 30,
  smtpAlert: false,
  smtpAlertSet: false,
  enableScriptSecurity: false,
  vrrpMcastGroup4: '224.0.0.18',
  vrrpMcastGroup6: 'ff02::12',
  vrrpVersion: 2,
  vrrpGarpMasterDelay: 5,
  vrrpGarpMasterRepeat: 5,
  vrrpGarpMasterRefresh: 0,
  vrrpGarpMasterRefreshRepeat: 1,
  vrrpGarpInterval: 0,
  vrrpGnaInterval: 0,
  vrrpMinGarp: false,
  vrrpLowerPrioNoAdvert: false,
  vrrpHigherPrioSendAdvert: false,
  vrrpStrict: false,
  vrrpSkipCheckAdvAddr: false,
  vrrpCheckUnicastSrc: false,
  vrrpStartupDelay: 0,
  v3ChecksumAsV2: false,
  lvsFlush: false,
  expireNodestConn: false,
  lvsFlushOnStop: false,
  dynamicInterfaces: false,
  defaultInterface: 'eth0',
});

/** Finishes the draft (the explicit-smtp_alert marker stays internal: resolve.ts needs it). */
export function finishGlobal(d: GlobalDraft): GlobalDefs {
  const { smtpAlertSet: _set, ...rest } = d;
  return rest;
}

type E = KeywordEntry<GlobalDraft>;
const flag = (set: (d: GlobalDraft, v: boolean) => void): E =>
  value((n, d, c) => {
    const v = boolArg(n, c);
    if (v !== undefined) set(d, v);
  });
const timer = (set: (d: GlobalDraft, v: number) => void, min = 0, max = 1e9): E =>
  value((n, d, c) => {
    const v = timerArg(n, c, min, max);
    if (v !== undefined) set(d, v);
  });
/** keepalived 2.2.7 rejects 0 for vrrp_garp/gna_interval ("'0' is invalid"): reported, default kept. */
const positiveTimer = (set: (d: GlobalDraft, v: number) => void): E =>
  value((n, d, c) => {
    if (n.args[0] && Number(n.args[0].text) === 0) {
      c.repair('KV201', n.args[0].loc, `'${n.keyword.text}' 0 is invalid (0.000001..1 s); ignored, as keepalived does`);
      return;
    }
    const v = timerArg(n, c, 0, 1);
    if (v !== undefined) set(d, v);
  });
const int = (set: (d: GlobalDraft, v: number) => void, min: number, max: number): E =>
  value((n, d, c) => {
    const v = intArg(n, c, min, max);
    if (v !== undefined) set(d, v);
  });
const str = (set: (d: GlobalDraft, v: string) => void): E =>
  value((n, d, c) => {
    const v = stringArg(n, c);
    if (v !== undefined) set(d, v);
  });

function mcastGroup(family: 4 | 6, set: (d: GlobalDraft, v: string) => void): E {
  return value((n, d, c) => {
    const w = arg(n, 0, c, 'a multicast address');
    if (!w) return;
    noExtra(n, 1, c);
    const ip = ipWord(w, c, `'${n.keyword.text}'`);
    if (!ip) return;
    if (ip.family !== family) c.report('KV312', w.loc, `'${n.keyword.text}' needs an IPv${family} address`);
    else set(d, ip.address);
  });
}

/** `notify_fifo PATH [username [group]]` plus the matching `*_script` keyword. */
function fifo(key: 'notifyFifo' | 'vrrpNotifyFifo' | 'lvsNotifyFifo'): [E, E] {
  const path = value<GlobalDraft>((n, d, c) => {
    const w = arg(n, 0, c, 'a FIFO path');
    if (w) d[key] = { ...d[key], path: w.text };
  });
  const script = value<GlobalDraft>((n, d, c) => {
    const s = scriptArg(n, c, true);
    if (!s) return;
    const cur = d[key];
    if (!cur) c.report('KV311', n.loc, `'${n.keyword.text}' has no effect without its FIFO path keyword`);
    d[key] = { path: cur?.path ?? '', script: s };
  });
  return [path, script];
}

function scriptUser(n: Node, d: GlobalDraft, c: Ctx): void {
  const w = arg(n, 0, c, 'a user name');
  if (!w) return;
  noExtra(n, 2, c);
  const [user, groupInline] = w.text.split(':');
  const group = n.args[1]?.text ?? (groupInline || undefined);
  d.scriptUser = group ? { user, group } : { user };
}

function lvsTimeouts(n: Node, d: GlobalDraft, c: Ctx): void {
  const t: { tcp?: number; tcpfin?: number; udp?: number } = {};
  for (let i = 0; i < n.args.length; i += 2) {
    const k = n.args[i];
    const v = n.args[i + 1];
    if (!['tcp', 'tcpfin', 'udp'].includes(k.text)) {
      c.report('KV203', k.loc, `lvs_timeouts: '${k.text}' is not tcp|tcpfin|udp`);
      continue;
    }
    if (!v) {
      c.report('KV113', k.loc, `lvs_timeouts ${k.text} needs a number of seconds`);
      break;
    }
    const s = parseIntWord(v, 0, 86400 * 31, c, `lvs_timeouts ${k.text}`);
    if (s !== undefined) t[k.text as 'tcp'] = s;
  }
  d.lvsTimeouts = t;
}

/** `lvs_sync_daemon IF [[inst] VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]` */
function lvsSyncDaemon(n: Node, d: GlobalDraft, c: Ctx): void {
  const w = arg(n, 0, c, 'an interface');
  if (!w) return;
  const out: Mutable<NonNullable<GlobalDefs['lvsSyncDaemon']>> = { interface: w.text, loc: n.loc };
  const words = n.args.slice(1);
  for (let i = 0; i < words.length; i++) {
    const k = words[i].text;
    const v = words[i + 1];
    const need = () => {
      if (!v) c.report('KV113', words[i].loc, `lvs_sync_daemon ${k} needs a value`);
      return v;
    };
    if (k === 'id' && need()) out.syncId = parseIntWord(v, 0, 255, c, 'lvs_sync_daemon id');
    else if (k === 'maxlen' && need()) out.maxlen = parseIntWord(v, 1, 65535 - 20 - 8, c, 'lvs_sync_daemon maxlen');
    else if (k === 'port' && need()) out.port = portWord(v, c, 'lvs_sync_daemon port');
    else if (k === 'ttl' && need()) out.ttl = parseIntWord(v, 1, 255, c, 'lvs_sync_daemon ttl');
    else if (k === 'group' && need()) out.group = ipWord(v, c, 'lvs_sync_daemon group')?.address;
    else if (k === 'inst' && need()) out.instance = v.text;
    else if (['id', 'maxlen', 'port', 'ttl', 'group', 'inst'].includes(k)) break;
    else if (i === 0) {
      out.instance = k;
      continue;
    } else {
      c.report('KV114', words[i].loc, `lvs_sync_daemon: unexpected '${k}' ignored`);
      continue;
    }
    i++;
  }
  d.lvsSyncDaemon = out;
}

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function smtpServer(n: Node, d: GlobalDraft, c: Ctx): void {
  const w = arg(n, 0, c, 'an address');
  if (!w) return;
  noExtra(n, 2, c);
  const port = n.args[1] ? portWord(n.args[1], c, 'smtp_server port') : 25;
  // global_parser.c smtpserver_handler: an IP address or a host name, else "Invalid smtp server"
  // (keepalived also resolves the name; keepvs -t checks its form only, no DNS query)
  if (!parseIp(w.text) && !HOST_NAME.test(w.text)) {
    c.repair('KV204', w.loc, `invalid smtp_server '${w.text}' (not an IP address or host name); ignored`);
    return;
  }
  if (port !== undefined) d.smtpServer = { host: w.text, port };
}

function script(key: 'startupScript' | 'shutdownScript'): E {
  return value((n, d, c) => {
    const s: ScriptSpec | undefined = scriptArg(n, c, true);
    if (s) d[key] = s;
  });
}

const [nf, nfs] = fifo('notifyFifo');
const [vnf, vnfs] = fifo('vrrpNotifyFifo');
const [lnf, lnfs] = fifo('lvsNotifyFifo');

const NOT_SUPPORTED_RT = 'realtime scheduling and process tuning are left to the OS';
const NOT_SUPPORTED_SNMP = 'SNMP is not implemented; use the JSON API or /metrics';

export const GLOBAL_DEFS: ReadonlyMap<string, E> = table<GlobalDraft>(
  [
    ['router_id', str((d, v) => (d.routerId = v))],
    [
      'notification_email',
      block((n, d, c) => {
        // global_parser.c: "Warning - empty notification_email block"
        if (!n.children?.length) c.report('KV311', n.loc, 'empty notification_email block');
        for (const child of n.children ?? [])
          d.notificationEmail.push(child.keyword.text, ...child.args.map((a) => a.text));
      }),
    ],
    ['notification_email_from', str((d, v) => (d.notificationEmailFrom = v))],
    ['smtp_server', value(smtpServer)],
    ['smtp_helo_name', str((d, v) => (d.smtpHeloName = v))],
    ['smtp_connect_timeout', int((d, v) => (d.smtpConnectTimeout = v), 1, 3600)],
    [
      'smtp_alert',
      flag((d, v) => {
        d.smtpAlert = v;
        d.smtpAlertSet = true;
      }),
    ],
    ['smtp_alert_vrrp', flag((d, v) => (d.smtpAlertVrrp = v))],
    ['smtp_alert_checker', flag((d, v) => (d.smtpAlertChecker = v))],
    ['no_email_faults', flag((d, v) => (d.noEmailFaults = v))],
    ['checker_log_all_failures', flag((d, v) => (d.checkerLogAllFailures = v))],
    ['script_user', value(scriptUser)],
    ['enable_script_security', flag((d, v) => (d.enableScriptSecurity = v))],
    ['vrrp_mcast_group4', mcastGroup(4, (d, v) => (d.vrrpMcastGroup4 = v))],
    ['vrrp_mcast_group6', mcastGroup(6, (d, v) => (d.vrrpMcastGroup6 = v))],
    ['vrrp_version', int((d, v) => (d.vrrpVersion = v as 2 | 3), 2, 3)],
    ['vrrp_garp_master_delay', int((d, v) => (d.vrrpGarpMasterDelay = v), 0, 86400)],
    ['vrrp_garp_master_repeat', int((d, v) => (d.vrrpGarpMasterRepeat = v), 0, 65535)],
    ['vrrp_garp_master_refresh', int((d, v) => (d.vrrpGarpMasterRefresh = v), 0, 86400)],
    ['vrrp_garp_master_refresh_repeat', int((d, v) => (d.vrrpGarpMasterRefreshRepeat = v), 1, 65535)],
    ['vrrp_garp_lower_prio_delay', int((d, v) => (d.vrrpGarpLowerPrioDelay = v), 0, 86400)],
    ['vrrp_garp_lower_prio_repeat', int((d, v) => (d.vrrpGarpLowerPrioRepeat = v), 0, 65535)],
    ['vrrp_garp_interval', positiveTimer((d, v) => (d.vrrpGarpInterval = v))],
    ['vrrp_gna_interval', positiveTimer((d, v) => (d.vrrpGnaInterval = v))],
    ['vrrp_min_garp', flag((d, v) => (d.vrrpMinGarp = v))],
    ['vrrp_lower_prio_no_advert', flag((d, v) => (d.vrrpLowerPrioNoAdvert = v))],
    ['vrrp_higher_prio_send_advert', flag((d, v) => (d.vrrpHigherPrioSendAdvert = v))],
    ['vrrp_strict', flag((d, v) => (d.vrrpStrict = v))],
    ['vrrp_skip_check_adv_addr', flag((d, v) => (d.vrrpSkipCheckAdvAddr = v))],
    ['vrrp_check_unicast_src', flag((d, v) => (d.vrrpCheckUnicastSrc = v))],
    ['vrrp_startup_delay', timer((d, v) => (d.vrrpStartupDelay = v), 0, 3600)],
    ['v3_checksum_as_v2', flag((d, v) => (d.v3ChecksumAsV2 = v))],
    ['notify_fifo', nf],
    ['notify_fifo_script', nfs],
    ['vrrp_notify_fifo', vnf],
    ['vrrp_notify_fifo_script', vnfs],
    ['lvs_notify_fifo', lnf],
    ['lvs_notify_fifo_script', lnfs],
    ['lvs_timeouts', value(lvsTimeouts)],
    ['lvs_sync_daemon', value(lvsSyncDaemon)],
    ['lvs_flush', flag((d, v) => (d.lvsFlush = v))],
    [
      'expire_nodest_conn',
      value((n, d, c) => {
        c.report('KV116', n.loc, "'expire_nodest_conn' is a keepvs keyword (keepalived would report it as unknown)");
        d.expireNodestConn = n.args.length === 0 ? true : (boolArg(n, c) ?? d.expireNodestConn);
      }),
    ],
    ['lvs_flush_on_stop', flag((d, v) => (d.lvsFlushOnStop = v))],
    [
      'lvs_flush_onstop',
      deprecated(
        flag((d, v) => (d.lvsFlushOnStop = v)),
        'lvs_flush_on_stop',
        true,
      ),
    ],
    ['dynamic_interfaces', value((_n, d) => (d.dynamicInterfaces = true))],
    ['default_interface', str((d, v) => (d.defaultInterface = v))],
    ['startup_script', script('startupScript')],
    ['startup_script_timeout', int((d, v) => (d.startupScriptTimeout = v), 1, 1000)],
    ['shutdown_script', script('shutdownScript')],
    ['shutdown_script_timeout', int((d, v) => (d.shutdownScriptTimeout = v), 1, 1000)],
    ['max_auto_priority', value((n, d, c) => (d.maxAutoPriority = n.args.length ? intArg(n, c, -1, 99) : 99))],
  ],
  unsupportedAll(
    [
      'snmp_socket',
      'enable_snmp_vrrp',
      'enable_snmp_keepalived',
      'enable_snmp_checker',
      'enable_snmp_rfc',
      'enable_snmp_rfcv2',
      'enable_snmp_rfcv3',
      'enable_traps',
      'snmp_vs_stats_update_interval',
      'snmp_rs_stats_update_interval',
    ],
    NOT_SUPPORTED_SNMP,
  ),
  unsupportedAll(['enable_dbus', 'dbus_service_name', 'dbus_no_interface_name'], 'DBus is not implemented'),
  unsupportedAll(
    ['vmac_prefix', 'vmac_addr_prefix', 'vrrp_garp_extra_if', 'vrrp_vmac_garp_intvl', 'disable_local_igmp'],
    'VMAC / macvlan interfaces are not implemented',
  ),
  unsupportedAll(
    [
      'vrrp_iptables',
      'vrrp_ipsets',
      'nftables',
      'nftables_priority',
      'nftables_counters',
      'nftables_ifindex',
      'nftables_ipvs',
      'nftables_ipvs_priority',
      'nftables_ipvs_start_fwmark',
    ],
    'keepalived firewall integration is not implemented (keepvs has its own --dataplane nft)',
  ),
  unsupportedAll(
    [
      'process_names',
      'process_name',
      'vrrp_process_name',
      'checker_process_name',
      'lvs_process_name',
      'bfd_process_name',
      'vrrp_priority',
      'checker_priority',
      'bfd_priority',
      'vrrp_no_swap',
      'checker_no_swap',
      'bfd_no_swap',
      'vrrp_cpu_affinity',
      'checker_cpu_affinity',
      'bfd_cpu_affinity',
      'vrrp_rt_priority',
      'checker_rt_priority',
      'bfd_rt_priority',
      'vrrp_rlimit_rttime',
      'checker_rlimit_rttime',
      'bfd_rlimit_rttime',
      'vrrp_rlimit_rtime',
      'checker_rlimit_rtime',
      'bfd_rlimit_rtime',
      'min_auto_priority_delay',
      'umask',
      'child_wait_time',
    ],
    `${NOT_SUPPORTED_RT}; keepvs is one Node.js process`,
  ),
  unsupportedAll(
    [
      'vrrp_netlink_cmd_rcv_bufs',
      'vrrp_netlink_cmd_rcv_bufs_force',
      'vrrp_netlink_monitor_rcv_bufs',
      'vrrp_netlink_monitor_rcv_bufs_force',
      'lvs_netlink_cmd_rcv_bufs',
      'lvs_netlink_cmd_rcv_bufs_force',
      'lvs_netlink_monitor_rcv_bufs',
      'lvs_netlink_monitor_rcv_bufs_force',
      'process_monitor_rcv_bufs',
      'process_monitor_rcv_bufs_force',
      'vrrp_rx_bufs_policy',
      'vrrp_rx_bufs_multiplier',
    ],
    'netlink and socket buffer tuning does not apply to keepvs',
  ),
  unsupportedAll(
    [
      'tmp_config_directory',
      'config_save_dir',
      'data_use_instance',
      'state_file_location',
      'stats_file_location',
      'json_file_location',
      'state_dump_file',
      'stats_dump_file',
      'json_dump_file',
      'json_version',
      'iproute_usr_dir',
      'iproute_etc_dir',
      'random_seed',
      'use_symlink_paths',
      'set_supplementary_groups',
      'reload_check_config',
      'reload_time_file',
      'reload_repeat',
      'reload_file',
      'fifo_write_vrrp_states_on_reload',
      'vrrp_notify_priority_changes',
      'vrrp_down_timer_adverts',
      'vrrp_owner_ignore_adverts',
      'vrrp_delay_after_boot',
      'log_unknown_vrids',
      'rs_init_notifies',
      'no_checker_emails',
      'linkbeat_use_polling',
      'vrrp_startup_delay_after_boot',
    ],
    'this keepalived global option has no keepvs equivalent yet (state/status are in the JSON API)',
  ),
);

/** Runs of the parse for the root-level `global_defs` block. */
export type { Node };
