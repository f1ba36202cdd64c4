/**
 * Edges for the trackers: track_file reading/watching, interface link state from sysfs, and the
 * process list from /proc (polled: keepalived uses the netlink proc connector instead).
 */
import { type FSWatcher, watch as fsWatch } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { Closable, FileWatcherPort, LinkWatcherPort, ProcessListerPort } from '../track/ports.js';
import type { ProcessInfo } from '../track/process-match.js';

export class NodeFileWatcher implements FileWatcherPort {
  async read(path: string): Promise<string | undefined> {
    try {
      return (await readFile(path, 'utf8')).slice(0, 127);
    } catch {
      return undefined;
    }
  }

  async writeInitial(path: string, content: string, overwrite: boolean): Promise<void> {
    try {
      await writeFile(path, content, { flag: overwrite ? 'w' : 'wx' });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
  }

  /** Watches the directory (so creation, replacement by rename and deletion are all seen). */
  watch(path: string, onEvent: () => void): Closable {
    const name = basename(path);
    let w: FSWatcher | undefined;
    try {
      w = fsWatch(dirname(path), { persistent: false }, (_type, file) => {
        if (file === null || file === name) onEvent();
      });
      w.on('error', () => w?.close());
    } catch {
      w = undefined; // the periodic re-read still covers it
    }
    return { close: () => w?.close() };
  }
}

/**
 * Link state from /sys/class/net/IF: up when operstate is up (or unknown, as loopback and many
 * virtual devices report) and carrier is 1. A missing interface is reported as down.
 */
export class SysfsLinkWatcher implements LinkWatcherPort {
  constructor(private readonly root = '/sys/class/net') {}

  async linkUp(ifname: string): Promise<boolean | undefined> {
    if (ifname.includes('/') || ifname === '.' || ifname === '..') return false;
    let oper: string;
    try {
      oper = (await readFile(`${this.root}/${ifname}/operstate`, 'utf8')).trim();
    } catch {
      return false;
    }
    if (oper !== 'up' && oper !== 'unknown') return false;
    try {
      return (await readFile(`${this.root}/${ifname}/carrier`, 'utf8')).trim() === '1';
    } catch {
      // carrier is unreadable while the device is administratively down
      return false;
    }
  }
}

export class ProcProcessLister implements ProcessListerPort {
  constructor(private readonly root = '/proc') {}

  async list(): Promise<readonly ProcessInfo[]> {
    const names = (await readdir(this.root)).filter((n) => /^\d+$/.test(n));
    const out: ProcessInfo[] = [];
    await Promise.all(
      names.map(async (n) => {
        try {
          const [comm, cmd] = await Promise.all([
            readFile(`${this.root}/${n}/comm`, 'utf8'),
            readFile(`${this.root}/${n}/cmdline`, 'utf8'),
          ]);
          const cmdline = cmd.split('\0');
          if (cmdline[cmdline.length - 1] === '') cmdline.pop();
          // kernel threads have an empty cmdline and are never matched by keepalived
          if (cmdline.length === 0) return;
          out.push({ pid: Number(n), comm: comm.replace(/\n$/, ''), cmdline });
        } catch {
          // the process exited while we looked
        }
      }),
    );
    return out.sort((a, b) => a.pid - b.pid);
  }
}
