/**
 * Node's TCP stream handles (the libuv wrappers under net.Socket), typed, for the TCP fast path.
 *
 * Why not net.Socket: a proxied connection's cost is per connection and per chunk, not per byte
 * (reference/node-dataplane-notes.md). net.Socket adds a Duplex stream, its state machine and
 * extra ticks per chunk on top of the handle; the proxy needs none of it (it never buffers: one
 * write in flight per direction, the source paused meanwhile). What this saved, measured with
 * bench/dataplane.sh, is in docs/dataplane.md ("Fast path").
 *
 * The handles come from `process.binding('tcp_wrap' | 'stream_wrap')`, which Node 20 still
 * allows (DEP0111 is documentation-only). `loadStreamHandles()` checks the shape it relies on and
 * returns null when a Node version no longer offers it; the data plane then refuses TCP services
 * with a diagnostic rather than misbehaving.
 */
import { getSystemErrorName } from 'node:util';

/** libuv's end-of-stream code */
export const UV_EOF = -4095;

export interface SockAddr {
  address?: string;
  port?: number;
  family?: string;
}

/** One libuv TCP handle (uv_tcp_t) as Node's TCPWrap exposes it. Methods return 0 or a negative errno. */
export interface TcpHandle {
  /** with a user buffer: no argument, and a returned buffer is where the next read lands */
  onread: ((this: never, data: ArrayBuffer | undefined) => Uint8Array | undefined) | null;
  onconnection: ((this: never, status: number, client?: TcpHandle) => void) | null;
  readonly fd: number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  shutdown(req: ShutdownReq): number;
  close(callback?: () => void): void;
  /** SO_LINGER 0 then close: the peer gets an RST (fails with EINVAL once a shutdown is under way) */
  reset(callback?: () => void): number;
  setNoDelay(on: boolean): number;
  setKeepAlive(on: boolean, delaySeconds: number): number;
  getpeername(out: SockAddr): number;
  getsockname(out: SockAddr): number;
  open(fd: number): number;
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  listen(backlog: number): number;
  connect(req: ConnectReq, address: string, port: number): number;
  connect6(req: ConnectReq, address: string, port: number): number;
  /** later reads land in `buffer` (at offset 0) and `onread` gets no ArrayBuffer */
  useUserBuffer(buffer: Uint8Array): void;
}

/** Requests carry their own completion callback (called with the request as `this`, typed by the caller); extra fields are the caller's context. */
export interface ConnectReq {
  oncomplete: ((this: never, status: number, handle: TcpHandle) => void) | null;
  address: string;
  port: number;
  [key: symbol]: unknown;
}

export interface WriteReq {
  oncomplete: ((this: never, status: number) => void) | null;
  handle: TcpHandle;
  /** keeps the bytes alive while libuv still writes them */
  buffer: Uint8Array | null;
  [key: symbol]: unknown;
}

export interface ShutdownReq {
  oncomplete: ((this: never, status: number) => void) | null;
  handle: TcpHandle;
  [key: symbol]: unknown;
}

export interface StreamHandles {
  newServer(): TcpHandle;
  newSocket(): TcpHandle;
  newConnectReq(): ConnectReq;
  newWriteReq(): WriteReq;
  newShutdownReq(): ShutdownReq;
  /** inside `onread`: bytes read (> 0), UV_EOF or a negative errno */
  readResult(): number;
  /** right after writeBuffer: true when libuv queued part of it (completion comes later) */
  lastWriteWasAsync(): boolean;
  /** bind6 flag: IPv6 only */
  readonly ipv6Only: number;
}

interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectReq;
  constants: { SOCKET: number; SERVER: number; UV_TCP_IPV6ONLY: number };
}

interface StreamWrapBinding {
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kLastWriteWasAsync: number;
}

type LegacyBinding = (name: string) => unknown;

let cached: StreamHandles | null | undefined;

/** The handles, or null when this Node does not expose them in the expected shape. */
export function loadStreamHandles(): StreamHandles | null {
  if (cached !== undefined) return cached;
  cached = null;
  try {
    const binding = (process as unknown as { binding: LegacyBinding }).binding;
    const tcp = binding('tcp_wrap') as TcpWrapBinding;
    const stream = binding('stream_wrap') as StreamWrapBinding;
    const proto = tcp.TCP.prototype as Partial<TcpHandle>;
    const needed = ['readStart', 'readStop', 'writeBuffer', 'shutdown', 'close', 'reset', 'useUserBuffer', 'connect'];
    if (!needed.every((m) => typeof (proto as Record<string, unknown>)[m] === 'function')) return null;
    if (!(stream.streamBaseState instanceof Int32Array)) return null;
    const state = stream.streamBaseState;
    const { kReadBytesOrError, kLastWriteWasAsync } = stream;
    const { TCP, TCPConnectWrap, constants } = tcp;
    const { WriteWrap, ShutdownWrap } = stream;
    cached = {
      newServer: () => new TCP(constants.SERVER),
      newSocket: () => new TCP(constants.SOCKET),
      newConnectReq: () => new TCPConnectWrap(),
      newWriteReq: () => new WriteWrap(),
      newShutdownReq: () => new ShutdownWrap(),
      readResult: () => state[kReadBytesOrError] ?? 0,
      lastWriteWasAsync: () => state[kLastWriteWasAsync] !== 0,
      ipv6Only: constants.UV_TCP_IPV6ONLY,
    };
  } catch {
    cached = null;
  }
  return cached;
}

/** "ECONNREFUSED" for -111; a plain number for codes libuv does not name. */
export function errorName(code: number): string {
  try {
    return getSystemErrorName(code);
  } catch {
    return String(code);
  }
}
