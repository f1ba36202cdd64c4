/**
 * Checks of a configuration against the host it is tested on (keepalived -t does them too): every
 * interface named must exist. keepalived reports each one ("interface X for ... doesn't exist",
 * vrrp_parser.c / vrrp_ipaddress.c) and then "Non-existent interface specified in configuration"
 * (CONFIG_BAD_IF). `keepvs -t --no-interface-check` skips them, to test a config meant for
 * another machine. Pure: the host is asked through `interfaceExists`.
 */
import type { Config, Diagnostic, SourceLoc } from './model.js';

export function interfaceDiagnostics(config: Config, interfaceExists: (name: string) => boolean): Diagnostic[] {
  const out: Diagnostic[] = [];
  const missing = (name: string | undefined, loc: SourceLoc, message: string) => {
    if (name === undefined || interfaceExists(name)) return;
    out.push({ code: 'KV322', severity: 'warning', file: loc.file, line: loc.line, col: loc.col, message });
  };
  for (const a of config.staticIpaddresses)
    missing(a.dev, a.loc, `interface ${a.dev} for ip address ${a.address} doesn't exist`);
  for (const r of config.staticRoutes) missing(r.dev, r.loc, `interface ${r.dev} for static route doesn't exist`);
  for (const v of config.vrrpInstances) {
    missing(v.interface, v.interfaceLoc ?? v.loc, `interface ${v.interface} for vrrp_instance ${v.name} doesn't exist`);
    for (const t of v.trackInterfaces) missing(t.name, t.loc, `(${v.name}) tracked interface ${t.name} doesn't exist`);
    for (const a of [...v.virtualIpaddresses, ...v.virtualIpaddressesExcluded])
      if (a.dev !== v.interface) missing(a.dev, a.loc, `interface ${a.dev} for ip address ${a.address} doesn't exist`);
    for (const r of v.virtualRoutes) missing(r.dev, r.loc, `interface ${r.dev} for VROUTE nexthop doesn't exist`);
  }
  return out;
}

/**
 * KV332: `bgp_announce` on a host where the BGP speaker cannot run (FRR's bgpd missing, no user
 * frr, not root): the VIPs would never be announced. `why` is asked of the host (os/frr-bgp.ts).
 */
export function bgpSpeakerDiagnostics(config: Config, why: () => string | undefined): Diagnostic[] {
  const b = config.bgpAnnounce;
  if (!b || !config.virtualServers.some((v) => v.bgpAnnounce)) return [];
  const reason = why();
  if (!reason) return [];
  return [
    {
      code: 'KV332',
      severity: 'warning',
      file: b.loc.file,
      line: b.loc.line,
      col: b.loc.col,
      message: `bgp_announce: ${reason}; the VIPs will not be announced`,
    },
  ];
}
