import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { serialize } from 'node:v8';
import { FrameChannel } from '../../src/dataplane/proxy/channel.js';

async function pair(): Promise<{ a: net.Socket; b: net.Socket; done(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'kv-chan-'));
  const path = join(dir, 's.sock');
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(path, r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const a = net.connect(path);
  const b = await accepted;
  return {
    a,
    b,
    done: () => {
      a.destroy();
      b.destroy();
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

test('frames cross in order, split at any byte, with structured-clone values', async () => {
  const { a, b, done } = await pair();
  try {
    const got: unknown[] = [];
    const all = new Promise<void>((r) => {
      new FrameChannel<unknown, unknown>(
        b,
        (m) => {
          got.push(m);
          if (got.length === 3) r();
        },
        () => {},
      );
    });
    const tx = new FrameChannel<unknown, unknown>(
      a,
      () => {},
      () => {},
    );
    tx.send({ type: 'ops', n: 1 });
    tx.send({ big: 'x'.repeat(200_000) });
    tx.send({ map: new Map([[1, 2]]) });
    await all;
    assert.deepEqual(got[0], { type: 'ops', n: 1 });
    assert.equal((got[1] as { big: string }).big.length, 200_000);
    assert.deepEqual(got[2], { map: new Map([[1, 2]]) });
  } finally {
    done();
  }
});

test('a peer that does not read (SIGSTOPped) does not grow the sender: periodic reports are dropped, ops are not', async () => {
  const { a, b, done } = await pair();
  try {
    b.pause();
    const tx = new FrameChannel<unknown, unknown>(
      a,
      () => {},
      () => {},
    );
    let dropped = 0;
    for (let i = 0; i < 2000; i++) if (!tx.send({ type: 'stats', pad: 'x'.repeat(10_000) }, true)) dropped++;
    assert.ok(dropped > 1000, `${dropped} dropped`);
    assert.ok(a.writableLength < 2 * 1024 * 1024, `${a.writableLength} bytes queued`);
    assert.equal(tx.send({ type: 'ops' }), true, 'an op is never dropped');
  } finally {
    done();
  }
});

test('frames split byte by byte, or several in one chunk, come out whole and in order', () => {
  const frames = [{ a: 1 }, { b: 'x'.repeat(300) }, { c: [1, 2, 3] }];
  const wire = Buffer.concat(
    frames.map((f) => {
      const body = serialize(f);
      const head = Buffer.alloc(4);
      head.writeUInt32BE(body.length, 0);
      return Buffer.concat([head, body]);
    }),
  );
  for (const step of [1, 3, 7, wire.length]) {
    const fake = Object.assign(new EventEmitter(), { destroyed: false, destroy() {} }) as unknown as net.Socket;
    const got: unknown[] = [];
    new FrameChannel<unknown, unknown>(
      fake,
      (m) => got.push(m),
      () => {},
    );
    for (let i = 0; i < wire.length; i += step) fake.emit('data', wire.subarray(i, i + step));
    assert.deepEqual(got, frames, `chunks of ${step} bytes`);
  }
});
