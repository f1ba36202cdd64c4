/** Small helpers to read a Duplex as a line/byte source with abort support (used by HTTP/SMTP checkers). */
import type { Duplex } from 'node:stream';

/** Reads chunks until `consume` returns true (done) or the stream ends/errors/aborts. */
export function readUntil(
  sock: Duplex,
  signal: AbortSignal,
  consume: (chunk: Buffer) => boolean,
): Promise<'done' | 'end' | 'error' | 'aborted'> {
  return new Promise((resolve) => {
    let finished = false;
    const finish = (r: 'done' | 'end' | 'error' | 'aborted') => {
      if (finished) return;
      finished = true;
      sock.off('data', onData);
      sock.off('end', onEnd);
      sock.off('close', onEnd);
      sock.off('error', onError);
      signal.removeEventListener('abort', onAbort);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      let done = false;
      try {
        done = consume(chunk);
      } catch {
        finish('error');
        return;
      }
      if (done) {
        sock.pause();
        finish('done');
      }
    };
    const onEnd = () => finish('end');
    const onError = () => finish('error');
    const onAbort = () => finish('aborted');
    if (signal.aborted) {
      finish('aborted');
      return;
    }
    sock.on('data', onData);
    sock.once('end', onEnd);
    sock.once('close', onEnd);
    sock.once('error', onError);
    signal.addEventListener('abort', onAbort, { once: true });
    sock.resume();
  });
}
