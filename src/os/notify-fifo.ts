/**
 * A keepalived notify FIFO writer that never blocks: the FIFO is created when missing (mkfifo),
 * opened O_WRONLY|O_NONBLOCK on demand (ENXIO while nobody reads: the line is dropped), a full
 * pipe (EAGAIN) drops the line, and a reader going away (EPIPE) closes it for a later reopen.
 */
import { closeSync, constants, openSync, statSync, writeSync } from 'node:fs';
import type { Logger } from '../util/logger.js';
import type { ProcessRunner } from '../util/ports.js';

export class NotifyFifo {
  private fd: number | undefined;
  private warned = false;
  dropped = 0;
  written = 0;

  constructor(
    readonly path: string,
    private readonly logger: Logger,
  ) {}

  /** Creates the FIFO if the path does not exist (mkfifo(1), mode 0600 as keepalived uses). */
  async ensure(runner: ProcessRunner): Promise<void> {
    try {
      const st = statSync(this.path);
      if (!st.isFIFO())
        this.logger.log('warning', `notify fifo ${this.path} exists and is not a FIFO; writing to it anyway`);
      return;
    } catch {
      // missing: create it
    }
    const r = await runner.run(['mkfifo', '-m', '0600', this.path], { timeoutMs: 5000 });
    if (r.spawnError || r.exitCode !== 0) {
      this.logger.log(
        'error',
        `cannot create notify fifo ${this.path}: ${r.spawnError ?? `mkfifo exited ${r.exitCode}`}`,
      );
    }
  }

  write(line: string): void {
    if (this.fd === undefined) {
      try {
        this.fd = openSync(this.path, constants.O_WRONLY | constants.O_NONBLOCK | constants.O_APPEND);
        this.warned = false;
      } catch (e) {
        this.dropped++;
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENXIO' && !this.warned) {
          this.warned = true;
          this.logger.log('warning', `notify fifo ${this.path}: cannot open (${code})`);
        }
        return;
      }
    }
    try {
      writeSync(this.fd, line);
      this.written++;
    } catch (e) {
      this.dropped++;
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN') this.close();
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.fd = undefined;
  }
}
