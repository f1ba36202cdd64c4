/**
 * HTTP API, metrics and dashboard (fastify). Reads are open on the (loopback by default) listen
 * address; anything that changes state needs `Authorization: Bearer <token>`.
 */
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type FastifySchema,
  type RouteOptions,
} from 'fastify';
import type { ConfigChange } from '../config/edit/edit.js';
import type { RealServerSpec, VirtualServerSpec, VrrpInstanceSpec } from '../config/edit/spec.js';
import {
  CONN_KINDS,
  CONN_LIMIT_DEFAULT,
  CONN_LIMIT_MAX,
  CONN_PLANES,
  CONN_STATE_NAMES,
  parseConnQuery,
  type RawConnQuery,
} from '../lb/conn-list.js';
import type { Result } from '../util/result.js';
import { dryRunQuery, idParams, realServerSchema, virtualServerSchema, vrrpInstanceSchema } from './config-schema.js';
import type { RateHistory } from './history.js';
import { createMetrics } from './metrics.js';
import { openApiDocument } from './openapi.js';
import type { AdminAction, ConfigEditor, StatusSource } from './types.js';

export interface ApiToken {
  /** shown in the audit trail */
  readonly name: string;
  readonly token: string;
}

export interface ApiOptions {
  /** the default token (audit name `default`) */
  readonly token: string;
  /** more tokens, each with a name for the audit trail (`--api-token NAME:TOKEN`) */
  readonly namedTokens?: readonly ApiToken[];
  /** the configuration editor behind /api/v1/config (absent: those routes answer 503) */
  readonly config?: ConfigEditor;
  /** per-service rate samples for the dashboard's charts */
  readonly history?: RateHistory;
  /** the other director's API (`--peer-api`, `--peer-token`), relayed for the dashboard */
  readonly peer?: { readonly url: string; readonly token?: string };
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

/** connection listings in progress at once (the rest get 503 KV_API_BUSY) */
const MAX_LISTINGS = 2;

// unknown parameters are refused by parseConnQuery, which names them
const connQuerySchema = {
  type: 'object',
  properties: {
    service: { type: 'string', maxLength: 200, description: 'a service id (tcp:198.18.0.100:80, fwm:7:4)' },
    real_server: { type: 'string', maxLength: 200, description: 'a real server id (198.18.1.11:80)' },
    state: { type: 'string', enum: [...CONN_STATE_NAMES] },
    kind: { type: 'string', enum: [...CONN_KINDS] },
    plane: { type: 'string', enum: [...CONN_PLANES] },
    limit: { type: 'integer', minimum: 1, maximum: CONN_LIMIT_MAX, default: CONN_LIMIT_DEFAULT },
  },
} as const;

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
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (r) => {
    routes.push(r);
  });
  const tokens: readonly ApiToken[] = [{ name: 'default', token: options.token }, ...(options.namedTokens ?? [])];
  const tokenName = new WeakMap<FastifyRequest, string>();
  let listings = 0;

  app.setErrorHandler((e, _req, reply) => {
    const error = e as {
      statusCode?: number;
      code?: string;
      message: string;
      validation?: { params?: { allowedValues?: unknown[]; additionalProperty?: string } }[];
    };
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500;
    // ajv's words leave out what was allowed or which field was unknown: add them
    const p = error.validation?.[0]?.params;
    const detail = p?.allowedValues
      ? ` (${p.allowedValues.join(', ')})`
      : p?.additionalProperty
        ? `: ${p.additionalProperty}`
        : '';
    reply.code(status).send({ error: error.code ?? 'KV_API_ERROR', message: error.message + detail });
  });

  app.get('/api/v1/openapi.json', { schema: doc('this OpenAPI description') }, async () => openApiDocument(routes));
  app.get('/api/v1/status', { schema: doc('daemon, VRRP, virtual services, real servers, data plane') }, async () =>
    source.status(),
  );
  app.get(
    '/api/v1/history',
    { schema: doc('per-service rates sampled every intervalMs, last 20 minutes') },
    async () => ({
      intervalMs: options.history?.intervalMs ?? 0,
      samples: options.history?.samples() ?? [],
    }),
  );
  app.get<{ Querystring: RawConnQuery }>(
    '/api/v1/connections',
    {
      schema: {
        summary: 'connection entries as keepvsadm -Lnc lists them (both planes), filtered, at most `limit`',
        description:
          'Rows: protocol, expire (seconds), state (IPVS names), source, virtual, destination, family, service and realServer ids, plane (kernel|proxy), kind (connection|template|pinned|synced). total: entries held; matched: entries the filters select; truncated: matched > returned.',
        querystring: connQuerySchema,
      } as FastifySchema,
    },
    async (req, reply) => {
      const q = parseConnQuery(req.query);
      if (!q.ok) return reply.code(400).send({ error: 'KV_API_BAD_QUERY', message: q.error });
      if (!source.connections)
        return reply.code(503).send({ error: 'KV_API_NO_CONNECTIONS', message: 'no connection table in this daemon' });
      // each listing walks the whole table in the LVS worker: unauthenticated readers must not queue them up
      if (listings >= MAX_LISTINGS)
        return reply
          .code(503)
          .header('retry-after', '1')
          .send({ error: 'KV_API_BUSY', message: `${MAX_LISTINGS} connection listings already in progress; retry` });
      listings++;
      try {
        const r = await source.connections(q.value);
        if (!r.ok) return reply.code(503).send({ error: 'KV_API_NO_CONNECTIONS', message: r.error });
        return r.value;
      } finally {
        listings--;
      }
    },
  );
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
  app.get(
    '/api/v1/peer/status',
    { schema: doc("the peer director's /api/v1/status, fetched by this daemon") },
    async (_req, reply) => {
      if (!options.peer) return reply.code(404).send({ error: 'KV_API_NO_PEER', message: 'no --peer-api configured' });
      try {
        const res = await fetch(`${options.peer.url}/api/v1/status`, { signal: AbortSignal.timeout(2000) });
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        return { url: options.peer.url, status: await res.json() };
      } catch (e) {
        return reply.code(502).send({
          error: 'KV_API_PEER_UNREACHABLE',
          message: `peer ${options.peer.url}: ${(e as Error).message}`,
          url: options.peer.url,
        });
      }
    },
  );
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
      const found = m ? tokens.find((t) => sameToken(m[1], t.token)) : undefined;
      if (!found) {
        reply.code(401).send({ error: 'KV_API_UNAUTHORIZED', message: 'a valid bearer token is required for actions' });
        return;
      }
      tokenName.set(req, found.name);
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
    admin.post<{ Params: { action: string }; Body: Record<string, unknown> }>(
      '/api/v1/peer/actions/:action',
      {
        schema: {
          ...doc("an action on the peer director, sent with the peer's token"),
          params: {
            type: 'object',
            required: ['action'],
            properties: { action: { type: 'string', enum: ['drain', 'restore', 'weight', 'maintenance'] } },
          },
          body: { type: 'object', maxProperties: 8 },
        },
      },
      async (req, reply) => {
        const peer = options.peer;
        if (!peer?.token)
          return reply
            .code(404)
            .send({ error: 'KV_API_NO_PEER', message: 'no --peer-api with --peer-token configured' });
        try {
          const res = await fetch(`${peer.url}/api/v1/actions/${req.params.action}`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${peer.token}` },
            body: JSON.stringify(req.body),
            signal: AbortSignal.timeout(6000),
          });
          options.log?.(`API peer action ${req.params.action} by ${tokenName.get(req)}: HTTP ${res.status}`);
          return reply.code(res.status).send(await res.json());
        } catch (e) {
          return reply
            .code(502)
            .send({ error: 'KV_API_PEER_UNREACHABLE', message: `peer ${peer.url}: ${(e as Error).message}` });
        }
      },
    );
    registerConfigRoutes(admin, options.config, (req) => tokenName.get(req) ?? 'unknown');
  });
  return app;
}

/** route documentation for the OpenAPI description (fastify ignores these keys) */
const doc = (summary: string): FastifySchema => ({ summary }) as FastifySchema;

type Q = { Querystring: { dry_run?: boolean } };

function sendOutcome<T extends object>(
  reply: FastifyReply,
  r: Result<T, { status: number; code: string; message: string; version?: string }>,
  etagOf: (v: T) => string | undefined,
) {
  if (!r.ok) {
    const { status, code, ...rest } = r.error;
    if (rest.version) reply.header('etag', `"${rest.version}"`);
    return reply.code(status).send({ error: code, ...rest });
  }
  const etag = etagOf(r.value);
  if (etag) reply.header('etag', `"${etag}"`);
  return reply.send(r.value);
}

/** `If-Match: "v"` (or W/"v", or bare v) -> v */
function ifMatchOf(req: FastifyRequest): string | undefined {
  const h = req.headers['if-match'];
  const v = Array.isArray(h) ? h[0] : h;
  if (v === undefined) return undefined;
  return v.replace(/^W\//, '').replace(/^"(.*)"$/, '$1');
}

function registerConfigRoutes(
  admin: FastifyInstance,
  editor: ConfigEditor | undefined,
  who: (req: FastifyRequest) => string,
): void {
  const unavailable = (reply: FastifyReply) =>
    reply
      .code(503)
      .send({ error: 'KV_API_NO_CONFIG_EDITOR', message: 'configuration editing is not enabled in this daemon' });
  const change = (req: FastifyRequest<Q>, reply: FastifyReply, c: ConfigChange) => {
    if (!editor) return unavailable(reply);
    if (req.query.dry_run) return sendOutcome(reply, editor.dryRun(c), (v) => v.version);
    return sendOutcome(reply, editor.apply(c, ifMatchOf(req), who(req)), (v) => v.newVersion);
  };
  const write = (summary: string, body?: object, params?: string[]) => ({
    schema: {
      summary,
      description:
        'Dry run with ?dry_run=true (diagnostics mapped to fields, unified diff). Otherwise If-Match must name the version read (412 on a conflict, 428 when absent); a change with errors is refused (422) and nothing is written.',
      querystring: dryRunQuery,
      ...(body ? { body } : {}),
      ...(params ? { params: idParams(...params) } : {}),
    },
  });
  admin.get('/api/v1/config', { schema: doc('managed and operator blocks, version, diagnostics') }, (_req, reply) =>
    editor ? sendOutcome(reply, editor.state(), (v) => v.version) : unavailable(reply),
  );
  admin.post<Q & { Body: VirtualServerSpec }>(
    '/api/v1/config/virtual-servers',
    write('create a virtual server in the managed file', virtualServerSchema),
    (req, reply) => change(req, reply, { kind: 'virtual-server', op: 'put', spec: req.body }),
  );
  admin.put<Q & { Body: VirtualServerSpec; Params: { id: string } }>(
    '/api/v1/config/virtual-servers/:id',
    write('replace a managed virtual server (with its real servers)', virtualServerSchema, ['id']),
    (req, reply) => change(req, reply, { kind: 'virtual-server', op: 'put', id: req.params.id, spec: req.body }),
  );
  admin.delete<Q & { Params: { id: string } }>(
    '/api/v1/config/virtual-servers/:id',
    write('delete a managed virtual server', undefined, ['id']),
    (req, reply) => change(req, reply, { kind: 'virtual-server', op: 'delete', id: req.params.id }),
  );
  admin.post<Q & { Body: RealServerSpec; Params: { id: string } }>(
    '/api/v1/config/virtual-servers/:id/real-servers',
    write('add a real server to a managed virtual server', realServerSchema, ['id']),
    (req, reply) => change(req, reply, { kind: 'real-server', op: 'put', service: req.params.id, spec: req.body }),
  );
  admin.put<Q & { Body: RealServerSpec; Params: { id: string; rs: string } }>(
    '/api/v1/config/virtual-servers/:id/real-servers/:rs',
    write('replace a real server of a managed virtual server', realServerSchema, ['id', 'rs']),
    (req, reply) =>
      change(req, reply, { kind: 'real-server', op: 'put', service: req.params.id, id: req.params.rs, spec: req.body }),
  );
  admin.delete<Q & { Params: { id: string; rs: string } }>(
    '/api/v1/config/virtual-servers/:id/real-servers/:rs',
    write('delete a real server of a managed virtual server', undefined, ['id', 'rs']),
    (req, reply) =>
      change(req, reply, { kind: 'real-server', op: 'delete', service: req.params.id, id: req.params.rs }),
  );
  admin.post<Q & { Body: VrrpInstanceSpec }>(
    '/api/v1/config/vrrp-instances',
    write('create a vrrp_instance in the managed file', vrrpInstanceSchema),
    (req, reply) => change(req, reply, { kind: 'vrrp-instance', op: 'put', spec: req.body }),
  );
  admin.put<Q & { Body: VrrpInstanceSpec; Params: { name: string } }>(
    '/api/v1/config/vrrp-instances/:name',
    write('replace a managed vrrp_instance', vrrpInstanceSchema, ['name']),
    (req, reply) => change(req, reply, { kind: 'vrrp-instance', op: 'put', name: req.params.name, spec: req.body }),
  );
  admin.delete<Q & { Params: { name: string } }>(
    '/api/v1/config/vrrp-instances/:name',
    write('delete a managed vrrp_instance', undefined, ['name']),
    (req, reply) => change(req, reply, { kind: 'vrrp-instance', op: 'delete', name: req.params.name }),
  );
  admin.post<Q>(
    '/api/v1/config/rollback',
    write('put the previous managed file back (the current one becomes the previous)'),
    (req, reply) => {
      if (!editor) return unavailable(reply);
      const r = editor.rollback(ifMatchOf(req), who(req), req.query.dry_run === true);
      return sendOutcome(reply, r, (v) => ('applied' in v ? v.newVersion : v.version));
    },
  );
}
