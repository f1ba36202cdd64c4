/** `global_defs { ... }` (keepalived.conf(5) "GLOBAL DEFINITIONS"). */
import type { Node } from '../lexer.js';
import type { GlobalDefs } from '../model.js';
import {
  argAt,
  blockWords,
  boolArg,
  type Ctx,
  intArg,
  type KeywordTable,
  makeScript,
  noExtra,
  parseAddress,
  parseNumber,
  parsePort,
  scriptArg,
  secondsArg,
  stringArg,
  unsupported,
} from './common.js';

type Mutable<T> = { -readonly [K in keyof T]: T[K] };
export type GlobalBuilder = Mutable<GlobalDefs>;

export function defaultGlobalDefs(): GlobalBuilder {
  return {
    notificationEmail: [],
    smtpConnectTimeout: 30,
    smtpAlert: false,
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
    lvsFlushOnStop: false,
    dynamicInterfaces: false,
    defaultInterface: 'eth0',
  };
}

function fifo(node: Node, ctx: Ctx): { path: string; script?: ReturnType<typeof makeScript> } | undefined {
  const path = argAt(node, 0, ctx, 'a FIFO path');
  if (!path) return undefined;
  const script = node.args[1] ? makeScript(node.args[1].text, node.args[1].loc, ctx, node.args[2]?.text) : undefined;
  return { path: path.text, ...(script ? { script } : {}) };
}

function lvsTimeouts(node: Node, ctx: Ctx, g: GlobalBuilder): void {
  const t: { tcp?: number; tcpfin?: number; udp?: number } = {};
  for (let i = 0; i < node.args.length; i += 2) {
    const k = node.args[i].text;
    const v = parseNumber(node.args[i + 1], ctx, {
      min: 0,
      max: 86400 * 365,
      integer: true,
      what: `lvs_timeouts ${k}`,
    });
    if (k === 'tcp' || k === 'tcpfin' || k === 'udp') t[k] = v;
    else if (k === 'sctp')
      ctx.diag.report('KV102', node.args[i].loc, 'lvs_timeouts sctp: SCTP is not supported by keepvs');
    else ctx.diag.report('KV203', node.args[i].loc, `lvs_timeouts takes tcp, tcpfin, udp; not '${k}'`);
    if (!node.args[i + 1]) ctx.diag.report('KV104', node.args[i].loc, `lvs_timeouts ${k} needs a value`);
  }
  g.lvsTimeouts = t;
}

function lvsSyncDaemon(node: Node, ctx: Ctx, g: GlobalBuilder): void {
  const iface = argAt(node, 0, ctx, 'an interface');
  if (!iface) return;
  const d: Mutable<NonNullable<GlobalDefs['lvsSyncDaemon']>> = { interface: iface.text };
  for (let i = 1; i < node.args.length; i++) {
    const k = node.args[i].text;
    const next = node.args[i + 1];
    const num = (min: number, max: number) =>
      parseNumber(next, ctx, { min, max, integer: true, what: `lvs_sync_daemon ${k}` });
    if (k === 'id') d.syncId = num(0, 255);
    else if (k === 'maxlen') d.maxlen = num(1, 65507);
    else if (k === 'port') d.port = num(1, 65535);
    else if (k === 'ttl') d.ttl = num(1, 255);
    else if (k === 'group') d.group = parseAddress(next, ctx, { what: 'lvs_sync_daemon group' })?.address;
    else if (k === 'inst') d.instance = next?.text;
    else if (i === 1) {
      d.instance = k;
      continue;
    } else {
      ctx.diag.report('KV203', node.args[i].loc, `unexpected '${k}' in lvs_sync_daemon`);
      continue;
    }
    i++;
  }
  g.lvsSyncDaemon = d;
}

const notYet = 'keepvs runs without SNMP/DBus/realtime tuning';

export const globalDefsTable: KeywordTable<GlobalBuilder> = {
  router_id: { handle: (n, c, g) => void (g.routerId = stringArg(n, c)) },
  notification_email: {
    block: true,
    handle: (n, _c, g) => void (g.notificationEmail = blockWords(n).map((w) => w.text)),
  },
  notification_email_from: { handle: (n, c, g) => void (g.notificationEmailFrom = stringArg(n, c)) },
  smtp_server: {
    handle: (n, c, g) => {
      noExtra(n, 2, c);
      const host = argAt(n, 0, c, 'an address');
      if (!host) return;
      const port = n.args[1] ? parsePort(n.args[1], c, 'smtp_server port') : 25;
      g.smtpServer = { host: host.text, port: port ?? 25 };
    },
  },
  smtp_helo_name: { handle: (n, c, g) => void (g.smtpHeloName = stringArg(n, c)) },
  smtp_connect_timeout: { handle: (n, c, g) => void (g.smtpConnectTimeout = secondsArg(n, c, 1, 3600) ?? 30) },
  smtp_alert: { handle: (n, c, g) => void (g.smtpAlert = boolArg(n, c)) },
  smtp_alert_vrrp: { handle: (n, c, g) => void (g.smtpAlertVrrp = boolArg(n, c)) },
  smtp_alert_checker: { handle: (n, c, g) => void (g.smtpAlertChecker = boolArg(n, c)) },
  script_user: {
    handle: (n, c, g) => {
      noExtra(n, 2, c);
      const u = argAt(n, 0, c, 'a user');
      if (u) g.scriptUser = { user: u.text, ...(n.args[1] ? { group: n.args[1].text } : {}) };
    },
  },
  enable_script_security: { handle: (n, c, g) => void (g.enableScriptSecurity = boolArg(n, c)) },
  vrrp_mcast_group4: {
    handle: (n, c, g) => {
      const a = parseAddress(argAt(n, 0, c, 'an address'), c, { what: 'vrrp_mcast_group4' });
      if (a) g.vrrpMcastGroup4 = a.address;
    },
  },
  vrrp_mcast_group6: {
    handle: (n, c, g) => {
      const a = parseAddress(argAt(n, 0, c, 'an address'), c, { what: 'vrrp_mcast_group6' });
      if (a) g.vrrpMcastGroup6 = a.address;
    },
  },
  vrrp_version: { handle: (n, c, g) => void (g.vrrpVersion = (intArg(n, c, 2, 3) ?? 2) as 2 | 3) },
  vrrp_garp_master_delay: { handle: (n, c, g) => void (g.vrrpGarpMasterDelay = intArg(n, c, 0, 3600) ?? 5) },
  vrrp_garp_master_repeat: { handle: (n, c, g) => void (g.vrrpGarpMasterRepeat = intArg(n, c, 1, 1000) ?? 5) },
  vrrp_garp_master_refresh: { handle: (n, c, g) => void (g.vrrpGarpMasterRefresh = intArg(n, c, 0, 86400) ?? 0) },
  vrrp_garp_master_refresh_repeat: {
    handle: (n, c, g) => void (g.vrrpGarpMasterRefreshRepeat = intArg(n, c, 1, 1000) ?? 1),
  },
  vrrp_garp_lower_prio_delay: { handle: (n, c, g) => void (g.vrrpGarpLowerPrioDelay = intArg(n, c, 0, 3600)) },
  vrrp_garp_lower_prio_repeat: { handle: (n, c, g) => void (g.vrrpGarpLowerPrioRepeat = intArg(n, c, 0, 1000)) },
  vrrp_garp_interval: { handle: (n, c, g) => void (g.vrrpGarpInterval = secondsArg(n, c, 0, 1) ?? 0) },
  vrrp_gna_interval: { handle: (n, c, g) => void (g.vrrpGnaInterval = secondsArg(n, c, 0, 1) ?? 0) },
  vrrp_min_garp: { handle: (n, c, g) => void (g.vrrpMinGarp = boolArg(n, c)) },
  vrrp_lower_prio_no_advert: { handle: (n, c, g) => void (g.vrrpLowerPrioNoAdvert = boolArg(n, c)) },
  vrrp_higher_prio_send_advert: { handle: (n, c, g) => void (g.vrrpHigherPrioSendAdvert = boolArg(n, c)) },
  vrrp_strict: { handle: (n, c, g) => void (g.vrrpStrict = boolArg(n, c)) },
  vrrp_skip_check_adv_addr: { handle: (n, c, g) => void (g.vrrpSkipCheckAdvAddr = boolArg(n, c)) },
  vrrp_check_unicast_src: { handle: (n, c, g) => void (g.vrrpCheckUnicastSrc = boolArg(n, c)) },
  vrrp_startup_delay: { handle: (n, c, g) => void (g.vrrpStartupDelay = secondsArg(n, c, 0, 3600) ?? 0) },
  v3_checksum_as_v2: { handle: (n, c, g) => void (g.v3ChecksumAsV2 = boolArg(n, c)) },
  notify_fifo: { handle: (n, c, g) => void (g.notifyFifo = fifo(n, c)) },
  notify_fifo_script: {
    handle: (n, c, g) => {
      const s = scriptArg(n, c);
      if (g.notifyFifo && s) g.notifyFifo = { ...g.notifyFifo, script: s };
    },
  },
  vrrp_notify_fifo: { handle: (n, c, g) => void (g.vrrpNotifyFifo = fifo(n, c)) },
  vrrp_notify_fifo_script: {
    handle: (n, c, g) => {
      const s = scriptArg(n, c);
      if (g.vrrpNotifyFifo && s) g.vrrpNotifyFifo = { ...g.vrrpNotifyFifo, script: s };
    },
  },
  lvs_notify_fifo: { handle: (n, c, g) => void (g.lvsNotifyFifo = fifo(n, c)) },
  lvs_notify_fifo_script: {
    handle: (n, c, g) => {
      const s = scriptArg(n, c);
      if (g.lvsNotifyFifo && s) g.lvsNotifyFifo = { ...g.lvsNotifyFifo, script: s };
    },
  },
  lvs_timeouts: { handle: lvsTimeouts },
  lvs_sync_daemon: { handle: lvsSyncDaemon },
  lvs_flush: { handle: (n, c, g) => void (g.lvsFlush = boolArg(n, c)) },
  lvs_flush_on_stop: { handle: (n, c, g) => void (g.lvsFlushOnStop = boolArg(n, c)) },
  lvs_flush_onstop: { deprecated: 'lvs_flush_on_stop', handle: (n, c, g) => void (g.lvsFlushOnStop = boolArg(n, c)) },
  dynamic_interfaces: { handle: (_n, _c, g) => void (g.dynamicInterfaces = true) },
  default_interface: { handle: (n, c, g) => void (g.defaultInterface = stringArg(n, c) ?? 'eth0') },
  startup_script: { handle: (n, c, g) => void (g.startupScript = scriptArg(n, c)) },
  shutdown_script: { handle: (n, c, g) => void (g.shutdownScript = scriptArg(n, c)) },
  max_auto_priority: { handle: (n, c, g) => void (g.maxAutoPriority = intArg(n, c, -1, 99)) },
  ...unsupported<GlobalBuilder>(
    notYet,
    'enable_snmp_vrrp',
    'enable_snmp_keepalived',
    'enable_snmp_checker',
    'enable_snmp_rfc',
    'enable_snmp_rfcv2',
    'enable_snmp_rfcv3',
    'enable_traps',
    'snmp_socket',
    'enable_dbus',
    'dbus_service_name',
    'dbus_no_interface_name',
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
    'min_auto_priority_delay',
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
    'snmp_vs_stats_update_interval',
    'snmp_rs_stats_update_interval',
  ),
  ...unsupported<GlobalBuilder>(
    'keepvs does not manage firewalls, VMACs or IPsets',
    'vrrp_iptables',
    'vrrp_ipsets',
    'nftables',
    'nftables_priority',
    'nftables_counters',
    'nftables_ifindex',
    'nftables_ipvs',
    'nftables_ipvs_priority',
    'nftables_ipvs_start_fwmark',
    'vmac_prefix',
    'vmac_addr_prefix',
    'disable_local_igmp',
    'vrrp_garp_extra_if',
    'vrrp_vmac_garp_intvl',
  ),
  ...unsupported<GlobalBuilder>(
    'not implemented yet',
    'process_names',
    'process_name',
    'vrrp_process_name',
    'checker_process_name',
    'lvs_process_name',
    'bfd_process_name',
    'umask',
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
    'startup_script_timeout',
    'shutdown_script_timeout',
    'no_email_faults',
    'no_checker_emails',
    'checker_log_all_failures',
    'fifo_write_vrrp_states_on_reload',
    'vrrp_notify_priority_changes',
    'vrrp_down_timer_adverts',
    'vrrp_owner_ignore_adverts',
    'vrrp_delay_after_boot',
    'log_unknown_vrids',
    'vrrp_rx_bufs_policy',
    'vrrp_rx_bufs_multiplier',
    'rs_init_notifies',
    'reload_check_config',
    'reload_time_file',
    'reload_repeat',
    'reload_file',
    'include_check',
    'linkbeat_use_polling',
    'smtp_helo',
  ),
};
