/**
 * What `keepvs realserver` changes on a real server, as a port (RealserverSystem) with its Linux
 * implementation: addresses on `lo` through iproute2, sysctls under /proc/sys, the tc-BPF decap
 * program, an nftables MSS clamp, and the state file that records what was changed.
 */
import { execFile } from 'node:child_process';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { dirname } from 'node:path';

export interface RealserverSystem {
  /** addresses on an interface, canonical text without prefix */
  addresses(dev: string): Promise<string[]>;
  addAddress(dev: string, cidr: string): Promise<void>;
  delAddress(dev: string, cidr: string): Promise<void>;
  /** e.g. net.ipv4.conf.all.arp_ignore; undefined when absent */
  readSysctl(key: string): string | undefined;
  writeSysctl(key: string, value: string): void;
  /** interfaces that are up, except lo */
  upInterfaces(): string[];
  attachDecap(
    vips: readonly string[],
    ifnames: readonly string[],
    guePorts: readonly number[],
  ): { ifname: string; progId: number; createdQdisc: boolean }[];
  decapProgId(ifname: string): number | undefined;
  detachDecap(ifname: string): boolean;
  /** removes the interface's clsact qdisc if no filter is left on it; false when some remain */
  removeQdiscIfEmpty(ifname: string): Promise<boolean>;
  /** runs an nft script (stdin of `nft -f -`) */
  nft(script: string): Promise<void>;
  nftTableExists(family: string, name: string): Promise<boolean>;
  readState(): string | undefined;
  writeState(text: string): void;
  removeState(): void;
}

function run(cmd: string, args: readonly string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 10_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')}: ${(stderr || err.message).trim()}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

const IFNAME = /^[A-Za-z0-9_.:@-]{1,15}$/;
const SYSCTL = /^net\.ipv[46]\.conf\.[A-Za-z0-9_.:@-]{1,15}\.[a-z_]+$/;
const sysctlPath = (key: string): string => {
  if (!SYSCTL.test(key)) throw new Error(`bad sysctl name ${key}`);
  // net.ipv4.conf.eth0.1.rp_filter: the interface may contain dots; only the last part is the knob
  const parts = key.split('.');
  const knob = parts.pop() as string;
  return `/proc/sys/${parts.slice(0, 3).join('/')}/${parts.slice(3).join('.')}/${knob}`;
};

/**
 * The state file: a private root-owned directory, the file written to a fresh temporary name
 * (O_EXCL | O_NOFOLLOW, 0600) and renamed over; read only when it is a regular file of ours.
 */
export class StateFile {
  constructor(readonly path: string) {}

  private checkDir(): void {
    const dir = dirname(this.path);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    const uid = process.getuid?.() ?? 0;
    if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
    if (st.uid !== uid) throw new Error(`${dir} is owned by uid ${st.uid}, not ${uid}`);
    if (st.mode & 0o022) throw new Error(`${dir} is writable by others (mode ${(st.mode & 0o777).toString(8)})`);
  }

  read(): string | undefined {
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new Error(`cannot open state file ${this.path}: ${(e as Error).message}`);
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new Error(`state file ${this.path} is not a regular file`);
      if (st.uid !== (process.getuid?.() ?? 0)) throw new Error(`state file ${this.path} is not owned by us`);
      if (st.size > 1 << 20) throw new Error(`state file ${this.path} is too large`);
      return readFileSync(fd, 'utf8');
    } finally {
      closeSync(fd);
    }
  }

  write(text: string): void {
    this.checkDir();
    const tmp = `${this.path}.${process.pid}.tmp`;
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      writeSync(fd, text);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }

  remove(): void {
    try {
      unlinkSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }
}

/** The tc-BPF decapsulation calls (src/dataplane/tun/decap.ts), injected so this edge stays BPF-free. */
export type DecapOps = Pick<RealserverSystem, 'attachDecap' | 'decapProgId' | 'detachDecap'>;

export class LinuxRealserverSystem implements RealserverSystem {
  private readonly state: StateFile;
  constructor(
    statePath: string,
    private readonly decapOps?: DecapOps,
  ) {
    this.state = new StateFile(statePath);
  }

  async addresses(dev: string): Promise<string[]> {
    if (!IFNAME.test(dev)) throw new Error(`bad interface name '${dev}'`);
    const out = JSON.parse(await run('ip', ['-j', 'addr', 'show', 'dev', dev])) as {
      addr_info?: { local: string }[];
    }[];
    return (out[0]?.addr_info ?? []).map((a) => a.local);
  }
  async addAddress(dev: string, cidr: string): Promise<void> {
    await run('ip', ['addr', 'add', cidr, 'dev', dev]);
  }
  async delAddress(dev: string, cidr: string): Promise<void> {
    await run('ip', ['addr', 'del', cidr, 'dev', dev]);
  }
  readSysctl(key: string): string | undefined {
    try {
      return readFileSync(sysctlPath(key), 'utf8').trim();
    } catch {
      return undefined;
    }
  }
  writeSysctl(key: string, value: string): void {
    const fd = openSync(sysctlPath(key), constants.O_WRONLY | constants.O_NOFOLLOW);
    try {
      writeSync(fd, `${value}\n`);
    } finally {
      closeSync(fd);
    }
  }
  upInterfaces(): string[] {
    return readdirSync('/sys/class/net')
      .filter((n) => n !== 'lo' && IFNAME.test(n))
      .filter((n) => {
        try {
          return readFileSync(`/sys/class/net/${n}/operstate`, 'utf8').trim() !== 'down';
        } catch {
          return false;
        }
      })
      .sort();
  }
  attachDecap(vips: readonly string[], ifnames: readonly string[], guePorts: readonly number[]) {
    return this.decap().attachDecap(vips, ifnames, guePorts);
  }
  decapProgId(ifname: string): number | undefined {
    return this.decap().decapProgId(ifname);
  }
  detachDecap(ifname: string): boolean {
    return this.decap().detachDecap(ifname);
  }
  async removeQdiscIfEmpty(ifname: string): Promise<boolean> {
    if (!IFNAME.test(ifname)) return false;
    for (const dir of ['ingress', 'egress']) {
      const filters = JSON.parse((await run('tc', ['-j', 'filter', 'show', 'dev', ifname, dir])) || '[]') as unknown[];
      if (filters.length) return false;
    }
    await run('tc', ['qdisc', 'del', 'dev', ifname, 'clsact']).catch(() => undefined);
    return true;
  }
  async nft(script: string): Promise<void> {
    await run('nft', ['-f', '-'], script);
  }
  async nftTableExists(family: string, name: string): Promise<boolean> {
    return run('nft', ['list', 'table', family, name]).then(
      () => true,
      () => false,
    );
  }
  readState(): string | undefined {
    return this.state.read();
  }
  writeState(text: string): void {
    this.state.write(text);
  }
  removeState(): void {
    this.state.remove();
  }

  private decap(): DecapOps {
    if (!this.decapOps) throw new Error('no tc-BPF decapsulation available');
    return this.decapOps;
  }
}
