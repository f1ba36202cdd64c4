import type { ProcessInfo } from './process-match.js';

/** Edges the trackers use; real implementations in src/os/watchers.ts, fakes in tests. */
export interface Closable {
  close(): void;
}

export interface FileWatcherPort {
  /** file content, or undefined when it cannot be read (missing file reads as 0, as in keepalived) */
  read(path: string): Promise<string | undefined>;
  /** writes `content` (creating directories is not attempted); with overwrite=false only if missing */
  writeInitial(path: string, content: string, overwrite: boolean): Promise<void>;
  /** calls onEvent when the file (or its directory entry) may have changed */
  watch(path: string, onEvent: () => void): Closable;
}

export interface LinkWatcherPort {
  /** true when the link is up with carrier, false when down, undefined when the interface is missing */
  linkUp(ifname: string): Promise<boolean | undefined>;
}

export interface ProcessListerPort {
  list(): Promise<readonly ProcessInfo[]>;
}
