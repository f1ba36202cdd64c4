/** Real loopback servers on port 0 for checker tests. */
import { createHash } from 'node:crypto';
import net from 'node:net';

export const md5 = (s: string | Buffer) => createHash('md5').update(s).digest('hex');

export async function listen(server: net.Server, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((r) => server.listen(0, host, r));
  return (server.address() as net.AddressInfo).port;
}

export async function close(server: net.Server): Promise<void> {
  await new Promise<void>((r) => server.close(() => r()));
}

/** A port nothing listens on (bound then closed). */
export async function deadPort(): Promise<number> {
  const s = net.createServer();
  const p = await listen(s);
  await close(s);
  return p;
}

/** A raw TCP server: `onConn` writes whatever the test wants; tracks sockets so close() works. */
export function rawServer(onConn: (sock: net.Socket, request: string) => void, waitRequest = true): net.Server {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((sock) => {
    socks.add(sock);
    sock.on('close', () => socks.delete(sock));
    sock.on('error', () => {});
    if (!waitRequest) {
      onConn(sock, '');
      return;
    }
    let buf = '';
    let fired = false;
    sock.on('data', (d) => {
      buf += d.toString('latin1');
      if (!fired && buf.includes('\r\n\r\n')) {
        fired = true;
        onConn(sock, buf);
      }
    });
  });
  const origClose = srv.close.bind(srv);
  srv.close = ((cb?: (err?: Error) => void) => {
    for (const s of socks) s.destroy();
    return origClose(cb);
  }) as typeof srv.close;
  return srv;
}
