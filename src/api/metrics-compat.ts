/**
 * The series existing dashboards read, with the names, types and labels of the exporters they were
 * built for (docs/metrics.md has the mapping):
 * - mehdy/keepalived-exporter (internal/collector/collector.go): keepalived_up, keepalived_vrrp_state per
 *   VIP, the per-instance advert counters (keepalived_*_total, labels iname, intf, vrid), script status;
 * - gen2brain/keepalived_exporter (collector/collector.go): keepalived_lvs_vip_* and keepalived_lvs_rs_*
 *   (labels addr, proto; that exporter's counters have no _total suffix, kept as it names them);
 * - node_exporter's ipvs collector (collector/ipvs_linux.go, procfs net_ip_vs.go): node_ipvs_*.
 */
import type { Gauge, Registry } from 'prom-client';
import type { ServiceSnapshot } from '../lb/types.js';
import { snapshotMetrics } from './snapshot-metrics.js';
import type { DaemonStatus } from './types.js';

/** keepalived's state numbers (vrrp.h VRRP_STATE_*), which the exporters pass through */
const KEEPALIVED_STATE: Record<string, number> = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3, STOP: 98 };

/** keepvs's VRRP counter keys (keepalived's vrrp_stats names) -> mehdy/keepalived-exporter series */
export const KEEPALIVED_COUNTERS: readonly (readonly [string, string, string])[] = [
  ['advert_rcvd', 'keepalived_advertisements_received_total', 'Advertisements received'],
  ['advert_sent', 'keepalived_advertisements_sent_total', 'Advertisements sent'],
  ['become_master', 'keepalived_become_master_total', 'Became master'],
  ['release_master', 'keepalived_release_master_total', 'Released master'],
  ['packet_len_err', 'keepalived_packet_length_errors_total', 'Packet length errors'],
  ['advert_interval_err', 'keepalived_advertisements_interval_errors_total', 'Advertisement interval errors'],
  ['ip_ttl_err', 'keepalived_ip_ttl_errors_total', 'TTL errors'],
  ['invalid_type_rcvd', 'keepalived_invalid_type_received_total', 'Invalid type errors'],
  ['addr_list_err', 'keepalived_address_list_errors_total', 'Address list errors'],
  ['invalid_authtype', 'keepalived_authentication_invalid_total', 'Authentication invalid'],
  ['authtype_mismatch', 'keepalived_authentication_mismatch_total', 'Authentication mismatch'],
  ['auth_failure', 'keepalived_authentication_failure_total', 'Authentication failure'],
  ['pri_zero_rcvd', 'keepalived_priority_zero_received_total', 'Priority zero received'],
  ['pri_zero_sent', 'keepalived_priority_zero_sent_total', 'Priority zero sent'],
];

/** keepalived's ipaddresstos: the address, with /prefix unless it is a host prefix */
export function keepalivedAddress(address: string, prefixLen: number): string {
  const host = address.includes(':') ? 128 : 32;
  return prefixLen === host ? address : `${address}/${prefixLen}`;
}

const IP_PROTO: Record<string, string> = { tcp: '6', udp: '17', sctp: '132' };

/** gen2brain's addr label: Go's IP.String() + ":" + port (IPv6 without brackets); fwmark services have no address */
function lvsAddr(s: ServiceSnapshot): string {
  return s.key.kind === 'addr' ? `${s.key.address}:${s.key.port}` : `FWM:${s.key.fwmark}`;
}

/** node_exporter's labels of one backend, in its order; /proc/net/ip_vs prints fwmark services as `FWM %08X` */
function ipvsLabels(s: ServiceSnapshot, remoteAddress: string, remotePort: number) {
  const fwm = s.key.kind === 'fwmark';
  return {
    local_address: s.key.kind === 'addr' ? s.key.address : '',
    local_port: s.key.kind === 'addr' ? String(s.key.port) : '0',
    remote_address: remoteAddress,
    remote_port: String(remotePort),
    proto: s.key.kind === 'addr' ? s.key.protocol.toUpperCase() : 'FWM',
    local_mark: fwm ? s.key.fwmark.toString(16).toUpperCase().padStart(8, '0') : '',
  };
}

export function registerCompatMetrics(registry: Registry, st: () => DaemonStatus): void {
  const { gauge, counter } = snapshotMetrics(registry);
  gauge('keepalived_up', 'Status', [], (g) => g.set(1));
  const vipLabels = ['iname', 'intf', 'vrid', 'ip_address'];
  const stateSeries = (excluded: boolean) => (g: Gauge) => {
    for (const i of st().vrrp) {
      const value = KEEPALIVED_STATE[i.state] ?? 0;
      const vips = (i.addresses ?? []).filter((a) => a.excluded === excluded);
      for (const a of vips)
        g.set(
          {
            iname: i.name,
            intf: a.dev ?? i.interface ?? '',
            vrid: String(i.vrid),
            ip_address: keepalivedAddress(a.address, a.prefixLen),
          },
          value,
        );
      // as the exporter: an instance without VIPs still has its state, with an empty ip_address
      if (!excluded && vips.length === 0)
        g.set({ iname: i.name, intf: i.interface ?? '', vrid: String(i.vrid), ip_address: '' }, value);
    }
  };
  gauge('keepalived_vrrp_state', 'State of vrrp', vipLabels, stateSeries(false));
  gauge('keepalived_vrrp_excluded_state', 'State of vrrp with excluded VIP', vipLabels, stateSeries(true));
  const common = ['iname', 'intf', 'vrid'];
  for (const [key, name, help] of KEEPALIVED_COUNTERS)
    counter(name, help, common, (c) => {
      for (const i of st().vrrp)
        c.inc({ iname: i.name, intf: i.interface ?? '', vrid: String(i.vrid) }, i.stats[key] ?? 0);
    });
  // keepalived.data's script Status GOOD/BAD (1/0; INIT is left out, as the exporter does) and State idle/running
  gauge('keepalived_script_status', 'Tracker Script Status', ['name'], (g) => {
    for (const s of st().vrrpScripts ?? []) if (s.status !== 'INIT') g.set({ name: s.name }, s.status === 'OK' ? 1 : 0);
  });
  gauge('keepalived_script_state', 'Tracker Script State', ['name'], (g) => {
    for (const s of st().vrrpScripts ?? []) g.set({ name: s.name }, s.running ? 1 : 0);
  });

  const services = () => st().lvs?.table.services ?? [];
  const lvs = [
    ['in_packets', 'inPkts', 'in packets'],
    ['out_packets', 'outPkts', 'out packets'],
    ['in_bytes', 'inBytes', 'in bytes'],
    ['out_bytes', 'outBytes', 'out bytes'],
    ['conn', 'conns', 'connections'],
  ] as const;
  for (const [suffix, field, what] of lvs) {
    counter(`keepalived_lvs_vip_${suffix}`, `VIP ${what}`, ['addr', 'proto'], (c) => {
      for (const s of services()) c.inc({ addr: lvsAddr(s), proto: protoNumber(s) }, s.stats[field]);
    });
    counter(`keepalived_lvs_rs_${suffix}`, `RS ${what}`, ['addr', 'proto'], (c) => {
      for (const s of services())
        for (const d of s.dests) c.inc({ addr: `${d.address}:${d.port}`, proto: protoNumber(s) }, d.stats[field]);
    });
  }

  const totals = [
    ['node_ipvs_connections_total', 'conns', 'The total number of connections made.'],
    ['node_ipvs_incoming_packets_total', 'inPkts', 'The total number of incoming packets.'],
    ['node_ipvs_outgoing_packets_total', 'outPkts', 'The total number of outgoing packets.'],
    ['node_ipvs_incoming_bytes_total', 'inBytes', 'The total amount of incoming data.'],
    ['node_ipvs_outgoing_bytes_total', 'outBytes', 'The total amount of outgoing data.'],
  ] as const;
  for (const [name, field, help] of totals)
    counter(name, help, [], (c) => {
      for (const s of services()) c.inc(s.stats[field]);
    });
  const backend = ['local_address', 'local_port', 'remote_address', 'remote_port', 'proto', 'local_mark'];
  const backends = [
    [
      'node_ipvs_backend_connections_active',
      'activeConns',
      'The current active connections by local and remote address.',
    ],
    [
      'node_ipvs_backend_connections_inactive',
      'inactConns',
      'The current inactive connections by local and remote address.',
    ],
    ['node_ipvs_backend_weight', 'weight', 'The current backend weight by local and remote address.'],
  ] as const;
  for (const [name, field, help] of backends)
    gauge(name, help, backend, (g) => {
      // node_exporter sums rows with the same labels; Gauge.inc does the same
      for (const s of services()) for (const d of s.dests) g.inc(ipvsLabels(s, d.address, d.port), d[field]);
    });
}

function protoNumber(s: ServiceSnapshot): string {
  // IPVS keeps no protocol for a fwmark service (moby/ipvs reports 0)
  return s.key.kind === 'addr' ? (IP_PROTO[s.key.protocol] ?? '0') : '0';
}
