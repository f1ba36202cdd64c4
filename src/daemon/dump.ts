/** The text of the SIGUSR1 (data) and SIGUSR2 (stats) dumps, from the supervisor's status. */
import type { DaemonStatus } from './status.js';

export type DumpKind = 'data' | 'stats';

export function formatDump(s: DaemonStatus, kind: DumpKind): string {
  const lines: string[] = [`------< keepvs ${kind} >------`, `version ${s.version}, config ${s.configFile}`];
  for (const i of s.vrrp)
    lines.push(
      `VRRP Instance ${i.name}: state ${i.state} vrid ${i.vrid} priority ${i.priority}/${i.effectivePriority}${i.note ? ` (${i.note})` : ''}`,
    );
  for (const svc of s.lvs?.table.services ?? []) {
    lines.push(
      `Virtual Server ${svc.id} ${svc.scheduler}${kind === 'stats' ? ` conns ${svc.stats.conns} inbytes ${svc.stats.inBytes} outbytes ${svc.stats.outBytes}` : ''}`,
    );
    for (const d of svc.dests) {
      lines.push(
        `  Real Server ${d.address}:${d.port} weight ${d.weight} active ${d.activeConns} inactive ${d.inactConns}${kind === 'stats' ? ` conns ${d.stats.conns} cps ${d.rates.cps}` : ''}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
