// hubbub browser client: MTP 1.0 rev 17 over /ws with the push extension (spec §3.8).
// Every user-supplied string is rendered with textContent, never as HTML.

const JSONAPI = { version: '1.0', revision: '17' };
const SESSION_KEY = 'hubbub.session';
const PAGE = 100;
const BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const cmpId = (a, b) => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0);

const state = {
  me: null, // { uuid, auth_id, login }
  ws: null,
  pending: [], // FIFO of { resolve, reject } (replies come in request order)
  flows: new Map(), // uuid -> flow
  current: null,
  messages: new Map(), // flow uuid -> Map(message uuid -> message)
  oldest: new Map(), // flow uuid -> index of the oldest loaded message (0 = all loaded)
  users: new Map(), // uuid -> display name
  lookups: new Set(),
  lastTime: 0,
  clientId: 1,
  attempt: 0,
  reconnectTimer: null,
  loggingOut: false,
};

// ---------------------------------------------------------------------------------------------
// Session

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    return s && typeof s.uuid === 'string' && typeof s.auth_id === 'string' ? s : null;
  } catch {
    return null;
  }
}
function saveSession(s) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
}

// ---------------------------------------------------------------------------------------------
// Transport

function wsUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
}

/** One request; resolves with the reply frame (replies arrive in request order). */
function request(type, data) {
  return new Promise((resolve, reject) => {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) {
      reject(new Error('not connected'));
      return;
    }
    state.pending.push({ resolve, reject });
    ws.send(JSON.stringify({ type, jsonapi: JSONAPI, data }));
  });
}

function caller() {
  return { uuid: state.me.uuid, auth_id: state.me.auth_id };
}

/** A short-lived connection for login/register before the session exists. */
function oneShot(type, user) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl());
    ws.onopen = () => ws.send(JSON.stringify({ type, jsonapi: JSONAPI, data: { user: [user] } }));
    ws.onmessage = (ev) => {
      resolve(JSON.parse(ev.data));
      ws.close();
    };
    ws.onerror = () => reject(new Error('cannot reach the server'));
  });
}

function connect() {
  clearTimeout(state.reconnectTimer);
  const ws = new WebSocket(wsUrl());
  state.ws = ws;
  ws.onopen = () => {
    setStatus(true);
    void afterOpen(ws);
  };
  ws.onmessage = (ev) => {
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (frame.type === 'update') {
      onUpdate(frame);
      return;
    }
    const p = state.pending.shift();
    if (p) p.resolve(frame);
  };
  ws.onclose = () => {
    if (state.ws !== ws) return;
    setStatus(false);
    for (const p of state.pending.splice(0)) p.reject(new Error('connection closed'));
    state.ws = null;
    if (!state.me || state.loggingOut) return;
    const delay = BACKOFF_MS[Math.min(state.attempt, BACKOFF_MS.length - 1)];
    state.attempt++;
    state.reconnectTimer = setTimeout(connect, delay);
  };
}

/** Runs a user action; a failure (e.g. the connection closed mid-request) is shown, never left unhandled. */
function guard(promise) {
  promise.catch((err) => alertLine(err && err.message ? err.message : String(err)));
}

/**
 * Subscribes, then catches up. A connection whose subscribe fails (e.g. 503 while a backend restarts) would get no
 * live updates at all: it is closed, and the reconnect backoff goes on; the backoff starts over only after a
 * subscription is in place.
 */
async function afterOpen(ws) {
  try {
    const sub = await request('subscribe', { user: [caller()] });
    if (sub.errors.code === 401) return expired();
    if (sub.errors.code !== 200 || !sub.data) throw new Error(`subscribe answered ${sub.errors.code}`);
    state.attempt = 0;
    const since = state.lastTime;
    if (!state.lastTime) state.lastTime = sub.data.time;
    await refreshFlows();
    if (since) await catchUp(since);
    if (state.current) {
      if (!state.messages.has(state.current)) await openFlow(state.current);
      else render();
    }
  } catch (e) {
    console.warn('after open', e);
    if (state.ws === ws) ws.close();
  }
}

/** get_update from the last known time, following 206 pages. */
async function catchUp(since) {
  let t = since;
  for (let i = 0; i < 20; i++) {
    const r = await request('get_update', { time: t, user: [caller()] });
    if (r.errors.code === 401) return expired();
    if (!r.data) return;
    applyData(r.data);
    t = r.data.time;
    state.lastTime = Math.max(state.lastTime, t);
    if (r.errors.code !== 206) return;
  }
}

function expired() {
  logout('Your session ended. Please log in again.');
}

// ---------------------------------------------------------------------------------------------
// Data

function addMessage(m) {
  if (!m || !m.uuid || !m.from_flow) return false;
  let map = state.messages.get(m.from_flow);
  if (!map) {
    if (m.from_flow !== state.current) return false; // not loaded yet: all_messages will bring it
    map = new Map();
    state.messages.set(m.from_flow, map);
  }
  map.set(m.uuid, m);
  want(m.from_user);
  return true;
}

function addFlow(f) {
  if (!f || !f.uuid) return;
  state.flows.set(f.uuid, f);
}

function applyData(d) {
  for (const f of d.flow || []) addFlow(f);
  for (const u of d.user || []) if (u.uuid && u.username) state.users.set(u.uuid, u.username);
  for (const m of d.message || []) addMessage(m);
  renderFlows();
  render();
}

function onUpdate(frame) {
  if (frame.errors && frame.errors.code === 401) return expired();
  if (!frame.data) return;
  state.lastTime = Math.max(state.lastTime, frame.data.time - 1);
  applyData(frame.data);
}

function displayName(uuid) {
  if (uuid && uuid.startsWith('guest:')) return `${uuid.slice(6)} (guest)`;
  if (state.me && uuid === state.me.uuid && state.users.has(uuid)) return state.users.get(uuid);
  return state.users.get(uuid) || `user ${uuid}`;
}

/** Authors resolved with user_info (cached). */
function want(uuid) {
  if (!uuid || uuid.startsWith('guest:') || state.users.has(uuid) || state.lookups.has(uuid)) return;
  state.lookups.add(uuid);
  queueMicrotask(flushLookups);
}
let lookupScheduled = false;
function flushLookups() {
  if (lookupScheduled) return;
  lookupScheduled = true;
  setTimeout(async () => {
    lookupScheduled = false;
    const ids = [...state.lookups].filter((id) => !state.users.has(id)).slice(0, 99);
    if (ids.length === 0 || !state.ws) return;
    try {
      const r = await request('user_info', { user: [caller(), ...ids.map((uuid) => ({ uuid }))] });
      for (const u of (r.data && r.data.user) || []) state.users.set(u.uuid, u.username || u.login || u.uuid);
      for (const id of ids) state.lookups.delete(id);
      render();
    } catch {
      /* retried on the next message */
    }
  }, 0);
}

async function refreshFlows() {
  const r = await request('all_flow', { user: [caller()] });
  if (r.errors.code === 401) return expired();
  state.flows.clear();
  for (const f of (r.data && r.data.flow) || []) addFlow(f);
  renderFlows();
}

async function openFlow(uuid) {
  state.current = uuid;
  $('chat-view').classList.remove('show-flows');
  renderFlows();
  render();
  const r = await request('all_messages', { time: 0, user: [caller()], flow: [{ uuid }] });
  if (state.current !== uuid) return;
  if (r.errors.code === 404) {
    state.messages.delete(uuid);
    render();
    return;
  }
  const map = new Map();
  for (const m of (r.data && r.data.message) || []) {
    map.set(m.uuid, m);
    want(m.from_user);
  }
  // Keep what arrived by push meanwhile.
  for (const m of (state.messages.get(uuid) || new Map()).values()) if (!map.has(m.uuid)) map.set(m.uuid, m);
  state.messages.set(uuid, map);
  const f = r.data && r.data.flow && r.data.flow[0];
  state.oldest.set(uuid, f && typeof f.message_start === 'number' ? f.message_start : 0);
  render();
  scrollToEnd();
}

async function loadOlder() {
  const uuid = state.current;
  const start = state.oldest.get(uuid) || 0;
  if (!uuid || start <= 0) return;
  const from = Math.max(0, start - PAGE);
  const r = await request('all_messages', {
    time: 0,
    user: [caller()],
    flow: [{ uuid, message_start: from, message_end: start }],
  });
  const map = state.messages.get(uuid);
  if (!map || !r.data) return;
  for (const m of r.data.message || []) {
    map.set(m.uuid, m);
    want(m.from_user);
  }
  state.oldest.set(uuid, from);
  render();
}

async function send(text) {
  const uuid = state.current;
  if (!uuid) return;
  const client_id = state.clientId++;
  const r = await request('send_message', {
    user: [caller()],
    flow: [{ uuid }],
    message: [{ text, client_id }],
  });
  if (r.errors.code === 401) return expired();
  if (r.errors.code !== 200) {
    alertLine(r.errors.detail);
    return;
  }
  const sent = r.data.message[0];
  const map = state.messages.get(uuid);
  // The push may have arrived first; a message is shown once (dedupe by uuid).
  if (map && !map.has(sent.uuid)) {
    map.set(sent.uuid, {
      ...sent,
      text,
      time: Math.floor(Date.now() / 1000),
      edited_status: false,
      edited_time: null,
    });
  }
  render();
  scrollToEnd();
}

async function editMessage(m) {
  const text = prompt('Edit message', m.text || '');
  if (text === null) return;
  const r = await request('edited_message', { user: [caller()], message: [{ uuid: m.uuid, text }] });
  if (r.errors.code !== 200) alertLine(r.errors.detail);
}

async function deleteMessage(m) {
  if (!confirm('Delete this message?')) return;
  const r = await request('delete_message', { user: [caller()], message: [{ uuid: m.uuid }] });
  if (r.errors.code !== 200) alertLine(r.errors.detail);
}

// ---------------------------------------------------------------------------------------------
// Rendering

function flowName(f) {
  if (f.title) return f.title;
  if (f.type === 'chat' && Array.isArray(f.users)) {
    const other = f.users.find((u) => u !== state.me.uuid);
    if (other) return displayName(other);
  }
  return `flow ${f.uuid}`;
}

function renderFlows() {
  const list = $('flow-list');
  list.replaceChildren();
  const flows = [...state.flows.values()].sort((a, b) => cmpId(a.uuid, b.uuid));
  for (const f of flows) {
    const li = el('li');
    const b = el('button', f.uuid === state.current ? 'active' : '', (f.type === 'group' ? '# ' : '') + flowName(f));
    b.dataset.flow = f.uuid;
    b.addEventListener('click', () => guard(openFlow(f.uuid)));
    li.append(b);
    list.append(li);
  }
  const cur = state.current && state.flows.get(state.current);
  $('flow-title').textContent = cur ? flowName(cur) : 'hubbub';
}

function fmtTime(sec) {
  if (typeof sec !== 'number') return '';
  const d = new Date(sec * 1000);
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function render() {
  const list = $('messages');
  const uuid = state.current;
  const map = uuid ? state.messages.get(uuid) : undefined;
  $('empty').hidden = !!map && map.size > 0;
  $('empty').textContent = uuid ? 'No messages yet.' : 'Pick a flow.';
  $('message-input').disabled = !uuid;
  $('send').disabled = !uuid;
  $('load-older').hidden = !uuid || !((state.oldest.get(uuid) || 0) > 0);
  const atEnd = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  list.replaceChildren();
  if (!map) return;
  const msgs = [...map.values()].sort((a, b) => cmpId(a.uuid, b.uuid));
  for (const m of msgs) {
    const deleted = m.edited_status && m.text === 'Message deleted' && m.file_picture === '';
    const li = el('li', deleted ? 'msg deleted' : 'msg');
    li.dataset.uuid = m.uuid;
    li.append(el('span', 'author', displayName(m.from_user)));
    li.append(el('span', 'time', fmtTime(m.time)));
    if (m.edited_status && !deleted) li.append(el('span', 'edited', '(edited)'));
    li.append(el('span', 'text', m.text == null ? '' : m.text));
    if (state.me && m.from_user === state.me.uuid && !deleted) {
      const actions = el('span', 'actions');
      const e = el('button', 'edit', 'edit');
      e.addEventListener('click', () => guard(editMessage(m)));
      const d = el('button', 'delete', 'delete');
      d.addEventListener('click', () => guard(deleteMessage(m)));
      actions.append(e, d);
      li.append(actions);
    }
    list.append(li);
  }
  if (atEnd) scrollToEnd();
}

function scrollToEnd() {
  const list = $('messages');
  list.scrollTop = list.scrollHeight;
}

function setStatus(online) {
  $('conn-status').classList.toggle('online', online);
  $('conn-status').title = online ? 'connected' : 'reconnecting…';
}

function alertLine(text) {
  $('empty').hidden = false;
  $('empty').textContent = text;
}

// ---------------------------------------------------------------------------------------------
// Views

function showLogin(message) {
  $('chat-view').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message || '';
}

function showChat() {
  $('login-view').hidden = true;
  $('chat-view').hidden = false;
  $('me').textContent = state.me.login || '';
  state.loggingOut = false;
  connect();
}

function logout(message) {
  state.loggingOut = true;
  sessionStorage.removeItem(SESSION_KEY);
  const ws = state.ws;
  state.ws = null;
  if (ws) ws.close();
  clearTimeout(state.reconnectTimer);
  state.me = null;
  state.flows.clear();
  state.messages.clear();
  state.current = null;
  state.lastTime = 0;
  showLogin(message);
}

async function login(type, user) {
  $('login-error').textContent = '';
  try {
    const r = await oneShot(type, user);
    const u = r.data && r.data.user && r.data.user[0];
    if ((r.errors.code === 200 || r.errors.code === 201) && u) {
      state.me = { uuid: u.uuid, auth_id: u.auth_id, login: user.login };
      if (user.username) state.users.set(u.uuid, user.username);
      saveSession(state.me);
      showChat();
      return;
    }
    const why = {
      401: type === 'register_user' ? 'Login and password are required.' : 'Wrong password.',
      404: 'Unknown login.',
      409: 'That login is taken.',
    };
    $('login-error').textContent = why[r.errors.code] || r.errors.detail;
  } catch (e) {
    $('login-error').textContent = e.message;
  }
}

function renderGroupUsers() {
  const box = $('group-users');
  box.replaceChildren(el('legend', '', 'Members'));
  const ids = new Set();
  for (const f of state.flows.values()) for (const u of f.users || []) ids.add(u);
  for (const id of state.users.keys()) ids.add(id);
  ids.delete(state.me.uuid);
  for (const id of [...ids].sort(cmpId)) {
    if (id.startsWith('guest:')) continue;
    const label = el('label');
    const cb = el('input');
    cb.type = 'checkbox';
    cb.value = id;
    label.append(cb, el('span', '', displayName(id)));
    box.append(label);
  }
}

function wire() {
  $('login-form').addEventListener('submit', (e) => {
    e.preventDefault();
    guard(login('authentication', { login: $('login-name').value, password: $('login-password').value }));
  });
  $('register-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const username = $('register-username').value.trim();
    const user = { login: $('register-login').value, password: $('register-password').value };
    if (username) user.username = username;
    guard(login('register_user', user));
  });
  $('logout').addEventListener('click', () => logout());
  $('toggle-flows').addEventListener('click', () => $('chat-view').classList.toggle('show-flows'));
  $('composer').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('message-input');
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    guard(send(text));
  });
  $('load-older').addEventListener('click', () => guard(loadOlder()));
  $('new-group').addEventListener('click', () => {
    renderGroupUsers();
    $('group-form').hidden = false;
  });
  $('group-cancel').addEventListener('click', () => {
    $('group-form').hidden = true;
  });
  $('group-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const users = [...$('group-users').querySelectorAll('input:checked')].map((i) => i.value);
    const extra = $('group-extra').value.trim();
    if (extra) users.push(extra);
    users.push(state.me.uuid);
    const r = await request('add_flow', {
      user: [caller()],
      flow: [{ type: 'group', title: $('group-title').value, users }],
    });
    if (r.errors.code !== 200) {
      $('group-error').textContent = r.errors.detail;
      return;
    }
    $('group-error').textContent = '';
    $('group-form').hidden = true;
    $('group-title').value = '';
    $('group-extra').value = '';
    const f = r.data.flow[0];
    addFlow(f);
    guard(openFlow(f.uuid));
  });
}

wire();
state.me = loadSession();
if (state.me) showChat();
else showLogin();
