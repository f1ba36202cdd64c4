/**
 * What the DR data plane needs to know about the host's links, from iproute2's JSON output and
 * sysfs: the device a VIP arrives on, the device and MAC towards each real server, the real
 * servers' MACs from the neighbour table (provoked by one UDP datagram to the discard port when
 * missing, as the kernel resolves a neighbour on first use).
 */
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import type { Family } from '../config/model.js';
import type { ProcessRunner } from '../util/ports.js';

export interface NetInfo {
  /** the device holding `address`, else the one routing towards it */
  deviceOf(address: string, family: Family): Promise<string | null>;
  /** the device the kernel routes `address` through */
  routeDevice(address: string, family: Family): Promise<string | null>;
  linkMac(dev: string): Promise<string | null>;
  /** the neighbour's MAC on `dev`, provoking resolution when it is unknown (null until resolved) */
  neighbourMac(address: string, family: Family, dev: string): Promise<string | null>;
}

const DEV = /^[A-Za-z0-9_.:@-]{1,15}$/;

export class IprouteNetInfo implements NetInfo {
  constructor(private readonly runner: ProcessRunner) {}

  private async json(argv: string[]): Promise<unknown[]> {
    const r = await this.runner.run(['ip', ...argv], { captureBytes: 1 << 20, timeoutMs: 5000 });
    if (r.exitCode !== 0) return [];
    try {
      const v = JSON.parse(r.stdout || '[]');
      return Array.isArray(v) ? v : [];
    } catch {
      return [];
    }
  }

  async deviceOf(address: string, family: Family): Promise<string | null> {
    const own = (await this.json([`-${family}`, '-j', 'addr', 'show', 'to', address])) as { ifname?: string }[];
    const dev = own.find((l) => l.ifname && DEV.test(l.ifname))?.ifname;
    return dev ?? this.routeDevice(address, family);
  }

  async routeDevice(address: string, family: Family): Promise<string | null> {
    const r = (await this.json([`-${family}`, '-j', 'route', 'get', address])) as { dev?: string; type?: string }[];
    const dev = r[0]?.dev;
    return dev && DEV.test(dev) && dev !== 'lo' ? dev : null;
  }

  async linkMac(dev: string): Promise<string | null> {
    if (!DEV.test(dev)) return null;
    try {
      const mac = (await readFile(`/sys/class/net/${dev}/address`, 'utf8')).trim();
      return /^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac) ? mac : null;
    } catch {
      return null;
    }
  }

  async neighbourMac(address: string, family: Family, dev: string): Promise<string | null> {
    const show = async () => {
      const n = (await this.json([`-${family}`, '-j', 'neigh', 'show', address, 'dev', dev])) as {
        lladdr?: string;
        state?: string[];
      }[];
      const e = n.find((x) => x.lladdr && !(x.state ?? []).some((s) => s === 'FAILED' || s === 'INCOMPLETE'));
      return e?.lladdr ?? null;
    };
    const known = await show();
    if (known) return known;
    await provoke(address, family);
    await new Promise((r) => setTimeout(r, 200));
    return show();
  }
}

/** One datagram to the discard port: the kernel resolves the neighbour to send it. */
function provoke(address: string, family: Family): Promise<void> {
  return new Promise((resolve) => {
    const s = dgram.createSocket(family === 6 ? 'udp6' : 'udp4');
    s.on('error', () => {
      s.close();
      resolve();
    });
    s.send(Buffer.alloc(0), 9, address, () => {
      s.close();
      resolve();
    });
  });
}
