/**
 * Renders managed blocks as keepalived.conf text. Every rendered line remembers which spec field
 * each of its words came from, so a parser diagnostic at FILE:LINE:COL maps back to a form field.
 */
import type { CheckerSpec, ManagedSpec, RealServerSpec, Scalar, VirtualServerSpec, VrrpInstanceSpec } from './spec.js';

export interface RenderedLine {
  readonly text: string;
  /** field path of the keyword itself (the line as a whole) */
  readonly field?: string;
  /** field paths of the words after the keyword, in order */
  readonly argFields?: readonly string[];
}

export const MANAGED_HEADER = [
  '# Managed by keepvs: written by the dashboard and /api/v1/config (docs/api.md, "Configuration").',
  '# Hand edits are read back as far as the fields keepvs edits; anything else is dropped on the next change.',
];

class Out {
  readonly lines: RenderedLine[] = [];
  private depth = 0;
  line(text: string, field?: string, argFields?: readonly string[]): void {
    this.lines.push({
      text: `${'    '.repeat(this.depth)}${text}`,
      ...(field ? { field } : {}),
      ...(argFields ? { argFields } : {}),
    });
  }
  /** `keyword value` when the value is set */
  opt(keyword: string, v: Scalar | undefined, field: string): void {
    if (v !== undefined && v !== '') this.line(`${keyword} ${v}`, field, [field]);
  }
  flag(keyword: string, on: boolean | undefined, field: string): void {
    if (on) this.line(keyword, field);
  }
  open(text: string, field?: string, argFields?: readonly string[]): void {
    this.line(`${text} {`, field, argFields);
    this.depth++;
  }
  close(): void {
    this.depth--;
    this.line('}');
  }
}

function checker(o: Out, c: CheckerSpec, f: string): void {
  o.open(c.type, `${f}.type`);
  o.opt('connect_ip', c.connectIp, `${f}.connectIp`);
  o.opt('connect_port', c.connectPort, `${f}.connectPort`);
  o.opt('connect_timeout', c.connectTimeout, `${f}.connectTimeout`);
  o.opt('delay_loop', c.delayLoop, `${f}.delayLoop`);
  o.opt('retry', c.retry, `${f}.retry`);
  o.opt('delay_before_retry', c.delayBeforeRetry, `${f}.delayBeforeRetry`);
  if (c.type === 'MISC_CHECK') o.opt('misc_path', c.miscPath, `${f}.miscPath`);
  if (c.type === 'HTTP_GET' || c.type === 'SSL_GET') {
    (c.urls ?? []).forEach((u, i) => {
      const uf = `${f}.urls[${i}]`;
      o.open('url', uf);
      o.opt('path', u.path, `${uf}.path`);
      o.opt('digest', u.digest, `${uf}.digest`);
      o.opt('status_code', u.statusCode, `${uf}.statusCode`);
      o.close();
    });
  }
  o.close();
}

function realServer(o: Out, rs: RealServerSpec, f: string): void {
  o.open(`real_server ${rs.address} ${rs.port}`, f, [`${f}.address`, `${f}.port`]);
  o.opt('weight', rs.weight, `${f}.weight`);
  o.opt('lvs_method', rs.method, `${f}.method`);
  o.opt('uthreshold', rs.uthreshold, `${f}.uthreshold`);
  o.opt('lthreshold', rs.lthreshold, `${f}.lthreshold`);
  o.flag('inhibit_on_failure', rs.inhibitOnFailure, `${f}.inhibitOnFailure`);
  (rs.checkers ?? []).forEach((c, i) => {
    checker(o, c, `${f}.checkers[${i}]`);
  });
  o.close();
}

export function renderVirtualServer(o: Out, vs: VirtualServerSpec, f: string): void {
  if (vs.fwmark !== undefined) o.open(`virtual_server fwmark ${vs.fwmark}`, f, [`${f}.fwmark`, `${f}.fwmark`]);
  else o.open(`virtual_server ${vs.address ?? ''} ${vs.port ?? ''}`, f, [`${f}.address`, `${f}.port`]);
  if (vs.fwmark !== undefined && vs.family === 6) o.line('inet6', `${f}.family`);
  o.opt('delay_loop', vs.delayLoop, `${f}.delayLoop`);
  o.opt('lvs_sched', vs.scheduler, `${f}.scheduler`);
  for (const flag of vs.schedFlags ?? []) o.line(flag, `${f}.schedFlags`);
  o.flag('ops', vs.ops, `${f}.ops`);
  o.opt('lvs_method', vs.method, `${f}.method`);
  o.opt('protocol', vs.protocol, `${f}.protocol`);
  o.opt('persistence_timeout', vs.persistenceTimeout, `${f}.persistenceTimeout`);
  o.opt('persistence_granularity', vs.persistenceGranularity, `${f}.persistenceGranularity`);
  o.opt('quorum', vs.quorum, `${f}.quorum`);
  o.opt('hysteresis', vs.hysteresis, `${f}.hysteresis`);
  o.flag('inhibit_on_failure', vs.inhibitOnFailure, `${f}.inhibitOnFailure`);
  if (vs.sorryServer)
    o.line(
      `sorry_server ${vs.sorryServer.address}${vs.sorryServer.port !== undefined ? ` ${vs.sorryServer.port}` : ''}`,
      `${f}.sorryServer`,
      [`${f}.sorryServer.address`, `${f}.sorryServer.port`],
    );
  (vs.realServers ?? []).forEach((rs, i) => {
    realServer(o, rs, `${f}.realServers[${i}]`);
  });
  o.close();
}

export function renderVrrpInstance(o: Out, v: VrrpInstanceSpec, f: string): void {
  o.open(`vrrp_instance ${v.name}`, f, [`${f}.name`]);
  o.opt('state', v.state, `${f}.state`);
  o.opt('interface', v.interface, `${f}.interface`);
  o.opt('virtual_router_id', v.vrid, `${f}.vrid`);
  o.opt('priority', v.priority, `${f}.priority`);
  o.opt('advert_int', v.advertInt, `${f}.advertInt`);
  o.opt('version', v.version, `${f}.version`);
  o.flag('nopreempt', v.nopreempt, `${f}.nopreempt`);
  o.opt('preempt_delay', v.preemptDelay, `${f}.preemptDelay`);
  if (v.authPass !== undefined && v.authPass !== '') {
    o.open('authentication', `${f}.authPass`);
    o.line('auth_type PASS', `${f}.authPass`);
    o.opt('auth_pass', v.authPass, `${f}.authPass`);
    o.close();
  }
  if (v.unicastPeers?.length) {
    o.open('unicast_peer', `${f}.unicastPeers`);
    v.unicastPeers.forEach((p, i) => {
      o.line(String(p), `${f}.unicastPeers[${i}]`);
    });
    o.close();
  }
  o.open('virtual_ipaddress', `${f}.vips`);
  (v.vips ?? []).forEach((p, i) => {
    o.line(String(p), `${f}.vips[${i}]`);
  });
  o.close();
  o.close();
}

/** The whole managed file. */
export function renderManaged(spec: ManagedSpec): RenderedLine[] {
  const o = new Out();
  for (const h of MANAGED_HEADER) o.line(h);
  spec.virtualServers.forEach((vs, i) => {
    renderVirtualServer(o, vs, `virtualServers[${i}]`);
  });
  spec.vrrpInstances.forEach((v, i) => {
    renderVrrpInstance(o, v, `vrrpInstances[${i}]`);
  });
  return o.lines;
}

export const managedText = (lines: readonly RenderedLine[]): string => `${lines.map((l) => l.text).join('\n')}\n`;

/** The spec field a diagnostic at (line, col) of the rendered file points at (1-based). */
export function fieldAt(lines: readonly RenderedLine[], line: number, col: number): string | undefined {
  const l = lines[line - 1];
  if (!l) return undefined;
  if (l.argFields?.length) {
    // which word the column falls in: words are separated by single blanks after the indent
    const indent = l.text.length - l.text.trimStart().length;
    const starts: number[] = [];
    for (let i = indent; i < l.text.length; i++)
      if (l.text[i] !== ' ' && (i === indent || l.text[i - 1] === ' ')) starts.push(i + 1);
    let word = 0;
    for (let k = 0; k < starts.length; k++) if (col >= starts[k]) word = k;
    if (word >= 1) return l.argFields[Math.min(word - 1, l.argFields.length - 1)];
  }
  return l.field;
}
