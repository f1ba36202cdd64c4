import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { buildApi } from '../../src/api/server.js';
import type { DaemonStatus, StatusSource } from '../../src/api/types.js';
import { managedSpecOf } from '../../src/config/edit/from-model.js';
import { managedText, renderManaged } from '../../src/config/edit/render.js';
import type { ManagedSpec } from '../../src/config/edit/spec.js';
import { OverlayConfigFs } from '../../src/config/fs-port.js';
import { loadConfig, parseConfigText } from '../../src/config/index.js';
import { ConfigStore } from '../../src/daemon/config-store.js';
import { WEB_ROOT } from '../../src/daemon/main.js';
import { NodeConfigFs } from '../../src/os/config-fs.js';
import { EventBus } from '../../src/util/events.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const MAIN = `global_defs {
    router_id test
}
# operator's own service
virtual_server 127.0.0.1 9000 {
    lvs_sched rr
    protocol TCP
    real_server 127.0.0.1 9001 {
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
`;

function setup(opts: { include?: boolean; refuseReload?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'keepvs-cfgapi-'));
  dirs.push(dir);
  const main = join(dir, 'keepalived.conf');
  const managed = join(dir, 'keepvs-managed.conf');
  writeFileSync(main, `${MAIN}${opts.include === false ? '' : 'include keepvs-managed.conf\n'}`);
  const fs = new NodeConfigFs();
  const load = (overlay?: ReadonlyMap<string, string>) =>
    loadConfig(main, { fs: overlay ? new OverlayConfigFs(fs, overlay) : fs });
  const bus = new EventBus();
  const reloads: boolean[] = [];
  const store = new ConfigStore({
    mainFile: main,
    managedFile: managed,
    load,
    reload: () => {
      const ok = load().usable && !opts.refuseReload;
      reloads.push(ok);
      return { ok, message: ok ? 'Reloading configuration' : 'rejected' };
    },
    audit: (a) => bus.emit({ type: 'config-change', ...a }),
  });
  const src: StatusSource = {
    status: () => ({}) as DaemonStatus,
    events: () => bus.recent(),
    subscribe: (l) => bus.subscribe(l),
    act: async () => ({ ok: true }),
  };
  const app = buildApi(src, {
    token: 'secret',
    namedTokens: [{ name: 'alice', token: 'alice-token' }],
    config: store,
    webRoot: WEB_ROOT,
  });
  return { dir, main, managed, app, bus, reloads };
}

const auth = (t = 'secret') => ({ authorization: `Bearer ${t}` });
const VS = {
  address: '127.0.0.1',
  port: 8080,
  protocol: 'TCP',
  scheduler: 'wrr',
  method: 'NAT',
  delayLoop: 2,
  realServers: [{ address: '127.0.0.1', port: 8081, weight: 2, checkers: [{ type: 'TCP_CHECK', connectTimeout: 1 }] }],
};

test('config API: dry run previews, apply needs the version, writes, reloads and is audited by token name', async () => {
  const { app, managed, bus, reloads } = setup();
  assert.equal((await app.inject({ method: 'GET', url: '/api/v1/config' })).statusCode, 401);
  const st = await app.inject({ method: 'GET', url: '/api/v1/config', headers: auth() });
  assert.equal(st.statusCode, 200);
  const state = st.json();
  assert.equal(state.included, true);
  assert.equal(state.canRollback, false);
  // the operator's block is listed, not editable
  assert.deepEqual(
    state.virtualServers.map((v: { id: string; managed: boolean }) => [v.id, v.managed]),
    [['tcp:127.0.0.1:9000', false]],
  );
  const v0 = state.version;
  assert.equal(st.headers.etag, `"${v0}"`);

  const dry = await app.inject({
    method: 'POST',
    url: '/api/v1/config/virtual-servers?dry_run=true',
    headers: auth(),
    payload: VS,
  });
  assert.equal(dry.statusCode, 200);
  const d = dry.json();
  assert.equal(d.usable, true);
  assert.match(d.diff, /\+virtual_server 127\.0\.0\.1 8080 \{/);
  assert.match(d.diff, /\+ {8}weight 2/);
  assert.throws(() => readFileSync(managed), /ENOENT/, 'a dry run writes nothing');

  const noVersion = await app.inject({
    method: 'POST',
    url: '/api/v1/config/virtual-servers',
    headers: auth(),
    payload: VS,
  });
  assert.equal(noVersion.statusCode, 428);
  assert.equal(noVersion.json().error, 'KV_API_VERSION_REQUIRED');

  const applied = await app.inject({
    method: 'POST',
    url: '/api/v1/config/virtual-servers',
    headers: { ...auth('alice-token'), 'if-match': `"${v0}"` },
    payload: VS,
  });
  assert.equal(applied.statusCode, 200, applied.body);
  const a = applied.json();
  assert.equal(a.applied, true);
  assert.equal(a.reload.ok, true);
  assert.deepEqual(reloads, [true]);
  assert.match(readFileSync(managed, 'utf8'), /real_server 127\.0\.0\.1 8081 \{/);
  assert.equal(applied.headers.etag, `"${a.newVersion}"`);
  const audit = bus.recent().filter((e) => e.type === 'config-change');
  assert.equal(audit.length, 1);
  assert.equal(audit[0].type === 'config-change' && audit[0].who, 'alice');
  assert.match(
    audit[0].type === 'config-change' ? audit[0].summary : '',
    /create virtual server tcp:127\.0\.0\.1:8080/,
  );

  // the same stale version again: a conflict, not a merge
  const stale = await app.inject({
    method: 'POST',
    url: `/api/v1/config/virtual-servers/${encodeURIComponent('tcp:127.0.0.1:8080')}/real-servers`,
    headers: { ...auth(), 'if-match': `"${v0}"` },
    payload: { address: '127.0.0.1', port: 8082 },
  });
  assert.equal(stale.statusCode, 412);
  assert.equal(stale.json().error, 'KV_API_CONFLICT');
  assert.match(stale.json().message, /by alice/);
  assert.equal(stale.json().version, a.newVersion);

  // an invalid value: refused with the diagnostic at its field, nothing written
  const before = readFileSync(managed, 'utf8');
  const bad = await app.inject({
    method: 'POST',
    url: `/api/v1/config/virtual-servers/${encodeURIComponent('tcp:127.0.0.1:8080')}/real-servers`,
    headers: { ...auth(), 'if-match': a.newVersion },
    payload: { address: '127.0.0.1', port: 8082, weight: 'heavy' },
  });
  assert.equal(bad.statusCode, 422, bad.body);
  const errs = bad.json().diagnostics.filter((x: { severity: string }) => x.severity === 'error');
  assert.equal(errs.length, 1);
  assert.equal(errs[0].code, 'KV200');
  assert.equal(errs[0].field, 'virtualServers[0].realServers[1].weight');
  assert.equal(errs[0].targetField, 'weight');
  assert.equal(readFileSync(managed, 'utf8'), before);
  assert.equal(reloads.length, 1);

  // bad address in the header line maps to the address word, bad port to the port word
  const badPort = await app.inject({
    method: 'POST',
    url: `/api/v1/config/virtual-servers/${encodeURIComponent('tcp:127.0.0.1:8080')}/real-servers?dry_run=true`,
    headers: auth(),
    payload: { address: '127.0.0.1', port: 70000 },
  });
  const pe = badPort.json().diagnostics.find((x: { severity: string }) => x.severity === 'error');
  assert.equal(pe.targetField, 'port', JSON.stringify(badPort.json().diagnostics));

  // rollback puts the previous text back (the empty file) and reloads
  const rb = await app.inject({
    method: 'POST',
    url: '/api/v1/config/rollback',
    headers: { ...auth(), 'if-match': a.newVersion },
  });
  assert.equal(rb.statusCode, 200, rb.body);
  assert.equal(readFileSync(managed, 'utf8'), '');
  assert.equal(reloads.length, 2);
  assert.equal(bus.recent().filter((e) => e.type === 'config-change').length, 2);
  await app.close();
});

test('config API: operator blocks are not editable; a managed file not included is refused', async () => {
  const { app } = setup();
  const st = (await app.inject({ method: 'GET', url: '/api/v1/config', headers: auth() })).json();
  const r = await app.inject({
    method: 'POST',
    url: `/api/v1/config/virtual-servers/${encodeURIComponent('tcp:127.0.0.1:9000')}/real-servers`,
    headers: { ...auth(), 'if-match': st.version },
    payload: { address: '127.0.0.1', port: 9002 },
  });
  assert.equal(r.statusCode, 409);
  assert.equal(r.json().error, 'KV_API_NOT_MANAGED');
  assert.match(r.json().message, /keepalived\.conf:5/);
  const missing = await app.inject({
    method: 'DELETE',
    url: '/api/v1/config/vrrp-instances/VI_9',
    headers: { ...auth(), 'if-match': st.version },
  });
  assert.equal(missing.statusCode, 404);
  await app.close();

  const lone = setup({ include: false });
  const st2 = (await lone.app.inject({ method: 'GET', url: '/api/v1/config', headers: auth() })).json();
  assert.equal(st2.included, false);
  const r2 = await lone.app.inject({
    method: 'POST',
    url: '/api/v1/config/virtual-servers',
    headers: { ...auth(), 'if-match': st2.version },
    payload: VS,
  });
  assert.equal(r2.statusCode, 409);
  assert.equal(r2.json().error, 'KV_API_NOT_INCLUDED');
  assert.match(r2.json().message, /include .*keepvs-managed\.conf/);
  await lone.app.close();
});

test('config API: malformed bodies get a clear 400, never a crash or an injected line', async () => {
  const { app, managed } = setup();
  const st = (await app.inject({ method: 'GET', url: '/api/v1/config', headers: auth() })).json();
  const h = { ...auth(), 'if-match': st.version };
  const cases: [string, unknown][] = [
    ['unknown field', { ...VS, colour: 'red' }],
    ['config injection in a word', { ...VS, scheduler: 'rr\n}\nvirtual_server 1.2.3.4 1 {' }],
    ['brace in a word', { ...VS, scheduler: 'rr}' }],
    ['object for a scalar', { ...VS, port: { a: 1 } }],
    ['neither address nor fwmark', { protocol: 'TCP' }],
    ['bad enum', { ...VS, method: 'MASQ' }],
    ['real server without port', { ...VS, realServers: [{ address: '127.0.0.1' }] }],
  ];
  for (const [what, payload] of cases) {
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/config/virtual-servers',
      headers: h,
      payload: payload as object,
    });
    assert.equal(r.statusCode, 400, `${what}: ${r.body}`);
    assert.equal(r.json().error, 'FST_ERR_VALIDATION', what);
    assert.ok(r.json().message.length > 0, what);
  }
  const notJson = await app.inject({
    method: 'POST',
    url: '/api/v1/config/virtual-servers',
    headers: { ...h, 'content-type': 'application/json' },
    payload: '{"address":',
  });
  assert.equal(notJson.statusCode, 400);
  const longId = await app.inject({
    method: 'DELETE',
    url: `/api/v1/config/virtual-servers/${'x'.repeat(300)}`,
    headers: h,
  });
  // find-my-way caps parameters at 100 characters: 414, a clear refusal
  assert.ok(longId.statusCode >= 400 && longId.statusCode < 500, longId.body);
  assert.throws(() => readFileSync(managed), /ENOENT/);
  await app.close();
});

test('OpenAPI description lists the config and action routes with their schemas', async () => {
  const { app } = setup();
  const r = await app.inject({ method: 'GET', url: '/api/v1/openapi.json' });
  assert.equal(r.statusCode, 200);
  const doc = r.json();
  assert.equal(doc.openapi, '3.1.0');
  const post = doc.paths['/api/v1/config/virtual-servers/{id}/real-servers'].post;
  assert.deepEqual(post.requestBody.content['application/json'].schema.required, ['address', 'port']);
  assert.ok(post.parameters.some((p: { name: string }) => p.name === 'If-Match'));
  assert.deepEqual(post.security, [{ bearer: [] }]);
  assert.ok(doc.paths['/api/v1/actions/weight'].post);
  assert.ok(doc.paths['/api/v1/status'].get);
  await app.close();
});

test('managed specs read back from the parsed file exactly as written', () => {
  const spec: ManagedSpec = {
    virtualServers: [
      {
        address: '198.18.0.100',
        port: 80,
        protocol: 'TCP',
        scheduler: 'sh',
        schedFlags: ['sh-port'],
        method: 'NAT',
        persistenceTimeout: 300,
        persistenceGranularity: '255.255.255.0',
        delayLoop: 6,
        quorum: 2,
        hysteresis: 1,
        sorryServer: { address: '198.18.1.99', port: 80 },
        realServers: [
          {
            address: '198.18.1.1',
            port: 80,
            weight: 3,
            method: 'NAT',
            uthreshold: 100,
            checkers: [
              {
                type: 'HTTP_GET',
                connectTimeout: 2,
                delayLoop: 6,
                retry: 2,
                delayBeforeRetry: 1,
                connectPort: 8080,
                urls: [{ path: '/health', statusCode: '200-299' }],
              },
            ],
          },
        ],
      },
      {
        fwmark: 7,
        family: 4,
        protocol: 'TCP',
        scheduler: 'wlc',
        method: 'DR',
        delayLoop: 60,
        quorum: 1,
        hysteresis: 0,
        realServers: [{ address: '198.18.1.2', port: 0, weight: 1, method: 'DR', checkers: [] }],
      },
    ],
    vrrpInstances: [
      {
        name: 'VI_1',
        state: 'BACKUP',
        interface: 'eth0',
        vrid: 51,
        priority: 100,
        advertInt: 1,
        version: 2,
        nopreempt: true,
        vips: ['198.18.0.100/24'],
        unicastPeers: ['198.18.0.2'],
        authPass: 'secret',
      },
    ],
  };
  const text = managedText(renderManaged(spec));
  const r = parseConfigText(text, '/etc/keepalived/keepvs-managed.conf');
  assert.deepEqual(
    r.diagnostics.filter((d) => d.severity === 'error'),
    [],
  );
  const back = managedSpecOf(r.config!, '/etc/keepalived/keepvs-managed.conf');
  // values equal to their defaults are left out on read-back; what remains means the same config
  const again = managedText(renderManaged(back));
  const r2 = parseConfigText(again, '/etc/keepalived/keepvs-managed.conf');
  const strip = (c: unknown) =>
    JSON.stringify(c, (k, v) => (k === 'loc' || k.endsWith('Loc') || k === 'files' ? undefined : v));
  assert.equal(strip(r2.config), strip(r.config));
  assert.deepEqual(managedSpecOf(r2.config!, '/etc/keepalived/keepvs-managed.conf'), back);
  // the defaults really are dropped (a diff shows only a change)
  assert.doesNotMatch(again, /quorum 1\n|hysteresis 0/);
  assert.match(again, /quorum 2/);
});

test('config API: a reload the daemon refuses leaves the file as it was', async () => {
  const { app, managed, bus } = setup({ refuseReload: true });
  writeFileSync(managed, '');
  const st = (await app.inject({ method: 'GET', url: '/api/v1/config', headers: auth() })).json();
  const r = await app.inject({
    method: 'POST',
    url: '/api/v1/config/virtual-servers',
    headers: { ...auth(), 'if-match': st.version },
    payload: VS,
  });
  assert.equal(r.statusCode, 409, r.body);
  assert.equal(r.json().error, 'KV_API_RELOAD_REFUSED');
  assert.equal(readFileSync(managed, 'utf8'), '');
  assert.equal(bus.recent().filter((e) => e.type === 'config-change').length, 0);
  await app.close();
});

test('config API: a VRRP instance is created through the parser; a bad VRID is shown at its field', async () => {
  const { app, managed } = setup();
  const st = (await app.inject({ method: 'GET', url: '/api/v1/config', headers: auth() })).json();
  const vi = {
    name: 'VI_WEB',
    state: 'BACKUP',
    interface: 'eth0',
    vrid: 300,
    priority: 90,
    advertInt: 1,
    vips: ['198.18.0.100/24'],
  };
  const bad = await app.inject({
    method: 'POST',
    url: '/api/v1/config/vrrp-instances?dry_run=true',
    headers: auth(),
    payload: vi,
  });
  assert.equal(bad.statusCode, 200);
  const e = bad.json().diagnostics.find((d: { severity: string }) => d.severity === 'error');
  assert.equal(e.targetField, 'vrid', JSON.stringify(bad.json().diagnostics));
  assert.equal(bad.json().usable, false);
  const good = await app.inject({
    method: 'POST',
    url: '/api/v1/config/vrrp-instances',
    headers: { ...auth(), 'if-match': st.version },
    payload: { ...vi, vrid: 51, nopreempt: true },
  });
  assert.equal(good.statusCode, 200, good.body);
  assert.match(
    readFileSync(managed, 'utf8'),
    /vrrp_instance VI_WEB \{[\s\S]*virtual_router_id 51[\s\S]*nopreempt[\s\S]*198\.18\.0\.100\/24/,
  );
  const after = (await app.inject({ method: 'GET', url: '/api/v1/config', headers: auth() })).json();
  const b = after.vrrpInstances.find((v: { id: string }) => v.id === 'VI_WEB');
  assert.equal(b.managed, true);
  assert.equal(b.spec.priority, 90);
  const del = await app.inject({
    method: 'DELETE',
    url: '/api/v1/config/vrrp-instances/VI_WEB',
    headers: { ...auth(), 'if-match': after.version },
  });
  assert.equal(del.statusCode, 200, del.body);
  assert.match(del.json().diff, /-vrrp_instance VI_WEB \{/);
  assert.doesNotMatch(readFileSync(managed, 'utf8'), /VI_WEB/);
  await app.close();
});

test('config API: a change the parser would ignore (a virtual server without real servers) is refused', async () => {
  const { app, managed } = setup();
  const st = (await app.inject({ method: 'GET', url: '/api/v1/config', headers: auth() })).json();
  const empty = { ...VS, realServers: [] };
  const dry = await app.inject({
    method: 'POST',
    url: '/api/v1/config/virtual-servers?dry_run=true',
    headers: auth(),
    payload: empty,
  });
  assert.equal(dry.json().usable, false);
  assert.equal(dry.json().diagnostics[0].code, 'KV314');
  const r = await app.inject({
    method: 'POST',
    url: '/api/v1/config/virtual-servers',
    headers: { ...auth(), 'if-match': st.version },
    payload: empty,
  });
  assert.equal(r.statusCode, 422, r.body);
  assert.equal(r.json().error, 'KV_API_IGNORED');
  assert.throws(() => readFileSync(managed), /ENOENT/);
  await app.close();
});
