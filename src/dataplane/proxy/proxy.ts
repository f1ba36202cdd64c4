/**
 * The userspace data plane: one listener per virtual service, forwarding each TCP connection or
 * UDP flow to the destination the table picks (LVS NAT / full-NAT semantics in userspace).
 * TCP: half-close passed through both ways, back-pressure by pause/resume (never unbounded
 * buffering), TCP_NODELAY, idle timeouts from the table's IPVS state timeouts, optional PROXY
 * protocol. UDP: per-client flows with the UDP timeout, or one-packet scheduling (`ops`).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import type { VirtualServerTable } from '../../lb/table.js';
import { type ConnHandle, type Endpoint, type ServiceKey, serviceId, type TableOp } from '../../lb/types.js';
import type { Logger } from '../../util/logger.js';
import type { DataPlane, DataPlaneSnapshot, ListenerSnapshot } from '../port.js';
import { proxyV1, proxyV2 } from './proxy-protocol.js';

export interface ProxyOptions {
  /** ms to wait for a real server to accept, then the client is closed (default 5000) */
  readonly connectTimeoutMs?: number;
  readonly proxyProtocol?: 'v1' | 'v2';
  /** ms between retries when the service address is not (yet) local, e.g. a VIP on the backup */
  readonly bindRetryMs?: number;
  /** bind fwmark services here: fwmark services have no address of their own */
  readonly logger?: Logger;
}

interface TcpPair {
  client: net.Socket;
  server: net.Socket;
  handle: ConnHandle;
  service: string;
}

interface UdpFlow {
  upstream: dgram.Socket;
  handle: ConnHandle;
  lastSeen: number;
  client: Endpoint;
}

interface Listener {
  key: ServiceKey;
  id: string;
  state: ListenerSnapshot['state'];
  detail?: string;
  tcp?: net.Server;
  udp?: dgram.Socket;
  flows: Map<string, UdpFlow>;
  retry?: NodeJS.Timeout;
  closed: boolean;
}

const norm = (a: string | undefined): string => (a?.startsWith('::ffff:') ? a.slice(7) : (a ?? ''));

export class ProxyDataPlane implements DataPlane {
  private readonly listeners = new Map<string, Listener>();
  private readonly pairs = new Set<TcpPair>();
  private noDestination = 0;
  private connectFailures = 0;
  private sweep: NodeJS.Timeout | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly table: VirtualServerTable,
    private readonly options: ProxyOptions = {},
  ) {
    this.unsubscribe = table.onDestRemoved((service, dest, closeConnections) => {
      if (!closeConnections) return;
      for (const p of this.pairs) {
        if (p.service === service && p.handle.dest.address === dest.address && p.handle.dest.port === dest.port)
          this.destroyPair(p);
      }
      for (const l of this.listeners.values()) {
        if (l.id !== service) continue;
        for (const [k, f] of l.flows)
          if (f.handle.dest.address === dest.address && f.handle.dest.port === dest.port) this.closeFlow(l, k, f);
      }
    });
  }

  private log(message: string): void {
    this.options.logger?.log('info', message);
  }

  async apply(ops: readonly TableOp[]): Promise<void> {
    for (const op of ops) {
      if (op.op === 'add-service' || op.op === 'edit-service') this.ensureListener(op.key);
      else if (op.op === 'del-service') await this.closeListener(serviceId(op.key), 2000);
      else if (op.op === 'clear') for (const id of [...this.listeners.keys()]) await this.closeListener(id, 2000);
    }
  }

  private ensureListener(key: ServiceKey): void {
    const id = serviceId(key);
    if (this.listeners.has(id)) return;
    const l: Listener = { key, id, state: 'closed', flows: new Map(), closed: false };
    this.listeners.set(id, l);
    if (key.kind === 'fwmark') {
      l.state = 'error';
      l.detail = 'fwmark services need the kernel data plane (packets are marked by the firewall)';
      this.log(`${id}: ${l.detail}`);
      return;
    }
    this.bind(l);
  }

  private bind(l: Listener): void {
    const key = l.key;
    if (key.kind !== 'addr' || l.closed) return;
    const onError = (e: NodeJS.ErrnoException) => {
      // the VIP may not be ours yet (BACKUP director): retry until it arrives
      l.state = e.code === 'EADDRNOTAVAIL' ? 'waiting-for-address' : 'error';
      l.detail = `${e.code ?? ''} ${e.message}`.trim();
      l.tcp?.close();
      l.udp?.close();
      l.tcp = undefined;
      l.udp = undefined;
      if (!l.closed) l.retry = setTimeout(() => this.bind(l), this.options.bindRetryMs ?? 1000);
    };
    if (key.protocol === 'tcp') {
      const server = net.createServer({ allowHalfOpen: true, noDelay: true }, (sock) => this.onTcp(l, sock));
      server.on('error', onError);
      server.listen({ host: key.address, port: key.port, exclusive: true }, () => {
        l.state = 'listening';
        l.detail = undefined;
      });
      l.tcp = server;
    } else {
      const sock = dgram.createSocket({ type: key.family === 6 ? 'udp6' : 'udp4' });
      sock.on('error', onError);
      sock.on('message', (msg, rinfo) => this.onUdp(l, sock, msg, { address: norm(rinfo.address), port: rinfo.port }));
      sock.bind({ address: key.address, port: key.port, exclusive: true }, () => {
        l.state = 'listening';
        l.detail = undefined;
      });
      l.udp = sock;
      this.ensureSweep();
    }
  }

  /** Port a service actually listens on (tests bind port 0 through the config). */
  address(key: ServiceKey): net.AddressInfo | undefined {
    const l = this.listeners.get(serviceId(key));
    const a = l?.tcp?.address() ?? l?.udp?.address();
    return a && typeof a === 'object' ? (a as net.AddressInfo) : undefined;
  }

  private onTcp(l: Listener, client: net.Socket): void {
    const from = { address: norm(client.remoteAddress), port: client.remotePort ?? 0 };
    const handle = this.table.open(l.key, from, { address: norm(client.localAddress), port: client.localPort ?? 0 });
    if (!handle) {
      this.noDestination++;
      client.on('error', () => {});
      client.end();
      client.destroySoon();
      return;
    }
    handle.setState('SYN_RECV');
    const server = net.connect({
      host: handle.dest.address,
      port: handle.dest.port,
      allowHalfOpen: true,
      noDelay: true,
    });
    const pair: TcpPair = { client, server, handle, service: l.id };
    this.pairs.add(pair);
    client.setNoDelay(true);
    client.pause();
    const timer = setTimeout(() => {
      this.connectFailures++;
      this.destroyPair(pair);
    }, this.options.connectTimeoutMs ?? 5000);
    let connected = false;
    server.once('connect', () => {
      connected = true;
      clearTimeout(timer);
      handle.setState('ESTABLISHED');
      if (this.options.proxyProtocol) {
        const local = { address: norm(client.localAddress), port: client.localPort ?? 0 };
        server.write(this.options.proxyProtocol === 'v1' ? proxyV1(from, local) : proxyV2(from, local));
      }
      this.relay(pair);
      client.resume();
    });
    const fail = () => {
      if (!connected && this.pairs.has(pair)) {
        clearTimeout(timer);
        this.connectFailures++;
      }
      this.destroyPair(pair);
    };
    server.on('error', fail);
    client.on('error', fail);
    client.on('close', () => this.destroyPair(pair));
    server.on('close', () => this.destroyPair(pair));
  }

  /** Moves bytes both ways with back-pressure, half-close and accounting. */
  private relay(pair: TcpPair): void {
    const { client, server, handle } = pair;
    let clientEnded = false;
    let serverEnded = false;
    const idle = () => {
      const ms = handle.idleTimeoutMs();
      client.setTimeout(ms);
    };
    idle();
    client.on('timeout', () => this.destroyPair(pair));
    client.on('data', (chunk: Buffer) => {
      handle.countIn(1, chunk.length);
      if (!server.write(chunk)) client.pause();
    });
    server.on('data', (chunk: Buffer) => {
      handle.countOut(1, chunk.length);
      if (!client.write(chunk)) server.pause();
    });
    server.on('drain', () => client.resume());
    client.on('drain', () => server.resume());
    client.on('end', () => {
      clientEnded = true;
      handle.setState(serverEnded ? 'CLOSE' : 'FIN_WAIT');
      idle();
      server.end();
    });
    server.on('end', () => {
      serverEnded = true;
      handle.setState(clientEnded ? 'CLOSE' : 'CLOSE_WAIT');
      idle();
      client.end();
    });
  }

  private destroyPair(p: TcpPair): void {
    if (!this.pairs.delete(p)) return;
    p.handle.close();
    p.client.destroy();
    p.server.destroy();
  }

  private onUdp(l: Listener, sock: dgram.Socket, msg: Buffer, client: Endpoint): void {
    const key = l.key;
    if (key.kind !== 'addr') return;
    const fk = `${client.address}|${client.port}`;
    const ops = this.table.snapshot().services.find((s) => s.id === l.id)?.ops ?? false;
    let flow = ops ? undefined : l.flows.get(fk);
    if (!flow) {
      const handle = this.table.open(key, client, { address: key.address, port: key.port });
      if (!handle) {
        this.noDestination++;
        return;
      }
      handle.setState('UDP');
      const upstream = dgram.createSocket({ type: net.isIPv6(handle.dest.address) ? 'udp6' : 'udp4' });
      const f: UdpFlow = { upstream, handle, lastSeen: Date.now(), client };
      const flowKey = ops ? `${fk}|${Math.random()}` : fk;
      upstream.on('message', (reply) => {
        f.lastSeen = Date.now();
        handle.countOut(1, reply.length);
        sock.send(reply, client.port, client.address);
        if (ops) this.closeFlow(l, flowKey, f);
      });
      upstream.on('error', () => this.closeFlow(l, flowKey, f));
      upstream.connect(handle.dest.port, handle.dest.address);
      l.flows.set(flowKey, f);
      flow = f;
    }
    const f = flow;
    f.lastSeen = Date.now();
    f.handle.countIn(1, msg.length);
    const send = () => f.upstream.send(msg, (e) => e && this.closeFlow(l, fk, f));
    // a fresh socket is connecting; dgram queues sends made before 'connect'
    try {
      send();
    } catch {
      f.upstream.once('connect', send);
    }
  }

  private closeFlow(l: Listener, key: string, f: UdpFlow): void {
    if (l.flows.get(key) !== f) return;
    l.flows.delete(key);
    f.handle.close();
    f.upstream.close();
  }

  private ensureSweep(): void {
    if (this.sweep) return;
    // one shared timer for all UDP flows instead of one per flow
    this.sweep = setInterval(() => {
      const now = Date.now();
      for (const l of this.listeners.values()) {
        for (const [k, f] of l.flows) if (now - f.lastSeen > f.handle.idleTimeoutMs()) this.closeFlow(l, k, f);
      }
    }, 1000);
    this.sweep.unref();
  }

  private async closeListener(id: string, drainMs: number): Promise<void> {
    const l = this.listeners.get(id);
    if (!l) return;
    this.listeners.delete(id);
    l.closed = true;
    if (l.retry) clearTimeout(l.retry);
    const closing = new Promise<void>((resolve) => (l.tcp ? l.tcp.close(() => resolve()) : resolve()));
    l.udp?.close();
    for (const [k, f] of l.flows) this.closeFlow(l, k, f);
    const mine = () => [...this.pairs].filter((p) => p.service === id);
    const deadline = Date.now() + drainMs;
    while (mine().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const p of mine()) this.destroyPair(p);
    await closing;
  }

  snapshot(): DataPlaneSnapshot {
    return {
      kind: 'proxy',
      listeners: [...this.listeners.values()].map((l) => ({
        service: l.id,
        state: l.state,
        ...(l.detail ? { detail: l.detail } : {}),
      })),
      openConnections: this.pairs.size + [...this.listeners.values()].reduce((n, l) => n + l.flows.size, 0),
      noDestination: this.noDestination,
      connectFailures: this.connectFailures,
    };
  }

  async stop(drainMs: number): Promise<void> {
    this.unsubscribe();
    if (this.sweep) clearInterval(this.sweep);
    await Promise.all([...this.listeners.keys()].map((id) => this.closeListener(id, drainMs)));
  }
}
