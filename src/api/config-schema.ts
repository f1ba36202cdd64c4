/**
 * JSON schemas of the config API bodies (fastify validates them; the OpenAPI description reuses
 * them). They check shape only: values are single config words or numbers, checked by the
 * configuration parser, whose diagnostics come back mapped to the fields.
 */
import { WORD_PATTERN } from '../config/edit/spec.js';

const scalar = { anyOf: [{ type: 'number' }, { type: 'string', pattern: WORD_PATTERN }] } as const;
const method = { type: 'string', enum: ['NAT', 'DR', 'TUN'] } as const;

export const checkerSchema = {
  type: 'object',
  required: ['type'],
  additionalProperties: false,
  properties: {
    type: { type: 'string', enum: ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'PING_CHECK', 'MISC_CHECK'] },
    connectTimeout: scalar,
    connectPort: scalar,
    connectIp: scalar,
    delayLoop: scalar,
    retry: scalar,
    delayBeforeRetry: scalar,
    urls: {
      type: 'array',
      maxItems: 16,
      items: {
        type: 'object',
        required: ['path'],
        additionalProperties: false,
        properties: {
          path: scalar,
          statusCode: { type: 'string', pattern: '^[0-9 -]{1,100}$' },
          digest: scalar,
        },
      },
    },
    miscPath: scalar,
  },
} as const;

export const realServerSchema = {
  type: 'object',
  required: ['address', 'port'],
  additionalProperties: false,
  properties: {
    address: scalar,
    port: scalar,
    weight: scalar,
    method,
    uthreshold: scalar,
    lthreshold: scalar,
    inhibitOnFailure: { type: 'boolean' },
    checkers: { type: 'array', maxItems: 8, items: checkerSchema },
  },
} as const;

export const virtualServerSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    address: scalar,
    port: scalar,
    fwmark: scalar,
    family: { type: 'integer', enum: [4, 6] },
    protocol: { type: 'string', enum: ['TCP', 'UDP', 'SCTP'] },
    scheduler: scalar,
    schedFlags: {
      type: 'array',
      maxItems: 7,
      items: {
        type: 'string',
        enum: ['flag-1', 'flag-2', 'flag-3', 'sh-port', 'sh-fallback', 'mh-port', 'mh-fallback'],
      },
    },
    ops: { type: 'boolean' },
    method,
    persistenceTimeout: scalar,
    persistenceGranularity: scalar,
    delayLoop: scalar,
    quorum: scalar,
    hysteresis: scalar,
    inhibitOnFailure: { type: 'boolean' },
    sorryServer: {
      type: 'object',
      required: ['address'],
      additionalProperties: false,
      properties: { address: scalar, port: scalar },
    },
    realServers: { type: 'array', maxItems: 1024, items: realServerSchema },
  },
  anyOf: [{ required: ['address', 'port'] }, { required: ['fwmark'] }],
} as const;

export const vrrpInstanceSchema = {
  type: 'object',
  required: ['name', 'vrid'],
  additionalProperties: false,
  properties: {
    name: scalar,
    state: { type: 'string', enum: ['MASTER', 'BACKUP'] },
    interface: scalar,
    vrid: scalar,
    priority: scalar,
    advertInt: scalar,
    version: { type: 'integer', enum: [2, 3] },
    nopreempt: { type: 'boolean' },
    preemptDelay: scalar,
    vips: { type: 'array', maxItems: 64, items: scalar },
    unicastPeers: { type: 'array', maxItems: 64, items: scalar },
    authPass: scalar,
  },
} as const;

export const dryRunQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { dry_run: { type: 'boolean', description: 'only preview: diagnostics and diff, nothing written' } },
} as const;

export const idParams = (...names: string[]) =>
  ({
    type: 'object',
    required: names,
    properties: Object.fromEntries(names.map((n) => [n, { type: 'string', minLength: 1, maxLength: 200 }])),
  }) as const;
