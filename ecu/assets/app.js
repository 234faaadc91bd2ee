// Seesaw dashboard: reads /v1/* every 2 s and writes through the same API. All text from the
// server goes into the page with textContent (never as HTML). charts.js draws /v1/series and
// pool.js is the pool form; both use the helpers here.
'use strict';

const REFRESH_MS = 2000;
const TOKEN_KEY = 'seesaw-token';

// The vservers of the last refresh (the pool form's preview picks POST or PUT by them).
let lastVservers = [];

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

// The token box shows only while no token is known.
function showLogin() {
  document.getElementById('login').hidden = Boolean(token());
}

function setStatus(text, ok) {
  const s = document.getElementById('status');
  s.textContent = text;
  s.className = ok ? 'ok' : 'error';
}

// An API call. A refusal throws an Error whose `data` is the JSON answer ({error, errors}).
async function api(method, path, body, contentType) {
  const headers = { 'Authorization': 'Bearer ' + token() };
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = contentType || 'application/json';
    payload = typeof body === 'string' ? body : JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload });
  const type = r.headers.get('content-type') || '';
  const data = type.includes('json') ? await r.json() : await r.text();
  if (!r.ok) {
    let msg = (data && data.error) || ('HTTP ' + r.status);
    if (data && Array.isArray(data.errors) && data.errors.length) {
      msg += ': ' + data.errors.map(e => (e.field ? e.field + ': ' : '') + e.message).join('; ');
    }
    const err = new Error(msg);
    err.status = r.status;
    err.data = data;
    if (r.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      showLogin();
    }
    throw err;
  }
  return data;
}

function cell(tr, text, cls) {
  const td = document.createElement('td');
  td.textContent = text === undefined || text === null ? '' : String(text);
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function button(parent, label, onclick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.textContent = label;
  b.addEventListener('click', onclick);
  parent.appendChild(b);
  return b;
}

// A write; the answer, or null after showing the refusal (`onError` gets the Error first).
async function write(method, path, body, contentType, onError) {
  try {
    const r = await api(method, path, body, contentType);
    setStatus((r && r.message) || 'done', true);
    await refresh();
    return r;
  } catch (e) {
    setStatus(e.message, false);
    if (onError) onError(e);
    return null;
  }
}

function renderVservers(vservers) {
  const tbody = document.querySelector('#vservers tbody');
  const rows = [];
  for (const v of vservers) {
    const tr = document.createElement('tr');
    tr.className = 'vserver';
    cell(tr, v.name);
    cell(tr, v.vips.join(', '));
    for (let i = 0; i < 3; i++) cell(tr, '');
    cell(tr, v.enabled ? 'enabled' : 'disabled', v.enabled ? 'up' : 'down');
    cell(tr, '');
    cell(tr, v.override_state);
    for (let i = 0; i < 3; i++) cell(tr, '');
    rows.push(tr);
    for (const s of v.services) {
      for (const d of s.destinations) {
        const r = document.createElement('tr');
        r.dataset.backend = d.backend;
        r.dataset.destination = d.name;
        cell(r, v.name);
        cell(r, `${s.address}:${s.port}/${s.protocol} ${s.scheduler} ${s.healthy ? '' : '(unhealthy)'}`);
        cell(r, d.backend);
        cell(r, `${d.address}:${d.port}`);
        cell(r, d.weight);
        cell(r, d.healthy ? 'healthy' : 'unhealthy', d.healthy ? 'up' : 'down');
        cell(r, d.active ? 'yes' : 'no', d.active ? 'up' : 'down');
        cell(r, d.override_state);
        cell(r, `${d.active_conns}/${d.total_conns}`);
        cell(r, `${d.bytes_in}/${d.bytes_out}`);
        const actions = cell(r, '');
        for (const [label, state] of [['Disable', 'disabled'], ['Enable', 'enabled'], ['Default', 'default']]) {
          button(actions, label, () => write('POST', '/v1/overrides',
            { kind: 'backend', target: d.backend, state }));
        }
        rows.push(r);
      }
    }
  }
  tbody.replaceChildren(...rows);
}

function renderHistory(versions) {
  const tbody = document.querySelector('#history tbody');
  tbody.replaceChildren(...versions.map(v => {
    const tr = document.createElement('tr');
    cell(tr, v.id);
    cell(tr, new Date(v.at_ms).toISOString());
    cell(tr, v.who);
    cell(tr, v.what);
    cell(tr, v.sha256.slice(0, 12));
    const td = cell(tr, '');
    button(td, 'Roll back', () => {
      if (confirm(`Restore version ${v.id}?`)) write('POST', '/v1/config/rollback', { id: v.id });
    });
    return tr;
  }));
}

async function refresh() {
  showLogin();
  if (!token()) {
    setStatus('Enter an API token to continue.', false);
    return;
  }
  try {
    const [vservers, ha, config, nodes, history, series] = await Promise.all([
      api('GET', '/v1/vservers'), api('GET', '/v1/ha'), api('GET', '/v1/config'),
      api('GET', '/v1/nodes'), api('GET', '/v1/config/history'),
      api('GET', '/v1/series').catch(() => null),
    ]);
    lastVservers = vservers;
    renderVservers(vservers);
    renderHistory(history);
    if (series && typeof renderCharts === 'function') renderCharts(series);
    const badge = document.getElementById('ha');
    badge.textContent = 'HA: ' + ha.state;
    badge.className = 'badge ' + ha.state;
    document.getElementById('site').textContent = nodes.site + ' (generation ' + config.generation + ')';
    const ul = document.getElementById('warnings');
    ul.replaceChildren(...config.warnings.map(w => {
      const li = document.createElement('li');
      li.textContent = w;
      return li;
    }));
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    setStatus(e.message, false);
  }
}

function memberBody() {
  const body = { host: document.getElementById('member-host').value };
  const ip = document.getElementById('member-ip').value;
  const weight = document.getElementById('member-weight').value;
  if (ip) body.ip = ip;
  if (weight) body.weight = weight;
  return body;
}

function memberPath() {
  const pool = encodeURIComponent(document.getElementById('member-pool').value);
  return '/v1/pools/' + pool + '/members';
}

function init() {
  // A `#token=...` fragment: kept for this tab, and taken out of the address bar and history.
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, '', location.pathname + location.search);
  }
  showLogin();
  document.getElementById('login').addEventListener('submit', ev => {
    ev.preventDefault();
    const t = document.getElementById('token');
    sessionStorage.setItem(TOKEN_KEY, t.value);
    t.value = '';
    refresh();
  });
  document.getElementById('override').addEventListener('submit', ev => {
    ev.preventDefault();
    write('POST', '/v1/overrides', {
      kind: document.getElementById('override-kind').value,
      target: document.getElementById('override-target').value,
      state: document.getElementById('override-state').value,
    });
  });
  document.getElementById('member-add').addEventListener('click',
    () => write('POST', memberPath(), memberBody()));
  document.getElementById('member-save').addEventListener('click', () => write('PUT',
    memberPath() + '/' + encodeURIComponent(document.getElementById('member-host').value),
    memberBody()));
  document.getElementById('member-delete').addEventListener('click', () => write('DELETE',
    memberPath() + '/' + encodeURIComponent(document.getElementById('member-host').value)));
  if (typeof initPoolForm === 'function') initPoolForm();
  refresh();
  setInterval(refresh, REFRESH_MS);
}

document.addEventListener('DOMContentLoaded', init);
