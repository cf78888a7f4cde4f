// wafer's console: the admin API in a page. Everything the API returns is
// put into the page as text (textContent), never as HTML; the token lives in
// sessionStorage and goes only into the Authorization header.
'use strict';

const TOKEN_KEY = 'wafer-admin-token';
const POLL_MS = 5000;
const HISTORY = 36; // samples kept per chart: 3 minutes at 5 s

const $ = (id) => document.getElementById(id);
const token = () => sessionStorage.getItem(TOKEN_KEY);

function showError(message) {
  const e = $('error');
  e.textContent = message;
  e.hidden = !message;
}

async function api(method, path, body) {
  const headers = { Authorization: 'Bearer ' + token() };
  const init = { method, headers };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  if (res.status === 204) return null;
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 403) signOut('The admin token was refused.');
    throw new Error((data && data.msg) || 'request failed (' + res.status + ')');
  }
  return data;
}

function el(tag, text) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function button(label, onClick) {
  const b = el('button', label);
  b.type = 'button';
  b.addEventListener('click', onClick);
  return b;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString() : '–';
}

function inTime(seconds) {
  if (seconds <= 0) return 'expired';
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return h > 0 ? h + ' h ' + m + ' min' : m + ' min';
}

// --- views -----------------------------------------------------------------

const views = ['sign-in', 'overview', 'apps', 'sessions'];

function show(view) {
  for (const v of views) $(v).hidden = v !== view;
  $('nav').hidden = view === 'sign-in';
  showError('');
  if (view === 'overview') refreshOverview();
  if (view === 'apps') loadApps();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  show('sign-in');
  if (message) showError(message);
}

$('sign-in-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $('token').value);
  $('token').value = '';
  try {
    await api('GET', '/admin/apps');
    show('overview');
  } catch (e) {
    signOut('Sign-in failed: ' + e.message);
  }
});

$('sign-out').addEventListener('click', () => signOut(''));
for (const b of document.querySelectorAll('nav [data-view]')) {
  b.addEventListener('click', () => show(b.dataset.view));
}

// --- overview --------------------------------------------------------------

const series = { auth: [], login: [], errors: [] };
let last = null;

function parseMetrics(text) {
  const sums = { auth: 0, login: 0, errors: 0, sessions: null, apps: null };
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = line.match(/^wafer_requests_total\{route="([^"]*)",outcome="([^"]*)"\} (\S+)$/);
    if (m) {
      const n = Number(m[3]);
      if (m[1] === '/mina/auth') sums.auth += n;
      if (m[1] === '/mina/login' || m[1] === '/mina_auth/') sums.login += n;
      if (m[2] !== 'ok' && m[2] !== 'session_invalid') sums.errors += n;
      continue;
    }
    const g = line.match(/^(wafer_sessions_stored|wafer_apps_configured) (\S+)$/);
    if (g) sums[g[1] === 'wafer_sessions_stored' ? 'sessions' : 'apps'] = Number(g[2]);
  }
  return sums;
}

function draw(id, values) {
  const c = $(id);
  const ctx = c.getContext('2d');
  ctx.clearRect(0, 0, c.width, c.height);
  const max = Math.max(1, ...values);
  ctx.strokeStyle = '#1f4e3d';
  ctx.lineWidth = 2;
  ctx.beginPath();
  // One sample so far: a level line, so that the chart shows it.
  const points = values.length === 1 ? [values[0], values[0]] : values;
  const span = Math.max(1, Math.max(points.length, HISTORY) - 1);
  points.forEach((v, i) => {
    const x = (i / span) * c.width;
    const y = c.height - (v / max) * (c.height - 4) - 2;
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
}

async function refreshOverview() {
  if ($('overview').hidden) return;
  try {
    const ready = await fetch('/readyz').then((r) => r.json());
    const stores = $('stores');
    stores.replaceChildren();
    for (const [name, state] of Object.entries(ready.stores || {})) {
      stores.append(el('dt', name), el('dd', state));
    }
    const sums = parseMetrics(await fetch('/metrics').then((r) => r.text()));
    $('sessions-stored').textContent = sums.sessions ?? '–';
    $('apps-configured').textContent = sums.apps ?? '–';
    const now = Date.now();
    if (last) {
      const secs = (now - last.at) / 1000;
      for (const k of ['auth', 'login', 'errors']) {
        const rate = Math.max(0, (sums[k] - last[k]) / secs);
        series[k].push(rate);
        if (series[k].length > HISTORY) series[k].shift();
        $('rate-' + k).textContent = rate.toFixed(1) + ' /s';
        draw('chart-' + k, series[k]);
      }
    }
    last = { ...sums, at: now };
  } catch (e) {
    showError('Cannot read the overview: ' + e.message);
  }
}

setInterval(refreshOverview, POLL_MS);

// --- apps ------------------------------------------------------------------

async function loadApps() {
  try {
    const { apps } = await api('GET', '/admin/apps');
    const rows = $('app-rows');
    rows.replaceChildren();
    for (const app of apps) {
      const tr = document.createElement('tr');
      const tokenCell = el('td', '…');
      tr.append(
        el('td', app.id),
        el('td', app.title),
        el('td', app.appid),
        el('td', app.login_duration),
        el('td', app.session_duration),
        tokenCell,
      );
      const actions = el('td');
      actions.append(
        button('Sessions', () => openSessions(app)),
        button('Edit', () => editApp(app)),
        button('Token', () => tokenStatus(app, tokenCell)),
        button('Delete', () => deleteApp(app)),
      );
      tr.append(actions);
      rows.append(tr);
    }
  } catch (e) {
    showError('Cannot list the apps: ' + e.message);
  }
}

async function tokenStatus(app, cell) {
  try {
    const t = await api('GET', '/admin/apps/' + app.id + '/access_token');
    cell.textContent = 'expires in ' + inTime(t.expires_in);
  } catch (e) {
    cell.textContent = e.message;
  }
}

function resetAppForm() {
  $('app-id').value = '';
  $('app-form').reset();
  $('app-form-title').textContent = 'New app';
  $('app-save').textContent = 'Create';
  $('app-cancel').hidden = true;
  $('app-secret').required = true;
}

function editApp(app) {
  $('app-id').value = app.id;
  $('app-title').value = app.title;
  $('app-appid').value = app.appid;
  $('app-secret').value = '';
  $('app-secret').required = false;
  $('app-login').value = app.login_duration;
  $('app-session').value = app.session_duration;
  $('app-form-title').textContent = 'Edit app ' + app.id + ' (leave the secret empty to keep it)';
  $('app-save').textContent = 'Save';
  $('app-cancel').hidden = false;
  $('app-title').focus();
}

$('app-cancel').addEventListener('click', resetAppForm);

$('app-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const id = $('app-id').value;
  const body = {
    title: $('app-title').value,
    appid: $('app-appid').value,
    login_duration: Number($('app-login').value),
    session_duration: Number($('app-session').value),
  };
  if ($('app-secret').value) body.secret = $('app-secret').value;
  try {
    if (id) await api('PATCH', '/admin/apps/' + id, body);
    else await api('POST', '/admin/apps', body);
    resetAppForm();
    loadApps();
  } catch (e) {
    showError('Cannot save the app: ' + e.message);
  }
});

async function deleteApp(app) {
  const typed = window.prompt('Deleting app ' + app.id + ' removes all its sessions. Type its appid to confirm:');
  if (typed !== app.appid) return;
  try {
    await api('DELETE', '/admin/apps/' + app.id);
    loadApps();
  } catch (e) {
    showError('Cannot delete the app: ' + e.message);
  }
}

// --- sessions --------------------------------------------------------------

let current = null; // { app, cursor, openId }

function openSessions(app) {
  current = { app, cursor: null, openId: '' };
  $('sessions-app').textContent = app.title + ' (' + app.appid + ')';
  $('search-open-id').value = '';
  $('user').hidden = true;
  show('sessions');
  loadSessions(true);
}

async function loadSessions(fresh) {
  const q = new URLSearchParams({ limit: '50' });
  if (current.openId) q.set('open_id', current.openId);
  if (!fresh && current.cursor) q.set('cursor', current.cursor);
  try {
    const page = await api('GET', '/admin/apps/' + current.app.id + '/sessions?' + q);
    const rows = $('session-rows');
    if (fresh) rows.replaceChildren();
    for (const s of page.sessions) {
      const tr = document.createElement('tr');
      tr.append(
        el('td', s.open_id),
        el('td', when(s.create_time)),
        el('td', when(s.last_visit_time)),
        el('td', s.phone_number ?? '–'),
      );
      const actions = el('td');
      actions.append(button('Details', () => showUser(s.open_id)));
      tr.append(actions);
      rows.append(tr);
    }
    current.cursor = page.next_cursor;
    $('more').hidden = !page.next_cursor;
    // What the rows now show (the browser test waits for it).
    rows.dataset.openId = current.openId;
  } catch (e) {
    showError('Cannot list the sessions: ' + e.message);
  }
}

$('more').addEventListener('click', () => loadSessions(false));
$('search-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  current.openId = $('search-open-id').value.trim();
  current.cursor = null;
  loadSessions(true);
});
$('search-clear').addEventListener('click', () => {
  $('search-open-id').value = '';
  current.openId = '';
  loadSessions(true);
});

async function showUser(openId) {
  const app = current.app;
  try {
    const s = await api('GET', '/admin/apps/' + app.id + '/users/' + encodeURIComponent(openId));
    $('user-open-id').textContent = s.open_id;
    const fields = $('user-fields');
    fields.replaceChildren();
    const created = new Date(s.create_time).getTime();
    const seen = new Date(s.last_visit_time).getTime();
    const deadline = Math.min(created + app.login_duration * 86400000, seen + app.session_duration * 1000);
    const rows = [
      ['uuid', s.uuid],
      ['union_id', s.union_id ?? '–'],
      ['phone', s.phone_number ?? '–'],
      ['logged in', when(s.create_time)],
      ['last seen', when(s.last_visit_time)],
      ['expires in', inTime((deadline - Date.now()) / 1000)],
    ];
    for (const [k, v] of rows) fields.append(el('dt', k), el('dd', v));
    $('user').hidden = false;
    $('user-revoke').onclick = () => revokeUser(openId);
    $('user-revoke').focus();
  } catch (e) {
    showError('Cannot show the user: ' + e.message);
  }
}

async function revokeUser(openId) {
  try {
    await api('DELETE', '/admin/apps/' + current.app.id + '/users/' + encodeURIComponent(openId));
    $('user').hidden = true;
    loadSessions(true);
  } catch (e) {
    showError('Cannot revoke the session: ' + e.message);
  }
}

// --- start -----------------------------------------------------------------

resetAppForm();
show(token() ? 'overview' : 'sign-in');
