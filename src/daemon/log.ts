/**
 * Log sinks: keepalived-style lines to the console (-l), a log file (-g), and syslog (default,
 * through the `logger` program's socket-free fallback avoided: libc syslog(3) via koffi).
 */
import { appendFileSync } from 'node:fs';
import { loadSyslog } from '../os/libc.js';
import type { Logger, LogLevel } from '../util/logger.js';

const SYSLOG_LEVEL: Record<LogLevel, number> = { error: 3, warning: 4, notice: 5, info: 6, debug: 7 };
const FACILITY: Record<string, number> = { user: 1 << 3, daemon: 3 << 3 };
for (let i = 0; i < 8; i++) {
  FACILITY[`local${i}`] = (16 + i) << 3;
  FACILITY[String(i)] = (16 + i) << 3;
}

type SyslogFn = (priority: number, message: string) => void;

async function openSyslog(ident: string, facility: string): Promise<SyslogFn | undefined> {
  const lib = loadSyslog();
  if (!lib) return undefined;
  try {
    // LOG_PID | LOG_NDELAY; ident must stay alive for the process lifetime
    const keep = Buffer.from(`${ident}\0`);
    lib.openlog(keep, 0x01 | 0x08, FACILITY[facility] ?? FACILITY.daemon);
    (globalThis as { __keepvsIdent?: Buffer }).__keepvsIdent = keep;
    return (p, m) => lib.syslog(p, m);
  } catch {
    return undefined;
  }
}

export interface LogOptions {
  readonly console: boolean;
  readonly detail: boolean;
  readonly file?: string;
  readonly syslog: boolean;
  readonly facility: string;
  readonly ident: string;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');
const clock = (d: Date) => `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;

/**
 * keepalived's timestamps (lib/logger.c vlog_message), in local time: the console's strftime "%c"
 * in the C locale ("Tue Dec  1 19:06:41 2026"), the log file's "%a %b %d %T.NNNNNNNNN %Y".
 */
export function consoleTimestamp(d: Date): string {
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${clock(d)} ${d.getFullYear()}`;
}

export function fileTimestamp(d: Date): string {
  const ns = `${String(d.getMilliseconds()).padStart(3, '0')}000000`;
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${two(d.getDate())} ${clock(d)}.${ns} ${d.getFullYear()}`;
}

/** syslog idents per process, as keepalived's Keepalived / Keepalived_vrrp / Keepalived_healthcheckers */
export const SYSLOG_IDENT = { supervisor: 'Keepvs', vrrp: 'Keepvs_vrrp', lvs: 'Keepvs_healthcheckers' } as const;

export class DaemonLogger implements Logger {
  private syslogFn: SyslogFn | undefined;
  constructor(
    private readonly o: LogOptions,
    private readonly prefix = '',
  ) {}

  async init(): Promise<void> {
    if (this.o.syslog) this.syslogFn = await openSyslog(this.o.ident, this.o.facility);
  }

  log(level: LogLevel, message: string): void {
    this.write(level, message, true);
  }

  /** A worker's line: the console and the file get it here; syslog got it from the worker, under its own ident. */
  logFromWorker(level: LogLevel, message: string, syslogged: boolean): void {
    this.write(level, message, !syslogged);
  }

  private write(level: LogLevel, message: string, toSyslog: boolean): void {
    if (level === 'debug' && !this.o.detail) return;
    const line = this.prefix + message;
    const now = new Date();
    if (this.o.console) process.stderr.write(`${consoleTimestamp(now)}: ${line}\n`);
    if (this.o.file) {
      try {
        appendFileSync(this.o.file, `${fileTimestamp(now)}: ${line}\n`);
      } catch {
        // a full disk must not stop the daemon
      }
    }
    if (toSyslog) this.syslogFn?.(SYSLOG_LEVEL[level] | (FACILITY[this.o.facility] ?? FACILITY.daemon), line);
  }

  child(prefix: string): Logger {
    const c = new DaemonLogger(this.o, this.prefix + prefix);
    c.syslogFn = this.syslogFn;
    return c;
  }
}
