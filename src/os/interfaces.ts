/** The host's network interfaces, for `keepvs -t` (config/host-checks.ts). */
import { existsSync } from 'node:fs';

/** Interface names never hold '/' (the kernel's dev_valid_name); anything else is looked up in sysfs. */
export const hostInterfaceExists = (name: string): boolean =>
  name.length > 0 && !name.includes('/') && name !== '.' && name !== '..' && existsSync(`/sys/class/net/${name}`);
