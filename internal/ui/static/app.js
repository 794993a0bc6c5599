// eventpipe's web UI: a timeline of Kubernetes Events over the history the
// API keeps. Every number and row on the page comes from the ordinary API
// (EventFacetQuery, EventQuery, the Events watch, Activities) called with
// the user's own credentials; the page adds no data of its own.
import uPlot from './vendor/uplot/uPlot.esm.js';

const GROUP = '/apis/activity.miloapis.com/v1alpha1';
const TOKEN_KEY = 'eventpipe.token';
const PAGE_SIZE = 100;
// The live group keeps the newest rows only: enough to read, small enough
// that a burst does not make every frame lay out thousands of rows.
const TAIL_MAX_ROWS = 300;
// URL parameters the page understands; anything else is reported once.
const PARAMS = ['view', 'from', 'to', 'q', 'kind', 'ns', 'name', 'uid', 'tail'];

// Facets the API offers, with the core/v1 field-selector label a click
// filters on (core spellings, so the Events watch accepts them too).
const FACETS = [
  { field: 'type', label: 'Type', selector: 'type' },
  { field: 'reason', label: 'Reason', selector: 'reason' },
  { field: 'namespace', label: 'Namespace', selector: 'metadata.namespace' },
  { field: 'regarding.kind', label: 'Involved kind', selector: 'involvedObject.kind' },
  { field: 'regarding.namespace', label: 'Involved namespace', selector: 'involvedObject.namespace' },
  { field: 'source.component', label: 'Reporting component', selector: 'source' },
  { field: 'related.kind', label: 'Related kind', selector: 'related.kind' },
  { field: 'related.namespace', label: 'Related namespace', selector: 'related.namespace' },
];

const $ = (id) => document.getElementById(id);

// ---- credentials ---------------------------------------------------------

// The dev URL carries a token in the fragment (#token=…), which never
// reaches a server; keep it in this tab's session storage and take it out
// of the address bar and history.
function takeTokenFromFragment() {
  const m = /^#token=([^&]+)/.exec(location.hash);
  if (!m) return;
  sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
  history.replaceState(history.state, '', location.pathname + location.search);
}

function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

function authHeaders(extra = {}) {
  const h = { Accept: 'application/json', ...extra };
  const t = token();
  if (t) h.Authorization = 'Bearer ' + t;
  return h;
}

// APIError is an answer other than 2xx, with the API's Status when it sent
// one. status 0: the server could not be reached.
class APIError extends Error {
  constructor(status, st, retryAfter) {
    super((st && st.message) || `HTTP ${status}`);
    this.status = status;
    this.st = st || {};
    this.retryAfter = retryAfter;
  }
  // fields names the fields a 422's causes point at.
  fields() {
    return ((this.st.details && this.st.details.causes) || []).map((c) => c.field || '');
  }
}

async function api(method, path, body, signal) {
  let resp;
  try {
    resp = await fetch(path, {
      method, signal, credentials: 'same-origin',
      headers: authHeaders(body ? { 'Content-Type': 'application/json' } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, { message: 'cannot reach the API server: ' + e.message });
  }
  const text = await resp.text();
  let obj = null;
  try { obj = JSON.parse(text); } catch { /* not JSON */ }
  if (!resp.ok) {
    const st = obj && obj.kind === 'Status' ? obj : { message: text.trim() || resp.statusText };
    throw new APIError(resp.status, st, resp.headers.get('Retry-After'));
  }
  return obj;
}

const createQuery = (kind, spec, signal) =>
  api('POST', `${GROUP}/${kind}`, { apiVersion: 'activity.miloapis.com/v1alpha1', kind: kind === 'eventqueries' ? 'EventQuery' : 'EventFacetQuery', metadata: { name: 'ui' }, spec }, signal);

// ---- state in the URL ----------------------------------------------------

let state = {};

function readURL() {
  const p = new URLSearchParams(location.search);
  return {
    view: p.get('view') === 'object' ? 'object' : 'timeline',
    from: p.get('from') || 'now-7d',
    to: p.get('to') || 'now',
    q: p.get('q') || '',
    kind: p.get('kind') || '',
    ns: p.get('ns') || '',
    name: p.get('name') || '',
    uid: p.get('uid') || '',
    tail: p.get('tail') === '1',
  };
}

function urlFor(s) {
  const p = new URLSearchParams();
  if (s.view === 'object') {
    p.set('view', 'object');
    for (const k of ['kind', 'ns', 'name', 'uid']) if (s[k]) p.set(k, s[k]);
  } else {
    if (s.from !== 'now-7d') p.set('from', s.from);
    if (s.to !== 'now') p.set('to', s.to);
    if (s.q) p.set('q', s.q);
    if (s.tail) p.set('tail', '1');
  }
  const qs = p.toString();
  return location.pathname + (qs ? '?' + qs : '');
}

// go changes the view: the new state goes into the URL (a history entry),
// then the page renders it.
function go(change) {
  state = { ...state, ...change };
  history.pushState(null, '', urlFor(state));
  render();
}

// Unknown parameters are ignored, reported once, and dropped from the URL
// so that reloading does not report them again.
function reportUnknownParams() {
  const p = new URLSearchParams(location.search);
  const unknown = [...new Set([...p.keys()].filter((k) => !PARAMS.includes(k)))];
  if (!unknown.length) return;
  console.warn('eventpipe UI: ignoring unknown URL parameters', unknown);
  showNotice(`Ignored unknown URL parameter${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}`);
  history.replaceState(null, '', urlFor(readURL()));
}

// ---- field selectors ----------------------------------------------------

const escapeValue = (v) => v.replace(/[\\,=!()]/g, (c) => '\\' + c);

// splitTerms splits a selector at the commas that separate terms (not
// escaped, not inside a set's parentheses).
function splitTerms(sel) {
  const out = [];
  let cur = '', depth = 0;
  for (let i = 0; i < sel.length; i++) {
    const c = sel[i];
    if (c === '\\' && i + 1 < sel.length) { cur += c + sel[++i]; continue; }
    if (c === '(') depth++;
    if (c === ')') depth = Math.max(0, depth - 1);
    if (c === ',' && depth === 0) { if (cur.trim()) out.push(cur.trim()); cur = ''; continue; }
    cur += c;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

// equalityTerm reads "field=value" (or ==) and returns [field, raw value].
function equalityTerm(term) {
  const m = /^([A-Za-z.]+)\s*==?\s*(.*)$/.exec(term);
  if (!m || /^=/.test(m[2]) || term.includes('!=')) return null;
  return [m[1], m[2].trim()];
}

// toggleTerm adds field=value to sel, replaces another value of field, or
// removes the term when it is there already.
function toggleTerm(sel, field, value) {
  const want = escapeValue(value);
  const terms = splitTerms(sel);
  const i = terms.findIndex((t) => { const e = equalityTerm(t); return e && e[0] === field; });
  if (i >= 0 && equalityTerm(terms[i])[1] === want) terms.splice(i, 1);
  else if (i >= 0) terms[i] = `${field}=${want}`;
  else terms.push(`${field}=${want}`);
  return terms.join(',');
}

function hasTerm(sel, field, value) {
  const want = escapeValue(value);
  return splitTerms(sel).some((t) => { const e = equalityTerm(t); return e && e[0] === field && e[1] === want; });
}

const andSelector = (a, b) => (a ? a + ',' + b : b);

// ---- events, as rows -----------------------------------------------------

// normalize reads an events.k8s.io/v1 Event (EventQuery) or a core/v1
// Event (the watch) into what a row shows.
function normalize(ev) {
  const md = ev.metadata || {};
  const core = 'involvedObject' in ev || 'message' in ev || ev.apiVersion === 'v1';
  const obj = (core ? ev.involvedObject : ev.regarding) || {};
  const series = ev.series || {};
  const last = series.lastObservedTime || (core ? ev.lastTimestamp : ev.deprecatedLastTimestamp) || ev.eventTime ||
    (core ? ev.firstTimestamp : ev.deprecatedFirstTimestamp) || md.creationTimestamp;
  return {
    uid: md.uid || `${md.namespace}/${md.name}`,
    ns: md.namespace || '', name: md.name || '', rv: md.resourceVersion || '',
    kind: obj.kind || '', objNs: obj.namespace || '', objName: obj.name || '', objUid: obj.uid || '',
    reason: ev.reason || '', type: ev.type || '',
    message: (core ? ev.message : ev.note) || '',
    count: series.count || (core ? ev.count : ev.deprecatedCount) || 1,
    last: last ? new Date(last) : null,
    component: ev.reportingController || ev.reportingComponent || (ev.source || ev.deprecatedSource || {}).component || '',
    raw: ev, core,
  };
}

const fmtTime = (d) => (d ? d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z') : '');
const objectKey = (r) => `${r.kind}/${r.objNs}/${r.objName}`;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function objectURL(r) {
  return urlFor({ view: 'object', kind: r.kind, ns: r.objNs, name: r.objName, uid: r.objUid });
}

// A row is cloned from this template and its cells filled: at a thousand
// rows a second, cloning beats building each element.
let rowTemplate = null;

function newRow(r) {
  if (!rowTemplate) {
    rowTemplate = document.createElement('tr');
    rowTemplate.className = 'event';
    for (const c of ['time', 'type', 'reason', 'object', 'message', 'count']) rowTemplate.append(el('td', { class: c }));
    rowTemplate.cells[3].append(document.createElement('a'));
  }
  const tr = rowTemplate.cloneNode(true);
  fillRow(tr, r);
  return tr;
}

function fillRow(tr, r) {
  const c = tr.cells;
  c[0].textContent = fmtTime(r.last);
  c[1].textContent = r.type;
  c[1].className = 'type ' + (r.type === 'Warning' ? 'warning' : 'normal');
  c[2].textContent = r.reason;
  const a = c[3].firstChild;
  a.href = objectURL(r);
  a.textContent = `${r.kind} ${r.objNs ? r.objNs + '/' : ''}${r.objName}`;
  c[4].textContent = r.message;
  c[5].textContent = String(r.count);
  tr.dataset.uid = r.uid;
  tr.dataset.rv = r.rv;
  tr.dataset.reason = r.reason;
  tr._row = r;
}

// EventTable renders rows grouped by involved object, each group
// collapsible, each row expandable to the full event and its activities.
class EventTable {
  constructor(table, { grouped = true } = {}) {
    this.table = table;
    this.grouped = grouped;
    this.clear();
    table.addEventListener('click', (e) => this.onClick(e));
  }

  clear() {
    for (const tb of [...this.table.tBodies]) tb.remove();
    this.groups = new Map();
    this.rows = new Map(); // uid -> tr
    this.live = null;
    this.liveCount = 0;
  }

  group(r) {
    const key = this.grouped ? objectKey(r) : '';
    let g = this.groups.get(key);
    if (!g) {
      const head = el('tr', { class: 'group-head' });
      const tbody = el('tbody', { class: 'group', 'data-key': key }, head);
      g = { key, tbody, head, count: 0, sample: r };
      this.groups.set(key, g);
      this.table.append(tbody);
    }
    return g;
  }

  renderHead(g) {
    if (!this.grouped) { g.head.hidden = true; return; }
    const r = g.sample;
    g.head.replaceChildren(el('td', { colspan: 6 },
      el('button', { type: 'button', class: 'toggle', 'aria-expanded': String(!g.tbody.classList.contains('collapsed')), text: g.tbody.classList.contains('collapsed') ? '▸' : '▾' }),
      ' ', el('a', { href: objectURL(r), class: 'object-link', text: `${r.kind} ${r.objNs ? r.objNs + '/' : ''}${r.objName}` }),
      ' ', el('span', { class: 'group-count', text: `${g.count} event${g.count === 1 ? '' : 's'}` })));
  }

  add(rows) {
    const touched = new Set();
    for (const r of rows) {
      if (this.rows.has(r.uid)) { this.update(r); continue; }
      const g = this.group(r);
      const tr = newRow(r);
      g.tbody.append(tr);
      g.count++;
      this.rows.set(r.uid, tr);
      touched.add(g);
    }
    for (const g of touched) this.renderHead(g);
  }

  // update replaces a shown row's cells in place; false when not shown.
  update(r, deleted = false) {
    const tr = this.rows.get(r.uid);
    if (!tr) return false;
    fillRow(tr, r);
    tr.classList.toggle('deleted', deleted);
    flash(tr);
    const d = tr.nextElementSibling;
    if (d && d.classList.contains('detail')) { d.remove(); }
    return true;
  }

  // prependLive inserts rows (newest last in the array) at the top of the
  // live group, keeping it at most TAIL_MAX_ROWS long.
  prependLive(rows, skipped) {
    if (!this.live) {
      const head = el('tr', { class: 'group-head live-head' });
      const tbody = el('tbody', { class: 'group live', 'data-key': 'live' }, head);
      this.live = { tbody, head };
      this.table.insertBefore(tbody, this.table.tBodies[0] || null);
    }
    const frag = document.createDocumentFragment();
    for (let i = rows.length - 1; i >= 0; i--) {
      const tr = newRow(rows[i]);
      tr.classList.add('live-row');
      // A CSS animation from a class costs no style recalculation now; a
      // burst is not worth animating row by row.
      if (rows.length <= 50) tr.classList.add('new');
      this.rows.set(rows[i].uid, tr);
      frag.append(tr);
    }
    this.live.head.after(frag);
    this.liveCount += rows.length;
    const trs = this.live.tbody.querySelectorAll('tr.event');
    for (let i = TAIL_MAX_ROWS; i < trs.length; i++) {
      this.rows.delete(trs[i].dataset.uid);
      const d = trs[i].nextElementSibling;
      if (d && d.classList.contains('detail')) d.remove();
      trs[i].remove();
    }
    const more = skipped ? `; ${skipped} more arrived faster than shown (turn the tail off to see them in the table)` : '';
    this.live.head.replaceChildren(el('td', { colspan: 6, text: `Live: ${this.liveCount} new event${this.liveCount === 1 ? '' : 's'} since the tail started${more}` }));
  }

  onClick(e) {
    const toggle = e.target.closest('button.toggle');
    if (toggle) {
      const tb = toggle.closest('tbody');
      tb.classList.toggle('collapsed');
      this.renderHead(this.groups.get(tb.dataset.key));
      return;
    }
    if (e.target.closest('a')) return;
    const tr = e.target.closest('tr.event');
    if (!tr) return;
    const next = tr.nextElementSibling;
    if (next && next.classList.contains('detail')) { next.remove(); tr.classList.remove('open'); return; }
    tr.classList.add('open');
    const r = tr._row;
    const acts = el('div', { class: 'activities-of-event', text: 'Loading activities…' });
    const detail = el('tr', { class: 'detail' }, el('td', { colspan: 6 },
      el('div', { class: 'detail-grid' },
        el('div', {}, el('h3', { text: 'Event' }), el('pre', { class: 'yaml', text: toYAML(withKind(r)) })),
        el('div', {}, el('h3', { text: 'Activities' }), acts,
          el('p', {}, el('a', { href: objectURL(r), text: 'All events of this object →' }))))));
    tr.after(detail);
    loadActivities(r, (a) => a.spec && a.spec.origin && a.spec.origin.eventName === r.name).then((list) => renderActivities(acts, list));
  }
}

// flash highlights a row that changed (Web Animations: no forced layout).
function flash(tr) {
  tr.animate([{ backgroundColor: '#fff3a8' }, { backgroundColor: 'transparent' }], { duration: 1500, easing: 'ease-out' });
}

function withKind(r) {
  const ev = r.raw;
  return { apiVersion: ev.apiVersion || (r.core ? 'v1' : 'events.k8s.io/v1'), kind: ev.kind || 'Event', ...ev };
}

// toYAML prints a JSON value as YAML (block style; strings quoted when
// YAML would read them as something else).
function toYAML(v, indent = '') {
  const scalar = (x) => {
    if (x === null || x === undefined) return 'null';
    if (typeof x !== 'string') return String(x);
    if (x === '' || /^[\s\-?:,[\]{}#&*!|>'"%@`~]|[:#]\s|\s$|^(true|false|null|yes|no|on|off|~)$|^[-+.\d]/i.test(x) || x.includes('\n')) return JSON.stringify(x);
    return x;
  };
  if (Array.isArray(v)) {
    if (!v.length) return '[]';
    return v.map((x) => {
      if (x && typeof x === 'object' && Object.keys(x).length) {
        const inner = toYAML(x, indent + '  ');
        return `${indent}- ${inner.slice(indent.length + 2)}`;
      }
      return `${indent}- ${toYAML(x, indent + '  ').trimStart()}`;
    }).join('\n');
  }
  if (v && typeof v === 'object') {
    const keys = Object.keys(v);
    if (!keys.length) return '{}';
    return keys.map((k) => {
      const x = v[k];
      if (x && typeof x === 'object' && (Array.isArray(x) ? x.length : Object.keys(x).length)) {
        return `${indent}${k}:\n${toYAML(x, Array.isArray(x) ? indent : indent + '  ')}`;
      }
      return `${indent}${k}: ${toYAML(x, indent + '  ').trimStart()}`;
    }).join('\n');
  }
  return indent + scalar(v);
}

// ---- activities ----------------------------------------------------------

async function loadActivities(r, keep) {
  const sel = `spec.resource.kind=${escapeValue(r.kind)},spec.resource.name=${escapeValue(r.objName)}`;
  const base = r.objNs ? `${GROUP}/namespaces/${encodeURIComponent(r.objNs)}/activities` : `${GROUP}/activities`;
  try {
    const list = await api('GET', `${base}?limit=500&fieldSelector=${encodeURIComponent(sel)}`);
    return (list.items || []).filter(keep);
  } catch (e) {
    return e;
  }
}

function renderActivities(container, list) {
  if (list instanceof Error) {
    container.replaceChildren(el('span', { class: 'error', text: `Activities: ${list.message}` }));
    return;
  }
  if (!list.length) { container.replaceChildren(el('span', { class: 'hint', text: 'No activities.' })); return; }
  list.sort((a, b) => String(b.spec.lastSeen || '').localeCompare(String(a.spec.lastSeen || '')));
  container.replaceChildren(el('ul', { class: 'activities' }, ...list.map((a) =>
    el('li', { class: 'activity' }, el('span', { class: 'time', text: fmtTime(a.spec.lastSeen ? new Date(a.spec.lastSeen) : null) }), ' ',
      el('span', { class: 'summary', text: a.spec.summary || '' }),
      a.spec.count > 1 ? el('span', { class: 'hint', text: ` ×${a.spec.count}` }) : null))));
}

// ---- banners and errors ---------------------------------------------------

let retryTimer = null;
let retries = 0; // busy answers in a row, for the back-off

function showNotice(text) {
  $('notice-text').textContent = text;
  $('notice').hidden = false;
}

function hideBanner() {
  retries = 0;
  $('banner').hidden = true;
  clearTimeout(retryTimer);
  retryTimer = null;
}

// busy shows a retry banner for a 429, a 503 or an unreachable server, and
// renders again after the server's Retry-After, or else after 5 s doubling
// with each busy answer in a row (at most a minute): a query that ran out
// of time is not sent again and again while the server is still loaded.
function busy(err) {
  const backoff = Math.min(5 * 2 ** retries, 60);
  retries++;
  const secs = Math.min(Math.max(parseInt(err.retryAfter, 10) || backoff, 1), 60);
  const what = err.status ? `The API server answered ${err.status}: ${err.message}.` : `${err.message}.`;
  $('banner-text').textContent = `${what} Retrying in ${secs} s.`;
  $('banner').hidden = false;
  clearTimeout(retryTimer);
  retryTimer = setTimeout(() => { retryTimer = null; render(); }, secs * 1000);
}

function showLogin(message) {
  stopTail();
  for (const id of ['timeline-view', 'object-view']) $(id).hidden = true;
  hideBanner();
  $('login').hidden = false;
  $('login-error').textContent = message || '';
  $('logout').hidden = true;
  $('who').textContent = '';
}

// handle deals with the errors every view shares; it returns false for
// those the caller shows where they belong (a 400/422 on its input).
function handle(err) {
  if (err.name === 'AbortError') return true;
  if (err.status === 401 || (err.status === 403 && !token())) {
    showLogin(`The API server answered ${err.status}: ${err.message}`);
    return true;
  }
  if (err.status === 0 || err.status === 429 || err.status === 503 || err.status === 504) { busy(err); return true; }
  return false;
}

function showError(id, err) {
  const p = $(id);
  if (!err) { p.hidden = true; p.textContent = ''; return; }
  p.textContent = typeof err === 'string' ? err : `${err.status ? err.status + ': ' : ''}${err.message}`;
  p.hidden = false;
}

// ---- the timeline view ---------------------------------------------------

let chart = null;
let table = null;
let viewAbort = null;
let pages = null; // {spec, continue, loading}
let lastWindow = null; // {start: Date, end: Date} of the shown histogram

function clampToNow(d) { return d > Date.now() ? new Date(Date.now() - 1000) : d; }
const isoSeconds = (d) => new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');

function describeRange(s) {
  if (s.to === 'now' && /^now-/.test(s.from)) return `last ${s.from.slice(4)}`;
  return `${s.from} → ${s.to}`;
}

async function renderTimeline() {
  $('timeline-view').hidden = false;
  $('object-view').hidden = true;
  $('selector').value = state.q;
  $('range-text').textContent = describeRange(state);
  for (const b of document.querySelectorAll('#ranges button')) b.classList.toggle('active', state.to === 'now' && state.from === 'now-' + b.dataset.range);
  if (viewAbort) viewAbort.abort();
  viewAbort = new AbortController();
  const signal = viewAbort.signal;
  const spec = { startTime: state.from, endTime: state.to };
  if (state.q) spec.fieldSelector = state.q;
  const t0 = performance.now();
  const main = createQuery('eventfacetqueries', { ...spec, facets: FACETS.map((f) => ({ field: f.field, limit: 10 })), histogram: {} }, signal);
  // The Warning series needs its own histogram, unless the selector already
  // says which type (then it is all of the total, or none of it).
  const pinned = splitTerms(state.q).map(equalityTerm).filter((e) => e && e[0] === 'type').map((e) => e[1]);
  const warn = pinned.length ? main.then((f) => (pinned.every((v) => v === 'Warning') ? f : { status: {} }))
    : createQuery('eventfacetqueries', { ...spec, fieldSelector: andSelector(state.q, 'type=Warning'), facets: [{ field: 'type', limit: 1 }], histogram: {} }, signal);
  const first = createQuery('eventqueries', { ...spec, limit: PAGE_SIZE }, signal);
  let facets, warnings, page;
  try {
    // All three run at once; a failure is reported as the main query's
    // (the others add to its selector, so their messages would differ).
    const settled = await Promise.allSettled([main, warn, first]);
    const failed = settled.find((r) => r.status === 'rejected');
    if (failed) throw failed.reason;
    [facets, warnings, page] = settled.map((r) => r.value);
  } catch (err) {
    if (handle(err)) return;
    // The API's 400/422 message, where the input that caused it is;
    // what is on the page stays.
    const onSelector = err.fields().some((f) => f.includes('fieldSelector'));
    showError(onSelector ? 'selector-error' : 'range-error', err);
    showError(onSelector ? 'range-error' : 'selector-error', null);
    return;
  }
  hideBanner();
  showError('selector-error', null);
  showError('range-error', null);
  $('logout').hidden = !token();
  drawChart(facets.status, warnings.status);
  drawFacets(facets.status);
  $('total').textContent = `${(facets.status.total || 0).toLocaleString('en')} events`;
  $('total').dataset.total = String(facets.status.total || 0);
  table.clear();
  pages = { spec, continue: page.status.continue || '', loading: false };
  table.add((page.status.results || []).map(normalize));
  moreText();
  document.body.dataset.firstViewMs = String(Math.round(performance.now() - t0));
  document.body.dataset.loaded = String((Number(document.body.dataset.loaded) || 0) + 1);
  if (state.tail) startTail(); else stopTail();
}

function moreText() {
  $('more').textContent = pages.continue ? 'Scroll for more…' : (table.rows.size ? 'End of the range.' : 'No events in this range.');
}

async function nextPage() {
  if (!pages || !pages.continue || pages.loading || state.view !== 'timeline') return;
  pages.loading = true;
  const p = pages;
  try {
    const page = await createQuery('eventqueries', { ...p.spec, limit: PAGE_SIZE, continue: p.continue }, viewAbort.signal);
    if (p !== pages) return;
    p.continue = page.status.continue || '';
    table.add((page.status.results || []).map(normalize));
    moreText();
  } catch (err) {
    if (!handle(err)) showError('range-error', err);
  } finally {
    p.loading = false;
  }
}

function drawChart(st, warnSt) {
  const buckets = (st.histogram && st.histogram.buckets) || [];
  const wb = (warnSt.histogram && warnSt.histogram.buckets) || [];
  const warnAt = new Map(wb.map((b) => [Date.parse(b.startTime) / 1000, b.count]));
  const xs = buckets.map((b) => Date.parse(b.startTime) / 1000);
  const total = buckets.map((b) => b.count);
  const warning = xs.map((x, i) => Math.min(warnAt.get(x) || 0, total[i]));
  lastWindow = { start: new Date(st.effectiveStartTime), end: new Date(st.effectiveEndTime) };
  const container = $('chart');
  container.dataset.buckets = String(buckets.length);
  container.dataset.sum = String(total.reduce((a, b) => a + b, 0));
  container.dataset.days = [...new Set(xs.filter((x, i) => total[i] > 0).map((x) => new Date(x * 1000).toISOString().slice(0, 10)))].join(',');
  const step = xs.length > 1 ? xs[1] - xs[0] : 3600;
  const data = [xs, total, warning];
  if (chart) { chart.destroy(); chart = null; }
  const width = Math.max(container.clientWidth, 300);
  // Normal stacks on Warning: the total is drawn first, Warning over its
  // lower part.
  const bars = uPlot.paths.bars({ size: [0.9, 64], align: 1 });
  chart = new uPlot({
    width, height: 200,
    tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
    scales: { x: { time: true, range: () => [lastWindow.start.getTime() / 1000, lastWindow.end.getTime() / 1000] } },
    cursor: { drag: { x: true, y: false, setScale: false } },
    legend: { live: true },
    series: [
      { label: 'UTC' },
      { label: 'Normal', fill: '#7aa6d8', stroke: '#4a7bb5', paths: bars, points: { show: false }, value: (u, v, si, i) => (i == null ? '' : String(u.data[1][i] - u.data[2][i])) },
      { label: 'Warning', fill: '#e0875a', stroke: '#c0602f', paths: bars, points: { show: false } },
    ],
    axes: [{}, { size: 50 }],
    hooks: {
      setSelect: [(u) => {
        const { left, width: w } = u.select;
        if (w < 4) return;
        const from = new Date(u.posToVal(left, 'x') * 1000);
        const to = clampToNow(new Date(Math.ceil(u.posToVal(left + w, 'x')) * 1000));
        u.setSelect({ left: 0, width: 0, top: 0, height: 0 }, false);
        if (to - from < 1000) return;
        go({ from: isoSeconds(from), to: isoSeconds(to) });
      }],
    },
  }, data, container);
  chart.bucketSeconds = step;
}

function drawFacets(st) {
  const byField = new Map((st.facets || []).map((f) => [f.field, f.values || []]));
  const box = $('facets');
  box.replaceChildren(...FACETS.filter((f) => byField.has(f.field)).map((f) => {
    const values = byField.get(f.field);
    return el('section', { class: 'facet', 'data-field': f.field },
      el('h3', { text: f.label }),
      values.length ? el('ul', {}, ...values.map((v) => el('li', {},
        el('button', {
          type: 'button', class: 'facet-value' + (hasTerm(state.q, f.selector, v.value) ? ' active' : ''),
          'data-field': f.field, 'data-value': v.value, 'data-count': String(v.count),
          onclick: () => go({ q: toggleTerm(state.q, f.selector, v.value) }),
        }, el('span', { class: 'v', text: v.value }), el('span', { class: 'c', text: v.count.toLocaleString('en') })))))
        : el('p', { class: 'hint', text: 'none' }));
  }));
}

function pan(direction) {
  if (!lastWindow) return;
  const w = lastWindow.end - lastWindow.start;
  let from = new Date(lastWindow.start.getTime() + direction * w / 2);
  let to = new Date(from.getTime() + w);
  if (to > Date.now()) { go({ from: `now-${Math.round(w / 1000)}s`, to: 'now' }); return; }
  go({ from: isoSeconds(from), to: isoSeconds(to) });
}

// ---- live tail -----------------------------------------------------------

let tail = null; // {abort, rv}

function stopTail() {
  if (tail) { tail.abort.abort(); tail = null; }
  $('tail').checked = false;
  document.body.dataset.tail = 'off';
}

function startTail() {
  $('tail').checked = true;
  if (tail && tail.q === state.q) return;
  if (tail) tail.abort.abort();
  tail = { abort: new AbortController(), rv: '', q: state.q, queue: [], scheduled: false, received: 0, skipped: 0 };
  document.body.dataset.tail = 'starting';
  showError('tail-error', null);
  tailLoop(tail);
}

const eventsPath = (t, extra) => `/api/v1/events?${new URLSearchParams({ ...(t.q ? { fieldSelector: t.q } : {}), ...extra })}`;

// relist reads the Events API's current state (a list) and returns its
// resourceVersion to watch from. After a 410 it also brings the page up to
// date: rows shown whose state changed are refreshed, and events written
// after the last state the watch delivered (t.gapFrom; eventpipe's
// resourceVersions are log positions, so they compare as numbers) are added.
async function relist(t) {
  const list = await api('GET', eventsPath(t, { limit: '500' }), null, t.abort.signal);
  const rows = (list.items || []).map(normalize);
  const from = Number(t.gapFrom);
  for (const r of rows) {
    const tr = table.rows.get(r.uid);
    if (tr) {
      if (tr.dataset.rv !== r.rv) enqueue(t, { type: 'MODIFIED', row: r });
    } else if (t.gapFrom && Number(r.rv) > from) {
      enqueue(t, { type: 'ADDED', row: r });
    }
  }
  t.gapFrom = '';
  return list.metadata.resourceVersion;
}

async function tailLoop(t) {
  let backoff = 500;
  while (tail === t) {
    try {
      if (!t.rv) t.rv = await relist(t);
      const resp = await fetch(eventsPath(t, { watch: '1', allowWatchBookmarks: 'true', resourceVersion: t.rv }),
        { headers: authHeaders(), signal: t.abort.signal, credentials: 'same-origin' });
      if (!resp.ok) {
        let st = null;
        try { st = await resp.json(); } catch { /* not JSON */ }
        throw new APIError(resp.status, st && st.kind === 'Status' ? st : { message: resp.statusText }, resp.headers.get('Retry-After'));
      }
      document.body.dataset.tail = 'watching';
      backoff = 500;
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        // One watch event per line; split each chunk once (a chunk can
        // hold hundreds of events at a high rate).
        const lines = (buf + value).split('\n');
        buf = lines.pop();
        for (const line of lines) if (line.trim()) onWatchEvent(t, JSON.parse(line));
      }
      // The server ended the watch (a timeout or a dropped connection):
      // resume from the last resourceVersion.
    } catch (err) {
      if (err.name === 'AbortError' || tail !== t) return;
      if (err.status === 410) { t.gapFrom = t.rv; t.rv = ''; continue; }
      if (err.status === 400 || err.status === 422 || err.status === 403) {
        showError('tail-error', `Live tail stopped: ${err.status}: ${err.message}`);
        stopTail();
        return;
      }
      if (err.status === 401) { handle(err); return; }
      document.body.dataset.tail = 'reconnecting';
      await new Promise((res) => setTimeout(res, backoff));
      backoff = Math.min(backoff * 2, 10000);
    }
  }
}

function onWatchEvent(t, we) {
  if (we.type === 'ERROR') {
    const code = we.object && we.object.code;
    throw new APIError(code || 500, we.object);
  }
  const md = (we.object && we.object.metadata) || {};
  if (md.resourceVersion) t.rv = md.resourceVersion;
  if (we.type === 'BOOKMARK') return;
  t.received++;
  enqueue(t, { type: we.type, row: normalize(we.object) });
}

// enqueue collects watch events and applies them in one DOM update per
// animation frame (and at least every 250 ms when frames are throttled),
// so a fast stream costs one layout per frame, not one per event.
function enqueue(t, item) {
  t.queue.push(item);
  enqueueFlush(t);
}

function enqueueFlush(t) {
  if (t.scheduled) return;
  t.scheduled = true;
  const run = () => { if (!t.scheduled) return; t.scheduled = false; flush(t); };
  requestAnimationFrame(run);
  setTimeout(run, 250);
}

// scrolledDown follows scroll events, so that a flush need not read the
// scroll position (which would force a layout) to know.
let scrolledDown = false;
window.addEventListener('scroll', () => { scrolledDown = window.scrollY > 0; }, { passive: true });

// FLUSH_MAX_ROWS bounds one frame's work; the rest waits for the next
// frame. The queue never holds more than the live group shows.
const FLUSH_MAX_ROWS = 100;

function flush(t) {
  if (tail !== t || !t.queue.length) return;
  if (t.queue.length > TAIL_MAX_ROWS) {
    // Older than the newest TAIL_MAX_ROWS: they would be trimmed at once.
    t.skipped += t.queue.length - TAIL_MAX_ROWS;
    t.queue = t.queue.slice(-TAIL_MAX_ROWS);
  }
  const items = t.queue.slice(0, FLUSH_MAX_ROWS);
  t.queue = t.queue.slice(FLUSH_MAX_ROWS);
  if (t.queue.length) enqueueFlush(t);
  document.body.dataset.tailFlushMaxRows = String(Math.max(Number(document.body.dataset.tailFlushMaxRows) || 0, items.length));
  const t0 = performance.now();
  // Keep what the user is looking at where it is: remember the first row
  // in view and restore its position after the insert.
  let anchor = null, anchorTop = 0;
  if (scrolledDown) {
    for (const tr of table.table.querySelectorAll('tr.event')) {
      const top = tr.getBoundingClientRect().top;
      if (top >= 0) { anchor = tr; anchorTop = top; break; }
    }
  }
  const latest = new Map();
  for (const it of items) latest.set(it.row.uid, it);
  const fresh = [];
  for (const it of latest.values()) {
    if (table.update(it.row, it.type === 'DELETED')) continue;
    if (it.type !== 'DELETED') fresh.push(it.row);
  }
  if (fresh.length) table.prependLive(fresh, t.skipped);
  if (anchor && anchor.isConnected) window.scrollBy(0, anchor.getBoundingClientRect().top - anchorTop);
  const took = performance.now() - t0;
  document.body.dataset.tailFlushMaxMs = String(Math.max(Number(document.body.dataset.tailFlushMaxMs) || 0, Math.round(took)));
  document.body.dataset.tailReceived = String(t.received);
  document.body.dataset.tailSkipped = String(t.skipped);
  document.body.dataset.tailFlushes = String((Number(document.body.dataset.tailFlushes) || 0) + 1);
}

// ---- the object page -----------------------------------------------------

let objectTable = null;
let queryWindow = null;

// tierWindow is how far back the caller may query: its tier's queryWindow
// (tenantusages) when it has exactly one tenant, else 60 days.
async function tierWindow() {
  if (queryWindow) return queryWindow;
  try {
    const list = await api('GET', `${GROUP}/tenantusages`);
    const items = list.items || [];
    if (items.length === 1 && items[0].status && items[0].status.queryWindow) queryWindow = items[0].status.queryWindow;
  } catch { /* not served, or not allowed: the default */ }
  return queryWindow || (queryWindow = '60d');
}

async function renderObject() {
  $('timeline-view').hidden = true;
  $('object-view').hidden = false;
  stopTail();
  if (viewAbort) viewAbort.abort();
  viewAbort = new AbortController();
  const signal = viewAbort.signal;
  const s = state;
  $('object-title').textContent = `${s.kind} ${s.ns ? s.ns + '/' : ''}${s.name}`;
  showError('object-error', null);
  objectTable.clear();
  $('object-activities').replaceChildren();
  let sel = `involvedObject.kind=${escapeValue(s.kind)},involvedObject.name=${escapeValue(s.name)}`;
  if (s.ns) sel += `,involvedObject.namespace=${escapeValue(s.ns)}`;
  if (s.uid) sel += `,involvedObject.uid=${escapeValue(s.uid)}`;
  const win = await tierWindow();
  const spec = { startTime: `now-${win}`, endTime: 'now', fieldSelector: sel, limit: 1000 };
  const acts = loadActivities({ kind: s.kind, objNs: s.ns, objName: s.name }, (a) => !s.uid || !a.spec.resource || !a.spec.resource.uid || a.spec.resource.uid === s.uid);
  let cont = '';
  let n = 0;
  try {
    do {
      const page = await createQuery('eventqueries', { ...spec, ...(cont ? { continue: cont } : {}) }, signal);
      const rows = (page.status.results || []).map(normalize);
      objectTable.add(rows);
      n += rows.length;
      cont = page.status.continue || '';
      $('object-summary').textContent = `${n} event${n === 1 ? '' : 's'} in the last ${win}${cont ? ' (loading more…)' : ''}, whether or not the object still exists.`;
    } while (cont && n < 20000);
  } catch (err) {
    if (!handle(err)) showError('object-error', err);
    return;
  }
  hideBanner();
  $('object-more').textContent = n ? '' : 'No events for this object in the window.';
  const list = await acts;
  renderActivities($('object-activities'), list);
  document.body.dataset.loaded = String((Number(document.body.dataset.loaded) || 0) + 1);
}

// ---- wiring --------------------------------------------------------------

function render() {
  $('login').hidden = true;
  $('who').textContent = token() ? 'token' : 'no token (proxy)';
  if (state.view === 'object') renderObject(); else renderTimeline();
}

function init() {
  takeTokenFromFragment();
  reportUnknownParams();
  state = readURL();
  table = new EventTable($('events'));
  objectTable = new EventTable($('object-events'), { grouped: false });

  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $('login-token').value.trim());
    $('login-token').value = '';
    render();
  });
  $('logout').addEventListener('click', () => { sessionStorage.removeItem(TOKEN_KEY); showLogin('Logged out.'); });
  $('filter-form').addEventListener('submit', (e) => { e.preventDefault(); go({ q: $('selector').value.trim() }); });
  $('clear-filter').addEventListener('click', () => go({ q: '' }));
  for (const b of document.querySelectorAll('#ranges button')) {
    b.addEventListener('click', () => go({ view: 'timeline', from: 'now-' + b.dataset.range, to: 'now' }));
  }
  $('pan-left').addEventListener('click', () => pan(-1));
  $('pan-right').addEventListener('click', () => pan(1));
  // The tail starts and stops without reloading the view: filters, rows and
  // scroll position stay.
  $('tail').addEventListener('change', (e) => {
    state = { ...state, tail: e.target.checked };
    history.replaceState(null, '', urlFor(state));
    if (state.tail) startTail(); else stopTail();
  });
  $('banner-retry').addEventListener('click', () => { clearTimeout(retryTimer); retryTimer = null; render(); });
  $('notice-close').addEventListener('click', () => { $('notice').hidden = true; });
  $('home').addEventListener('click', (e) => { e.preventDefault(); go({ view: 'timeline' }); });
  $('back').addEventListener('click', (e) => { e.preventDefault(); go({ view: 'timeline' }); });
  // Links inside the page change the view without a reload.
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href^="?"], a[href^="/ui/"]');
    if (!a || e.ctrlKey || e.metaKey || e.shiftKey || a.id === 'home' || a.id === 'back') return;
    e.preventDefault();
    history.pushState(null, '', a.getAttribute('href'));
    state = readURL();
    render();
  });
  window.addEventListener('popstate', () => { state = readURL(); render(); });
  new IntersectionObserver((entries) => { if (entries.some((e) => e.isIntersecting)) nextPage(); }).observe($('more'));
  let resizeTimer = null;
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (chart) chart.setSize({ width: Math.max($('chart').clientWidth, 300), height: 200 }); }, 100);
  });
  render();
}

init();
