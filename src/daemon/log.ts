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
    if (level === 'debug' && !this.o.detail) return;
    const line = this.prefix + message;
    if (this.o.console) {
      const ts = new Date().toISOString().replace('T', ' ').replace('Z', '');
      process.stderr.write(`${ts} ${this.o.ident}: ${line}\n`);
    }
    if (this.o.file) {
      try {
        appendFileSync(this.o.file, `${new Date().toISOString()} ${line}\n`);
      } catch {
        // a full disk must not stop the daemon
      }
    }
    this.syslogFn?.(SYSLOG_LEVEL[level] | (FACILITY[this.o.facility] ?? FACILITY.daemon), line);
  }

  child(prefix: string): Logger {
    const c = new DaemonLogger(this.o, this.prefix + prefix);
    c.syslogFn = this.syslogFn;
    return c;
  }
}
