/** Logging port. keepalived-style message text; the sink (console, syslog) is an edge. */
export type LogLevel = 'error' | 'warning' | 'notice' | 'info' | 'debug';

export interface Logger {
  log(level: LogLevel, message: string): void;
  /** A logger whose lines are prefixed, e.g. with a subsystem name. */
  child(prefix: string): Logger;
}

/** Collects lines in memory; used by tests and as a null sink. */
export class MemoryLogger implements Logger {
  readonly lines: { level: LogLevel; message: string }[];
  private readonly prefix: string;

  constructor(prefix = '', lines: { level: LogLevel; message: string }[] = []) {
    this.prefix = prefix;
    this.lines = lines;
  }
  log(level: LogLevel, message: string): void {
    this.lines.push({ level, message: this.prefix + message });
  }
  child(prefix: string): Logger {
    return new MemoryLogger(this.prefix + prefix, this.lines);
  }
  text(): string {
    return this.lines.map((l) => l.message).join('\n');
  }
}
