// The raftq web console: one page, no dependencies. It reads the node's
// /ui/api/ (a gateway to the gRPC API with the token typed in here) and
// redraws every POLL_MS while the tab is visible. Everything a message
// carries is put on the page as text (textContent), never as HTML.
'use strict';

const POLL_MS = 2000;
// Samples of each queue's counters kept for rates and sparklines: 5 minutes.
const HISTORY_MAX = 150;
const TOKEN_KEY = 'raftq.console.token';

const main = document.getElementById('main');
let session = null;
let pollTimer = null;
let renderSeq = 0;
// queue name -> [{t, published, delivered, acked}], oldest first.
const history = new Map();

// ---- helpers --------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const child of children.flat()) {
    if (child !== undefined && child !== null) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function enc(s) { return encodeURIComponent(s); }

function fmtInt(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US'); }
function fmtRate(r) { return r === null || r === undefined ? '–' : r < 10 ? r.toFixed(1) : Math.round(r).toLocaleString('en-US'); }
function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}
function fmtAge(ms) {
  if (ms === null || ms === undefined) return '–';
  if (ms === 0) return '0';
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 120) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}
function fmtTime(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', ' UTC') : '–'; }

function toast(text, isError) {
  const t = document.getElementById('toast');
  t.textContent = text;
  t.className = isError ? 'error' : '';
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, isError ? 8000 : 4000);
}

class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.code = body.code || '';
    this.reason = body.reason || '';
  }
}

async function api(method, path, body) {
  const headers = { 'x-raftq-console': '1' };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`/ui/api/${path}`, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
  });
  let json = {};
  try { json = await response.json(); } catch (_) { /* empty or not JSON */ }
  if (!response.ok) throw new ApiError(response.status, json);
  return json;
}

function errorBox(e) {
  const what = e.code ? `${e.code}${e.reason ? ` (${e.reason})` : ''}: ` : '';
  return el('p', { class: 'error', 'data-error': e.code || 'error' }, what + e.message);
}

// Runs an action, reports its outcome, and redraws the page.
async function act(label, method, path, body, button) {
  // A second click while the first is under way would do it twice.
  if (button) button.disabled = true;
  try {
    const result = await api(method, path, body);
    toast(`${label}: done ${JSON.stringify(result)}`);
  } catch (e) {
    if (e.status === 401) return signIn();
    toast(`${label} refused: ${e.code ? e.code + ': ' : ''}${e.message}`, true);
  } finally {
    if (button) button.disabled = false;
  }
  await refresh();
  if (queueView.name && document.getElementById('peek')) loadPeek(queueView.name);
}

function record(name, t, stats) {
  let h = history.get(name);
  if (!h) { h = []; history.set(name, h); }
  if (h.length && h[h.length - 1].t >= t) return;
  h.push({ t, published: stats.published_total, delivered: stats.delivered_total, acked: stats.acked_total });
  if (h.length > HISTORY_MAX) h.shift();
}

// Per-second rates between consecutive samples: [{t, publish, deliver, ack}].
function rates(name) {
  const h = history.get(name) || [];
  const out = [];
  for (let i = 1; i < h.length; i += 1) {
    const dt = (h[i].t - h[i - 1].t) / 1000;
    if (dt <= 0) continue;
    out.push({
      t: h[i].t,
      publish: Math.max(0, (h[i].published - h[i - 1].published) / dt),
      deliver: Math.max(0, (h[i].delivered - h[i - 1].delivered) / dt),
      ack: Math.max(0, (h[i].acked - h[i - 1].acked) / dt),
    });
  }
  return out;
}

function sparkline(values, width, height) {
  const box = svg('svg', { class: 'spark', width, height, viewBox: `0 0 ${width} ${height}` });
  if (values.length < 2) return box;
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const points = values.map((v, i) => `${(i * step).toFixed(1)},${(height - 1 - (v / max) * (height - 2)).toFixed(1)}`);
  box.append(svg('polyline', { points: points.join(' ') }));
  return box;
}

function rateChart(series) {
  const width = 640, height = 160, pad = 30;
  const chart = svg('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}` });
  if (series.length < 2) {
    chart.append(svg('text', { x: 12, y: 24 }, 'Rates appear after a few refreshes (kept for 5 minutes while this page is open).'));
    return chart;
  }
  const t0 = series[0].t, t1 = series[series.length - 1].t;
  const max = Math.max(1, ...series.map((s) => Math.max(s.publish, s.deliver, s.ack)));
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (width - pad - 8);
  const y = (v) => height - 18 - (v / max) * (height - 30);
  chart.append(svg('text', { x: 4, y: 14 }, `${fmtRate(max)}/s`));
  chart.append(svg('text', { x: 4, y: height - 4 }, `${Math.round((t1 - t0) / 1000)} s`));
  for (const key of ['publish', 'deliver', 'ack']) {
    const points = series.map((s) => `${x(s.t).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ');
    chart.append(svg('polyline', { class: `s-${key}`, points }));
  }
  return chart;
}

function last(a) { return a.length ? a[a.length - 1] : null; }

// ---- pages ----------------------------------------------------------------

function signIn(message) {
  stopPolling();
  // Whatever is still loading belongs to the previous page (or user).
  renderSeq += 1;
  current = null;
  setNav('');
  const input = el('input', { type: 'password', id: 'token', autocomplete: 'off', placeholder: 'rq_…' });
  const form = el('form', { class: 'login card', id: 'sign-in' },
    el('h1', {}, 'Sign in'),
    el('p', {}, 'This cluster has auth on. Paste a token made with ',
      el('code', {}, 'raftq auth token'),
      '. It is kept in this tab only and sent with every request, as the CLI sends it.'),
    message ? el('p', { class: 'error' }, message) : null,
    input,
    el('button', { class: 'primary', type: 'submit' }, 'Sign in'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value.trim());
    await start();
  });
  main.replaceChildren(form);
  input.focus();
}

function setNav(active) {
  for (const id of ['cluster', 'queues', 'topics']) {
    document.getElementById(`nav-${id}`).classList.toggle('active', id === active);
  }
}

async function pageQueues(seq, first) {
  setNav('queues');
  const data = await api('GET', 'queues');
  if (seq !== renderSeq) return;
  for (const q of data.queues) record(q.name, data.read_at_ms, q.stats);
  const listed = new Set(data.queues.map((q) => q.name));
  for (const name of history.keys()) if (!listed.has(name)) history.delete(name);
  let filter = document.getElementById('queue-filter');
  const filterValue = filter ? filter.value : '';
  filter = el('input', { id: 'queue-filter', type: 'search', placeholder: 'Filter by name', value: filterValue });
  filter.addEventListener('input', () => draw());
  const tbody = el('tbody', { id: 'queue-rows' });
  const table = el('table', { id: 'queues' },
    el('thead', {}, el('tr', {},
      el('th', {}, 'Queue'), el('th', { class: 'num' }, 'Ready'), el('th', { class: 'num' }, 'Leased'),
      el('th', { class: 'num' }, 'Delayed'), el('th', { class: 'num' }, 'Dead'), el('th', { class: 'num' }, 'Bytes'),
      el('th', { class: 'num' }, 'Oldest ready'), el('th', { class: 'num' }, 'Publish/s'),
      el('th', { class: 'num' }, 'Deliver/s'), el('th', { class: 'num' }, 'Ack/s'), el('th', {}, 'Publish rate'))),
    tbody);
  function draw() {
    const needle = filter.value.trim();
    const rows = document.createDocumentFragment();
    let shown = 0;
    for (const q of data.queues) {
      if (needle && !q.name.includes(needle)) continue;
      shown += 1;
      const r = rates(q.name);
      const now = last(r);
      const s = q.stats;
      rows.append(el('tr', { 'data-queue': q.name },
        el('td', {}, el('a', { href: `#/queues/${encodeURIComponent(q.name)}` }, q.name)),
        el('td', { class: 'num', 'data-field': 'ready' }, fmtInt(s.ready)),
        el('td', { class: 'num', 'data-field': 'leased' }, fmtInt(s.leased)),
        el('td', { class: 'num', 'data-field': 'delayed' }, fmtInt(s.delayed)),
        el('td', { class: 'num', 'data-field': 'dead' }, fmtInt(s.dead)),
        el('td', { class: 'num' }, fmtBytes(s.total_bytes)),
        el('td', { class: 'num' }, fmtAge(s.oldest_ready_age_ms)),
        el('td', { class: 'num' }, fmtRate(now && now.publish)),
        el('td', { class: 'num' }, fmtRate(now && now.deliver)),
        el('td', { class: 'num' }, fmtRate(now && now.ack)),
        el('td', {}, sparkline(r.map((x) => x.publish), 90, 18))));
    }
    tbody.replaceChildren(rows);
    count.textContent = `${shown} of ${data.queues.length} queues · read ${fmtTime(data.read_at_ms)}`;
  }
  const count = el('span', { class: 'muted' });
  const focused = document.activeElement && document.activeElement.id === 'queue-filter';
  main.replaceChildren(el('h1', {}, 'Queues'), el('div', { class: 'toolbar' }, filter, count),
    data.queues.length ? table : el('p', { class: 'muted' }, 'No queues you may see. Create one with raftq queue create NAME.'));
  draw();
  if (focused) { filter.focus(); filter.setSelectionRange(filter.value.length, filter.value.length); }
  if (first) {
    performance.mark('raftq-queues-rendered');
    document.body.dataset.queuesRenderedMs = String(Math.round(performance.now()));
  }
}

function statCard(label, value, field) {
  return el('div', { class: 'card' }, el('div', { class: 'label' }, label), el('div', { class: 'value', 'data-stat': field }, value));
}

// The queue page keeps its forms and message list across refreshes: only
// the parts marked live are redrawn.
const queueView = { name: null, peek: null, root: null };

async function pageQueue(seq, first, name) {
  setNav('queues');
  const q = await api('GET', `queue?name=${enc(name)}`);
  if (seq !== renderSeq) return;
  record(q.name, q.read_at_ms, q.stats);
  const s = q.stats;
  const r = rates(q.name);
  const now = last(r);
  const live = el('div', { id: 'queue-live' },
    el('div', { class: 'cards' },
      statCard('Ready', fmtInt(s.ready), 'ready'), statCard('Leased', fmtInt(s.leased), 'leased'),
      statCard('Delayed', fmtInt(s.delayed), 'delayed'), statCard('Dead', fmtInt(s.dead), 'dead'),
      statCard('Bytes', fmtBytes(s.total_bytes), 'bytes'), statCard('Oldest ready', fmtAge(s.oldest_ready_age_ms), 'oldest'),
      statCard('Publish/s', fmtRate(now && now.publish), 'publish_rate'),
      statCard('Deliver/s', fmtRate(now && now.deliver), 'deliver_rate'),
      statCard('Ack/s', fmtRate(now && now.ack), 'ack_rate')),
    el('div', { class: 'legend' },
      el('span', {}, el('span', { class: 'swatch s-publish' }), 'publish'),
      el('span', {}, el('span', { class: 'swatch s-deliver' }), 'deliver'),
      el('span', {}, el('span', { class: 'swatch s-ack' }), 'ack')),
    rateChart(r),
    el('div', { class: 'columns' },
      el('div', {}, el('h2', {}, 'Counters'), el('dl', { class: 'kv' },
        ...Object.entries(s).filter(([k]) => k.endsWith('_total')).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, fmtInt(v))]))),
      el('div', {}, el('h2', {}, 'Configuration'), el('dl', { class: 'kv' },
        ...Object.entries(q.config).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v === '' ? '–' : String(v))])),
      el('p', { class: 'muted' }, `Created ${fmtTime(q.created_at_ms)} · read ${fmtTime(q.read_at_ms)}`))));
  if (!first && queueView.name === name && queueView.root && main.contains(queueView.root)) {
    document.getElementById('queue-live').replaceWith(live);
    return;
  }
  queueView.name = name;
  const actions = el('div', { class: 'toolbar', id: 'queue-actions' });
  if (q.can.manage) {
    const max = el('input', { id: 'redrive-max', type: 'number', min: 0, value: 0, title: '0 = every dead letter', size: 6 });
    const rate = el('input', { id: 'redrive-rate', type: 'number', min: 1, placeholder: 'no limit', title: 'messages per second', size: 8 });
    actions.append(
      el('button', { class: 'danger', type: 'button', 'data-action': 'purge', onclick: (ev) => {
        if (confirm(`Purge every message of ${name}? This cannot be undone.`)) act('Purge', 'POST', `queue/purge?name=${enc(name)}`, {}, ev.target);
      } }, 'Purge'),
      el('span', { class: 'muted' }, 'Redrive dead letters: at most'), max, el('span', { class: 'muted' }, 'at'), rate,
      el('span', { class: 'muted' }, '/s'),
      el('button', { class: 'primary', type: 'button', 'data-action': 'redrive', onclick: (ev) => {
        const body = { max_messages: Number(max.value) || 0 };
        if (rate.value) body.per_second = Number(rate.value);
        if (confirm(`Move ${body.max_messages || 'every'} dead letter(s) in ${name} back to the queues they came from?`)) {
          act('Redrive', 'POST', `queue/redrive?name=${enc(name)}`, body, ev.target);
        }
      } }, 'Redrive'));
  } else {
    actions.append(el('span', { class: 'muted', id: 'read-only' }, 'Read-only: your token has no manage permission on this queue.'));
  }
  const publishBox = q.can.publish ? publishForm(name) : null;
  queueView.peek = { state: 'any', after: 0, filter: '' };
  const root = el('div', {},
    el('p', {}, el('a', { href: '#/queues' }, '← Queues')),
    el('h1', {}, `Queue ${name}`),
    actions, live,
    publishBox,
    el('h2', {}, 'Messages'),
    ...(q.can.manage
      ? [peekControls(name), el('div', { id: 'peek' }, el('p', { class: 'muted' }, 'Loading…'))]
      : [el('p', { class: 'muted', id: 'no-peek' }, 'Looking at messages (peek, inspect) needs manage on this queue.')]));
  queueView.root = root;
  main.replaceChildren(root);
  if (q.can.manage) loadPeek(name);
}

function publishForm(name) {
  const body = el('textarea', { id: 'publish-body', placeholder: 'Message body (text)' });
  const attrs = el('input', { id: 'publish-attrs', placeholder: 'attributes: key=value, key=value', size: 40 });
  return el('details', {}, el('summary', {}, 'Publish a test message'),
    el('div', { class: 'toolbar' }, body),
    el('div', { class: 'toolbar' }, attrs,
      el('button', { type: 'button', 'data-action': 'publish', onclick: (ev) => {
        const attributes = {};
        for (const part of attrs.value.split(',')) {
          const i = part.indexOf('=');
          if (i > 0) attributes[part.slice(0, i).trim()] = part.slice(i + 1).trim();
        }
        act('Publish', 'POST', `queue/publish?name=${enc(name)}`, { body: body.value, attributes }, ev.target);
      } }, 'Publish')));
}

function peekControls(name) {
  const state = el('select', { id: 'peek-state' },
    ...['any', 'ready', 'leased', 'delayed', 'dead'].map((s) => el('option', { value: s }, s)));
  const after = el('input', { id: 'peek-after', type: 'number', min: 0, placeholder: 'after id', size: 10 });
  const text = el('input', { id: 'peek-filter', type: 'search', placeholder: 'body or attribute contains', size: 24 });
  const load = () => {
    queueView.peek = { state: state.value, after: Number(after.value) || 0, filter: text.value };
    loadPeek(name);
  };
  state.addEventListener('change', load);
  text.addEventListener('input', () => { queueView.peek.filter = text.value; loadPeek(name); });
  return el('div', { class: 'toolbar' }, 'State', state, after,
    el('button', { type: 'button', onclick: load }, 'Peek'), text,
    el('span', { class: 'muted' }, 'Peek never changes a message.'));
}

async function loadPeek(name) {
  const target = document.getElementById('peek');
  const p = queueView.peek;
  let page;
  try {
    page = await api('GET', `queue/messages?name=${enc(name)}&state=${enc(p.state)}&after=${p.after}&limit=50`);
  } catch (e) {
    target.replaceChildren(errorBox(e));
    return;
  }
  const needle = p.filter.trim();
  const matches = (m) => !needle || (m.body || '').includes(needle)
    || Object.entries(m.attributes || {}).some(([k, v]) => k.includes(needle) || v.includes(needle));
  const shown = page.messages.filter(matches);
  const rows = shown.map((m) => el('tr', { 'data-message': m.message_id },
    el('td', { class: 'num' }, el('a', { href: `#/queues/${enc(name)}/messages/${m.message_id}` }, m.message_id)),
    el('td', {}, m.state), el('td', { class: 'num' }, m.delivery_count), el('td', {}, fmtTime(m.published_at_ms)),
    el('td', { class: 'body' }, m.body_base64 ? `(binary, base64) ${m.body.slice(0, 60)}…` : m.body.slice(0, 200)),
    el('td', {}, Object.entries(m.attributes || {}).map(([k, v]) => `${k}=${v}`).join(', '))));
  const next = page.next_after_id
    ? el('button', { type: 'button', onclick: () => { queueView.peek.after = page.next_after_id; document.getElementById('peek-after').value = page.next_after_id; loadPeek(name); } }, 'Next page')
    : el('span', { class: 'muted' }, 'End of the queue.');
  target.replaceChildren(
    shown.length
      ? el('table', { id: 'messages' }, el('thead', {}, el('tr', {}, el('th', { class: 'num' }, 'Id'), el('th', {}, 'State'),
        el('th', { class: 'num' }, 'Deliveries'), el('th', {}, 'Published'), el('th', {}, 'Body'), el('th', {}, 'Attributes'))),
      el('tbody', {}, rows))
      : el('p', { class: 'muted' }, 'No messages here.'),
    el('div', { class: 'toolbar' }, next));
}

async function pageMessage(seq, first, name, id) {
  setNav('queues');
  if (!first) return; // a message's history is read once; reload to read again
  const m = await api('GET', `queue/message?name=${enc(name)}&id=${enc(id)}`);
  if (seq !== renderSeq) return;
  const kv = (pairs) => el('dl', { class: 'kv' }, ...pairs.flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
  const dead = m.dead_letter ? [el('h2', {}, 'Dead letter'), kv([
    ['source queue', m.dead_letter.source_queue], ['source message id', m.dead_letter.source_message_id],
    ['deliveries', m.dead_letter.delivery_count], ['reason', m.dead_letter.reason],
    ['dead-lettered at', fmtTime(m.dead_letter.dead_lettered_at_ms)]])] : [];
  const details = (e) => Object.entries(e).filter(([k]) => k !== 'at_ms' && k !== 'event')
    .map(([k, v]) => `${k}: ${k.endsWith('_at_ms') ? fmtTime(v) : v}`).join(' · ');
  main.replaceChildren(
    el('p', {}, el('a', { href: `#/queues/${encodeURIComponent(name)}` }, `← Queue ${name}`)),
    el('h1', {}, `Message ${m.message_id} in ${name}`),
    kv([['state', m.state], ['deliveries', m.delivery_count], ['published', fmtTime(m.published_at_ms)],
      ['visible at', fmtTime(m.visible_at_ms)], ['lease expires', fmtTime(m.lease_expires_at_ms)],
      ['expires', fmtTime(m.expires_at_ms)], ['idempotency key', m.idempotency_key || '–']]),
    ...dead,
    el('h2', {}, 'Attributes'),
    Object.keys(m.attributes || {}).length ? kv(Object.entries(m.attributes)) : el('p', { class: 'muted' }, 'None.'),
    el('h2', {}, 'Body'),
    el('pre', { id: 'message-body' }, m.body_base64 ? `(not UTF-8; base64)\n${m.body}` : m.body),
    el('h2', {}, 'History'),
    el('table', { id: 'history' }, el('thead', {}, el('tr', {}, el('th', {}, 'When'), el('th', {}, 'Event'), el('th', {}, 'Details'))),
      el('tbody', {}, m.history.map((e) => el('tr', { 'data-event': e.event },
        el('td', {}, fmtTime(e.at_ms)), el('td', {}, e.event), el('td', {}, details(e)))))));
}

async function pageCluster(seq) {
  setNav('cluster');
  const c = await api('GET', 'cluster');
  if (seq !== renderSeq) return;
  const leaderView = c.leader_view;
  const fromLeader = new Map(leaderView.nodes.map((n) => [n.node_id, n]));
  const leaderSelf = leaderView.nodes.find((n) => n.node_id === leaderView.leader);
  const leaderLast = leaderSelf ? leaderSelf.last_log_index : null;
  const rows = c.nodes.map((entry) => {
    const own = entry.status ? entry.status.nodes.find((n) => n.node_id === entry.node_id) : null;
    const seen = fromLeader.get(entry.node_id) || {};
    const role = own ? own.role : seen.role || 'unknown';
    const isLeader = entry.node_id === leaderView.leader;
    const lag = isLeader ? 0 : leaderLast !== null && seen.matched !== null && seen.matched !== undefined ? leaderLast - seen.matched : null;
    const buttons = [];
    if (c.admin) {
      if (!isLeader && (own ? own.voter : seen.voter)) {
        buttons.push(el('button', { type: 'button', 'data-action': 'transfer-leader', onclick: (ev) => act('Transfer leadership', 'POST', 'cluster/transfer-leader', { node_id: entry.node_id }, ev.target) }, 'Make leader'));
      }
      if (!(own ? own.voter : seen.voter)) {
        buttons.push(el('button', { type: 'button', 'data-action': 'promote', onclick: (ev) => act('Promote', 'POST', 'cluster/promote', { node_id: entry.node_id }, ev.target) }, 'Promote'));
      }
      buttons.push(el('button', { type: 'button', 'data-action': 'snapshot', onclick: (ev) => act('Snapshot', 'POST', 'cluster/snapshot', { node_id: entry.node_id }, ev.target) }, 'Snapshot'));
      buttons.push(el('button', { class: 'danger', type: 'button', 'data-action': 'remove', onclick: (ev) => {
        if (confirm(`Remove node ${entry.node_id} from the cluster?`)) act('Remove node', 'POST', 'cluster/remove', { node_id: entry.node_id }, ev.target);
      } }, 'Remove'));
    }
    const contact = isLeader ? 'leader' : seen.last_contact_ms !== null && seen.last_contact_ms !== undefined ? `${fmtAge(seen.last_contact_ms)} ago` : '–';
    return el('tr', { 'data-node': entry.node_id },
      el('td', { class: 'num' }, entry.node_id), el('td', {}, entry.address),
      el('td', { class: `role-${role}` }, role), el('td', {}, (own ? own.voter : seen.voter) ? 'voter' : 'learner'),
      el('td', { class: 'num' }, entry.status ? entry.status.term : '–'),
      el('td', { class: 'num' }, own ? fmtInt(own.last_log_index) : '–'),
      el('td', { class: 'num' }, own ? fmtInt(own.committed) : '–'),
      el('td', { class: 'num' }, own ? fmtInt(own.last_applied) : '–'),
      el('td', { class: 'num' }, isLeader ? '–' : fmtInt(seen.matched)),
      el('td', { class: `num ${lag > 100 ? 'bad' : ''}` }, lag === null ? '–' : fmtInt(lag)),
      el('td', {}, contact),
      el('td', { class: 'num' }, own ? fmtInt(own.snapshot_index) : '–'),
      el('td', { class: 'num' }, own ? fmtInt(own.last_log_index - own.snapshot_index) : '–'),
      el('td', {}, entry.status ? entry.status.version : el('span', { class: 'bad' }, entry.error || 'no answer')),
      el('td', {}, buttons));
  });
  main.replaceChildren(
    el('h1', {}, 'Cluster'),
    el('p', {}, leaderView.leader
      ? `Leader: node ${leaderView.leader} (${leaderView.leader_address}), term ${leaderView.term}.`
      : el('span', { class: 'bad' }, 'No leader known: the cluster cannot take writes.'),
    el('span', { class: 'muted' }, ` Read ${fmtTime(c.read_at_ms)}.`)),
    el('div', { class: 'scroll' }, el('table', { id: 'nodes' }, el('thead', {}, el('tr', {},
      el('th', { class: 'num' }, 'Node'), el('th', {}, 'Address'), el('th', {}, 'Role'), el('th', {}, 'Kind'),
      el('th', { class: 'num' }, 'Term'), el('th', { class: 'num' }, 'Last log'), el('th', { class: 'num' }, 'Committed'),
      el('th', { class: 'num' }, 'Applied'), el('th', { class: 'num' }, 'Replicated to'), el('th', { class: 'num' }, 'Lag'),
      el('th', {}, 'Last contact'), el('th', { class: 'num' }, 'Snapshot at'), el('th', { class: 'num' }, 'Log since snapshot'),
      el('th', {}, 'Version'), el('th', {}, c.admin ? 'Actions' : ''))),
    el('tbody', {}, rows))),
    c.admin ? addLearnerForm() : null,
    el('p', { class: 'muted' }, 'Each row is the node\'s own answer (its indexes, role and term) and the leader\'s (how far it replicated to the node, and when the node last answered). Lag is in log entries.'));
}

function addLearnerForm() {
  const id = el('input', { id: 'learner-id', type: 'number', min: 1, placeholder: 'node id' });
  const address = el('input', { id: 'learner-address', placeholder: 'client host:port', size: 20 });
  const peer = el('input', { id: 'learner-peer', placeholder: 'peer host:port', size: 20 });
  return el('details', { id: 'add-learner' }, el('summary', {}, 'Add a node (as a learner; promote it once it has caught up)'),
    el('div', { class: 'toolbar' }, id, address, peer,
      el('button', { type: 'button', 'data-action': 'add-learner', onclick: (ev) => {
        toast('Adding the learner: the answer comes once it has caught up…');
        act('Add learner', 'POST', 'cluster/add-learner',
          { node_id: Number(id.value), address: address.value.trim(), peer_address: peer.value.trim() }, ev.target);
      } }, 'Add learner')));
}

async function pageTopics(seq) {
  setNav('topics');
  const data = await api('GET', 'topics');
  if (seq !== renderSeq) return;
  const rows = data.topics.map((t) => el('tr', { 'data-topic': t.name },
    el('td', {}, t.name),
    el('td', { class: 'num' }, fmtInt(t.stats.published_total)), el('td', { class: 'num' }, fmtInt(t.stats.routed_copies_total)),
    el('td', { class: 'num' }, fmtInt(t.stats.unrouted_total)), el('td', { class: 'num' }, fmtInt(t.stats.duplicates_total)),
    el('td', {}, t.bindings.map((b, i) => [i ? ', ' : '', el('a', { href: `#/queues/${encodeURIComponent(b.queue)}` }, b.queue),
      b.filter.length ? ` (${b.filter.map((c) => c.key).join(' and ')} filtered)` : '']))));
  main.replaceChildren(el('h1', {}, 'Topics'),
    data.topics.length
      ? el('table', { id: 'topics' }, el('thead', {}, el('tr', {}, el('th', {}, 'Topic'), el('th', { class: 'num' }, 'Published'),
        el('th', { class: 'num' }, 'Copies routed'), el('th', { class: 'num' }, 'Unrouted'), el('th', { class: 'num' }, 'Duplicates'),
        el('th', {}, 'Bound queues'))), el('tbody', {}, rows))
      : el('p', { class: 'muted' }, 'No topics you may see.'));
}

// ---- routing and polling ---------------------------------------------------

function route() {
  let parts;
  try {
    parts = (location.hash.replace(/^#\/?/, '') || 'queues').split('/').map(decodeURIComponent);
  } catch (_) {
    parts = ['queues'];
  }
  if (parts[0] === 'cluster') return (seq) => pageCluster(seq);
  if (parts[0] === 'topics') return (seq) => pageTopics(seq);
  if (parts[0] === 'queues' && parts[1] && parts[2] === 'messages' && parts[3]) {
    return (seq, first) => pageMessage(seq, first, parts[1], parts[3]);
  }
  if (parts[0] === 'queues' && parts[1]) return (seq, first) => pageQueue(seq, first, parts[1]);
  return (seq, first) => pageQueues(seq, first);
}

let current = null;

let refreshing = false;

async function refresh(first) {
  if (!current) return;
  const seq = renderSeq;
  refreshing = true;
  try {
    await current(seq, Boolean(first));
  } catch (e) {
    if (seq !== renderSeq) return;
    if (e.status === 401) return signIn(sessionStorage.getItem(TOKEN_KEY) ? e.message : null);
    if (first) main.replaceChildren(errorBox(e));
    else toast(`Refresh failed: ${e.message}`, true);
  } finally {
    if (seq === renderSeq) refreshing = false;
  }
}

function stopPolling() {
  clearInterval(pollTimer);
  pollTimer = null;
}

function navigate() {
  if (!session) return;
  renderSeq += 1;
  current = route();
  queueView.name = null;
  main.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  stopPolling();
  refreshing = false;
  refresh(true);
  // A poll is skipped while the last one is unanswered (a node down makes
  // the cluster page slow): requests never pile up.
  pollTimer = setInterval(() => { if (!document.hidden && !refreshing) refresh(false); }, POLL_MS);
}

async function start() {
  try {
    session = await api('GET', 'session');
  } catch (e) {
    session = null;
    if (e.status === 401) return signIn(sessionStorage.getItem(TOKEN_KEY) ? e.message : null);
    main.replaceChildren(errorBox(e));
    return;
  }
  const who = document.getElementById('who');
  who.textContent = session.auth ? `${session.principal}${session.admin ? ' (admin)' : ''}` : 'auth off';
  document.getElementById('sign-out').hidden = !session.auth;
  navigate();
}

document.getElementById('sign-out').addEventListener('click', () => {
  sessionStorage.removeItem(TOKEN_KEY);
  session = null;
  document.getElementById('who').textContent = '';
  document.getElementById('sign-out').hidden = true;
  signIn();
});
window.addEventListener('hashchange', navigate);
start();
