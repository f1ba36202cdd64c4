import { hostname } from 'node:os';
import type { Config, NotifyScripts, RealServer, ScriptSpec, VirtualServer, VsgEntry } from '../config/model.js';
import { type ParsedServiceId, parseDestId, parseServiceId } from '../lb/ids.js';
import { NotifyFifo } from '../os/notify-fifo.js';
import { parseV4 } from '../util/address.js';
import type { Clock } from '../util/clock.js';
import type { KeepvsEvent } from '../util/events.js';
import type { Logger } from '../util/logger.js';
import type { ProcessRunner } from '../util/ports.js';
import {
  genericNotifyArgv,
  type MailText,
  type NotifyState,
  type NotifyTarget,
  realServerMail,
  rsFifoLine,
  virtualServerMail,
  vrrpFifoLine,
  vrrpMail,
  vsFifoLine,
} from './format.js';
import { type Mailer, SmtpMailer } from './mail.js';

export interface NotifierOptions {
  readonly config: Config;
  readonly runner: ProcessRunner;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly mailer?: Mailer;
  /** timeout for notify scripts (default 30 s; STOP scripts get 1 s, as keepalived allows them) */
  readonly scriptTimeoutMs?: number;
  /** router_id fallback (keepalived uses the host name) */
  readonly hostname?: string;
  /**
   * run real servers' notify_up/notify_down and quorum_up/quorum_down on rs-health / vs-quorum
   * events (default true). Set false when the checker engine runs them itself, so they run once.
   */
  readonly runCheckerScripts?: boolean;
  /** mails waiting beyond this are dropped, oldest first (default 100) */
  readonly mailQueueLimit?: number;
}

const STOP_SCRIPT_TIMEOUT_MS = 1000;

const specificScript: Record<NotifyState, keyof NotifyScripts> = {
  MASTER: 'master',
  BACKUP: 'backup',
  FAULT: 'fault',
  STOP: 'stop',
  DELETED: 'deleted',
};

function entryMatches(e: VsgEntry, protoAddr: ParsedServiceId): boolean {
  if (e.kind === 'fwmark') return protoAddr.kind === 'fwmark' && protoAddr.fwmark === e.fwmark;
  if (protoAddr.kind !== 'addr' || e.port !== protoAddr.port) return false;
  if (protoAddr.address === e.address || protoAddr.address === e.lastAddress) return true;
  const lo = parseV4(e.address);
  const hi = parseV4(e.lastAddress);
  const x = parseV4(protoAddr.address);
  return lo >= 0 && hi >= 0 && x >= 0 && x >= lo && x <= hi;
}

/**
 * Runs keepalived's notifications for KeepvsEvents: notify_* and generic notify scripts,
 * notify FIFOs, real server notify_up/down, quorum_up/down, and smtp_alert mail.
 */
export class Notifier {
  private config: Config;
  private readonly runner: ProcessRunner;
  private readonly logger: Logger;
  private readonly opts: NotifierOptions;
  private fifos: { notify?: NotifyFifo; vrrp?: NotifyFifo; lvs?: NotifyFifo } = {};
  private fifoScripts: AbortController[] = [];
  private readonly lastMailState = new Map<string, string>();
  private mailQueue: { to: readonly string[]; from: string; text: MailText }[] = [];
  private mailBusy = false;
  private stopped = false;
  /** resolves when the fifos exist; lines are written after that */
  private ready: Promise<void>;
  private pendingScripts = new Set<Promise<unknown>>();

  constructor(options: NotifierOptions) {
    this.opts = options;
    this.config = options.config;
    this.runner = options.runner;
    this.logger = options.logger.child('notify: ');
    this.ready = this.openFifos();
  }

  /** Waits until FIFOs are set up and every script started so far has finished (for tests / shutdown). */
  async idle(): Promise<void> {
    await this.ready;
    while (this.pendingScripts.size > 0 || this.mailBusy) {
      await Promise.all([...this.pendingScripts]);
      if (this.mailBusy) await new Promise((r) => setImmediate(r));
    }
  }

  handle(event: KeepvsEvent): void {
    if (this.stopped) return;
    try {
      switch (event.type) {
        case 'vrrp-state':
          this.vrrpTransition('INSTANCE', event.instance, event.to, event.priority);
          break;
        case 'sync-group-state':
          this.vrrpTransition('GROUP', event.group, event.to, 0);
          break;
        case 'rs-health':
          this.realServerChange(event.service, event.dest, event.up, event.reason);
          break;
        case 'vs-quorum':
          this.quorumChange(event.service, event.up);
          break;
        default:
          break;
      }
    } catch (e) {
      this.logger.log('error', `notification for ${event.type} failed: ${(e as Error).message}`);
    }
  }

  reload(config: Config): void {
    const old = this.config.globalDefs;
    this.config = config;
    const g = config.globalDefs;
    if (
      JSON.stringify([old.notifyFifo, old.vrrpNotifyFifo, old.lvsNotifyFifo]) !==
      JSON.stringify([g.notifyFifo, g.vrrpNotifyFifo, g.lvsNotifyFifo])
    ) {
      this.closeFifos();
      this.ready = this.openFifos();
    }
  }

  stop(): void {
    this.stopped = true;
    this.closeFifos();
    this.mailQueue = [];
  }

  private async openFifos(): Promise<void> {
    const g = this.config.globalDefs;
    const entries = [
      ['notify', g.notifyFifo],
      ['vrrp', g.vrrpNotifyFifo],
      ['lvs', g.lvsNotifyFifo],
    ] as const;
    const fifos: typeof this.fifos = {};
    for (const [key, def] of entries) {
      if (!def) continue;
      const fifo = new NotifyFifo(def.path, this.logger);
      await fifo.ensure(this.runner);
      fifos[key] = fifo;
      if (def.script) this.startFifoScript(def.script, def.path);
    }
    this.fifos = fifos;
  }

  /** keepalived starts `*_fifo_script` with the FIFO's path appended and leaves it running. */
  private startFifoScript(script: ScriptSpec, path: string): void {
    const ac = new AbortController();
    this.fifoScripts.push(ac);
    const user = this.userFor(script);
    void this.runner
      .run([...script.argv, path], { ...user, signal: ac.signal })
      .then((r) => {
        if (ac.signal.aborted) return;
        const why = r.spawnError ?? (r.exitCode === null ? `signal ${r.signal}` : `status ${r.exitCode}`);
        this.logger.log('warning', `fifo script ${script.command} ended (${why})`);
      })
      .catch((e: Error) => this.logger.log('error', `fifo script ${script.command}: ${e.message}`));
  }

  private closeFifos(): void {
    for (const f of Object.values(this.fifos)) f?.close();
    this.fifos = {};
    for (const ac of this.fifoScripts) ac.abort();
    this.fifoScripts = [];
  }

  private userFor(script: ScriptSpec): { user?: string; group?: string } {
    if (script.user !== undefined) return { user: script.user, group: script.group };
    const su = this.config.globalDefs.scriptUser;
    return su ? { user: su.user, group: su.group } : {};
  }

  private runScript(argv: readonly string[], script: ScriptSpec, timeoutMs: number): void {
    const p = this.runner
      .run(argv, { ...this.userFor(script), timeoutMs })
      .then((r) => {
        if (r.spawnError) this.logger.log('error', `cannot run ${script.command}: ${r.spawnError}`);
        else if (r.timedOut) this.logger.log('warning', `${script.command} timed out after ${timeoutMs} ms`);
        else if (r.exitCode !== 0)
          this.logger.log(
            'warning',
            `${script.command} ${r.exitCode === null ? `killed by ${r.signal}` : `exited with status ${r.exitCode}`}`,
          );
      })
      .catch((e: Error) => this.logger.log('error', `cannot run ${script.command}: ${e.message}`))
      .finally(() => this.pendingScripts.delete(p));
    this.pendingScripts.add(p);
  }

  private writeFifo(kind: 'vrrp' | 'lvs', line: string): void {
    void this.ready.then(() => {
      this.fifos.notify?.write(line);
      this.fifos[kind]?.write(line);
    });
  }

  private vrrpTransition(target: NotifyTarget, name: string, to: string, priority: number): void {
    if (!(to in specificScript)) return; // INIT is not notified
    let state = to as NotifyState;
    let notify: NotifyScripts | undefined;
    let smtp: boolean | undefined;
    if (target === 'INSTANCE') {
      const vi = this.config.vrrpInstances.find((i) => i.name === name);
      notify = vi?.notify;
      smtp = vi?.smtpAlert;
    } else {
      const sg = this.config.syncGroups.find((g) => g.name === name);
      notify = sg?.notify;
      smtp = sg?.smtpAlert;
    }
    // vrrp_notify.c: without notify_deleted, a deleted instance is reported as FAULT
    if (state === 'DELETED' && (target === 'GROUP' || !notify?.deleted)) state = 'FAULT';
    const timeout = state === 'STOP' ? STOP_SCRIPT_TIMEOUT_MS : (this.opts.scriptTimeoutMs ?? 30000);
    const specific = notify?.[specificScript[state]];
    if (specific) this.runScript(specific.argv, specific, timeout);
    if (notify?.notify)
      this.runScript(genericNotifyArgv(notify.notify, target, name, state, priority), notify.notify, timeout);
    this.writeFifo('vrrp', vrrpFifoLine(target, name, state, priority));

    const g = this.config.globalDefs;
    const enabled = smtp ?? g.smtpAlertVrrp ?? g.smtpAlert;
    const key = `${target}:${name}`;
    if (enabled && this.lastMailState.get(key) !== state) {
      const text = vrrpMail(this.routerId(), target, name, state);
      if (text) {
        this.lastMailState.set(key, state);
        this.queueMail(text);
      }
    }
  }

  private findService(service: string): VirtualServer | undefined {
    const id = parseServiceId(service);
    if (!id) return undefined;
    return this.config.virtualServers.find((vs) => {
      const k = vs.key;
      if (id.kind === 'group')
        return k.kind === 'group' && k.group === id.group && id.protocol === vs.protocol.toLowerCase();
      if (k.kind === 'fwmark') return id.kind === 'fwmark' && id.fwmark === k.fwmark;
      if (k.kind === 'address')
        return (
          id.kind === 'addr' &&
          id.protocol === vs.protocol.toLowerCase() &&
          id.address === k.address &&
          id.port === k.port
        );
      const group = this.config.virtualServerGroups.find((x) => x.name === k.group);
      if (!group) return false;
      if (id.kind === 'addr' && id.protocol !== vs.protocol.toLowerCase()) return false;
      return group.entries.some((e) => entryMatches(e, id));
    });
  }

  private realServerChange(service: string, dest: string, up: boolean, reason: string): void {
    const vs = this.findService(service);
    const d = parseDestId(dest);
    const addr = d?.address;
    const port = d?.port;
    const rs: RealServer | undefined = vs?.realServers.find(
      (r) =>
        r.address === addr && (r.port === port || (r.port === 0 && vs.key.kind === 'address' && vs.key.port === port)),
    );
    if (!vs || !rs) {
      this.logger.log('debug', `no configured real server for ${service} ${dest}`);
      return;
    }
    const script = up ? rs.notifyUp : rs.notifyDown;
    if (script && this.opts.runCheckerScripts !== false)
      this.runScript(script.argv, script, this.opts.scriptTimeoutMs ?? 30000);
    this.writeFifo('lvs', rsFifoLine(rs, vs, up));
    const g = this.config.globalDefs;
    if (rs.smtpAlert ?? vs.smtpAlert ?? g.smtpAlertChecker ?? g.smtpAlert) {
      this.queueMail(realServerMail(this.routerId(), rs, vs, up, reason));
    }
  }

  private quorumChange(service: string, up: boolean): void {
    const vs = this.findService(service);
    if (!vs) {
      this.logger.log('debug', `no configured virtual server for ${service}`);
      return;
    }
    const script = up ? vs.quorumUp : vs.quorumDown;
    if (script && this.opts.runCheckerScripts !== false)
      this.runScript(script.argv, script, this.opts.scriptTimeoutMs ?? 30000);
    this.writeFifo('lvs', vsFifoLine(vs, up));
    const g = this.config.globalDefs;
    if (vs.smtpAlert ?? g.smtpAlertChecker ?? g.smtpAlert) this.queueMail(virtualServerMail(this.routerId(), vs, up));
  }

  private routerId(): string {
    return this.config.globalDefs.routerId ?? this.opts.hostname ?? hostname();
  }

  private queueMail(text: MailText): void {
    const g = this.config.globalDefs;
    // smtp.c smtp_alert: nothing is sent without recipients and a server
    if (g.notificationEmail.length === 0 || (!g.smtpServer && !this.opts.mailer)) return;
    const from = g.notificationEmailFrom ?? `keepalived@${this.opts.hostname ?? hostname()}`;
    this.mailQueue.push({ to: g.notificationEmail, from, text });
    const limit = this.opts.mailQueueLimit ?? 100;
    while (this.mailQueue.length > limit) {
      const lost = this.mailQueue.shift();
      this.logger.log('warning', `mail queue full, dropping "${lost?.text.subject}"`);
    }
    void this.drainMail();
  }

  private async drainMail(): Promise<void> {
    if (this.mailBusy) return;
    this.mailBusy = true;
    const mailer = this.opts.mailer ?? new SmtpMailer(this.config.globalDefs);
    try {
      for (let m = this.mailQueue.shift(); m && !this.stopped; m = this.mailQueue.shift()) {
        try {
          await mailer.send({ from: m.from, to: m.to, subject: m.text.subject, text: m.text.body });
          this.logger.log('info', `SMTP alert sent: ${m.text.subject}`);
        } catch (e) {
          this.logger.log('error', `SMTP alert "${m.text.subject}" not sent: ${(e as Error).message}`);
        }
      }
    } finally {
      this.mailBusy = false;
    }
  }
}
