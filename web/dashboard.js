// keepvs dashboard: status every second, rate history every 5 s, events live (SSE), the peer
// director through this daemon's /api/v1/peer/status, configuration through /api/v1/config.
// No build step, no external assets.

const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const tokenInput = $('token');
tokenInput.value = sessionStorage.getItem('keepvsToken') || '';
tokenInput.addEventListener('change', () => {
  sessionStorage.setItem('keepvsToken', tokenInput.value);
  loadConfig();
});
const authHeaders = () => ({ authorization: `Bearer ${tokenInput.value}` });

let status;
let peer; // { url, status } or { error }
let history = { intervalMs: 5000, samples: [] };
let cfg; // GET /api/v1/config
const events = [];

// ---------- formatting ----------

function fmtNum(v, unit) {
  const a = Math.abs(v);
  const [d, p] = a >= 1e9 ? [1e9, 'G'] : a >= 1e6 ? [1e6, 'M'] : a >= 1e3 ? [1e3, 'k'] : [1, ''];
  const x = v / d;
  const digits = x >= 100 || x === Math.round(x) ? 0 : x >= 10 ? 1 : 2;
  return `${x.toFixed(digits)} ${p}${unit}`;
}
const fmtBytes = (v) => {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let x = v;
  while (x >= 1024 && i < u.length - 1) {
    x /= 1024;
    i++;
  }
  return `${i === 0 ? Math.round(x) : x.toFixed(1)} ${u[i]}`;
};
const fmtBps = (v) => `${fmtBytes(v)}/s`;
function fmtDuration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}
const fmtDate = (at) => new Date(at).toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
const fmtClock = (at) => new Date(at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
// the real server's id as the daemon builds it (src/lb/ids.ts destId): the one the API's actions take
const destKey = (d) => d.id;

// ---------- confirmation ----------

function confirmAction(text) {
  const dlg = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    dlg.onclose = () => resolve(dlg.returnValue === 'ok');
    dlg.returnValue = '';
    dlg.showModal();
  });
}

function say(html, kind = 'info') {
  const m = $('cfg-message');
  m.className = `msg ${kind}`;
  m.innerHTML = html;
}

// ---------- actions ----------

async function act(path, body, text, onPeer = false) {
  if (!(await confirmAction(text))) return;
  const res = await fetch(onPeer ? `/api/v1/peer/actions/${path}` : `/api/v1/actions/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders() },
    body: JSON.stringify(body),
  });
  const out = await res.json().catch(() => ({}));
  document.activeElement?.blur();
  flash(res.ok ? `${text}: done` : `${text}: refused (${out.message || res.status})`, res.ok ? 'ok' : 'bad');
  refresh();
}

function flash(text, kind) {
  const f = document.createElement('div');
  f.className = `flash ${kind}`;
  f.setAttribute('role', 'status');
  f.textContent = text;
  document.body.append(f);
  setTimeout(() => f.remove(), 6000);
}

$('maintenance').addEventListener('click', () => {
  const on = !status?.maintenance;
  act(
    'maintenance',
    { on },
    on ? 'Put this director in maintenance (the peer takes the VIPs)' : 'End maintenance of this director',
  );
});

document.addEventListener('click', (e) => {
  const b = e.target.closest('button[data-act]');
  if (!b) return;
  const { act: what, service, dest, peer: onPeer } = b.dataset;
  const isPeer = onPeer === '1';
  if (what === 'drain') act('drain', { service, dest }, `Drain ${dest} in ${service} (weight 0)`, isPeer);
  if (what === 'restore') act('restore', { service, dest }, `Restore ${dest} in ${service}`, isPeer);
  if (what === 'weight') {
    const input = b.parentElement.querySelector('input');
    const weight = Number(input.value);
    if (!Number.isInteger(weight) || weight < 0 || weight > 65535) {
      input.setAttribute('aria-invalid', 'true');
      flash('weight must be a whole number 0..65535', 'bad');
      return;
    }
    act('weight', { service, dest, weight }, `Set the weight of ${dest} in ${service} to ${weight}`, isPeer).then(() =>
      weightDrafts.delete(input.dataset.draft),
    );
  }
  if (what === 'edit-rs') editRealServer(service, dest);
  if (what === 'delete-rs') deleteBlock('real-server', service, dest);
  if (what === 'edit-vs') editVirtualServer(service);
  if (what === 'delete-vs') deleteBlock('virtual-server', service);
  if (what === 'edit-vrrp') editVrrp(service);
  if (what === 'delete-vrrp') deleteBlock('vrrp-instance', service);
});

// ---------- directors and VIPs ----------

function directorCard(name, st, isPeer, error) {
  if (error)
    return `<div class="card director"><div class="name">${esc(name)}</div><div class="note">${esc(error)}</div></div>`;
  const inst = st.vrrp
    .map(
      (i) =>
        `<li>${esc(i.name)} <span class="pill ${esc(i.state)}">${esc(i.state)}</span> <span class="dim">VRID ${i.vrid} · prio ${i.priority}/${i.effectivePriority}</span>${i.note ? ` <span class="note">${esc(i.note)}</span>` : ''}</li>`,
    )
    .join('');
  const svcs = st.lvs?.table.services.length ?? 0;
  return `<div class="card director" data-director="${isPeer ? 'peer' : 'local'}">
    <div class="name">${esc(st.routerId || name)} <span class="dim">${isPeer ? 'peer' : 'this director'}</span>${st.maintenance ? ' <span class="pill FAULT">maintenance</span>' : ''}</div>
    <div class="dim">keepvs ${esc(st.version)} · ${st.workers.map((w) => `${esc(w.role)} ${esc(w.state)}`).join(', ')} · ${svcs} service${svcs === 1 ? '' : 's'}</div>
    <ul class="plain">${inst || '<li class="dim">no vrrp_instance</li>'}</ul></div>`;
}

function renderDirectors() {
  let html = directorCard('this director', status, false);
  if (peer) html += directorCard(peer.url || 'peer', peer.status, true, peer.error);
  $('directors').innerHTML = html;
  // VIP view: every VIP of either director, and which one is MASTER for it
  const vips = new Map();
  const add = (st, who) => {
    for (const i of st?.vrrp ?? [])
      for (const v of i.vips) {
        const e = vips.get(v) ?? { vip: v, instance: i.name, states: {} };
        e.states[who] = i.state;
        vips.set(v, e);
      }
  };
  const me = status.routerId || 'this director';
  const other = peer?.status?.routerId || 'peer';
  add(status, me);
  if (peer?.status) add(peer.status, other);
  const who = [me, ...(peer?.status ? [other] : [])];
  const rows = [...vips.values()].map((e) => {
    const holder = who.filter((w) => e.states[w] === 'MASTER');
    return `<tr><td class="mono">${esc(e.vip)}</td><td>${esc(e.instance)}</td>${who.map((w) => `<td><span class="pill ${esc(e.states[w] || '')}">${esc(e.states[w] || '-')}</span></td>`).join('')}<td><b>${holder.length ? esc(holder.join(', ')) : 'nobody'}</b>${holder.length > 1 ? ' <span class="note">both MASTER</span>' : ''}</td></tr>`;
  });
  $('vips').innerHTML = rows.length
    ? `<thead><tr><th>VIP</th><th>Instance</th>${who.map((w) => `<th>${esc(w)}</th>`).join('')}<th>Held by</th></tr></thead><tbody>${rows.join('')}</tbody>`
    : '<caption class="dim">No VIPs configured.</caption>';
}

// active-active announcing (bgp_announce, docs/scale-out.md): what this director tells the routers
function renderBgp() {
  const b = status.bgp;
  $('bgp').hidden = !b;
  if (!b) return;
  $('bgp-speaker').innerHTML = `${esc(b.speaker)} in <span class="mono">${esc(b.dir)}</span>: ${
    b.running ? '<span class="pill up">running</span>' : '<span class="pill down">not running</span>'
  }${b.error ? ` <span class="note">${esc(b.error)}</span>` : ''}`;
  const vips = b.vips.map(
    (v) =>
      `<tr data-prefix="${esc(v.prefix)}"><td class="mono">${esc(v.prefix)}</td><td><span class="pill ${v.announced ? 'up' : 'down'}">${v.announced ? 'announced' : 'withdrawn'}</span></td><td>${esc(v.reason)}</td><td>${v.holdDownRemainingMs > 0 ? `${Math.ceil(v.holdDownRemainingMs / 1000)} s of ${Math.ceil(v.holdDownMs / 1000)} s` : '-'}</td><td>${v.withdrawals}</td></tr>`,
  );
  $('bgp-vips').innerHTML = vips.length
    ? `<thead><tr><th>VIP</th><th>State</th><th>Reason</th><th>Hold-down left</th><th>Withdrawals</th></tr></thead><tbody>${vips.join('')}</tbody>`
    : '<caption class="dim">No bgp_announce virtual server.</caption>';
  const nbrs = b.neighbors.map(
    (n) =>
      `<tr><td class="mono">${esc(n.address)}</td><td><span class="pill ${n.state === 'Established' ? 'up' : 'down'}">${esc(n.state)}</span></td><td>${n.bfd ? `<span class="pill ${/^up$/i.test(n.bfd) ? 'up' : 'down'}">BFD ${esc(n.bfd)}</span>` : '<span class="dim">no BFD</span>'}</td></tr>`,
  );
  $('bgp-neighbors').innerHTML = nbrs.length
    ? `<thead><tr><th>Router</th><th>BGP session</th><th>BFD</th></tr></thead><tbody>${nbrs.join('')}</tbody>`
    : '<caption class="dim">No session state from FRR yet.</caption>';
}

// ---------- services ----------

function chart(label, series, fmt) {
  const W = 560;
  const H = 120;
  const L = 64;
  const B = 20;
  const now = Date.now();
  const from = now - 15 * 60 * 1000;
  const max = Math.max(1, ...series.flatMap((s) => s.points.map((p) => p[1])));
  const x = (t) => L + ((t - from) / (now - from)) * (W - L - 4);
  const y = (v) => H - B - (v / max) * (H - B - 8);
  let g = '';
  for (const f of [0, 0.5, 1]) {
    g += `<line x1="${L}" x2="${W - 4}" y1="${y(max * f)}" y2="${y(max * f)}" class="grid"/><text x="${L - 4}" y="${y(max * f) + 4}" text-anchor="end">${esc(fmt(max * f))}</text>`;
  }
  for (let t = Math.ceil(from / 300000) * 300000; t <= now; t += 300000) {
    g += `<line x1="${x(t)}" x2="${x(t)}" y1="${H - B}" y2="${H - B + 4}" class="axis"/><text x="${x(t)}" y="${H - 4}" text-anchor="middle">${fmtClock(t)}</text>`;
  }
  const lines = series
    .map((s) => {
      const pts = s.points.filter((p) => p[0] >= from).map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
      return pts.length ? `<polyline fill="none" class="${s.cls}" stroke-width="1.5" points="${pts.join(' ')}"/>` : '';
    })
    .join('');
  const legend = series.map((s) => `<span class="legend ${s.cls}">${esc(s.name)}</span>`).join(' ');
  return `<figure class="chart"><figcaption>${esc(label)} · last 15 min ${legend}</figcaption>
    <svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(label)} over the last 15 minutes"><line x1="${L}" x2="${L}" y1="4" y2="${H - B}" class="axis"/><line x1="${L}" x2="${W - 4}" y1="${H - B}" y2="${H - B}" class="axis"/>${g}${lines}</svg></figure>`;
}

function managedVs(id) {
  return cfg?.virtualServers.find((v) => v.id === id && v.managed);
}

function renderServiceList(st, isPeer) {
  const lvs = st?.lvs;
  if (!lvs) return '<div class="dim">No LVS worker report yet.</div>';
  const listeners = new Map(lvs.dataplane.services.map((l) => [l.id, l]));
  const health = new Map(lvs.checks.servers.map((h) => [`${h.service}|${h.dest}`, h]));
  const now = Date.now();
  return lvs.table.services
    .map((svc) => {
      const l = listeners.get(svc.id);
      const editable = !isPeer && managedVs(svc.id);
      const rows = svc.dests
        .map((d) => {
          const dk = destKey(d);
          const h = health.get(`${svc.id}|${dk}`);
          const state = h && !h.up ? 'down' : d.weight === 0 ? 'drained' : 'up';
          const checks = h?.checkers ?? [];
          const args = `data-service="${esc(svc.id)}" data-dest="${esc(dk)}" data-peer="${isPeer ? '1' : '0'}"`;
          const rsManaged = editable?.spec?.realServers?.some(
            (r) => `${String(r.address).includes(':') ? `[${r.address}]` : r.address}:${r.port}` === dk,
          );
          return `<tr data-dest="${esc(dk)}">
            <td class="mono" data-label="Real server">${esc(dk)}</td>
            <td data-label="Health"><span class="pill ${state}">${state}</span></td>
            <td data-label="Check">${checks.map((c) => esc(c.type)).join(', ') || '-'}</td>
            <td data-label="Last result" class="reason">${checks.map((c) => `<span class="${c.up ? 'ok' : 'bad'}">${c.up ? 'OK' : 'FAIL'}</span> ${esc(c.reason || (c.lastAt ? '' : 'not run yet'))}`).join('<br>') || '-'}</td>
            <td data-label="Latency">${checks.map((c) => (c.latencyMs !== undefined ? `${c.latencyMs} ms` : '-')).join(', ') || '-'}</td>
            <td data-label="Failures in a row">${checks.map((c) => c.consecutiveFailures).join(', ') || '-'}</td>
            <td data-label="In state">${h?.since ? fmtDuration(now - h.since) : '-'}</td>
            <td data-label="Weight">${d.weight}</td>
            <td data-label="Active/Inact">${d.activeConns} / ${d.inactConns}</td>
            <td data-label="Conn/s">${fmtNum(d.rates.cps, 'conn/s')}</td>
            <td data-label="Actions" class="actions">
              <button type="button" data-act="drain" ${args} aria-label="Drain ${esc(dk)}">drain</button>
              <button type="button" data-act="restore" ${args} aria-label="Restore ${esc(dk)}">restore</button>
              <span class="weight"><input type="text" inputmode="numeric" size="4" value="${esc(weightDrafts.get(`${isPeer ? 'peer' : 'local'}|${svc.id}|${dk}`) ?? d.weight)}" data-draft="${esc(`${isPeer ? 'peer' : 'local'}|${svc.id}|${dk}`)}" aria-label="New weight for ${esc(dk)}"><button type="button" data-act="weight" ${args}>set weight</button></span>
              ${rsManaged ? `<button type="button" data-act="edit-rs" ${args}>edit</button> <button type="button" data-act="delete-rs" ${args}>delete</button>` : ''}
            </td></tr>`;
        })
        .join('');
      const samples = history.samples;
      const pts = (f) => samples.filter((s) => s.services[svc.id]).map((s) => [s.at, f(s.services[svc.id])]);
      const charts = isPeer
        ? ''
        : `<div class="charts">${chart('Connections', [{ name: 'conn/s', cls: 's1', points: pts((r) => r.cps) }], (v) => fmtNum(v, '/s'))}
          ${chart(
            'Traffic',
            [
              { name: 'in', cls: 's1', points: pts((r) => r.inBps) },
              { name: 'out', cls: 's2', points: pts((r) => r.outBps) },
            ],
            fmtBps,
          )}</div>`;
      const r = svc.rates;
      return `<div class="svc" data-service="${esc(svc.id)}"><div class="head"><span class="id">${esc(svc.id)}</span>
        <span class="dim">${esc(svc.scheduler)}${svc.persistentTimeout ? ` · persistent ${svc.persistentTimeout} s` : ''}</span>
        ${l ? `<span class="pill ${esc(l.listener)}">${esc(l.listener)}</span>` : ''}
        ${editable ? `<button type="button" data-act="edit-vs" data-service="${esc(svc.id)}">edit service</button>` : ''}</div>
        <div class="rates"><span>${fmtNum(r.cps, 'conn/s')}</span><span>${fmtNum(r.inPps, 'packets/s')} in</span><span>${fmtNum(r.outPps, 'packets/s')} out</span><span>${fmtBps(r.inBps)} in</span><span>${fmtBps(r.outBps)} out</span><span>${svc.stats.conns} connections in all</span></div>
        ${charts}
        <div class="scroll"><table class="rs"><thead><tr><th>Real server</th><th>Health</th><th>Check</th><th>Last result</th><th>Latency</th><th>Failures in a row</th><th>In state</th><th>Weight</th><th>Active/Inact</th><th>Conn/s</th><th>Actions</th></tr></thead>
        <tbody>${rows}</tbody></table></div>${isPeer ? '' : renderConnections(svc)}</div>`;
    })
    .join('');
}

// ---------- connection entries (keepvsadm -Lnc) of a service, read while its list is open ----------

const CONN_LIMIT = 50;
const openConns = new Set();
const connLists = new Map();
const fmtExpire = (s) => `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
const fmtEndpoint = (e, family) => `${family === 6 ? `[${e.address}]` : e.address}:${e.port}`;

function renderConnections(svc) {
  const active = svc.dests.reduce((a, d) => a + d.activeConns, 0);
  const inact = svc.dests.reduce((a, d) => a + d.inactConns, 0);
  const l = connLists.get(svc.id);
  let body = '<div class="dim">Reading…</div>';
  if (l?.error) body = `<div class="bad">${esc(l.error)}</div>`;
  else if (l) {
    const rows = l.connections
      .map(
        (c) => `<tr><td>${esc(c.protocol.toUpperCase())}</td><td>${fmtExpire(c.expire)}</td><td>${esc(c.state)}</td>
          <td class="mono">${esc(fmtEndpoint(c.source, c.family))}</td><td class="mono">${esc(fmtEndpoint(c.virtual, c.family))}</td>
          <td class="mono">${esc(fmtEndpoint(c.destination, c.family))}</td><td>${esc(c.plane)}</td><td>${esc(c.kind)}</td></tr>`,
      )
      .join('');
    const unlisted = l.unlisted
      .map(
        (u) => `<li class="warn">${u.count} ${esc(u.kind)} to ${esc(u.realServer)} not listed: ${esc(u.reason)}</li>`,
      )
      .join('');
    body = `<div class="dim conn-count">${l.truncated ? `first ${l.returned} of ${l.matched} entries` : `${l.matched} entr${l.matched === 1 ? 'y' : 'ies'}`}</div>
      ${unlisted ? `<ul class="plain">${unlisted}</ul>` : ''}
      ${rows ? `<div class="scroll"><table class="conns"><thead><tr><th>Pro</th><th>Expire</th><th>State</th><th>Source</th><th>Virtual</th><th>Destination</th><th>Plane</th><th>Kind</th></tr></thead><tbody>${rows}</tbody></table></div>` : ''}`;
  }
  return `<details class="conns" data-service="${esc(svc.id)}"${openConns.has(svc.id) ? ' open' : ''}>
    <summary>Connections: ${active} active, ${inact} inactive</summary>${openConns.has(svc.id) ? body : ''}</details>`;
}

async function loadConnections(id) {
  try {
    const res = await fetch(`/api/v1/connections?service=${encodeURIComponent(id)}&limit=${CONN_LIMIT}`);
    const body = await res.json();
    connLists.set(id, res.ok ? body : { error: body.message || `HTTP ${res.status}` });
  } catch {
    connLists.set(id, { error: 'connection list unavailable' });
  }
}

// toggle does not bubble: caught on the way down; a re-render that keeps a list open toggles nothing new
$('services').addEventListener(
  'toggle',
  (e) => {
    const id = e.target.dataset?.service;
    if (!e.target.matches?.('details.conns') || !id) return;
    if (e.target.open === openConns.has(id)) return;
    if (e.target.open) {
      openConns.add(id);
      loadConnections(id).then(renderServices);
    } else {
      openConns.delete(id);
      connLists.delete(id);
    }
  },
  true,
);

// A re-render must neither eat a click (pointer down on one button, up on its replacement) nor
// a weight being typed: renders wait while a pointer is down, typed weights are kept as drafts.
const weightDrafts = new Map();
let pointerDown = false;
$('sec-services').addEventListener('pointerdown', () => {
  pointerDown = true;
});
document.addEventListener('pointerup', () => setTimeout(() => (pointerDown = false), 0));
$('sec-services').addEventListener('input', (e) => {
  const key = e.target.dataset?.draft;
  if (key) weightDrafts.set(key, e.target.value);
});

function renderServices() {
  if (pointerDown) return;
  const focused = document.activeElement?.dataset?.draft;
  $('services').innerHTML = renderServiceList(status, false);
  $('peer-services').innerHTML = peer?.status
    ? `<h3>Peer ${esc(peer.status.routerId || peer.url)}: services</h3>${renderServiceList(peer.status, true)}`
    : '';
  if (focused) {
    const el = document.querySelector(`input[data-draft="${CSS.escape(focused)}"]`);
    if (el) {
      el.focus();
      el.setSelectionRange(el.value.length, el.value.length);
    }
  }
}

// ---------- events ----------

function describe(e) {
  switch (e.type) {
    case 'vrrp-state':
      return `<b>${esc(e.instance)}</b> ${esc(e.from)} → ${esc(e.to)} (${esc(e.reason)})`;
    case 'vrrp-priority':
      return `<b>${esc(e.instance)}</b> priority ${e.basePriority} → effective ${e.effectivePriority} (${esc(e.reason)})`;
    case 'sync-group-state':
      return `sync group <b>${esc(e.group)}</b> ${esc(e.from)} → ${esc(e.to)}`;
    case 'rs-health':
      return `<b>${esc(e.dest)}</b> in ${esc(e.service)} ${e.up ? 'UP' : 'DOWN'}: ${esc(e.reason)}`;
    case 'rs-weight':
      return `<b>${esc(e.dest)}</b> in ${esc(e.service)} weight ${e.weight} (${esc(e.reason)})`;
    case 'vs-quorum':
      return `<b>${esc(e.service)}</b> quorum ${e.up ? 'gained' : 'lost'}`;
    case 'config-reload':
      return `<b>reload</b> ${e.ok ? 'applied' : 'rejected'}: ${esc(e.message)}`;
    case 'config-change':
      return `<b>${esc(e.who)}</b> ${esc(e.action)}: ${esc(e.summary)} (version ${esc(e.version)}, reload ${e.reloadOk ? 'ok' : 'FAILED'})`;
    case 'admin':
      return `<b>admin</b> ${esc(e.action)} ${esc(e.target)} ${esc(e.detail)}`;
    default:
      return Object.entries(e)
        .filter(([k]) => k !== 'type' && k !== 'at')
        .map(([k, v]) => `${esc(k)} ${esc(typeof v === 'object' ? JSON.stringify(v) : v)}`)
        .join(' · ');
  }
}

function renderEvents() {
  const type = $('ev-type').value;
  const q = $('ev-q').value.toLowerCase();
  const types = [...new Set(events.map((e) => e.type))].sort();
  const sel = $('ev-type');
  const have = new Set([...sel.options].map((o) => o.value));
  for (const t of types) if (!have.has(t)) sel.append(new Option(t, t));
  const rows = events
    .filter((e) => (!type || e.type === type) && (!q || describe(e).toLowerCase().includes(q)))
    .slice(0, 300)
    .map(
      (e) =>
        `<tr class="ev-${esc(e.type)}"><td class="nowrap">${esc(fmtDate(e.at))}</td><td>${esc(e.type)}</td><td>${describe(e)}</td></tr>`,
    );
  $('events').innerHTML =
    `<thead><tr><th>When</th><th>Type</th><th>What</th></tr></thead><tbody>${rows.join('') || '<tr><td colspan="3" class="dim">no matching event</td></tr>'}</tbody>`;
  const audit = events.filter((e) => e.type === 'config-change').slice(0, 50);
  $('audit').innerHTML =
    `<thead><tr><th>When</th><th>Who</th><th>What</th><th>Version</th><th>Reload</th></tr></thead><tbody>${
      audit
        .map(
          (e) =>
            `<tr><td class="nowrap">${esc(fmtDate(e.at))}</td><td>${esc(e.who)}</td><td>${esc(e.action)}: ${esc(e.summary)}</td><td class="mono">${esc(e.previousVersion)} → ${esc(e.version)}</td><td>${e.reloadOk ? 'ok' : `<span class="bad">${esc(e.message)}</span>`}</td></tr>`,
        )
        .join('') || '<tr><td colspan="5" class="dim">no change made through keepvs yet</td></tr>'
    }</tbody>`;
}
$('ev-type').addEventListener('change', renderEvents);
$('ev-q').addEventListener('input', renderEvents);

// ---------- diagnostics ----------

const VRRP_ERRORS = /err|fail|mismatch|invalid|discard|drop|bad/i;

function renderDiagnostics() {
  const parts = [];
  const cd = cfg?.diagnostics;
  parts.push(
    `<h3>Configuration</h3>${
      cd === undefined
        ? '<div class="dim">Enter the API token to see the configuration diagnostics.</div>'
        : cd.length
          ? `<ul class="plain">${cd.map((d) => `<li class="${d.severity === 'error' ? 'bad' : 'warn'}"><span class="mono">${esc(d.file)}:${d.line}:${d.col}</span> ${esc(d.severity)}: ${esc(d.message)} [${esc(d.code)}]</li>`).join('')}</ul>`
          : '<div class="ok">no problems in the running configuration</div>'
    }`,
  );
  const lastReload = events.find((e) => e.type === 'config-reload');
  if (lastReload)
    parts.push(
      `<div class="${lastReload.ok ? 'ok' : 'bad'}">Last reload ${esc(fmtDate(lastReload.at))}: ${lastReload.ok ? 'applied' : 'rejected'}, ${esc(lastReload.message)}</div>`,
    );
  const dp = status?.lvs?.dataplane;
  parts.push(
    `<h3>Data plane${dp ? ` (${esc(dp.kind)}, ${dp.workers} worker${dp.workers === 1 ? '' : 's'})` : ''}</h3>${
      dp?.diagnostics.length
        ? `<ul class="plain">${dp.diagnostics.map((d) => `<li class="warn">${esc(d.service)}: ${esc(d.message)} [${esc(d.code)}]</li>`).join('')}</ul>`
        : '<div class="ok">no data-plane problem reported</div>'
    }${
      dp
        ? `<ul class="plain">${dp.services
            .filter((s) => s.noDest || s.connectFailures || s.listener !== 'listening')
            .map(
              (s) =>
                `<li class="warn">${esc(s.id)}: listener ${esc(s.listener)}, ${s.noDest} without a real server, ${s.connectFailures} connect failures</li>`,
            )
            .join('')}</ul>`
        : ''
    }`,
  );
  const vr = (status?.vrrp ?? []).map((i) => {
    const errs = Object.entries(i.stats).filter(([k, v]) => VRRP_ERRORS.test(k) && v > 0);
    return `<li><b>${esc(i.name)}</b>: ${errs.length ? errs.map(([k, v]) => `<span class="bad">${esc(k)} ${v}</span>`).join(', ') : '<span class="ok">no receive errors</span>'} <details><summary>all counters</summary><span class="mono">${Object.entries(
      i.stats,
    )
      .map(([k, v]) => `${esc(k)} ${v}`)
      .join(' · ')}</span></details></li>`;
  });
  parts.push(
    `<h3>VRRP receive errors</h3>${vr.length ? `<ul class="plain">${vr.join('')}</ul>` : '<div class="dim">no vrrp_instance</div>'}`,
  );
  $('diagnostics').innerHTML = parts.join('');
}

// ---------- configuration forms ----------

// field: [name, label, kind, options]; kind: text | select | check | list (one per line)
const FORMS = {
  rs: {
    title: 'Real server',
    kind: 'real-server',
    fields: [
      ['service', 'Virtual server', 'select', []],
      ['address', 'Address', 'text'],
      ['port', 'Port', 'text'],
      ['weight', 'Weight', 'text'],
      ['method', 'Forwarding', 'select', ['', 'NAT', 'DR', 'TUN']],
      ['uthreshold', 'Upper connection threshold', 'text'],
      ['lthreshold', 'Lower connection threshold', 'text'],
      ['inhibitOnFailure', 'Inhibit on failure (weight 0 instead of removal)', 'check'],
      ['chk_type', 'Health check', 'select', ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'PING_CHECK', 'MISC_CHECK', '']],
      ['chk_connectTimeout', 'Connect timeout (s)', 'text'],
      ['chk_connectPort', 'Check port', 'text'],
      ['chk_delayLoop', 'Check interval (s)', 'text'],
      ['chk_retry', 'Retries', 'text'],
      ['chk_delayBeforeRetry', 'Delay before retry (s)', 'text'],
      ['chk_urlPath', 'URL path (HTTP_GET/SSL_GET)', 'text'],
      ['chk_statusCode', 'Status codes (e.g. 200 300-399)', 'text'],
      ['chk_miscPath', 'Script (MISC_CHECK)', 'text'],
    ],
  },
  vs: {
    title: 'Virtual server',
    kind: 'virtual-server',
    fields: [
      ['address', 'Address', 'text'],
      ['port', 'Port', 'text'],
      ['fwmark', 'or firewall mark', 'text'],
      ['protocol', 'Protocol', 'select', ['TCP', 'UDP', 'SCTP']],
      [
        'scheduler',
        'Scheduler',
        'select',
        ['wlc', 'rr', 'wrr', 'lc', 'sed', 'nq', 'fo', 'ovf', 'dh', 'sh', 'lblc', 'lblcr', 'mh', 'twos'],
      ],
      ['schedFlags', 'Scheduler flags (sh-port, sh-fallback, mh-port, mh-fallback, flag-1..3), one per line', 'list'],
      ['method', 'Forwarding', 'select', ['NAT', 'DR', 'TUN']],
      ['persistenceTimeout', 'Persistence timeout (s, empty: none)', 'text'],
      ['persistenceGranularity', 'Persistence granularity (netmask)', 'text'],
      ['delayLoop', 'Check interval (s)', 'text'],
      ['quorum', 'Quorum (weight sum)', 'text'],
      ['hysteresis', 'Hysteresis', 'text'],
      ['sorryAddress', 'Sorry server address', 'text'],
      ['sorryPort', 'Sorry server port', 'text'],
      ['inhibitOnFailure', 'Inhibit on failure', 'check'],
      ['rsAddress', 'First real server address (new service; TCP_CHECK)', 'text'],
      ['rsPort', 'First real server port', 'text'],
    ],
  },
  vrrp: {
    title: 'VRRP instance',
    kind: 'vrrp-instance',
    fields: [
      ['name', 'Name', 'text'],
      ['state', 'Initial state', 'select', ['BACKUP', 'MASTER']],
      ['interface', 'Interface', 'text'],
      ['vrid', 'Virtual router id (1-255)', 'text'],
      ['priority', 'Priority (1-255)', 'text'],
      ['advertInt', 'Advert interval (s)', 'text'],
      ['version', 'VRRP version', 'select', ['', '2', '3']],
      ['nopreempt', 'No preemption', 'check'],
      ['preemptDelay', 'Preempt delay (s)', 'text'],
      ['vips', 'VIPs (address/prefix), one per line', 'list'],
      ['unicastPeers', 'Unicast peers, one per line', 'list'],
      ['authPass', 'Password (auth PASS)', 'text'],
    ],
  },
};

const editing = { rs: null, vs: null, vrrp: null }; // original id (edit) or null (create), plus the version read
let pending = null; // { form, request, version }

function buildForms() {
  for (const [key, f] of Object.entries(FORMS)) {
    const form = $(`form-${key}`);
    const fields = f.fields
      .map(([name, label, kind, options]) => {
        const id = `${key}-${name}`;
        const err = `<div class="err" id="${id}-err" role="alert"></div>`;
        if (kind === 'check')
          return `<div class="field check"><input type="checkbox" id="${id}" name="${name}" aria-describedby="${id}-err"><label for="${id}">${esc(label)}</label>${err}</div>`;
        const control =
          kind === 'select'
            ? `<select id="${id}" name="${name}" aria-describedby="${id}-err">${options.map((o) => `<option value="${esc(o)}">${esc(o || '(none)')}</option>`).join('')}</select>`
            : kind === 'list'
              ? `<textarea id="${id}" name="${name}" rows="2" aria-describedby="${id}-err"></textarea>`
              : `<input type="text" id="${id}" name="${name}" autocomplete="off" aria-describedby="${id}-err">`;
        return `<div class="field"><label for="${id}">${esc(label)}</label>${control}${err}</div>`;
      })
      .join('');
    form.innerHTML = `<fieldset><legend id="${key}-legend">${esc(f.title)}</legend>
      <div class="mode dim" id="${key}-mode">new</div>${fields}
      <div class="err" id="${key}-form-err" role="alert"></div>
      <div class="row"><button type="submit" id="${key}-preview">Preview</button><button type="button" id="${key}-new">New</button></div></fieldset>`;
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      previewForm(key);
    });
    $(`${key}-new`).addEventListener('click', () => resetForm(key));
  }
}

function resetForm(key) {
  $(`form-${key}`).reset();
  editing[key] = null;
  $(`${key}-mode`).textContent = 'new';
  clearErrors(key);
  if (key === 'rs') {
    $('rs-chk_type').value = 'TCP_CHECK';
    $('rs-weight').value = '1';
  }
}

function clearErrors(key) {
  for (const el of $(`form-${key}`).querySelectorAll('.err')) el.textContent = '';
  for (const el of $(`form-${key}`).querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}

const val = (key, name) => $(`${key}-${name}`);
function scalar(key, name) {
  const v = val(key, name).value.trim();
  if (v === '') return undefined;
  return /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v;
}
const lines = (key, name) =>
  val(key, name)
    .value.split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
const strip = (o) =>
  Object.fromEntries(
    Object.entries(o).filter(([, v]) => v !== undefined && v !== false && !(Array.isArray(v) && !v.length)),
  );

function rsSpec() {
  const t = val('rs', 'chk_type').value;
  const checker = t
    ? strip({
        type: t,
        connectTimeout: scalar('rs', 'chk_connectTimeout'),
        connectPort: scalar('rs', 'chk_connectPort'),
        delayLoop: scalar('rs', 'chk_delayLoop'),
        retry: scalar('rs', 'chk_retry'),
        delayBeforeRetry: scalar('rs', 'chk_delayBeforeRetry'),
        ...(t === 'HTTP_GET' || t === 'SSL_GET'
          ? {
              urls: [
                strip({
                  path: scalar('rs', 'chk_urlPath') ?? '/',
                  statusCode: val('rs', 'chk_statusCode').value.trim() || undefined,
                }),
              ],
            }
          : {}),
        ...(t === 'MISC_CHECK' ? { miscPath: scalar('rs', 'chk_miscPath') } : {}),
      })
    : undefined;
  return strip({
    address: scalar('rs', 'address'),
    port: scalar('rs', 'port'),
    weight: scalar('rs', 'weight'),
    method: val('rs', 'method').value || undefined,
    uthreshold: scalar('rs', 'uthreshold'),
    lthreshold: scalar('rs', 'lthreshold'),
    inhibitOnFailure: val('rs', 'inhibitOnFailure').checked,
    checkers: checker ? [checker] : [],
  });
}

function vsSpec() {
  const fw = scalar('vs', 'fwmark');
  const orig = editing.vs ? managedVs(editing.vs)?.spec : undefined;
  return strip({
    ...(fw !== undefined ? { fwmark: fw } : { address: scalar('vs', 'address'), port: scalar('vs', 'port') }),
    protocol: val('vs', 'protocol').value,
    scheduler: val('vs', 'scheduler').value,
    schedFlags: lines('vs', 'schedFlags'),
    method: val('vs', 'method').value,
    persistenceTimeout: scalar('vs', 'persistenceTimeout'),
    persistenceGranularity: scalar('vs', 'persistenceGranularity'),
    delayLoop: scalar('vs', 'delayLoop'),
    quorum: scalar('vs', 'quorum'),
    hysteresis: scalar('vs', 'hysteresis'),
    inhibitOnFailure: val('vs', 'inhibitOnFailure').checked,
    sorryServer:
      scalar('vs', 'sorryAddress') !== undefined
        ? strip({ address: scalar('vs', 'sorryAddress'), port: scalar('vs', 'sorryPort') })
        : undefined,
    realServers:
      orig?.realServers ??
      (scalar('vs', 'rsAddress') !== undefined || scalar('vs', 'rsPort') !== undefined
        ? [
            strip({
              address: scalar('vs', 'rsAddress'),
              port: scalar('vs', 'rsPort'),
              weight: 1,
              checkers: [{ type: 'TCP_CHECK' }],
            }),
          ]
        : []),
  });
}

function vrrpSpec() {
  const v = val('vrrp', 'version').value;
  return strip({
    name: scalar('vrrp', 'name'),
    state: val('vrrp', 'state').value,
    interface: scalar('vrrp', 'interface'),
    vrid: scalar('vrrp', 'vrid'),
    priority: scalar('vrrp', 'priority'),
    advertInt: scalar('vrrp', 'advertInt'),
    version: v ? Number(v) : undefined,
    nopreempt: val('vrrp', 'nopreempt').checked,
    preemptDelay: scalar('vrrp', 'preemptDelay'),
    vips: lines('vrrp', 'vips'),
    unicastPeers: lines('vrrp', 'unicastPeers'),
    authPass: scalar('vrrp', 'authPass'),
  });
}

const enc = encodeURIComponent;
function requestOf(key) {
  if (key === 'rs') {
    const service = val('rs', 'service').value;
    const orig = editing.rs;
    return orig
      ? {
          method: 'PUT',
          url: `/api/v1/config/virtual-servers/${enc(orig.service)}/real-servers/${enc(orig.dest)}`,
          body: rsSpec(),
        }
      : { method: 'POST', url: `/api/v1/config/virtual-servers/${enc(service)}/real-servers`, body: rsSpec() };
  }
  if (key === 'vs')
    return editing.vs
      ? { method: 'PUT', url: `/api/v1/config/virtual-servers/${enc(editing.vs)}`, body: vsSpec() }
      : { method: 'POST', url: '/api/v1/config/virtual-servers', body: vsSpec() };
  return editing.vrrp
    ? { method: 'PUT', url: `/api/v1/config/vrrp-instances/${enc(editing.vrrp)}`, body: vrrpSpec() }
    : { method: 'POST', url: '/api/v1/config/vrrp-instances', body: vrrpSpec() };
}

/** API field path (relative to the edited object) -> form field name */
function formFieldOf(key, path) {
  if (path === undefined || path === null) return undefined;
  let p = path
    .replace(/^body\/?/, '')
    .replace(/\//g, '.')
    .replace(/\.(\d+)(?=\.|$)/g, '[$1]');
  if (key === 'rs') {
    if (/^checkers\[0\]\.urls\[0\]\.path/.test(p)) return 'chk_urlPath';
    if (/^checkers\[0\]\.urls\[0\]\.statusCode/.test(p)) return 'chk_statusCode';
    const m = /^checkers\[0\]\.(\w+)/.exec(p);
    if (m) return `chk_${m[1]}`;
    if (p.startsWith('checkers')) return 'chk_type';
  }
  if (key === 'vs') {
    if (p.startsWith('sorryServer.port')) return 'sorryPort';
    if (p.startsWith('sorryServer')) return 'sorryAddress';
    if (p.startsWith('family')) return 'fwmark';
    if (/^realServers\[0\]\.port/.test(p) && !editing.vs) return 'rsPort';
    if (/^realServers\[0\]/.test(p) && !editing.vs) return 'rsAddress';
  }
  p = p.replace(/\[\d+\].*$/, '').replace(/\..*$/, '');
  return FORMS[key].fields.some(([n]) => n === p) ? p : undefined;
}

function showFieldError(key, path, text) {
  const name = formFieldOf(key, path);
  const target = name ? $(`${key}-${name}-err`) : $(`${key}-form-err`);
  if (name) val(key, name).setAttribute('aria-invalid', 'true');
  target.textContent = target.textContent ? `${target.textContent}; ${text}` : text;
}

async function send(req, { dryRun, version }) {
  const headers = { ...authHeaders() };
  if (req.body !== undefined) headers['content-type'] = 'application/json';
  if (version && !dryRun) headers['if-match'] = `"${version}"`;
  const res = await fetch(`${req.url}${dryRun ? '?dry_run=true' : ''}`, {
    method: req.method,
    headers,
    ...(req.body !== undefined ? { body: JSON.stringify(req.body) } : {}),
  });
  return { status: res.status, body: await res.json().catch(() => ({})) };
}

function renderDiff(diff) {
  return diff
    .split('\n')
    .map((l) => {
      const cls =
        l.startsWith('+++') || l.startsWith('---')
          ? 'dh'
          : l.startsWith('+')
            ? 'add'
            : l.startsWith('-')
              ? 'del'
              : l.startsWith('@@')
                ? 'hunk'
                : '';
      return `<span class="${cls}">${esc(l)}</span>`;
    })
    .join('\n');
}

function showPreview(key, req, version, out) {
  pending = { key, req, version };
  $('preview').hidden = false;
  $('preview-summary').textContent = out.summary || '';
  $('preview-diff').innerHTML = renderDiff(out.diff || '');
  const ds = out.diagnostics || [];
  if (key) clearErrors(key);
  for (const d of ds) {
    const text = `${d.severity}: ${d.message} [${d.code}]`;
    if (key && d.targetField !== undefined) showFieldError(key, d.targetField, text);
  }
  $('preview-diags').innerHTML = ds.length
    ? `<ul class="plain">${ds.map((d) => `<li class="${d.severity === 'error' ? 'bad' : 'warn'}">${d.field ? `<b>${esc(d.field)}</b> ` : ''}<span class="mono">${esc(d.file)}:${d.line}:${d.col}</span> ${esc(d.severity)}: ${esc(d.message)} [${esc(d.code)}]</li>`).join('')}</ul>`
    : '<div class="ok">The parser reports no problem.</div>';
  const usable = out.usable !== false && !ds.some((d) => d.severity === 'error');
  $('apply').disabled = !usable;
  if (out.version && version && out.version !== version) say(conflictText(out.version), 'bad');
  else if (!usable && !ds.some((d) => d.severity === 'error'))
    say('The parser would ignore part of this change (see the warnings); it cannot be applied.', 'bad');
  else if (!usable) say('The change has errors (shown at their fields); it cannot be applied.', 'bad');
  else say('Preview ready: check the diff, then Apply.', 'info');
}

function conflictText(current) {
  const who = cfg?.lastChange ? ` by ${esc(cfg.lastChange.who)}: ${esc(cfg.lastChange.summary)}` : '';
  return `<b>Conflict:</b> the configuration was changed${who} since you started editing (now version ${esc(current)}). Your change was not applied. <button type="button" id="conflict-reload">Reload the configuration</button> and redo it.`;
}

async function previewForm(key) {
  if (!cfg) {
    say('Enter the API token first.', 'bad');
    return;
  }
  const req = requestOf(key);
  const version = editing[`${key}Version`] ?? cfg.version;
  editing[`${key}Version`] = version;
  clearErrors(key);
  const r = await send(req, { dryRun: true });
  if (r.status === 400) {
    // schema refusal: "body/weight must ..., body must have required property 'port'" -> the fields
    const shown = new Set();
    for (const part of (r.body.message || 'invalid value').split(/, (?=body)/)) {
      const req = /must have required property '([^']+)'/.exec(part);
      const m = /^body\/?(\S*)\s/.exec(part);
      const path = req ? `${m?.[1] ? `${m[1]}/` : ''}${req[1]}` : m?.[1];
      const field = formFieldOf(key, path) ?? '';
      if (shown.has(field)) continue;
      shown.add(field);
      showFieldError(key, path, req ? 'required' : part.replace(/^body\/?\S*\s/, ''));
    }
    $('preview').hidden = true;
    say(`Refused: ${esc(r.body.message)}`, 'bad');
    return;
  }
  if (r.status !== 200) {
    $(`${key}-form-err`).textContent = r.body.message || `HTTP ${r.status}`;
    $('preview').hidden = true;
    say(esc(r.body.message || `HTTP ${r.status}`), 'bad');
    return;
  }
  showPreview(key, req, version, r.body);
}

$('apply').addEventListener('click', async () => {
  if (!pending) return;
  const { key, req, version } = pending;
  $('apply').disabled = true;
  const r = await send(req, { dryRun: false, version });
  if (r.status === 200) {
    $('preview').hidden = true;
    pending = null;
    if (key) {
      resetForm(key);
      editing[`${key}Version`] = undefined;
    }
    say(
      `<b>Applied</b>: ${esc(r.body.summary)} (version ${esc(r.body.newVersion)}); reload ${r.body.reload.ok ? 'started' : `FAILED: ${esc(r.body.reload.message)}`}.`,
      r.body.reload.ok ? 'ok' : 'bad',
    );
  } else if (r.status === 412) {
    await loadConfig();
    say(conflictText(r.body.version), 'bad');
  } else {
    if (r.body.diagnostics) showPreview(key, req, version, r.body);
    say(`Not applied: ${esc(r.body.message || `HTTP ${r.status}`)}`, 'bad');
  }
  await loadConfig();
  refresh();
});
$('cancel').addEventListener('click', () => {
  $('preview').hidden = true;
  pending = null;
  say('');
});
document.addEventListener('click', (e) => {
  if (e.target.id !== 'conflict-reload') return;
  for (const k of Object.keys(FORMS)) {
    editing[`${k}Version`] = undefined;
  }
  $('preview').hidden = true;
  pending = null;
  loadConfig().then(() => say('Configuration reloaded; redo your change.', 'info'));
});

$('rollback').addEventListener('click', async () => {
  if (!cfg) return say('Enter the API token first.', 'bad');
  if (!cfg.canRollback) return say('No previous version is kept yet.', 'bad');
  const version = cfg.version;
  const req = { method: 'POST', url: '/api/v1/config/rollback' };
  const dry = await send(req, { dryRun: true });
  if (dry.status !== 200) return say(esc(dry.body.message), 'bad');
  if (!(await confirmAction(`Roll back the managed configuration to version ${cfg.previousVersion}?`))) return;
  const r = await send(req, { dryRun: false, version });
  say(
    r.status === 200
      ? `<b>Rolled back</b> to version ${esc(r.body.newVersion)}; reload ${r.body.reload.ok ? 'started' : 'FAILED'}.`
      : r.status === 412
        ? conflictText(r.body.version)
        : `Not rolled back: ${esc(r.body.message)}`,
    r.status === 200 ? 'ok' : 'bad',
  );
  await loadConfig();
  refresh();
});

async function deleteBlock(kind, id, dest) {
  if (!cfg) return;
  const url =
    kind === 'real-server'
      ? `/api/v1/config/virtual-servers/${enc(id)}/real-servers/${enc(dest)}`
      : kind === 'virtual-server'
        ? `/api/v1/config/virtual-servers/${enc(id)}`
        : `/api/v1/config/vrrp-instances/${enc(id)}`;
  const req = { method: 'DELETE', url };
  const r = await send(req, { dryRun: true });
  if (r.status !== 200) return say(esc(r.body.message), 'bad');
  showPreview(null, req, cfg.version, r.body);
}

function fill(key, values) {
  resetForm(key);
  for (const [name, v] of Object.entries(values)) {
    const el = val(key, name);
    if (!el || v === undefined) continue;
    if (el.type === 'checkbox') el.checked = !!v;
    else el.value = Array.isArray(v) ? v.join('\n') : String(v);
  }
}

function editRealServer(service, dest) {
  const vs = managedVs(service);
  const rs = vs?.spec.realServers.find(
    (r) => `${String(r.address).includes(':') ? `[${r.address}]` : r.address}:${r.port}` === dest,
  );
  if (!rs) return;
  const c = rs.checkers?.[0] ?? {};
  fill('rs', {
    service,
    address: rs.address,
    port: rs.port,
    weight: rs.weight,
    method: rs.method,
    uthreshold: rs.uthreshold,
    lthreshold: rs.lthreshold,
    inhibitOnFailure: rs.inhibitOnFailure,
    chk_type: c.type ?? '',
    chk_connectTimeout: c.connectTimeout,
    chk_connectPort: c.connectPort,
    chk_delayLoop: c.delayLoop,
    chk_retry: c.retry,
    chk_delayBeforeRetry: c.delayBeforeRetry,
    chk_urlPath: c.urls?.[0]?.path,
    chk_statusCode: c.urls?.[0]?.statusCode,
    chk_miscPath: c.miscPath,
  });
  editing.rs = { service, dest };
  editing.rsVersion = cfg.version;
  $('rs-mode').textContent = `editing ${dest} in ${service}`;
  $('form-rs').scrollIntoView({ block: 'start' });
}

function editVirtualServer(id) {
  const s = managedVs(id)?.spec;
  if (!s) return;
  fill('vs', { ...s, sorryAddress: s.sorryServer?.address, sorryPort: s.sorryServer?.port });
  editing.vs = id;
  editing.vsVersion = cfg.version;
  $('vs-mode').textContent = `editing ${id}`;
  $('form-vs').scrollIntoView({ block: 'start' });
}

function editVrrp(name) {
  const b = cfg?.vrrpInstances.find((v) => v.id === name && v.managed);
  if (!b) return;
  fill('vrrp', { ...b.spec, version: b.spec.version ? String(b.spec.version) : '' });
  editing.vrrp = name;
  editing.vrrpVersion = cfg.version;
  $('vrrp-mode').textContent = `editing ${name}`;
  $('form-vrrp').scrollIntoView({ block: 'start' });
}

function renderConfig() {
  if (!cfg) return;
  $('cfg-status').innerHTML =
    `Managed file <span class="mono">${esc(cfg.managedFile)}</span> (version <span class="mono" id="cfg-version">${esc(cfg.version)}</span>) ${
      cfg.included
        ? '<span class="ok">included</span>'
        : `<span class="bad">not included: add <code>include ${esc(cfg.managedFile)}</code> to ${esc(cfg.mainFile)}</span>`
    }${cfg.lastChange ? ` · last change by ${esc(cfg.lastChange.who)} ${esc(fmtDate(cfg.lastChange.at))}` : ''}`;
  $('rollback').disabled = !cfg.canRollback;
  const sel = val('rs', 'service');
  const keep = sel.value;
  const managed = cfg.virtualServers.filter((v) => v.managed);
  sel.innerHTML = managed.length
    ? managed.map((v) => `<option value="${esc(v.id)}">${esc(v.id)}</option>`).join('')
    : '<option value="">(create a virtual server first)</option>';
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  const row = (kind, b) =>
    `<tr><td>${kind}</td><td class="mono">${esc(b.id)}</td><td class="mono">${esc(b.loc.file)}:${b.loc.line}</td><td>${
      b.managed
        ? `<button type="button" data-act="edit-${kind === 'vrrp_instance' ? 'vrrp' : 'vs'}" data-service="${esc(b.id)}">edit</button> <button type="button" data-act="delete-${kind === 'vrrp_instance' ? 'vrrp' : 'vs'}" data-service="${esc(b.id)}">delete</button>`
        : '<span class="dim">operator file: edit it there</span>'
    }</td></tr>`;
  $('blocks').innerHTML = `<thead><tr><th>Block</th><th>Id</th><th>Defined at</th><th></th></tr></thead><tbody>${[
    ...cfg.virtualServers.map((b) => row('virtual_server', b)),
    ...cfg.vrrpInstances.map((b) => row('vrrp_instance', b)),
  ].join('')}</tbody>`;
}

async function loadConfig() {
  if (!tokenInput.value) return;
  const res = await fetch('/api/v1/config', { headers: authHeaders() });
  if (res.status === 401) {
    $('cfg-status').innerHTML = '<span class="bad">The API token was refused.</span>';
    cfg = undefined;
    return;
  }
  if (!res.ok) return;
  cfg = await res.json();
  renderConfig();
  renderDiagnostics();
  document.body.dataset.config = cfg.version;
}

// ---------- refresh loop ----------

async function refresh() {
  try {
    status = await (await fetch('/api/v1/status')).json();
    await Promise.all([...openConns].map(loadConnections));
    $('meta').textContent = `${status.routerId ? `${status.routerId} · ` : ''}v${status.version}`;
    $('maint-state').textContent = status.maintenance ? 'in maintenance' : '';
    $('maintenance').textContent = status.maintenance ? 'End maintenance' : 'Maintenance mode';
    renderDirectors();
    renderBgp();
    renderServices();
    renderDiagnostics();
    document.body.dataset.ready = '1';
  } catch {
    $('live').textContent = 'disconnected';
  }
}

async function refreshPeer() {
  try {
    const res = await fetch('/api/v1/peer/status');
    if (res.status === 404) peer = undefined;
    else {
      const body = await res.json();
      peer = res.ok ? body : { url: body.url, error: body.message };
    }
    if (peer?.status) document.body.dataset.peer = '1';
  } catch {
    peer = { error: 'peer status unavailable' };
  }
}

async function refreshHistory() {
  try {
    history = await (await fetch('/api/v1/history')).json();
  } catch {
    // keep the last one
  }
}

function addEvent(e, top) {
  if (top) events.unshift(e);
  else events.push(e);
  if (events.length > 1000) events.pop();
}

async function start() {
  buildForms();
  resetForm('rs');
  const ev = await (await fetch('/api/v1/events')).json();
  for (const e of ev.events.slice().reverse()) addEvent(e, false);
  renderEvents();
  const stream = new EventSource('/api/v1/events/stream');
  stream.onopen = () => {
    $('live').textContent = 'live';
    $('live').className = 'pill up';
  };
  stream.onerror = () => {
    $('live').textContent = 'reconnecting…';
    $('live').className = 'pill INIT';
  };
  for (const t of [
    'vrrp-state',
    'vrrp-priority',
    'sync-group-state',
    'rs-health',
    'rs-weight',
    'vs-quorum',
    'config-reload',
    'config-change',
    'admin',
  ]) {
    stream.addEventListener(t, (m) => {
      addEvent(JSON.parse(m.data), true);
      renderEvents();
      if (t === 'config-change') loadConfig();
      refresh();
    });
  }
  await Promise.all([refreshPeer(), refreshHistory(), loadConfig()]);
  await refresh();
  setInterval(refresh, 1000);
  setInterval(refreshPeer, 2000);
  setInterval(refreshHistory, 5000);
  setInterval(() => {
    if (!pending) loadConfig();
  }, 10000);
}
start();
