// Seesaw dashboard charts: draws GET /v1/series (the ECU keeps 15 minutes of samples) as inline
// SVG — per vserver and per backend open connections, new connections/s, bytes/s and health,
// a health timeline per backend and the HA-state timeline. Every chart of a refresh shares one
// time axis: from the oldest sample (at most 15 minutes back) to the newest. A missing sample
// (engine unreachable) breaks the line. Server text goes in with textContent only.
'use strict';

const SVG_NS = 'http://www.w3.org/2000/svg';
const CHART_W = 300;
const CHART_H = 70;

function svgEl(name, attrs) {
  const e = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
  return e;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = String(text);
  return e;
}

// 1234 → "1.23k"; bytes get B/kB/MB/GB.
function human(v, unit) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  const steps = unit === 'B/s' ? ['B/s', 'kB/s', 'MB/s', 'GB/s'] : ['', 'k', 'M', 'G'];
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1000 && i < steps.length - 1) { x /= 1000; i++; }
  const digits = x >= 100 || Number.isInteger(x) ? 0 : x >= 10 ? 1 : 2;
  const sign = v < 0 ? '-' : '';
  const suffix = unit === 'B/s' ? ' ' + steps[i] : steps[i] + (unit || '');
  return sign + x.toFixed(digits) + suffix;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

// The shared time axis of one refresh.
function timeDomain(data) {
  const end = data.now_ms || Date.now();
  let start = end;
  for (const v of data.vservers || []) {
    if (v.points && v.points.t.length) start = Math.min(start, v.points.t[0]);
  }
  start = Math.max(start, end - (data.window_ms || 900000));
  if (end - start < (data.interval_ms || 2000)) start = end - (data.interval_ms || 2000);
  return { start, end, gap: 3 * (data.interval_ms || 2000) };
}

function xOf(t, d) { return ((t - d.start) / (d.end - d.start)) * CHART_W; }

// A line chart of `values` over `t`: a head with the title and the latest value, and an SVG with
// one polyline per run of consecutive samples.
function lineChart(title, metric, t, values, d, opts) {
  const box = el('div', 'chart');
  const head = el('div', 'chart-head');
  head.appendChild(el('span', 'chart-title', title));
  let last = null;
  for (let i = values.length - 1; i >= 0; i--) {
    if (values[i] !== null && values[i] !== undefined) { last = values[i]; break; }
  }
  head.appendChild(el('span', 'chart-value', human(last, opts.unit)));
  box.appendChild(head);
  const present = values.filter(v => v !== null && v !== undefined && isFinite(v));
  const max = opts.max !== undefined ? opts.max : Math.max(1, ...present) * 1.1;
  const svg = svgEl('svg', {
    viewBox: `0 0 ${CHART_W} ${CHART_H}`, preserveAspectRatio: 'none',
    class: 'chart-svg', role: 'img',
  });
  svg.dataset.metric = metric;
  svg.dataset.samples = String(present.length);
  svg.appendChild(svgEl('line', { x1: 0, y1: CHART_H - 0.5, x2: CHART_W, y2: CHART_H - 0.5, class: 'axis' }));
  svg.appendChild(svgEl('line', { x1: 0, y1: 0.5, x2: CHART_W, y2: 0.5, class: 'grid' }));
  const label = svgEl('title');
  label.textContent = `${title}: ${present.length} samples, top of scale ${human(max, opts.unit)}`;
  svg.appendChild(label);
  let run = [];
  const flush = () => {
    if (run.length === 1) {
      const [x, y] = run[0];
      svg.appendChild(svgEl('circle', { cx: x, cy: y, r: 1.5, class: 'dot' }));
    } else if (run.length > 1) {
      svg.appendChild(svgEl('polyline', {
        points: run.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '),
        class: 'line', 'vector-effect': 'non-scaling-stroke',
      }));
    }
    run = [];
  };
  for (let i = 0; i < t.length; i++) {
    const v = values[i];
    if (v === null || v === undefined || !isFinite(v)) { flush(); continue; }
    if (i > 0 && t[i] - t[i - 1] > d.gap) flush();
    const y = CHART_H - 1 - (Math.min(v, max) / max) * (CHART_H - 2);
    run.push([xOf(t[i], d), y]);
  }
  flush();
  box.appendChild(svg);
  box.appendChild(el('div', 'chart-scale', 'max ' + human(max, opts.unit)));
  return box;
}

// A state timeline: one coloured band per state, from its change to the next (or now).
function timeline(changes, d, kind) {
  const svg = svgEl('svg', {
    viewBox: `0 0 ${CHART_W} 10`, preserveAspectRatio: 'none', class: 'timeline', role: 'img',
  });
  svg.dataset.kind = kind;
  const list = changes || [];
  for (let i = 0; i < list.length; i++) {
    const from = Math.max(list[i].t, d.start);
    const to = i + 1 < list.length ? list[i + 1].t : d.end;
    if (to <= d.start || to <= from) continue;
    const state = String(list[i].state).toLowerCase().replace(/[^a-z_]/g, '');
    const r = svgEl('rect', {
      x: xOf(from, d), y: 0, width: Math.max(0.5, xOf(to, d) - xOf(from, d)), height: 10,
      class: 'state state-' + state,
    });
    const tip = svgEl('title');
    tip.textContent = `${list[i].state} from ${clock(list[i].t)}`;
    r.appendChild(tip);
    svg.appendChild(r);
  }
  svg.dataset.changes = String(list.length);
  return svg;
}

function timelineRow(label, changes, d, kind) {
  const row = el('div', 'timeline-row');
  row.appendChild(el('span', 'timeline-label', label));
  const box = el('div', 'timeline-box');
  box.appendChild(timeline(changes, d, kind));
  const now = changes && changes.length ? changes[changes.length - 1].state : 'no data';
  box.appendChild(el('span', 'timeline-now', now));
  row.appendChild(box);
  return row;
}

function percent(values) { return values.map(v => (v === null || v === undefined ? null : v * 100)); }

// The four charts of a vserver or a backend (`p`: its points); `titles` names the connections,
// new connections, bytes and health charts.
function chartGrid(cls, p, d, titles) {
  const grid = el('div', cls);
  grid.appendChild(lineChart(titles[0], 'conns', p.t, p.conns, d, { unit: '' }));
  grid.appendChild(lineChart(titles[1], 'new_per_s', p.t, p.new_per_s, d, { unit: '/s' }));
  grid.appendChild(lineChart(titles[2], 'bytes_per_s', p.t, p.bytes_per_s, d, { unit: 'B/s' }));
  grid.appendChild(lineChart(titles[3], 'health', p.t, percent(p.health), d, { unit: '%', max: 100 }));
  return grid;
}

// A vserver's or a backend's block: `data-<key>` and a `heading` name it, its charts follow.
function chartBlock(tag, cls, key, name, heading, grid) {
  const block = el(tag, cls);
  block.dataset[key] = name;
  block.appendChild(el(heading, '', name));
  block.appendChild(grid);
  return block;
}

function renderCharts(data) {
  const d = timeDomain(data);
  const secs = Math.round((d.end - d.start) / 1000);
  const span = secs < 120 ? `${secs} s` : `${Math.round(secs / 60)} min`;
  document.getElementById('charts-span').textContent =
    `${clock(d.start)} – ${clock(d.end)} (${span}, a sample every ${(data.interval_ms || 2000) / 1000} s)`;
  const ha = document.getElementById('ha-timeline');
  ha.replaceChildren(timeline(data.ha, d, 'ha'),
    el('span', 'timeline-now', data.ha && data.ha.length ? data.ha[data.ha.length - 1].state : 'no data'));
  const cards = [];
  for (const v of data.vservers || []) {
    const card = chartBlock('article', 'vs-card', 'vserver', v.name, 'h3', chartGrid('chart-grid',
      v.points, d, ['Connections', 'New connections/s', 'Bytes/s', 'Healthy destinations']));
    for (const b of v.backends || []) {
      const bk = chartBlock('div', 'backend', 'backend', b.host, 'h4', chartGrid('chart-grid small',
        b.points, d, ['Connections', 'New conns/s', 'Bytes/s', 'Health']));
      bk.appendChild(timelineRow('Health', b.transitions, d, 'health'));
      card.appendChild(bk);
    }
    cards.push(card);
  }
  if (data.dropped_series) {
    cards.push(el('p', 'note', `${data.dropped_series} vservers or backends are not charted (limit reached).`));
  }
  if (!cards.length) cards.push(el('p', 'note', 'No samples yet.'));
  document.getElementById('charts').replaceChildren(...cards);
}
