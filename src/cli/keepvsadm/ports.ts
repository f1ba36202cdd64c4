/** Port number -> service name from /etc/services (ipvsadm uses getservbyport without -n). */
import { readFileSync } from 'node:fs';

let byNumber: Map<string, string> | undefined;

export function portByNumber(port: number, proto: string): string | undefined {
  if (!byNumber) {
    byNumber = new Map();
    try {
      for (const line of readFileSync('/etc/services', 'utf8').split('\n')) {
        const m = /^([\w-]+)\s+(\d+)\/(\w+)/.exec(line);
        if (m && !byNumber.has(`${m[2]}/${m[3]}`)) byNumber.set(`${m[2]}/${m[3]}`, m[1]);
      }
    } catch {
      // numeric only
    }
  }
  return byNumber.get(`${port}/${proto}`);
}
