/**
 * Base error with a stable machine-readable code. Nothing branches on message text.
 * I/O errors carry the syscall, address and port they failed on.
 */
export class LbError extends Error {
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'LbError';
    this.code = code;
    this.details = details;
  }
}
