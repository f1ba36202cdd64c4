// keepvs dashboard: reads /api/v1/status every second and /api/v1/events/stream live; no build step.

const history = new Map(); // dest key -> recent cps samples
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const tokenInput = $('token');
tokenInput.value = sessionStorage.getItem('keepvsToken') || '';
tokenInput.addEventListener('change', () => sessionStorage.setItem('keepvsToken', tokenInput.value));

function spark(values) {
  const w = 90;
  const h = 22;
  const max = Math.max(1, ...values);
  const pts = values
    .map((v, i) => `${(i / Math.max(1, values.length - 1)) * w},${h - (v / max) * (h - 2) - 1}`)
    .join(' ');
  return `<svg class="spark" width="${w}" height="${h}"><polyline fill="none" stroke="#4c9aff" stroke-width="1.5" points="${pts}"/></svg>`;
}

async function act(path, body) {
  const res = await fetch(`/api/v1/actions/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenInput.value}` },
    body: JSON.stringify(body),
  });
  if (!res.ok) alert(`action failed: ${(await res.json()).message}`);
  refresh();
}
window.keepvsAct = act;

function renderVrrp(list) {
  if (!list.length) {
    $('vrrp').innerHTML = '<div class="dim">No vrrp_instance configured.</div>';
    return;
  }
  $('vrrp').innerHTML = list
    .map(
      (
        i,
      ) => `<div class="card"><div class="name">${esc(i.name)} <span class="pill ${esc(i.state)}">${esc(i.state)}</span></div>
      <div class="dim">VRID ${i.vrid} on ${esc(i.interface || '-')} · priority ${i.priority} (effective ${i.effectivePriority})</div>
      <div class="dim">VIPs ${esc(i.vips.join(', ') || '-')}${i.masterAddress ? ` · master ${esc(i.masterAddress)}` : ''}</div>
      ${i.note ? `<div class="note">${esc(i.note)}</div>` : ''}</div>`,
    )
    .join('');
}

function renderServices(st) {
  const lvs = st.lvs;
  if (!lvs) {
    $('services').innerHTML = '<div class="dim">No LVS worker report yet.</div>';
    return;
  }

  const listeners = new Map(lvs.dataplane.services.map((l) => [l.id, { state: l.listener }]));
  $('services').innerHTML = lvs.table.services
    .map((svc) => {
      const l = listeners.get(svc.id);
      const rows = lvs.checks.servers
        .filter((h) => h.service === svc.id)
        .map((h) => {
          const d = svc.dests.find((x) => `${x.family === 6 ? `[${x.address}]` : x.address}:${x.port}` === h.dest);
          const key = `${svc.id}|${h.dest}`;
          const samples = history.get(key) || [];
          samples.push(d ? d.rates.cps : 0);
          if (samples.length > 30) samples.shift();
          history.set(key, samples);
          const state = !h.up ? 'down' : d && d.weight === 0 ? 'drained' : 'up';
          const why = h.checkers.map((c) => c.reason).join('; ');
          const args = JSON.stringify({ service: svc.id, dest: h.dest }).replace(/"/g, '&quot;');
          return `<tr><td class="mono">${esc(h.dest)}</td><td><span class="pill ${state}" title="${esc(why)}">${state}</span></td>
            <td>${d ? d.weight : '-'}</td><td>${d ? d.activeConns : 0}</td><td>${d ? d.inactConns : 0}</td><td>${d ? d.stats.conns : 0}</td>
            <td>${d ? d.rates.cps : 0}</td><td>${spark(samples)}</td>
            <td><button onclick="keepvsAct('drain', ${args})">drain</button> <button onclick="keepvsAct('restore', ${args})">restore</button></td></tr>`;
        })
        .join('');
      return `<div class="svc"><div class="head"><span class="id">${esc(svc.id)}</span><span class="dim">${esc(svc.scheduler)}${svc.persistentTimeout ? ` · persistent ${svc.persistentTimeout}s` : ''}</span>
        ${l ? `<span class="pill ${esc(l.state)}">${esc(l.state)}</span>` : ''}<span class="dim">conns ${svc.stats.conns} · ${svc.rates.cps} conn/s · in ${svc.stats.inBytes} B · out ${svc.stats.outBytes} B</span></div>
        <table><thead><tr><th>Real server</th><th>Health</th><th>Weight</th><th>ActiveConn</th><th>InActConn</th><th>Conns</th><th>CPS</th><th>Rate</th><th>Actions</th></tr></thead>
        <tbody>${rows}</tbody></table></div>`;
    })
    .join('');
}

function describe(e) {
  switch (e.type) {
    case 'vrrp-state':
      return `<b>${esc(e.instance)}</b> ${e.from} → ${e.to} (${esc(e.reason)})`;
    case 'rs-health':
      return `<b>${esc(e.dest)}</b> in ${esc(e.service)} ${e.up ? 'UP' : 'DOWN'}: ${esc(e.reason)}`;
    case 'rs-weight':
      return `<b>${esc(e.dest)}</b> weight ${e.weight}`;
    case 'vs-quorum':
      return `<b>${esc(e.service)}</b> quorum ${e.up ? 'gained' : 'lost'}`;
    case 'config-reload':
      return `<b>reload</b> ${e.ok ? 'applied' : 'rejected'}: ${esc(e.message)}`;
    case 'admin':
      return `<b>admin</b> ${esc(e.action)} ${esc(e.target)} ${esc(e.detail)}`;
    default:
      return esc(JSON.stringify(e));
  }
}

function addEvent(e, top) {
  const li = document.createElement('li');
  li.innerHTML = `${new Date(e.at).toLocaleTimeString()} ${describe(e)}`;
  const ol = $('timeline');
  if (top) ol.prepend(li);
  else ol.append(li);
}

async function refresh() {
  try {
    const st = await (await fetch('/api/v1/status')).json();
    $('meta').textContent =
      `v${st.version}${st.routerId ? ` · ${st.routerId}` : ''} · ${st.workers.map((w) => `${w.role} ${w.state}`).join(', ')}`;
    renderVrrp(st.vrrp);
    renderServices(st);
    document.body.dataset.ready = '1';
  } catch {
    $('live').textContent = 'disconnected';
  }
}

async function start() {
  const ev = await (await fetch('/api/v1/events')).json();
  for (const e of ev.events.slice().reverse()) addEvent(e, false);
  const stream = new EventSource('/api/v1/events/stream');
  stream.onopen = () => {
    $('live').textContent = 'live';
    $('live').className = 'pill up';
  };
  stream.onerror = () => {
    $('live').textContent = 'reconnecting…';
    $('live').className = 'pill INIT';
  };
  for (const t of ['vrrp-state', 'rs-health', 'rs-weight', 'vs-quorum', 'config-reload', 'admin']) {
    stream.addEventListener(t, (m) => {
      addEvent(JSON.parse(m.data), true);
      refresh();
    });
  }
  refresh();
  setInterval(refresh, 1000);
}
start();
