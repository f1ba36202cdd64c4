/**
 * The io_uring batcher (src/dataplane/proxy/uring.ts) on its own: per-operation results in one
 * submit (data, partial sends, EAGAIN, errors), batches larger than the ring, and the backend
 * choice (KEEPVS_PROXY_IO).
 */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { test } from 'node:test';
import koffi from 'koffi';
import { chooseProxyIo, requestedProxyIo } from '../../src/dataplane/proxy/poller.js';
import { IoBatch, MSG_DONTWAIT, OP_RECV, OP_SEND } from '../../src/dataplane/proxy/uring.js';
import { type Libc, loadLibc, loadUringCalls, MSG_NOSIGNAL, SOL_SOCKET } from '../../src/os/libc.js';

const { EAGAIN, EBADF, EPIPE } = constants.errno;
const SO_SNDBUF = 7;
const libc = loadLibc() as Libc;

function ring(entries: number, maxOps = 64): IoBatch {
  const r = IoBatch.open(libc, entries, maxOps);
  assert.ok(typeof r !== 'string', `io_uring: ${r}`);
  return r;
}

/** a non-blocking AF_UNIX stream pair */
function pair(): [number, number] {
  const fds = new Int32Array(2);
  assert.equal(loadUringCalls()!.socketpair(1, 1 | 0o4000 | 0o2000000, 0, fds), 0);
  return [fds[0]!, fds[1]!];
}

/** native memory the kernel reads and writes by address, with a Buffer over it */
function native(size: number): { addr: number; buf: Buffer; free(): void } {
  const p = koffi.alloc('uint8_t', size);
  return {
    addr: Number(koffi.address(p)),
    buf: Buffer.from(koffi.view(p, size) as ArrayBuffer),
    free: () => koffi.free(p),
  };
}

test('one submit: each read and send gets its own result (bytes, -EAGAIN, -EBADF, -EPIPE)', () => {
  const r = ring(8);
  const [a, b] = pair();
  const [c, d] = pair();
  const [e, f] = pair();
  const mem = native(4096);
  try {
    assert.equal(libc.send(b, Buffer.from('hello'), 5, 0), 5);
    libc.close(f); // e's peer is gone: a send to e fails with EPIPE
    const closed = e + 1000; // no such fd
    mem.buf.write('xyz', 1024);
    const ops = [
      r.add(OP_RECV, a, mem.addr, 1024, MSG_DONTWAIT),
      r.add(OP_RECV, c, mem.addr + 2048, 1024, MSG_DONTWAIT),
      r.add(OP_RECV, closed, mem.addr + 3072, 16, MSG_DONTWAIT),
      r.add(OP_SEND, e, mem.addr + 1024, 3, MSG_DONTWAIT | MSG_NOSIGNAL),
      r.add(OP_SEND, d, mem.addr + 1024, 3, MSG_DONTWAIT | MSG_NOSIGNAL),
    ];
    assert.equal(r.size, 5);
    const before = r.enters;
    r.run();
    assert.equal(r.enters - before, 1, 'one io_uring_enter for the whole batch');
    assert.equal(r.size, 0);
    assert.deepEqual(
      ops.map((i) => r.results[i]),
      [5, -EAGAIN, -EBADF, -EPIPE, 3],
    );
    assert.equal(mem.buf.toString('latin1', 0, 5), 'hello');
    const got = Buffer.alloc(8);
    assert.equal(libc.recv(c, got, 8, 0), 3);
    assert.equal(got.toString('latin1', 0, 3), 'xyz');
  } finally {
    for (const fd of [a, b, c, d, e]) libc.close(fd);
    r.close(libc);
    mem.free();
  }
});

test('a send the socket cannot take whole returns what it took, the next one -EAGAIN (no wait in the kernel)', () => {
  const r = ring(4);
  const [a, b] = pair();
  const size = 1 << 20;
  const mem = native(size);
  try {
    const small = Buffer.alloc(4);
    small.writeInt32LE(4096);
    libc.setsockopt(a, SOL_SOCKET, SO_SNDBUF, small, 4);
    const first = r.add(OP_SEND, a, mem.addr, size, MSG_DONTWAIT | MSG_NOSIGNAL);
    r.run();
    const w = r.results[first]!;
    assert.ok(w > 0 && w < size, `partial send: ${w} of ${size}`);
    const second = r.add(OP_SEND, a, mem.addr + w, size - w, MSG_DONTWAIT | MSG_NOSIGNAL);
    r.run();
    assert.equal(r.results[second], -EAGAIN);
    // once the reader takes some, the rest goes on
    const sink = Buffer.alloc(size);
    assert.ok(libc.recv(b, sink, size, 0) > 0);
    const third = r.add(OP_SEND, a, mem.addr + w, size - w, MSG_DONTWAIT | MSG_NOSIGNAL);
    r.run();
    assert.ok(r.results[third]! > 0);
  } finally {
    libc.close(a);
    libc.close(b);
    r.close(libc);
    mem.free();
  }
});

test('more operations than the ring has entries: submitted in rounds, every result in its place', () => {
  const r = ring(4, 64);
  assert.equal(r.capacity, 4);
  const n = 19;
  const pairs = Array.from({ length: n }, pair);
  const mem = native(n * 64);
  try {
    for (const [i, [, w]] of pairs.entries()) {
      const msg = Buffer.from(`message ${i}`.padEnd(10 + (i % 7), '.'));
      assert.equal(libc.send(w, msg, msg.length, 0), msg.length);
    }
    const ops = pairs.map(([rd], i) => r.add(OP_RECV, rd, mem.addr + i * 64, 64, MSG_DONTWAIT));
    const before = r.enters;
    r.run();
    assert.equal(r.enters - before, Math.ceil(n / 4), 'one submit per ring-full');
    for (const [i, op] of ops.entries()) {
      const len = Math.max(`message ${i}`.length, 10 + (i % 7));
      assert.equal(r.results[op], len);
      assert.equal(mem.buf.toString('latin1', i * 64, i * 64 + `message ${i}`.length), `message ${i}`);
    }
    // and a batch larger than maxOps is refused, not overrun
    const big = ring(4, 2);
    try {
      big.add(OP_RECV, pairs[0]![0], mem.addr, 1, MSG_DONTWAIT);
      big.add(OP_RECV, pairs[0]![0], mem.addr, 1, MSG_DONTWAIT);
      assert.throws(() => big.add(OP_RECV, pairs[0]![0], mem.addr, 1, MSG_DONTWAIT), /io batch full/);
    } finally {
      big.close(libc);
    }
  } finally {
    for (const [x, y] of pairs) {
      libc.close(x);
      libc.close(y);
    }
    r.close(libc);
    mem.free();
  }
});

test('KEEPVS_PROXY_IO: epoll and uring are forced, auto picks, anything else is an error', () => {
  assert.equal(requestedProxyIo(undefined), 'auto');
  assert.equal(requestedProxyIo('auto'), 'auto');
  assert.equal(requestedProxyIo('epoll'), 'epoll');
  assert.equal(requestedProxyIo('uring'), 'uring');
  assert.throws(() => requestedProxyIo('io_uring'), /KEEPVS_PROXY_IO=io_uring: expected epoll, uring or auto/);
  const e = chooseProxyIo(libc, 'epoll');
  assert.equal(e.io, null);
  assert.match(e.reason, /^epoll \(KEEPVS_PROXY_IO=epoll\)/);
  const u = chooseProxyIo(libc, 'uring');
  assert.ok(u.io, 'io_uring is usable on this machine (kernel.io_uring_disabled = 0)');
  assert.match(u.reason, /^uring \(KEEPVS_PROXY_IO=uring/);
  u.io.close(libc);
  const auto = chooseProxyIo(libc, '');
  assert.match(auto.reason, /^(uring|epoll) \(/);
  auto.io?.close(libc);
  // io_uring that cannot run: forced, an error at start; auto, epoll and the reason
  const broken = () => 'io_uring_setup: EPERM (kernel.io_uring_disabled = 2)';
  assert.throws(
    () => chooseProxyIo(libc, 'uring', broken),
    /KEEPVS_PROXY_IO=uring, but io_uring cannot run here: io_uring_setup: EPERM/,
  );
  assert.deepEqual(chooseProxyIo(libc, 'epoll', broken), e);
  const fallback = chooseProxyIo(libc, undefined, broken);
  assert.equal(fallback.io, null);
  assert.match(fallback.reason, /^epoll \(/);
});
