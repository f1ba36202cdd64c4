/** HTTP_GET / SSL_GET: fetch URLs, compare status code, MD5 digest or regex (check_http.c). */
import type { HttpUrl } from '../../model.js';
import type { Node } from '../../tree.js';
import {
  arg,
  block,
  boolArg,
  type Ctx,
  choiceWord,
  type Mutable,
  parseIntWord,
  runBlock,
  stringArg,
  table,
  unsupported,
  value,
} from '../engine.js';
import { type CheckerSpec, connectionEntries, nbGetRetryEntry } from './common.js';

type UrlDraft = Partial<Mutable<HttpUrl>> & { codes?: [number, number][] };

const URL_TABLE = table<UrlDraft>([
  ['path', value((n, d, c) => (d.path = stringArg(n, c, 'a URL path') ?? d.path))],
  [
    'digest',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'an MD5 hex digest');
      if (!w) return;
      if (!/^[0-9a-fA-F]{32}$/.test(w.text)) c.report('KV210', w.loc, `digest '${w.text}' is not 32 hex digits (MD5)`);
      else d.digest = w.text.toLowerCase();
    }),
  ],
  [
    'status_code',
    value((n, d, c) => {
      d.codes ??= [];
      if (n.args.length === 0) c.report('KV113', n.loc, "'status_code' needs codes or ranges (e.g. 200 300-399)");
      for (const w of n.args) {
        const m = /^(\d+)(?:-(\d+))?$/.exec(w.text);
        if (!m) {
          c.report('KV200', w.loc, `status_code: '${w.text}' is not a code or range`);
          continue;
        }
        const lo = parseIntWord({ text: m[1], loc: w.loc }, 100, 599, c, 'status_code');
        const hi = m[2] ? parseIntWord({ text: m[2], loc: w.loc }, 100, 599, c, 'status_code') : lo;
        if (lo === undefined || hi === undefined) continue;
        if (hi < lo) c.report('KV201', w.loc, `status_code range '${w.text}' is reversed`);
        else d.codes.push([lo, hi]);
      }
    }),
  ],
  ['virtualhost', value((n, d, c) => (d.virtualhost = stringArg(n, c, 'a host name') ?? d.virtualhost))],
  [
    'regex',
    value((n, d, c) => {
      const w = arg(n, 0, c, 'a regular expression');
      if (!w) return;
      try {
        new RegExp(w.text);
        d.regex = w.text;
      } catch (e) {
        c.report('KV203', w.loc, `regex '${w.text}' is not valid: ${(e as Error).message}`);
      }
    }),
  ],
  ['regex_no_match', value((n, d, c) => (d.regexNoMatch = boolArg(n, c) ?? d.regexNoMatch))],
  ['regex_options', unsupported('PCRE options are not supported; JavaScript regex semantics apply', 'value')],
  ['regex_stack', unsupported('PCRE stack sizes do not apply', 'value')],
  ['regex_min_offset', unsupported('regex offsets are not supported', 'value')],
  ['regex_max_offset', unsupported('regex offsets are not supported', 'value')],
]);

function url(n: Node, d: { specific: Record<string, unknown> }, ctx: Ctx): void {
  const u: UrlDraft = {};
  runBlock(n.children ?? [], URL_TABLE, u, ctx, 'url');
  if (!u.path) {
    ctx.report('KV309', n.loc, "url block has no 'path'; ignored");
    return;
  }
  const urls = (d.specific.urls as HttpUrl[] | undefined) ?? [];
  urls.push({
    path: u.path,
    ...(u.digest ? { digest: u.digest } : {}),
    statusCodes: u.codes && u.codes.length > 0 ? u.codes : [[200, 299]],
    ...(u.virtualhost ? { virtualhost: u.virtualhost } : {}),
    ...(u.regex !== undefined ? { regex: u.regex } : {}),
    regexNoMatch: u.regexNoMatch ?? false,
    loc: n.loc,
  });
  d.specific.urls = urls;
}

function httpSpec(ssl: boolean): CheckerSpec {
  return {
    table: table(
      connectionEntries(),
      [
        ['url', block(url)],
        ['nb_get_retry', nbGetRetryEntry()],
        [
          'http_protocol',
          value((n, d, c) => {
            const w = arg(n, 0, c, '1.0|1.0C|1.1');
            if (w) d.specific.httpProtocol = choiceWord(w, ['1.0', '1.0C', '1.1'] as const, c, 'http_protocol');
          }),
        ],
        ['virtualhost', value((n, d, c) => (d.specific.virtualhost = stringArg(n, c, 'a host name')))],
        ['fast_recovery', value((n, d, c) => (d.specific.fastRecovery = boolArg(n, c)))],
      ],
      ssl
        ? [
            ['enable_sni', value((n, d, c) => (d.specific.enableSni = boolArg(n, c)))],
            ['sni_name', unsupported('sni_name is not supported; SNI uses the virtualhost', 'value')],
            ['tls_compliant', unsupported('TLS close-notify strictness is not configurable', 'value')],
          ]
        : [],
    ),
    finish: (node, d, c) => {
      const urls = (d.specific.urls as HttpUrl[] | undefined) ?? [];
      if (urls.length === 0)
        c.report('KV309', node.loc, `${d.type} has no url { path ... } block; it can never succeed`);
      return {
        urls,
        httpProtocol: d.specific.httpProtocol ?? '1.0',
        ...(d.specific.virtualhost ? { virtualhost: d.specific.virtualhost } : {}),
        enableSni: (d.specific.enableSni as boolean | undefined) ?? false,
        fastRecovery: (d.specific.fastRecovery as boolean | undefined) ?? false,
      };
    },
  };
}

export const HTTP_GET = httpSpec(false);
export const SSL_GET = httpSpec(true);
