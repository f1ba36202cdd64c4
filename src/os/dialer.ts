/**
 * The checkers' network port on Node sockets. Every socket is tied to the probe's AbortSignal:
 * when the probe ends or hits its deadline, the socket is destroyed.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import type { Dialer, TcpDialOptions, UdpExchangeOptions, UdpExchangeResult } from '../check/types.js';
import { LbError } from '../util/errors.js';
import { IcmpPinger } from './icmp.js';

export class NodeDialer implements Dialer {
  private pinger?: IcmpPinger;

  connectTcp(o: TcpDialOptions): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      if (o.signal.aborted) {
        reject(new LbError('ETIMEDOUT', 'aborted before connect', { address: o.host, port: o.port }));
        return;
      }
      const base = {
        host: o.host,
        port: o.port,
        family: o.family,
        localAddress: o.localAddress,
        localPort: o.localPort,
        noDelay: true,
      };
      const sock: net.Socket = o.tls
        ? tls.connect({
            ...base,
            servername: o.tls.servername,
            // keepalived's SSL_GET does not verify the server certificate (check_ssl.c)
            rejectUnauthorized: false,
          })
        : net.connect(base);
      let connected = false;
      const onAbort = () => {
        sock.destroy();
        if (!connected) reject(new LbError('ETIMEDOUT', 'connect timed out', { address: o.host, port: o.port }));
      };
      o.signal.addEventListener('abort', onAbort, { once: true });
      sock.once('close', () => o.signal.removeEventListener('abort', onAbort));
      sock.once(o.tls ? 'secureConnect' : 'connect', () => {
        connected = true;
        resolve(sock);
      });
      sock.once('error', (e: NodeJS.ErrnoException) => {
        if (connected) return; // the checker sees later errors on the stream
        sock.destroy();
        reject(new LbError(e.code ?? 'ECONNECT', e.message, { syscall: e.syscall, address: o.host, port: o.port }));
      });
      // later errors must not become uncaught exceptions
      sock.on('error', () => {});
    });
  }

  udpExchange(o: UdpExchangeOptions): Promise<UdpExchangeResult> {
    return new Promise((resolve) => {
      const sock = dgram.createSocket(o.family === 6 ? 'udp6' : 'udp4');
      let done = false;
      const finish = (r: UdpExchangeResult) => {
        if (done) return;
        done = true;
        o.signal.removeEventListener('abort', onAbort);
        try {
          sock.close();
        } catch {
          // already closed
        }
        resolve(r);
      };
      const onAbort = () => finish({ kind: 'silence' });
      if (o.signal.aborted) {
        finish({ kind: 'silence' });
        return;
      }
      o.signal.addEventListener('abort', onAbort, { once: true });
      // a connected UDP socket reports ICMP port unreachable as ECONNREFUSED
      sock.on('error', (e: NodeJS.ErrnoException) => finish({ kind: 'error', code: e.code ?? 'EIO' }));
      sock.on('message', (msg) => {
        if (!o.accept || o.accept(msg)) finish({ kind: 'reply', data: msg });
      });
      const go = () =>
        sock.connect(o.port, o.host, () => {
          sock.send(o.payload, (e) => {
            if (e) finish({ kind: 'error', code: (e as NodeJS.ErrnoException).code ?? 'EIO' });
          });
        });
      if (o.localAddress !== undefined || o.localPort !== undefined)
        sock.bind({ address: o.localAddress, port: o.localPort ?? 0 }, go);
      else go();
    });
  }

  ping(o: { host: string; family: 4 | 6; signal: AbortSignal }): Promise<boolean> {
    this.pinger ??= new IcmpPinger();
    return this.pinger.ping(o.host, o.family, o.signal);
  }
}
