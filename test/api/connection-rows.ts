/** GET /api/v1/connections rows next to `keepvsadm -Lnc` lines, for the tests that compare the two. */

export interface ConnectionRow {
  protocol: string;
  expire: number;
  state: string;
  source: { address: string; port: number };
  virtual: { address: string; port: number };
  destination: { address: string; port: number };
  family: number;
  service?: string;
  realServer?: string;
  plane: string;
  kind: string;
}

/** An endpoint as -Lnc prints it (IPv6 in brackets). */
const ep = (a: { address: string; port: number }): string =>
  a.address.includes(':') ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;

/** A row as -Lnc prints it, without the expire column (it moves between the two reads). */
export const asLnc = (r: ConnectionRow): string =>
  `${r.protocol.toUpperCase()} ${r.state} ${ep(r.source)} ${ep(r.virtual)} ${ep(r.destination)}`;

/** -Lnc's entry lines (after its two header lines) in asLnc's form, sorted. */
export const lncLines = (text: string): string[] =>
  text
    .split('\n')
    .slice(2)
    .filter(Boolean)
    .map((l) => l.split(/\s+/))
    .map(([pro, , state, src, vaddr, dst]) => `${pro} ${state} ${src} ${vaddr} ${dst}`)
    .sort();
