/** Prometheus metrics, computed from the status snapshot at scrape time (one Registry per daemon). */
import { Counter, Gauge, Registry } from 'prom-client';
import { destId } from '../lb/ids.js';
import type { KeepvsEvent } from '../util/events.js';
import type { StatusSource } from './types.js';

const STATE_VALUE: Record<string, number> = { INIT: 0, BACKUP: 1, MASTER: 2, FAULT: 3, STOP: 4 };

export function createMetrics(source: StatusSource): Registry {
  const registry = new Registry();
  const transitions = new Counter({
    name: 'keepvs_vrrp_transitions_total',
    help: 'VRRP state transitions',
    labelNames: ['instance', 'to'],
    registers: [registry],
  });
  const rsTransitions = new Counter({
    name: 'keepvs_real_server_transitions_total',
    help: 'Real server health transitions',
    labelNames: ['service', 'real_server', 'to'],
    registers: [registry],
  });
  source.subscribe((e: KeepvsEvent) => {
    if (e.type === 'vrrp-state') transitions.inc({ instance: e.instance, to: e.to });
    if (e.type === 'rs-health')
      rsTransitions.inc({ service: e.service, real_server: e.dest, to: e.up ? 'up' : 'down' });
  });
  const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        fill(this);
      },
    });
  const st = () => source.status();
  gauge('keepvs_vrrp_state', 'VRRP state (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 4 STOP)', ['instance'], (g) => {
    for (const i of st().vrrp) g.set({ instance: i.name }, STATE_VALUE[i.state] ?? 0);
  });
  gauge('keepvs_vrrp_priority', 'Configured VRRP priority', ['instance'], (g) => {
    for (const i of st().vrrp) g.set({ instance: i.name }, i.priority);
  });
  gauge('keepvs_vrrp_effective_priority', 'Effective VRRP priority after tracking', ['instance'], (g) => {
    for (const i of st().vrrp) g.set({ instance: i.name }, i.effectivePriority);
  });
  gauge(
    'keepvs_vrrp_packets',
    'VRRP advert counters by kind (sent, received, dropped by reason)',
    ['instance', 'kind'],
    (g) => {
      for (const i of st().vrrp) for (const [k, v] of Object.entries(i.stats)) g.set({ instance: i.name, kind: k }, v);
    },
  );
  const eachDest = (
    fn: (
      labels: { service: string; real_server: string },
      d: NonNullable<ReturnType<typeof st>['lvs']>['table']['services'][number]['dests'][number],
    ) => void,
  ) => {
    const lvs = st().lvs;
    if (!lvs) return;
    for (const s of lvs.table.services)
      for (const d of s.dests) fn({ service: s.id, real_server: destId(d, d.family) }, d);
  };
  gauge('keepvs_real_server_up', 'Real server health (1 up, 0 down)', ['service', 'real_server'], (g) => {
    const lvs = st().lvs;
    for (const s of lvs?.checks.servers ?? []) g.set({ service: s.service, real_server: s.dest }, s.up ? 1 : 0);
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
  gauge('keepvs_real_server_connections', 'Connections scheduled (cumulative)', ['service', 'real_server'], (g) =>
    eachDest((l, d) => g.set(l, d.stats.conns)),
  );
  gauge('keepvs_real_server_bytes', 'Bytes forwarded (cumulative)', ['service', 'real_server', 'direction'], (g) =>
    eachDest((l, d) => {
      g.set({ ...l, direction: 'in' }, d.stats.inBytes);
      g.set({ ...l, direction: 'out' }, d.stats.outBytes);
    }),
  );
  gauge('keepvs_real_server_cps', 'Connections per second (IPVS estimator)', ['service', 'real_server'], (g) =>
    eachDest((l, d) => g.set(l, d.rates.cps)),
  );
  gauge('keepvs_checks_failed', 'Failing checkers of a real server', ['service', 'real_server'], (g) => {
    for (const s of st().lvs?.checks.servers ?? [])
      g.set({ service: s.service, real_server: s.dest }, s.checkers.filter((c) => !c.up).length);
  });
  gauge('keepvs_service_no_destination', 'Connections refused for want of a destination', ['service'], (g) => {
    for (const s of st().lvs?.dataplane.services ?? []) g.set({ service: s.id }, s.noDest);
  });
  gauge('keepvs_service_connect_failures', 'Connections whose real server refused or timed out', ['service'], (g) => {
    for (const s of st().lvs?.dataplane.services ?? []) g.set({ service: s.id }, s.connectFailures);
  });
  gauge(
    'keepvs_dataplane_limits',
    'Proxy resource limits hit (cumulative): fd_exhausted, udp_flows_dropped, udp_flows_evicted',
    ['service', 'kind'],
    (g) => {
      for (const s of st().lvs?.dataplane.services ?? []) {
        if (!s.limits) continue;
        g.set({ service: s.id, kind: 'fd_exhausted' }, s.limits.fdExhausted);
        g.set({ service: s.id, kind: 'udp_flows_dropped' }, s.limits.udpFlowsDropped);
        g.set({ service: s.id, kind: 'udp_flows_evicted' }, s.limits.udpFlowsEvicted);
      }
    },
  );
  gauge(
    'keepvs_control_clients',
    'keepvsadm control socket: connected now, dropped for not reading (slow_dropped), refused (over the limit)',
    ['kind'],
    (g) => {
      const c = st().lvs?.control;
      if (!c) return;
      g.set({ kind: 'connected' }, c.clients);
      g.set({ kind: 'slow_dropped' }, c.slowClientsDropped);
      g.set({ kind: 'refused' }, c.clientsRefused);
    },
  );
  gauge('keepvs_worker_restarts', 'Worker restarts', ['worker'], (g) => {
    for (const w of st().workers) g.set({ worker: w.role }, w.restarts);
  });
  return registry;
}
