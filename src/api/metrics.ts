/**
 * Prometheus metrics, computed from the status snapshot at scrape time (one Registry per daemon).
 * keepvs's own series are keepvs_*; the series of the keepalived exporters and of node_exporter's
 * ipvs collector come from metrics-compat.ts. docs/metrics.md lists every series (a test checks it).
 * No series has an `instance` label: Prometheus sets that one to the scrape target.
 */
import { Counter, Registry } from 'prom-client';
import { destId } from '../lb/ids.js';
import type { KeepvsEvent } from '../util/events.js';
import { registerCompatMetrics } from './metrics-compat.js';
import { snapshotMetrics } from './snapshot-metrics.js';
import type { StatusSource } from './types.js';

const STATE_VALUE: Record<string, number> = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3, STOP: 4 };

export function createMetrics(source: StatusSource): Registry {
  const registry = new Registry();
  const { gauge, counter } = snapshotMetrics(registry);
  const transitions = new Counter({
    name: 'keepvs_vrrp_transitions_total',
    help: 'VRRP state transitions',
    labelNames: ['vrrp_instance', 'to'],
    registers: [registry],
  });
  const rsTransitions = new Counter({
    name: 'keepvs_real_server_transitions_total',
    help: 'Real server health transitions',
    labelNames: ['service', 'real_server', 'to'],
    registers: [registry],
  });
  source.subscribe((e: KeepvsEvent) => {
    if (e.type === 'vrrp-state') transitions.inc({ vrrp_instance: e.instance, to: e.to });
    if (e.type === 'rs-health')
      rsTransitions.inc({ service: e.service, real_server: e.dest, to: e.up ? 'up' : 'down' });
  });
  const st = () => source.status();
  gauge('keepvs_vrrp_state', 'VRRP state (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 4 STOP)', ['vrrp_instance'], (g) => {
    for (const i of st().vrrp) g.set({ vrrp_instance: i.name }, STATE_VALUE[i.state] ?? 0);
  });
  gauge('keepvs_vrrp_priority', 'Configured VRRP priority', ['vrrp_instance'], (g) => {
    for (const i of st().vrrp) g.set({ vrrp_instance: i.name }, i.priority);
  });
  gauge('keepvs_vrrp_effective_priority', 'Effective VRRP priority after tracking', ['vrrp_instance'], (g) => {
    for (const i of st().vrrp) g.set({ vrrp_instance: i.name }, i.effectivePriority);
  });
  counter(
    'keepvs_vrrp_packets_total',
    'VRRP advert counters by kind (advert_sent, advert_rcvd, become_master, drops by reason)',
    ['vrrp_instance', 'kind'],
    (c) => {
      for (const i of st().vrrp)
        for (const [k, v] of Object.entries(i.stats)) c.inc({ vrrp_instance: i.name, kind: k }, v);
    },
  );
  type Lvs = NonNullable<ReturnType<typeof st>['lvs']>;
  type Service = Lvs['table']['services'][number];
  const eachService = (fn: (labels: { service: string }, s: Service) => void) => {
    for (const s of st().lvs?.table.services ?? []) fn({ service: s.id }, s);
  };
  const eachDest = (fn: (labels: { service: string; real_server: string }, d: Service['dests'][number]) => void) => {
    for (const s of st().lvs?.table.services ?? [])
      for (const d of s.dests) fn({ service: s.id, real_server: destId(d, d.family) }, d);
  };
  gauge('keepvs_real_server_up', 'Real server health (1 up, 0 down)', ['service', 'real_server'], (g) => {
    for (const s of st().lvs?.checks.servers ?? []) g.set({ service: s.service, real_server: s.dest }, s.up ? 1 : 0);
  });
  gauge('keepvs_real_server_weight', 'Real server weight in the table', ['service', 'real_server'], (g) =>
    eachDest((l, d) => g.set(l, d.weight)),
  );
  gauge('keepvs_real_server_active_connections', 'ActiveConn', ['service', 'real_server'], (g) =>
    eachDest((l, d) => g.set(l, d.activeConns)),
  );
  gauge('keepvs_real_server_inactive_connections', 'InActConn', ['service', 'real_server'], (g) =>
    eachDest((l, d) => g.set(l, d.inactConns)),
  );
  gauge(
    'keepvs_real_server_persistent_connections',
    'PersistConn (persistence templates)',
    ['service', 'real_server'],
    (g) => eachDest((l, d) => g.set(l, d.persistConns)),
  );
  counter('keepvs_real_server_connections_total', 'Connections scheduled', ['service', 'real_server'], (c) =>
    eachDest((l, d) => c.inc(l, d.stats.conns)),
  );
  counter('keepvs_real_server_bytes_total', 'Bytes forwarded', ['service', 'real_server', 'direction'], (c) =>
    eachDest((l, d) => {
      c.inc({ ...l, direction: 'in' }, d.stats.inBytes);
      c.inc({ ...l, direction: 'out' }, d.stats.outBytes);
    }),
  );
  counter('keepvs_real_server_packets_total', 'Packets forwarded', ['service', 'real_server', 'direction'], (c) =>
    eachDest((l, d) => {
      c.inc({ ...l, direction: 'in' }, d.stats.inPkts);
      c.inc({ ...l, direction: 'out' }, d.stats.outPkts);
    }),
  );
  gauge('keepvs_real_server_cps', 'Connections per second (IPVS estimator)', ['service', 'real_server'], (g) =>
    eachDest((l, d) => g.set(l, d.rates.cps)),
  );
  counter('keepvs_service_connections_total', 'Connections scheduled by a virtual server', ['service'], (c) =>
    eachService((l, s) => c.inc(l, s.stats.conns)),
  );
  counter('keepvs_service_bytes_total', 'Bytes through a virtual server', ['service', 'direction'], (c) =>
    eachService((l, s) => {
      c.inc({ ...l, direction: 'in' }, s.stats.inBytes);
      c.inc({ ...l, direction: 'out' }, s.stats.outBytes);
    }),
  );
  counter('keepvs_service_packets_total', 'Packets through a virtual server', ['service', 'direction'], (c) =>
    eachService((l, s) => {
      c.inc({ ...l, direction: 'in' }, s.stats.inPkts);
      c.inc({ ...l, direction: 'out' }, s.stats.outPkts);
    }),
  );
  gauge('keepvs_service_cps', 'Connections per second of a virtual server (IPVS estimator)', ['service'], (g) =>
    eachService((l, s) => g.set(l, s.rates.cps)),
  );
  gauge('keepvs_checks_failed', 'Failing checkers of a real server', ['service', 'real_server'], (g) => {
    for (const s of st().lvs?.checks.servers ?? [])
      g.set({ service: s.service, real_server: s.dest }, s.checkers.filter((c) => !c.up).length);
  });
  counter('keepvs_service_no_destination_total', 'Connections refused for want of a destination', ['service'], (c) => {
    for (const s of st().lvs?.dataplane.services ?? []) c.inc({ service: s.id }, s.noDest);
  });
  counter(
    'keepvs_service_connect_failures_total',
    'Connections whose real server refused or timed out',
    ['service'],
    (c) => {
      for (const s of st().lvs?.dataplane.services ?? []) c.inc({ service: s.id }, s.connectFailures);
    },
  );
  counter(
    'keepvs_dataplane_limits_total',
    'Proxy resource limits hit: fd_exhausted, udp_flows_dropped, udp_flows_evicted',
    ['service', 'kind'],
    (c) => {
      for (const s of st().lvs?.dataplane.services ?? []) {
        if (!s.limits) continue;
        c.inc({ service: s.id, kind: 'fd_exhausted' }, s.limits.fdExhausted);
        c.inc({ service: s.id, kind: 'udp_flows_dropped' }, s.limits.udpFlowsDropped);
        c.inc({ service: s.id, kind: 'udp_flows_evicted' }, s.limits.udpFlowsEvicted);
      }
    },
  );
  gauge('keepvs_control_clients', 'keepvsadm control socket clients connected now', [], (g) => {
    const c = st().lvs?.control;
    if (c) g.set(c.clients);
  });
  counter(
    'keepvs_control_clients_dropped_total',
    'keepvsadm control socket clients dropped for not reading (slow) or refused over the limit (refused)',
    ['reason'],
    (c) => {
      const s = st().lvs?.control;
      if (!s) return;
      c.inc({ reason: 'slow' }, s.slowClientsDropped);
      c.inc({ reason: 'refused' }, s.clientsRefused);
    },
  );
  counter('keepvs_worker_restarts_total', 'Worker restarts', ['worker'], (c) => {
    for (const w of st().workers) c.inc({ worker: w.role }, w.restarts);
  });
  // active-active announcing (bgp_announce, docs/scale-out.md): absent without it
  gauge('keepvs_bgp_speaker_up', 'The BGP daemon keepvs drives runs without error (1) or not (0)', ['speaker'], (g) => {
    const b = st().bgp;
    if (b) g.set({ speaker: b.speaker }, b.running && !b.error ? 1 : 0);
  });
  gauge('keepvs_bgp_vip_announced', 'VIP announced to the routers (1) or withdrawn (0)', ['prefix'], (g) => {
    for (const v of st().bgp?.vips ?? []) g.set({ prefix: v.prefix }, v.announced ? 1 : 0);
  });
  gauge(
    'keepvs_bgp_vip_hold_down_seconds',
    'Hold-down left before a withdrawn VIP may be announced again',
    ['prefix'],
    (g) => {
      for (const v of st().bgp?.vips ?? []) g.set({ prefix: v.prefix }, v.holdDownRemainingMs / 1000);
    },
  );
  counter('keepvs_bgp_vip_withdrawals_total', 'Withdrawals of a VIP since the daemon started', ['prefix'], (c) => {
    for (const v of st().bgp?.vips ?? []) c.inc({ prefix: v.prefix }, v.withdrawals);
  });
  gauge(
    'keepvs_bgp_neighbor_established',
    'BGP session to the router Established (1) or not (0)',
    ['neighbor'],
    (g) => {
      for (const n of st().bgp?.neighbors ?? []) g.set({ neighbor: n.address }, n.state === 'Established' ? 1 : 0);
    },
  );
  gauge('keepvs_bgp_neighbor_bfd_up', 'BFD session to the router up (1) or down (0)', ['neighbor'], (g) => {
    for (const n of st().bgp?.neighbors ?? [])
      if (n.bfd !== undefined) g.set({ neighbor: n.address }, /^up$/i.test(n.bfd) ? 1 : 0);
  });
  registerCompatMetrics(registry, st);
  return registry;
}
