/**
 * The kernel's connection table as the kernel plane reads it: /proc/net/nf_conntrack of this
 * network namespace, parsed (facts §3.2: about 5 µs per entry, no child process), and
 * `conntrack -D` for expire_nodest_conn (conntrack-tools, as LVS's sysctl resets the flows).
 */
import { readFile } from 'node:fs/promises';
import type { Family } from '../config/model.js';
import { canonicalAddress } from '../util/address.js';
import type { ProcessRunner } from '../util/ports.js';

export interface CtTuple {
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
}

export interface CtEntry {
  readonly family: Family;
  readonly protocol: string;
  /** TCP state (ESTABLISHED, SYN_SENT...), '' for UDP */
  readonly state: string;
  /** seconds left */
  readonly timeout: number;
  readonly original: CtTuple;
  readonly reply: CtTuple;
}

/** One line of /proc/net/nf_conntrack, or null. */
export function parseConntrackLine(line: string): CtEntry | null {
  const w = line.trim().split(/\s+/);
  if (w.length < 8) return null;
  const family: Family = w[0] === 'ipv6' ? 6 : 4;
  const protocol = w[2];
  const timeout = Number(w[4]);
  let i = 5;
  let state = '';
  if (!w[i].includes('=')) state = w[i++];
  const tuples: Record<string, string>[] = [];
  let cur: Record<string, string> = {};
  for (; i < w.length; i++) {
    const eq = w[i].indexOf('=');
    if (eq < 0) continue;
    const k = w[i].slice(0, eq);
    if (k === 'src' && cur.src !== undefined) {
      tuples.push(cur);
      cur = {};
    }
    if (k === 'src' || k === 'dst' || k === 'sport' || k === 'dport') cur[k] = w[i].slice(eq + 1);
    if (k === 'mark' || k === 'zone' || k === 'use') break;
  }
  tuples.push(cur);
  if (tuples.length < 2 || !tuples[0].src || !tuples[1].src) return null;
  const t = (x: Record<string, string>): CtTuple => ({
    src: canonicalAddress(x.src, family) ?? x.src,
    dst: canonicalAddress(x.dst ?? '', family) ?? x.dst ?? '',
    sport: Number(x.sport ?? 0),
    dport: Number(x.dport ?? 0),
  });
  return { family, protocol, state, timeout, original: t(tuples[0]), reply: t(tuples[1]) };
}

export interface ConntrackPort {
  list(): Promise<CtEntry[]>;
  /** drops the flows answered by `address:port` (expire_nodest_conn) */
  flushDest(address: string, port: number, protocol: string, family: Family): Promise<void>;
}

export class ProcConntrack implements ConntrackPort {
  constructor(
    private readonly runner: ProcessRunner,
    private readonly path = '/proc/net/nf_conntrack',
  ) {}

  async list(): Promise<CtEntry[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch {
      return [];
    }
    const out: CtEntry[] = [];
    for (const line of text.split('\n')) {
      const e = line ? parseConntrackLine(line) : null;
      if (e) out.push(e);
    }
    return out;
  }

  async flushDest(address: string, port: number, protocol: string, family: Family): Promise<void> {
    const argv = ['conntrack', '-D', `-f`, family === 6 ? 'ipv6' : 'ipv4', '-p', protocol, '--reply-src', address];
    if (port !== 0 && (protocol === 'tcp' || protocol === 'udp')) argv.push('--reply-port-src', String(port));
    await this.runner.run(argv, { timeoutMs: 5000 });
  }
}
