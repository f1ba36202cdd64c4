/** `keepvs --force-reload`: the API's reload action with force, for a reload the typo guard refused. */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { DEFAULT_SOCKET } from '../control/protocol.js';
import { apiTokenFile } from '../daemon/main.js';
import type { KeepvsOptions } from './keepvs-args.js';

export async function forceReload(opts: KeepvsOptions): Promise<number> {
  const socket = opts.socket ?? process.env.KEEPVS_SOCKET ?? DEFAULT_SOCKET;
  let token = opts.apiToken;
  if (!token) {
    try {
      token = readFileSync(apiTokenFile(socket), 'utf8').trim();
    } catch (e) {
      process.stderr.write(
        `keepvs: cannot read the API token (${apiTokenFile(socket)}: ${(e as NodeJS.ErrnoException).code}); give --api-token\n`,
      );
      return 1;
    }
  }
  const body = JSON.stringify({ force: true });
  const r = await new Promise<{ status: number; text: string } | Error>((resolve) => {
    const req = http.request(
      {
        host: opts.api.host,
        port: opts.api.port,
        path: '/api/v1/actions/reload',
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', (e) => resolve(e));
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.end(body);
  });
  if (r instanceof Error) {
    process.stderr.write(`keepvs: cannot reach keepvs at ${opts.api.host}:${opts.api.port}: ${r.message}\n`);
    return 1;
  }
  if (r.status === 200) {
    process.stdout.write('keepvs: configuration reloaded (forced)\n');
    return 0;
  }
  let message = r.text;
  try {
    message = (JSON.parse(r.text) as { message?: string }).message ?? r.text;
  } catch {
    // not JSON: print as is
  }
  process.stderr.write(`keepvs: reload refused: ${message}\n`);
  return 1;
}
