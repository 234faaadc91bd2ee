// Seesaw dashboard pool form: name, VIP (an address, or one allocated from a vip_pool), service
// rows and member rows, written through POST /v1/pools and PUT/DELETE /v1/pools/{name}. The API
// validates; its 400 answer names each problem's field (`services[0].port`), and the message is
// shown next to the input whose data-field is that path (or the nearest row or list holding it).
// "Preview" sends the same write with ?dry_run=true and shows what would change. The raw JSON
// editor stays under "Advanced". Server text goes in with textContent only.
'use strict';

const PROTOCOLS = ['tcp', 'udp'];
const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'sh', 'mh', 'dh', 'random', 'p2c'];
const MODES = ['nat', 'dsr', 'tun'];
const CHECK_TYPES = ['', 'tcp', 'http', 'https', 'udp', 'dns', 'icmp', 'tcp_tls', 'radius'];

function poolForm() { return document.getElementById('pool-form'); }

function inputOf(key, placeholder, numeric) {
  const i = document.createElement('input');
  i.dataset.key = key;
  i.autocomplete = 'off';
  if (placeholder) i.placeholder = placeholder;
  if (numeric) i.inputMode = 'numeric';
  return i;
}

function selectOf(key, choices, labels) {
  const s = document.createElement('select');
  s.dataset.key = key;
  for (const c of choices) {
    const o = document.createElement('option');
    o.value = c;
    o.textContent = (labels && labels[c]) || c;
    s.appendChild(o);
  }
  return s;
}

// A labelled input with its error slot.
function fieldOf(label, control) {
  const l = document.createElement('label');
  l.className = 'field';
  const span = document.createElement('span');
  span.textContent = label;
  const err = document.createElement('span');
  err.className = 'field-error';
  l.append(span, control, err);
  return l;
}

function rowOf(kind, fields) {
  const row = document.createElement('div');
  row.className = 'row ' + kind;
  const cells = document.createElement('div');
  cells.className = 'row-fields';
  for (const [label, control] of fields) cells.appendChild(fieldOf(label, control));
  row.appendChild(cells);
  const remove = button(row, 'Remove', () => { row.remove(); reindex(); });
  remove.className = 'remove';
  const err = document.createElement('span');
  err.className = 'field-error row-error';
  row.appendChild(err);
  return row;
}

function addService(s) {
  s = s || {};
  const c = (Array.isArray(s.healthchecks) && s.healthchecks[0]) || {};
  const row = rowOf('service-row', [
    ['Port', inputOf('port', '80', true)],
    ['Protocol', selectOf('protocol', PROTOCOLS)],
    ['Scheduler', selectOf('scheduler', SCHEDULERS)],
    ['Mode', selectOf('mode', MODES)],
    ['Backend port', inputOf('backend_port', 'same', true)],
    ['Check', selectOf('healthchecks[0].type', CHECK_TYPES, { '': 'none' })],
    ['Check port', inputOf('healthchecks[0].port', 'backend', true)],
    ['Check send', inputOf('healthchecks[0].send', '/healthz')],
    ['Check code', inputOf('healthchecks[0].code', '200', true)],
  ]);
  const set = (key, v) => {
    const e = row.querySelector(`[data-key="${key}"]`);
    if (v !== undefined && v !== null) e.value = String(v).toLowerCase();
  };
  set('port', s.port);
  set('protocol', s.protocol || 'tcp');
  set('scheduler', s.scheduler || 'rr');
  set('mode', s.mode || 'nat');
  set('backend_port', s.backend_port);
  set('healthchecks[0].type', c.type || '');
  set('healthchecks[0].port', c.port);
  set('healthchecks[0].code', c.code);
  if (c.send !== undefined) row.querySelector('[data-key="healthchecks[0].send"]').value = c.send;
  document.getElementById('pool-services').appendChild(row);
  reindex();
}

function addMember(m) {
  m = m || {};
  const row = rowOf('member-row', [
    ['Host', inputOf('host', 'be1.example.')],
    ['IP', inputOf('ip', '192.0.2.21')],
    ['Weight', inputOf('weight', '1', true)],
  ]);
  for (const k of ['host', 'ip', 'weight']) {
    if (m[k] !== undefined && m[k] !== null) row.querySelector(`[data-key="${k}"]`).value = String(m[k]);
  }
  document.getElementById('pool-members').appendChild(row);
  reindex();
}

// Gives every row and input its API field path (`services[1].port`) after rows come and go.
function reindex() {
  for (const [list, name] of [['pool-services', 'services'], ['pool-members', 'members']]) {
    const rows = document.getElementById(list).querySelectorAll(':scope > .row');
    rows.forEach((row, i) => {
      row.dataset.field = `${name}[${i}]`;
      for (const c of row.querySelectorAll('[data-key]')) c.dataset.field = `${name}[${i}].${c.dataset.key}`;
    });
  }
}

function vipMode() { return document.getElementById('pool-vip-mode-pool').checked ? 'pool' : 'address'; }

function showVipMode() {
  const pool = vipMode() === 'pool';
  document.getElementById('pool-vip-field').hidden = pool;
  document.getElementById('pool-vip-pool-field').hidden = !pool;
}

// Digits become a number; anything else goes as typed, for the API to name the problem.
function num(v) { const t = v.trim(); return /^-?\d+$/.test(t) ? Number(t) : t; }

function poolFromForm() {
  const val = id => document.getElementById(id).value.trim();
  const body = { name: val('pool-name') };
  if (vipMode() === 'pool') body.vip_pool = val('pool-vip-pool'); else body.vip = val('pool-vip');
  if (val('pool-hostname')) body.hostname = val('pool-hostname');
  const get = (row, key) => row.querySelector(`[data-key="${key}"]`).value.trim();
  body.services = [...document.querySelectorAll('#pool-services > .row')].map(r => {
    const s = { port: num(get(r, 'port')), protocol: get(r, 'protocol'),
      scheduler: get(r, 'scheduler'), mode: get(r, 'mode') };
    if (get(r, 'backend_port')) s.backend_port = num(get(r, 'backend_port'));
    const type = get(r, 'healthchecks[0].type');
    if (type) {
      const c = { type };
      for (const k of ['port', 'code']) if (get(r, 'healthchecks[0].' + k)) c[k] = num(get(r, 'healthchecks[0].' + k));
      if (get(r, 'healthchecks[0].send')) c.send = get(r, 'healthchecks[0].send');
      s.healthchecks = [c];
    }
    return s;
  });
  body.members = [...document.querySelectorAll('#pool-members > .row')].map(r => {
    const m = { host: get(r, 'host'), ip: get(r, 'ip') };
    if (get(r, 'weight')) m.weight = num(get(r, 'weight'));
    return m;
  });
  return body;
}

function formFromPool(p) {
  document.getElementById('pool-name').value = p.name || '';
  document.getElementById('pool-vip').value = p.vip || '';
  document.getElementById('pool-vip-pool').value = p.vip_pool || '';
  document.getElementById('pool-vip-mode-pool').checked = Boolean(p.vip_pool);
  document.getElementById('pool-vip-mode-address').checked = !p.vip_pool;
  document.getElementById('pool-hostname').value = p.hostname || '';
  showVipMode();
  document.getElementById('pool-services').replaceChildren();
  document.getElementById('pool-members').replaceChildren();
  (Array.isArray(p.services) && p.services.length ? p.services : [{}]).forEach(addService);
  (Array.isArray(p.members) ? p.members : []).forEach(addMember);
}

function clearErrors() {
  const form = poolForm();
  for (const e of form.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of form.querySelectorAll('.invalid')) {
    e.classList.remove('invalid');
    e.removeAttribute('aria-invalid');
  }
  document.getElementById('pool-errors').replaceChildren();
}

// `services[0].port` → `services[0]` → `services` → ''.
function parentPath(p) {
  const m = p.match(/^(.*)(\.[^.[\]]+|\[\d+\])$/);
  return m ? m[1] : '';
}

// Where an error for `path` goes: the element of the form carrying it, or of its nearest parent.
function errorTarget(path) {
  const form = poolForm();
  for (let p = path; p; p = parentPath(p)) {
    const t = form.querySelector(`[data-field="${CSS.escape(p)}"]`);
    if (t && !t.closest('[hidden]')) return t;
  }
  return null;
}

function errorSlot(t) {
  if (t.classList.contains('rows')) return poolForm().querySelector(`[data-error-for="${CSS.escape(t.dataset.field)}"]`);
  if (t.classList.contains('row')) return t.querySelector(':scope > .row-error');
  const f = t.closest('.field');
  return f ? f.querySelector('.field-error') : null;
}

// Shows a refusal's field errors at their fields (`atFields`) or as a list under the form.
function showErrors(e, atFields) {
  clearErrors();
  const data = e && e.data;
  const errors = data && Array.isArray(data.errors) ? data.errors : [];
  const list = document.getElementById('pool-errors');
  if (!errors.length) {
    const li = document.createElement('li');
    li.textContent = e.message;
    list.appendChild(li);
    return;
  }
  let first = null;
  for (const err of errors) {
    const field = String(err.field || '');
    const t = atFields && field ? errorTarget(field) : null;
    const slot = t ? errorSlot(t) : null;
    if (slot) {
      const exact = t.dataset.field === field;
      const text = (exact ? '' : field + ': ') + err.message;
      slot.textContent = slot.textContent ? slot.textContent + '; ' + text : text;
      t.classList.add('invalid');
      t.setAttribute('aria-invalid', 'true');
      if (!first && t.focus) first = t;
    } else {
      const li = document.createElement('li');
      li.textContent = (field ? field + ': ' : '') + err.message;
      list.appendChild(li);
    }
  }
  if (first) first.focus();
}

function describe(item) { return typeof item === 'string' ? item : JSON.stringify(item); }

// Renders a dry run's answer; anything missing is said so rather than guessed.
function renderPreview(r) {
  const box = document.getElementById('preview');
  const out = [];
  const h = document.createElement('h3');
  h.textContent = 'Preview';
  out.push(h);
  const note = (text, cls) => {
    const p = document.createElement('p');
    p.className = cls || 'note';
    p.textContent = text;
    out.push(p);
  };
  const p = r && typeof r.preview === 'object' && r.preview !== null ? r.preview : null;
  if (!p) {
    note(r && r.applied
      ? 'The server answered without a preview and APPLIED the change: it does not support dry runs.'
      : 'The server answered without a preview.', 'warn');
    if (r && r.message) note(r.message);
    box.replaceChildren(...out);
    return;
  }
  if (Array.isArray(p.errors) && p.errors.length) {
    note('The engine would refuse this change:', 'warn');
    const ul = document.createElement('ul');
    ul.className = 'errors';
    for (const e of p.errors) {
      const li = document.createElement('li');
      li.textContent = describe(e);
      ul.appendChild(li);
    }
    out.push(ul);
  }
  const marks = { added: '+ ', removed: '− ', changed: '~ ' };
  for (const group of ['vservers', 'services', 'destinations']) {
    const g = p[group];
    if (!g || typeof g !== 'object') continue;
    const div = document.createElement('div');
    div.className = 'preview-group';
    div.dataset.group = group;
    const h4 = document.createElement('h4');
    h4.textContent = group;
    div.appendChild(h4);
    let any = false;
    for (const kind of ['added', 'removed', 'changed']) {
      const items = Array.isArray(g[kind]) ? g[kind] : [];
      if (!items.length) continue;
      any = true;
      const ul = document.createElement('ul');
      ul.className = 'preview-' + kind;
      for (const item of items) {
        const li = document.createElement('li');
        li.textContent = marks[kind] + describe(item);
        ul.appendChild(li);
      }
      div.appendChild(ul);
    }
    if (!any) {
      const none = document.createElement('p');
      none.className = 'note';
      none.textContent = 'no change';
      div.appendChild(none);
    }
    out.push(div);
  }
  const flows = Array.isArray(p.flows_moved) ? p.flows_moved : [];
  if (flows.length) {
    const table = document.createElement('table');
    table.className = 'flows';
    const head = document.createElement('tr');
    for (const t of ['Service', 'Flows moved']) {
      const th = document.createElement('th');
      th.textContent = t;
      head.appendChild(th);
    }
    table.appendChild(head);
    for (const f of flows) {
      const tr = document.createElement('tr');
      cell(tr, f && f.service);
      const share = Number(f && f.share);
      cell(tr, isFinite(share) ? (share * 100).toFixed(2) + ' %' : '?');
      table.appendChild(tr);
    }
    const wrap = document.createElement('div');
    wrap.className = 'scroll';
    wrap.appendChild(table);
    out.push(wrap);
  } else {
    note('No established flows move.');
  }
  box.replaceChildren(...out);
}

function poolPath(name) { return '/v1/pools/' + encodeURIComponent(name || ''); }

async function submitPool(method, path, body, atFields) {
  clearErrors();
  const r = await write(method, path, body, undefined, e => showErrors(e, atFields));
  if (r) document.getElementById('preview').replaceChildren();
  return r;
}

async function previewPool() {
  clearErrors();
  const body = poolFromForm();
  const exists = lastVservers.some(v => v.name === body.name);
  const path = (exists ? poolPath(body.name) : '/v1/pools') + '?dry_run=true';
  try {
    const r = await api(exists ? 'PUT' : 'POST', path, body);
    renderPreview(r);
    setStatus(r && r.preview ? 'Preview: nothing was changed.' : (r && r.message) || 'done', Boolean(r && r.preview));
  } catch (e) {
    setStatus(e.message, false);
    showErrors(e, true);
    document.getElementById('preview').replaceChildren();
  }
  refresh();
}

function jsonBody() {
  try {
    return JSON.parse(document.getElementById('pool-json').value);
  } catch (e) {
    setStatus('pool: not JSON: ' + e.message, false);
    return null;
  }
}

function initPoolForm() {
  const on = (id, f) => document.getElementById(id).addEventListener('click', f);
  formFromPool({ services: [{}], members: [{}] });
  for (const id of ['pool-vip-mode-address', 'pool-vip-mode-pool']) {
    document.getElementById(id).addEventListener('change', showVipMode);
  }
  on('pool-add-service', () => addService());
  on('pool-add-member', () => addMember());
  on('pool-create', () => submitPool('POST', '/v1/pools', poolFromForm(), true));
  on('pool-save', () => {
    const b = poolFromForm();
    submitPool('PUT', poolPath(b.name), b, true);
  });
  on('pool-delete', () => {
    const b = poolFromForm();
    if (confirm(`Delete pool ${b.name}?`)) submitPool('DELETE', poolPath(b.name), undefined, true);
  });
  on('pool-preview', previewPool);
  on('pool-json-from-form', () => {
    document.getElementById('pool-json').value = JSON.stringify(poolFromForm(), null, 2);
  });
  on('pool-json-to-form', () => { const b = jsonBody(); if (b) formFromPool(b); });
  on('pool-json-create', () => { const b = jsonBody(); if (b) submitPool('POST', '/v1/pools', b, false); });
  on('pool-json-save', () => {
    const b = jsonBody();
    if (b) submitPool('PUT', poolPath(b.name), b, false);
  });
  poolForm().addEventListener('submit', ev => ev.preventDefault());
}
