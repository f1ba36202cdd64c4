/** OpenAPI 3.1 description built from the routes fastify registered (their JSON schemas). */
import type { RouteOptions } from 'fastify';
import { VERSION } from '../version.js';

interface RouteSchema {
  summary?: string;
  description?: string;
  body?: unknown;
  querystring?: { properties?: Record<string, unknown> };
  params?: { properties?: Record<string, unknown> };
}

const ADMIN = (url: string) => url.startsWith('/api/v1/actions') || url.startsWith('/api/v1/config');

export function openApiDocument(routes: readonly RouteOptions[]): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routes) {
    if (!r.url.startsWith('/api/') && r.url !== '/metrics') continue;
    const methods = (Array.isArray(r.method) ? r.method : [r.method]).filter((m) => m !== 'HEAD');
    const path = r.url.replace(/:([A-Za-z_]+)/g, '{$1}');
    const s = (r.schema ?? {}) as RouteSchema;
    const parameters = [
      ...Object.entries(s.params?.properties ?? {}).map(([name, schema]) => ({
        name,
        in: 'path',
        required: true,
        schema,
      })),
      ...Object.entries(s.querystring?.properties ?? {}).map(([name, schema]) => ({ name, in: 'query', schema })),
      ...(r.url.startsWith('/api/v1/config/') && r.method !== 'GET'
        ? [{ name: 'If-Match', in: 'header', schema: { type: 'string' }, description: 'the version read (ETag)' }]
        : []),
    ];
    for (const m of methods) {
      paths[path] ??= {};
      paths[path][m.toLowerCase()] = {
        ...(s.summary ? { summary: s.summary } : {}),
        ...(s.description ? { description: s.description } : {}),
        ...(parameters.length ? { parameters } : {}),
        ...(s.body ? { requestBody: { required: true, content: { 'application/json': { schema: s.body } } } } : {}),
        ...(ADMIN(r.url) ? { security: [{ bearer: [] }] } : {}),
        responses: {
          '200': { description: 'done (JSON)' },
          '400': { description: 'FST_ERR_VALIDATION: a field is missing, unknown or of the wrong type' },
          ...(ADMIN(r.url) ? { '401': { description: 'KV_API_UNAUTHORIZED' } } : {}),
          ...(r.url === '/api/v1/connections'
            ? { '503': { description: 'KV_API_NO_CONNECTIONS (no LVS worker) or KV_API_BUSY (retry)' } }
            : {}),
        },
      };
    }
  }
  return {
    openapi: '3.1.0',
    info: { title: 'keepvs API', version: VERSION, description: 'docs/api.md' },
    components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    paths,
  };
}
