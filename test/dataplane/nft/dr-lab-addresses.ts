/** The addresses a one-director DR lab needs (shared by the kernel-plane lab tests that run DR). */

type Sh = (cmd: string, ...args: string[]) => string;

/**
 * VIPs on lb1's front leg, lb1 as the back network's gateway, DR replies accepted back through lb1
 * (the real servers' only leg is the back network), and the VIPs on each real server's `lo`.
 */
export function addDrLabAddresses(sh: Sh, prefix: string, vip4: string, vip6: string, realServers: number): void {
  for (const [a, dev] of [
    [`${vip4}/32`, 'eth0'],
    [`${vip6}/128`, 'eth0'],
    ['198.18.1.254/24', 'eth1'],
    ['2001:2:0:1::fe/64', 'eth1'],
  ])
    sh('ip', '-n', `${prefix}-lb1`, 'addr', 'add', a, 'dev', dev, ...(a.includes(':') ? ['nodad'] : []));
  sh('ip', 'netns', 'exec', `${prefix}-lb1`, 'sysctl', '-qw', 'net.ipv4.conf.all.accept_local=1');
  sh('ip', 'netns', 'exec', `${prefix}-lb1`, 'sysctl', '-qw', 'net.ipv4.conf.eth1.accept_local=1');
  for (let i = 1; i <= realServers; i++) {
    sh('ip', '-n', `${prefix}-rs${i}`, 'addr', 'add', `${vip4}/32`, 'dev', 'lo');
    sh('ip', '-n', `${prefix}-rs${i}`, 'addr', 'add', `${vip6}/128`, 'dev', 'lo');
  }
}
