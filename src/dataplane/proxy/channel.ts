/**
 * Messages between the LVS worker (the controller) and a proxy worker, over the proxy worker's
 * Unix socket: each frame is a 4-byte big-endian length and a v8-serialized value (the structured
 * clone Node's own IPC uses). A socket, not the fork IPC channel, so that the proxy worker does not
 * depend on the process that controls it: a new LVS worker connects to the same proxies.
 */
import type net from 'node:net';
import { deserialize, serialize } from 'node:v8';

/** A frame larger than this is a protocol error (a table snapshot of 10,000 services is ~10 MB). */
const MAX_FRAME = 256 * 1024 * 1024;

/** queued bytes past which droppable messages are dropped */
const DROP_AFTER = 1024 * 1024;

export class FrameChannel<In, Out> {
  private buf: Buffer = Buffer.alloc(0);
  private closed = false;

  constructor(
    readonly socket: net.Socket,
    onMessage: (m: In) => void,
    onClose: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
      while (this.buf.length >= 4) {
        const len = this.buf.readUInt32BE(0);
        if (len > MAX_FRAME) {
          socket.destroy(new Error(`frame of ${len} bytes`));
          return;
        }
        if (this.buf.length < 4 + len) break;
        const body = this.buf.subarray(4, 4 + len);
        this.buf = this.buf.subarray(4 + len);
        let m: In;
        try {
          m = deserialize(body) as In;
        } catch (e) {
          socket.destroy(e as Error);
          return;
        }
        onMessage(m);
      }
    });
    socket.on('error', () => {}); // 'close' follows
    socket.on('close', () => {
      this.closed = true;
      onClose();
    });
  }

  get connected(): boolean {
    return !this.closed && !this.socket.destroyed;
  }

  /**
   * Queues a message; false when it was dropped: the channel is closed, or `droppable` (a
   * periodic full report, the next one replaces it) and the peer is not reading (stopped), so
   * that a SIGSTOPped peer does not grow this process without bound.
   */
  send(m: Out, droppable = false): boolean {
    if (!this.connected) return false;
    if (droppable && this.socket.writableLength > DROP_AFTER) return false;
    const body = serialize(m);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(body.length, 0);
    this.socket.write(head);
    this.socket.write(body);
    return true;
  }

  close(): void {
    this.socket.destroy();
  }
}
