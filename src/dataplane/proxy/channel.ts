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
  /** received bytes not parsed yet: chunks joined only once a whole frame is there */
  private chunks: Buffer[] = [];
  private buffered = 0;
  private closed = false;

  constructor(
    readonly socket: net.Socket,
    onMessage: (m: In) => void,
    onClose: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
      while (this.buffered >= 4) {
        const head = this.chunks[0]!.length >= 4 ? this.chunks[0]! : this.join();
        const len = head.readUInt32BE(0);
        if (len > MAX_FRAME) {
          socket.destroy(new Error(`frame of ${len} bytes`));
          return;
        }
        if (this.buffered < 4 + len) break;
        const all = this.join();
        const body = all.subarray(4, 4 + len);
        const rest = all.subarray(4 + len);
        this.chunks = rest.length ? [rest] : [];
        this.buffered = rest.length;
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

  private join(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.buffered)];
    return this.chunks[0]!;
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
