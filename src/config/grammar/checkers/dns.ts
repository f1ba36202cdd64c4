/** DNS_CHECK: UDP query, success on an answer of the type asked (check_dns.c). */
import type { DnsCheck } from '../../model.js';
import { arg, choiceWord, stringArg, table, value } from '../engine.js';
import { type CheckerSpec, connectionEntries } from './common.js';

const TYPES = ['A', 'NS', 'CNAME', 'SOA', 'MX', 'TXT', 'AAAA'] as const;

export const DNS_CHECK: CheckerSpec = {
  table: table(connectionEntries(), [
    [
      'type',
      value((n, d, c) => {
        const w = arg(n, 0, c, TYPES.join('|'));
        if (w)
          d.specific.queryType =
            choiceWord({ text: w.text.toUpperCase(), loc: w.loc }, TYPES, c, 'DNS_CHECK type') ?? d.specific.queryType;
      }),
    ],
    ['name', value((n, d, c) => (d.specific.name = stringArg(n, c, 'a domain name') ?? d.specific.name))],
  ]),
  finish: (_n, d) => ({
    queryType: (d.specific.queryType as DnsCheck['queryType'] | undefined) ?? 'SOA',
    name: (d.specific.name as string | undefined) ?? '.',
  }),
};
