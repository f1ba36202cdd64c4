/**
 * HTTP API, metrics and dashboard (fastify). Reads are open on the (loopback by default) listen
 * address; anything that changes state needs `Authorization: Bearer <token>`.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { createMetrics } from './metrics.js';
import type { AdminAction, StatusSource } from './types.js';

export interface ApiOptions {
  readonly token: string;
  /** directory holding index.html, dashboard.js, dashboard.css */
  readonly webRoot: string;
  readonly log?: (message: string) => void;
}

const STATIC: Record<string, string> = {
  '/': 'index.html',
  '/dashboard.js': 'dashboard.js',
  '/dashboard.css': 'dashboard.css',
};
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

function sameToken(given: string, want: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

const destBody = {
  type: 'object',
  required: ['service', 'dest'],
  additionalProperties: false,
  properties: { service: { type: 'string', maxLength: 200 }, dest: { type: 'string', maxLength: 200 } },
} as const;

export function buildApi(source: StatusSource, options: ApiOptions): FastifyInstance {
  // unknown fields are refused, not silently stripped (fastify's default)
  const app = Fastify({ logger: false, bodyLimit: 64 * 1024, ajv: { customOptions: { removeAdditional: false } } });
  const metrics = createMetrics(source);

  app.setErrorHandler((e, _req, reply) => {
    const error = e as { statusCode?: number; code?: string; message: string };
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    reply.code(status).send({ error: error.code ?? 'KV_API_ERROR', message: error.message });
  });

  app.get('/api/v1/status', async () => source.status());
  app.get('/api/v1/events', async () => ({ events: source.events() }));
  app.get('/api/v1/events/stream', (req, reply) => {
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    reply.raw.write(': keepvs events\n\n');
    const unsubscribe = source.subscribe((e) => reply.raw.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`));
    const ping = setInterval(() => reply.raw.write(': ping\n\n'), 15000);
    req.raw.on('close', () => {
      clearInterval(ping);
      unsubscribe();
    });
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', metrics.contentType);
    return metrics.metrics();
  });
  for (const [route, file] of Object.entries(STATIC)) {
    app.get(route, async (_req, reply) => {
      const ext = file.split('.').pop() ?? 'html';
      reply.header('content-type', TYPES[ext]);
      return readFileSync(join(options.webRoot, file), 'utf8');
    });
  }

  // everything below changes state: bearer token required
  app.register(async (admin) => {
    admin.addHook('onRequest', async (req, reply) => {
      const auth = req.headers.authorization ?? '';
      const m = /^Bearer (.+)$/.exec(auth);
      if (!m || !sameToken(m[1], options.token)) {
        reply.code(401).send({ error: 'KV_API_UNAUTHORIZED', message: 'a valid bearer token is required for actions' });
      }
    });
    const run = async (action: AdminAction, reply: import('fastify').FastifyReply) => {
      const r = await source.act(action);
      options.log?.(`API action ${JSON.stringify(action)}: ${r.ok ? 'done' : `refused: ${r.error}`}`);
      if (!r.ok) return reply.code(409).send({ error: 'KV_API_ACTION_FAILED', message: r.error });
      return { ok: true };
    };
    admin.post<{ Body: { service: string; dest: string } }>(
      '/api/v1/actions/drain',
      { schema: { body: destBody } },
      (req, reply) => run({ action: 'drain', ...req.body }, reply),
    );
    admin.post<{ Body: { service: string; dest: string } }>(
      '/api/v1/actions/restore',
      { schema: { body: destBody } },
      (req, reply) => run({ action: 'restore', ...req.body }, reply),
    );
    admin.post<{ Body: { service: string; dest: string; weight: number } }>(
      '/api/v1/actions/weight',
      {
        schema: {
          body: {
            type: 'object',
            required: ['service', 'dest', 'weight'],
            additionalProperties: false,
            properties: { ...destBody.properties, weight: { type: 'integer', minimum: 0, maximum: 65535 } },
          },
        },
      },
      (req, reply) => run({ action: 'weight', ...req.body }, reply),
    );
    admin.post<{ Body: { on: boolean } }>(
      '/api/v1/actions/maintenance',
      {
        schema: {
          body: {
            type: 'object',
            required: ['on'],
            additionalProperties: false,
            properties: { on: { type: 'boolean' } },
          },
        },
      },
      (req, reply) => run({ action: 'maintenance', on: req.body.on }, reply),
    );
    admin.post<{ Body: { force?: boolean } }>(
      '/api/v1/actions/reload',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            properties: { force: { type: 'boolean' } },
          },
        },
      },
      (req, reply) => run({ action: 'reload', force: req.body?.force === true }, reply),
    );
  });
  return app;
}
