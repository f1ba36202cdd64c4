/**
 * Host names for listings without -n: from the hosts file only (/etc/hosts, or $KEEPVS_HOSTS_FILE),
 * the first name of the first line for an address, as gethostbyaddr answers from "files". No PTR
 * query is ever sent: a listing never waits on DNS.
 */
export function hostsFileNames(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const [addr, name] = raw.replace(/#.*/, '').trim().split(/\s+/);
    if (!addr || !name) continue;
    const key = addr.toLowerCase();
    if (!out.has(key)) out.set(key, name);
  }
  return out;
}
