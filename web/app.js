// hubbub's web client: one dependency-free ES module, no build step.
// The contract it speaks is docs/protocol.md: the HTTP API for accounts, rooms and scroll-back, the
// WebSocket for live chat (token only in the `bearer.<jwt>` subprotocol, never in the URL).
//
// Base URLs default to the page's own origin (http -> ws) and can be overridden with
// `?api=https://...&ws=wss://...` (see web/README.md).

const params = new URLSearchParams(location.search);
const API_BASE = (params.get("api") || location.origin).replace(/\/+$/, "");
const WS_URL = params.get("ws") || location.origin.replace(/^http/, "ws") + "/";

const SEND_TIMEOUT_MS = 10_000; // no ack by then: the send is marked failed (retry keeps the clientMsgId)
const PING_EVERY_MS = 5 * 60_000; // the server closes connections idle for 10 minutes
const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 30_000;
const GAP_WAIT_MS = 3_000; // a seq gap that does not fill by then is fetched with `history after`
const TYPING_SEND_EVERY_MS = 3_000;
const TYPING_SHOW_MS = 5_000;
const PAGE = 50;
const BODY_MAX = 4000;
const SESSION_KEY = "hubbub.session";
const VIEW_KEY = "hubbub.view";

// Human text for every error code of docs/protocol.md (plus the client's own `network`).
export const ERROR_TEXT = {
  bad_request: "The server could not accept that request.",
  unauthorized: "Your session is no longer valid. Please sign in again.",
  forbidden: "You are not allowed to do that here.",
  not_found: "That room does not exist (or no longer exists).",
  conflict: "That name is already taken. Please choose another one.",
  payload_too_large: "That is too large to send. Please shorten it.",
  rate_limited: "Too many attempts. Please wait a moment and try again.",
  unavailable: "The service is busy right now and nothing was saved. Please try again shortly.",
  internal: "Something went wrong on the server. Please try again.",
  network: "Cannot reach the server. Check your connection and try again.",
};

export function describeError(code, detail) {
  const text = ERROR_TEXT[code] || ERROR_TEXT.internal;
  // The server's own message explains which field was wrong: worth showing for input errors.
  if (detail && (code === "bad_request" || code === "payload_too_large")) return `${text} (${detail})`;
  return text;
}

class ApiError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------
// Session: tokens and their refresh

const session = {
  user: null, // {id, name}
  accessToken: null,
  accessExp: 0, // ms epoch
  refreshToken: null,
  refreshTimer: 0,
  refreshing: null,

  load() {
    try {
      const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || "null");
      if (s && s.refreshToken && s.user) Object.assign(this, s);
    } catch {
      /* a damaged entry is ignored */
    }
    return Boolean(this.refreshToken);
  },
  save() {
    const { user, accessToken, accessExp, refreshToken } = this;
    sessionStorage.setItem(SESSION_KEY, JSON.stringify({ user, accessToken, accessExp, refreshToken }));
  },
  clear() {
    clearTimeout(this.refreshTimer);
    this.user = this.accessToken = this.refreshToken = null;
    this.accessExp = 0;
    sessionStorage.removeItem(SESSION_KEY);
    sessionStorage.removeItem(VIEW_KEY);
  },
  adopt(body) {
    this.user = body.user;
    this.accessToken = body.accessToken;
    this.refreshToken = body.refreshToken;
    this.accessExp = Date.now() + body.expiresIn * 1000;
    this.save();
    this.schedule();
  },
  // Refreshes at 80% of the lifetime, so a slow network still beats the expiry.
  schedule() {
    clearTimeout(this.refreshTimer);
    if (!this.refreshToken) return;
    const left = this.accessExp - Date.now();
    const lifetime = Math.max(left, 0);
    const wait = Math.max(lifetime - Math.max(lifetime * 0.2, 15_000), 0);
    this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), wait);
  },
  fresh() {
    return this.accessToken && this.accessExp - Date.now() > 15_000;
  },
  async token() {
    if (!this.fresh()) await this.refresh();
    return this.accessToken;
  },
  refresh() {
    if (!this.refreshing) {
      this.refreshing = (async () => {
        try {
          const body = await http("POST", "/auth/refresh", { refreshToken: this.refreshToken }, { auth: false });
          this.adopt(body);
        } catch (e) {
          if (e.code === "unauthorized") {
            endSession("Your session has ended. Please sign in again.");
          } else {
            // Transient: try again soon while the token still lives.
            clearTimeout(this.refreshTimer);
            this.refreshTimer = setTimeout(() => this.refresh().catch(() => {}), 10_000);
          }
          throw e;
        } finally {
          this.refreshing = null;
        }
      })();
    }
    return this.refreshing;
  },
};

async function http(method, path, body, { auth = true, retried = false } = {}) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (auth) headers.authorization = `Bearer ${await session.token()}`;
  let resp;
  try {
    resp = await fetch(API_BASE + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch {
    throw new ApiError("network", ERROR_TEXT.network, 0);
  }
  if (resp.status === 204) return null;
  let data = null;
  try {
    data = await resp.json();
  } catch {
    data = null;
  }
  if (resp.ok) return data;
  const err = data && data.error ? data.error : { code: statusCode(resp.status), message: "" };
  if (err.code === "unauthorized" && auth && !retried) {
    // The access token may have expired in flight: refresh once and retry.
    await session.refresh();
    return http(method, path, body, { auth, retried: true });
  }
  throw new ApiError(err.code, err.message, resp.status);
}

function statusCode(status) {
  return (
    { 400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
      413: "payload_too_large", 429: "rate_limited", 503: "unavailable" }[status] || "internal"
  );
}

// ---------------------------------------------------------------------------------------------
// State

const rooms = new Map(); // id -> room state
let currentRoom = null;
let ws = null;
let wsOpen = false;
let reconnectAttempt = 0;
let reconnectTimer = 0;
let pingTimer = 0;
let wantConnection = false;
let lastTypingSent = 0;
let sendCounter = 0;
const knownUsers = new Map(); // id -> name, for the add-member suggestions
const pendingActions = { joinRoom: [], leaveRoom: [], history: [] }; // rooms awaiting an answer, in order

function roomState(id, info = {}) {
  let r = rooms.get(id);
  if (!r) {
    r = {
      id,
      name: id,
      private: false,
      joined: false,
      joining: false,
      messages: new Map(), // seq -> message
      pending: new Map(), // clientMsgId -> {body, state, error, timer}
      hasMoreBefore: true,
      loadedLatest: false,
      loadingOlder: false,
      online: new Map(), // user id -> name (from presence)
      typing: new Map(), // user id -> {name, until}
      unread: 0,
      gapTimer: 0,
      catchingUp: false,
      elements: new Map(), // render key -> <li>
    };
    rooms.set(id, r);
  }
  if (info.name) r.name = info.name;
  if (info.private !== undefined) r.private = info.private;
  return r;
}

function saveView() {
  const joined = [...rooms.values()].filter((r) => r.joined || r.joining).map((r) => r.id);
  sessionStorage.setItem(VIEW_KEY, JSON.stringify({ joined, current: currentRoom }));
}

// ---------------------------------------------------------------------------------------------
// Notices and status

let noticeTimer = 0;
function notify(text) {
  $("notice-text").textContent = text;
  $("notice").hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => ($("notice").hidden = true), 12_000);
}

function setConn(state, text) {
  const el = $("conn-status");
  el.dataset.state = state;
  el.textContent = text;
}

function announce(text) {
  const live = $("live");
  const p = document.createElement("p");
  p.textContent = text;
  live.append(p);
  while (live.childElementCount > 5) live.firstElementChild.remove();
}

// ---------------------------------------------------------------------------------------------
// WebSocket

async function connect() {
  if (!wantConnection || ws) return;
  clearTimeout(reconnectTimer);
  setConn("connecting", reconnectAttempt ? "Reconnecting…" : "Connecting…");
  let token;
  try {
    token = await session.token();
  } catch (e) {
    if (e.code !== "unauthorized") scheduleReconnect();
    return;
  }
  if (!wantConnection || ws) return;
  let sock;
  try {
    sock = new WebSocket(WS_URL, ["hubbub.v1", `bearer.${token}`]);
  } catch {
    setConn("offline", "The WebSocket address is invalid");
    return;
  }
  ws = sock;
  sock.addEventListener("open", () => {
    if (ws !== sock) return;
    wsOpen = true;
    reconnectAttempt = 0;
    setConn("online", "Connected");
    clearInterval(pingTimer);
    pingTimer = setInterval(() => sendFrame({ action: "ping" }), PING_EVERY_MS);
    pendingActions.joinRoom.length = pendingActions.leaveRoom.length = pendingActions.history.length = 0;
    for (const r of rooms.values()) {
      if (r.joined || r.joining) {
        r.joined = false;
        joinRoom(r.id);
      }
    }
    renderRoom();
  });
  sock.addEventListener("message", (ev) => {
    if (ws !== sock) return;
    let frame;
    try {
      frame = JSON.parse(ev.data);
    } catch {
      return;
    }
    onFrame(frame);
  });
  sock.addEventListener("close", () => {
    if (ws !== sock) return;
    ws = null;
    wsOpen = false;
    clearInterval(pingTimer);
    // Sends in flight lose their ack with the connection: they can be retried.
    for (const r of rooms.values()) {
      for (const [cid, p] of r.pending) if (p.state === "pending") failSend(r, cid, "The connection dropped before the server confirmed this message.");
    }
    if (wantConnection) scheduleReconnect();
    renderRoom();
  });
}

// Exponential backoff with jitter: 0.5 s, 1 s, 2 s, ... capped at 30 s, each randomised to
// 50-100% so that clients dropped together do not come back together.
function scheduleReconnect() {
  clearTimeout(reconnectTimer);
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** reconnectAttempt);
  const delay = Math.round(base / 2 + (Math.random() * base) / 2);
  reconnectAttempt += 1;
  setConn("reconnecting", `Disconnected. Reconnecting in ${Math.ceil(delay / 1000)} s…`);
  reconnectTimer = setTimeout(connect, delay);
}

function disconnect() {
  wantConnection = false;
  clearTimeout(reconnectTimer);
  clearInterval(pingTimer);
  if (ws) {
    const sock = ws;
    ws = null;
    wsOpen = false;
    // Closing a socket that is still connecting makes the browser log an error: wait for it.
    if (sock.readyState === 0) sock.addEventListener("open", () => sock.close(1000, "bye"));
    else if (sock.readyState === 1) sock.close(1000, "bye");
  }
}

function sendFrame(frame) {
  if (!ws || !wsOpen || ws.readyState !== 1) return false;
  ws.send(JSON.stringify(frame));
  return true;
}

function onFrame(f) {
  switch (f.type) {
    case "joined": {
      removePending("joinRoom", f.room);
      const r = roomState(f.room);
      r.joined = true;
      r.joining = false;
      saveView();
      catchUp(r);
      renderRooms();
      if (r.id === currentRoom) renderRoom();
      break;
    }
    case "left": {
      removePending("leaveRoom", f.room);
      const r = rooms.get(f.room);
      if (r) {
        r.joined = false;
        r.online.clear();
        saveView();
        renderRooms();
        if (r.id === currentRoom) renderRoom();
      }
      break;
    }
    case "ack":
      onAck(f);
      break;
    case "message":
      addMessages(roomState(f.room), [f], { live: true });
      break;
    case "history":
      onHistory(f);
      break;
    case "presence": {
      const r = roomState(f.room);
      knownUsers.set(f.user.id, f.user.name);
      if (f.state === "joined") r.online.set(f.user.id, f.user.name);
      else r.online.delete(f.user.id);
      r.typing.delete(f.user.id);
      if (r.id === currentRoom) {
        renderPresence();
        announce(`${f.user.name} ${f.state === "joined" ? "joined" : "left"} ${r.name}`);
      }
      renderKnownUsers();
      break;
    }
    case "typing": {
      const r = roomState(f.room);
      if (f.user.id === session.user?.id) break;
      r.typing.set(f.user.id, { name: f.user.name, until: Date.now() + TYPING_SHOW_MS });
      if (r.id === currentRoom) renderTyping();
      setTimeout(() => r.id === currentRoom && renderTyping(), TYPING_SHOW_MS + 50);
      break;
    }
    case "pong":
      break;
    case "error":
      onErrorFrame(f);
      break;
    default:
      break;
  }
}

function removePending(action, room) {
  const q = pendingActions[action];
  const i = q.indexOf(room);
  if (i >= 0) q.splice(i, 1);
}

function onErrorFrame(f) {
  const text = describeError(f.code, f.message);
  if (f.action === "sendMessage" || f.clientMsgId) {
    for (const r of rooms.values()) {
      if (r.pending.has(f.clientMsgId)) {
        failSend(r, f.clientMsgId, text);
        return;
      }
    }
  }
  // Error frames do not name the room: the oldest request of that action is the one answered.
  const q = pendingActions[f.action];
  const room = q && q.length ? rooms.get(q.shift()) : null;
  if (f.action === "joinRoom" && room) {
    room.joining = false;
    room.joined = false;
    saveView();
    renderRooms();
    if (room.id === currentRoom) renderRoom();
    notify(`Could not join ${room.name}: ${text}`);
    return;
  }
  if (f.action === "history" && room) {
    room.catchingUp = false;
    notify(`Could not load messages of ${room.name}: ${text}`);
    return;
  }
  if (f.code === "unauthorized") {
    session.refresh().catch(() => {});
    return;
  }
  notify(text);
}

// ---------------------------------------------------------------------------------------------
// Rooms

async function loadRooms() {
  try {
    const { rooms: list } = await http("GET", "/rooms");
    for (const info of list) roomState(info.id, info);
    renderRooms();
  } catch (e) {
    notify(`Could not load the rooms: ${describeError(e.code, e.message)}`);
  }
}

function joinRoom(id) {
  const r = roomState(id);
  r.joining = true;
  saveView();
  if (sendFrame({ action: "joinRoom", room: id })) pendingActions.joinRoom.push(id);
  renderRooms();
}

function leaveRoom(id) {
  const r = rooms.get(id);
  if (!r) return;
  r.joining = false;
  if (sendFrame({ action: "leaveRoom", room: id })) pendingActions.leaveRoom.push(id);
  r.joined = false;
  saveView();
  renderRooms();
  renderRoom();
}

function openRoom(id) {
  const r = roomState(id);
  currentRoom = id;
  r.unread = 0;
  saveView();
  if (!r.joined && !r.joining) joinRoom(id);
  if (!r.loadedLatest) loadLatest(r);
  renderRooms();
  renderRoom({ toBottom: true });
}

// The newest page, over HTTP (also readable before the WebSocket is up).
async function loadLatest(r) {
  r.loadedLatest = true;
  try {
    const page = await http("GET", `/rooms/${encodeURIComponent(r.id)}/messages?limit=${PAGE}`);
    r.hasMoreBefore = page.hasMore;
    addMessages(r, page.messages, { toBottom: true });
    // Anything committed between this read and the join is fetched over the WebSocket.
    if (r.joined) catchUp(r);
  } catch (e) {
    r.loadedLatest = false;
    if (e.code !== "unauthorized") notify(`Could not load messages of ${r.name}: ${describeError(e.code, e.message)}`);
  }
}

// Scroll-back over HTTP: the page before the oldest message held.
async function loadOlder(r) {
  if (r.loadingOlder || !r.hasMoreBefore) return;
  const oldest = lowestSeq(r);
  if (oldest === null) return;
  if (oldest <= 1) {
    r.hasMoreBefore = false;
    renderRoom();
    return;
  }
  r.loadingOlder = true;
  renderRoom();
  try {
    const page = await http("GET", `/rooms/${encodeURIComponent(r.id)}/messages?before=${oldest}&limit=${PAGE}`);
    r.hasMoreBefore = page.hasMore;
    addMessages(r, page.messages, { older: true });
  } catch (e) {
    notify(`Could not load older messages: ${describeError(e.code, e.message)}`);
  } finally {
    r.loadingOlder = false;
    if (r.id === currentRoom) renderRoom();
  }
}

function lowestSeq(r) {
  let low = null;
  for (const s of r.messages.keys()) if (low === null || s < low) low = s;
  return low;
}

// The highest seq up to which everything from the oldest held message is present.
function contiguousSeq(r) {
  let s = lowestSeq(r);
  if (s === null) return null;
  while (r.messages.has(s + 1)) s += 1;
  return s;
}

function highestSeq(r) {
  let high = null;
  for (const s of r.messages.keys()) if (high === null || s > high) high = s;
  return high;
}

// After a (re)join: fetch what was missed with `history after` the highest contiguous seq.
function catchUp(r) {
  const after = contiguousSeq(r);
  if (after === null) {
    if (!r.loadedLatest) loadLatest(r);
    return;
  }
  r.catchingUp = true;
  if (sendFrame({ action: "history", room: r.id, after, limit: 100 })) pendingActions.history.push(r.id);
}

function onHistory(f) {
  removePending("history", f.room);
  const r = roomState(f.room);
  r.catchingUp = false;
  addMessages(r, f.messages, {});
  // More than a page was missed: keep going from the new contiguous end.
  if (f.hasMore && f.messages.length) catchUp(r);
}

function addMessages(r, list, { live = false, older = false, toBottom = false } = {}) {
  let added = 0;
  for (const m of list) {
    if (m.sender) knownUsers.set(m.sender.id, m.sender.name);
    if (r.messages.has(m.seq)) continue; // each message once, whatever path brought it
    r.messages.set(m.seq, m);
    added += 1;
    // Our own message that came back through history (its ack was lost): it is confirmed.
    if (m.sender && m.sender.id === session.user?.id && r.pending.has(m.clientMsgId)) {
      clearTimeout(r.pending.get(m.clientMsgId).timer);
      r.pending.delete(m.clientMsgId);
    }
    if (live) {
      r.typing.delete(m.sender.id);
      if (r.id === currentRoom && !document.hidden) announce(`${m.sender.name}: ${m.body}`);
      else r.unread += 1;
    }
  }
  if (live) checkGap(r);
  renderKnownUsers();
  if (added && r.id !== currentRoom) renderRooms();
  if (r.id === currentRoom) renderRoom({ older, toBottom });
}

// A live message past a gap: the missing ones are probably in flight; fetch them if not.
function checkGap(r) {
  const high = highestSeq(r);
  const cont = contiguousSeq(r);
  if (high === null || high === cont || r.gapTimer) return;
  r.gapTimer = setTimeout(() => {
    r.gapTimer = 0;
    if (contiguousSeq(r) !== highestSeq(r) && r.joined) catchUp(r);
  }, GAP_WAIT_MS);
}

async function createRoom(id, name, isPrivate) {
  try {
    const room = await http("POST", "/rooms", { id, name, private: isPrivate });
    roomState(room.id, room);
    openRoom(room.id);
    return true;
  } catch (e) {
    const text = e.code === "conflict" ? "A room with this id already exists. Choose another id." : describeError(e.code, e.message);
    notify(`Could not create the room: ${text}`);
    return false;
  }
}

async function addMember(roomId, userId) {
  try {
    await http("POST", `/rooms/${encodeURIComponent(roomId)}/members`, { userId });
    const name = knownUsers.get(userId);
    notify(`${name ? `${name} (${userId})` : userId} can now use this room.`);
    return true;
  } catch (e) {
    notify(`Could not add the member: ${describeError(e.code, e.message)}`);
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Sending

function newClientMsgId() {
  const rnd = new Uint8Array(8);
  crypto.getRandomValues(rnd);
  return `w${Date.now().toString(36)}-${[...rnd].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

function sendMessage(r, body, clientMsgId = newClientMsgId()) {
  const existing = r.pending.get(clientMsgId);
  const p = existing || { body, state: "pending", error: "", timer: 0, order: ++sendCounter };
  p.state = "pending";
  p.error = "";
  clearTimeout(p.timer);
  r.pending.set(clientMsgId, p);
  if (!r.joined || !sendFrame({ action: "sendMessage", room: r.id, body: p.body, clientMsgId })) {
    failSend(r, clientMsgId, r.joined ? "Not connected. The message was not sent." : "Join the room to send messages.");
    return;
  }
  p.timer = setTimeout(() => failSend(r, clientMsgId, "The server did not confirm this message in time."), SEND_TIMEOUT_MS);
  renderRoom({ toBottom: true });
}

function failSend(r, clientMsgId, text) {
  const p = r.pending.get(clientMsgId);
  if (!p) return;
  clearTimeout(p.timer);
  p.state = "failed";
  p.error = text;
  if (r.id === currentRoom) {
    renderRoom();
    announce(`Message not sent: ${text}`);
  }
}

function onAck(a) {
  const r = roomState(a.room);
  const p = r.pending.get(a.clientMsgId);
  if (p) {
    clearTimeout(p.timer);
    r.pending.delete(a.clientMsgId);
    if (!r.messages.has(a.seq)) {
      r.messages.set(a.seq, {
        room: a.room, id: a.id, seq: a.seq, sender: session.user, body: p.body,
        clientMsgId: a.clientMsgId, sentAt: a.sentAt,
      });
    }
  }
  checkGap(r);
  if (r.id === currentRoom) renderRoom();
}

// ---------------------------------------------------------------------------------------------
// Rendering

function renderRooms() {
  const list = $("room-list");
  const sorted = [...rooms.values()].sort((a, b) => a.name.localeCompare(b.name));
  list.replaceChildren(
    ...sorted.map((r) => {
      const li = document.createElement("li");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "room-link";
      b.dataset.room = r.id;
      if (r.id === currentRoom) b.setAttribute("aria-current", "true");
      const label = document.createElement("span");
      label.textContent = r.name;
      b.append(label);
      const extra = [];
      if (r.private) extra.push("private");
      if (r.joined) extra.push("joined");
      if (extra.length) {
        const s = document.createElement("small");
        s.textContent = ` (${extra.join(", ")})`;
        b.append(s);
      }
      if (r.unread) {
        const u = document.createElement("span");
        u.className = "unread";
        u.textContent = String(r.unread);
        u.setAttribute("aria-label", `${r.unread} unread`);
        b.append(u);
      }
      b.addEventListener("click", () => openRoom(r.id));
      li.append(b);
      return li;
    }),
  );
  if (!sorted.length) {
    const li = document.createElement("li");
    li.textContent = "No rooms yet: create one below.";
    list.append(li);
  }
}

function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function messageElement(r, key, build) {
  let li = r.elements.get(key);
  if (!li) {
    li = document.createElement("li");
    r.elements.set(key, li);
  }
  build(li);
  return li;
}

function fillMessage(li, m, state, error, clientMsgId, r) {
  const sig = `${state}|${error}`;
  if (li.dataset.sig === sig) return;
  li.dataset.sig = sig;
  li.className = `msg ${state}${m.sender && m.sender.id === session.user?.id ? " mine" : ""}`;
  li.dataset.state = state;
  if (m.seq) li.dataset.seq = String(m.seq);
  else delete li.dataset.seq;
  li.dataset.clientMsgId = clientMsgId || m.clientMsgId || "";
  const head = document.createElement("p");
  head.className = "meta";
  const who = document.createElement("strong");
  who.textContent = m.sender ? m.sender.name : session.user?.name || "me";
  head.append(who);
  if (m.sentAt) {
    const t = document.createElement("time");
    t.dateTime = m.sentAt;
    t.textContent = ` ${fmtTime(m.sentAt)}`;
    head.append(t);
  }
  const body = document.createElement("p");
  body.className = "body";
  body.textContent = m.body;
  const parts = [head, body];
  if (state === "pending") {
    const s = document.createElement("p");
    s.className = "state";
    s.textContent = "Sending…";
    parts.push(s);
  } else if (state === "failed") {
    const s = document.createElement("p");
    s.className = "state";
    s.textContent = `Not sent: ${error} `;
    const retry = document.createElement("button");
    retry.type = "button";
    retry.className = "retry";
    retry.textContent = "Retry";
    retry.addEventListener("click", () => sendMessage(r, m.body, clientMsgId));
    s.append(retry);
    parts.push(s);
  }
  li.replaceChildren(...parts);
}

function renderRoom({ older = false, toBottom = false } = {}) {
  const r = currentRoom ? rooms.get(currentRoom) : null;
  const scroller = $("scroller");
  const list = $("messages");
  const input = $("composer-input");
  const send = $("send");
  const toggle = $("join-toggle");
  if (!r) {
    $("room-title").textContent = "No room open";
    $("room-private-badge").hidden = true;
    toggle.hidden = true;
    $("member-form").hidden = true;
    list.replaceChildren();
    $("load-older").hidden = true;
    input.disabled = send.disabled = true;
    renderPresence();
    renderTyping();
    return;
  }
  const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 40;
  const fromBottom = scroller.scrollHeight - scroller.scrollTop;

  $("room-title").textContent = r.name === r.id ? r.name : `${r.name} (${r.id})`;
  $("room-private-badge").hidden = !r.private;
  toggle.hidden = false;
  toggle.textContent = r.joined ? "Leave room" : r.joining ? "Joining…" : "Join room";
  toggle.disabled = r.joining && !r.joined;
  $("member-form").hidden = !(r.private && r.joined);
  const canSend = r.joined && wsOpen;
  input.disabled = !r.joined;
  send.disabled = !canSend;
  input.placeholder = r.joined
    ? "Write a message (Enter sends, Shift+Enter for a new line)"
    : "Join the room to write messages";

  const older_ = $("load-older");
  older_.hidden = !(r.hasMoreBefore && r.messages.size && lowestSeq(r) > 1);
  older_.disabled = r.loadingOlder;
  older_.textContent = r.loadingOlder ? "Loading older messages…" : "Load older messages";

  const keys = [];
  const seqs = [...r.messages.keys()].sort((a, b) => a - b);
  for (const s of seqs) {
    const m = r.messages.get(s);
    keys.push(messageElement(r, `s${s}`, (li) => fillMessage(li, m, "sent", "", m.clientMsgId, r)));
  }
  const pend = [...r.pending.entries()].sort((a, b) => a[1].order - b[1].order);
  for (const [cid, p] of pend) {
    const m = { sender: session.user, body: p.body };
    keys.push(messageElement(r, `p${cid}`, (li) => fillMessage(li, m, p.state, p.error, cid, r)));
  }
  // Drop elements of messages that moved (pending -> confirmed) or belong elsewhere.
  const keep = new Set(keys);
  for (const [k, li] of r.elements) if (!keep.has(li)) r.elements.delete(k);
  if (list.dataset.room !== r.id || list.childElementCount !== keys.length || keys.some((li, i) => list.children[i] !== li)) {
    list.dataset.room = r.id;
    list.replaceChildren(...keys);
  }

  if (toBottom || atBottom) scroller.scrollTop = scroller.scrollHeight;
  else if (older) scroller.scrollTop = scroller.scrollHeight - fromBottom;
  renderPresence();
  renderTyping();
}

function renderPresence() {
  const r = currentRoom ? rooms.get(currentRoom) : null;
  const el = $("presence");
  if (!r || !r.online.size) {
    el.textContent = "";
    return;
  }
  const names = [...r.online.values()];
  el.textContent = `Here since you joined: ${names.join(", ")}`;
}

function renderTyping() {
  const r = currentRoom ? rooms.get(currentRoom) : null;
  const el = $("typing");
  if (!r) {
    el.textContent = "";
    return;
  }
  const now = Date.now();
  const names = [];
  for (const [id, t] of r.typing) {
    if (t.until > now) names.push(t.name);
    else r.typing.delete(id);
  }
  const text = !names.length ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
  if (el.textContent !== text) el.textContent = text;
}

function renderKnownUsers() {
  const dl = $("known-users");
  const opts = [...knownUsers.entries()]
    .filter(([id]) => id !== session.user?.id)
    .map(([id, name]) => {
      const o = document.createElement("option");
      o.value = id;
      o.label = name;
      return o;
    });
  if (dl.childElementCount !== opts.length) dl.replaceChildren(...opts);
}

// ---------------------------------------------------------------------------------------------
// Views

function showAuth() {
  $("auth-view").hidden = false;
  $("chat-view").hidden = true;
  $("whoami").hidden = true;
  setConn("offline", "Signed out");
  $("username").focus();
}

function showChat() {
  $("auth-view").hidden = true;
  $("chat-view").hidden = false;
  $("whoami").hidden = false;
  $("me-name").textContent = session.user.name;
  $("me-id").textContent = session.user.id;
}

async function startChat() {
  showChat();
  wantConnection = true;
  let view = { joined: [], current: null };
  try {
    view = JSON.parse(sessionStorage.getItem(VIEW_KEY) || "null") || view;
  } catch {
    /* ignored */
  }
  for (const id of view.joined || []) roomState(id).joining = true;
  renderRooms();
  await loadRooms();
  if (view.current) openRoom(view.current);
  connect();
}

function endSession(text) {
  disconnect();
  session.clear();
  rooms.clear();
  currentRoom = null;
  knownUsers.clear();
  $("messages").replaceChildren();
  $("room-list").replaceChildren();
  renderRoom();
  showAuth();
  if (text) $("auth-error").textContent = text;
}

async function logout() {
  const token = session.refreshToken;
  disconnect();
  try {
    if (token) await http("POST", "/auth/logout", { refreshToken: token }, { auth: false });
  } catch {
    /* the local session ends anyway */
  }
  endSession("");
  $("auth-error").textContent = "You are signed out.";
}

// ---------------------------------------------------------------------------------------------
// Wiring

function wire() {
  $("notice-close").addEventListener("click", () => ($("notice").hidden = true));
  $("logout").addEventListener("click", logout);
  $("auth-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const mode = ev.submitter?.value === "register" ? "register" : "login";
    const username = $("username").value.trim();
    const password = $("password").value;
    const err = $("auth-error");
    if (!/^[A-Za-z0-9_.-]{3,32}$/.test(username)) {
      err.textContent = "The username must be 3 to 32 characters: letters, digits, _ . or -.";
      $("username").focus();
      return;
    }
    if ([...password].length < 8 || [...password].length > 128) {
      err.textContent = "The password must be 8 to 128 characters.";
      $("password").focus();
      return;
    }
    err.textContent = mode === "register" ? "Creating your account…" : "Signing in…";
    for (const b of $("auth-form").querySelectorAll("button")) b.disabled = true;
    try {
      const body = await http("POST", `/auth/${mode}`, { username, password }, { auth: false });
      err.textContent = "";
      $("password").value = "";
      session.adopt(body);
      await startChat();
    } catch (e) {
      err.textContent =
        mode === "login" && e.code === "unauthorized"
          ? "The username or password is wrong."
          : mode === "register" && e.code === "conflict"
            ? "That username is taken. Choose another one, or sign in."
            : describeError(e.code, e.message);
    } finally {
      for (const b of $("auth-form").querySelectorAll("button")) b.disabled = false;
    }
  });

  $("rooms-refresh").addEventListener("click", loadRooms);
  $("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const id = $("room-id").value.trim();
    const name = $("room-name").value.trim() || id;
    if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(id)) {
      notify("The room id must be 1 to 64 characters: lowercase letters, digits, _ or -, starting with a letter or digit.");
      $("room-id").focus();
      return;
    }
    if (await createRoom(id, name, $("room-private").checked)) {
      ev.target.reset();
      $("create-room").open = false;
      $("composer-input").focus();
    }
  });
  $("join-toggle").addEventListener("click", () => {
    const r = rooms.get(currentRoom);
    if (!r) return;
    if (r.joined) leaveRoom(r.id);
    else {
      joinRoom(r.id);
      renderRoom();
    }
  });
  $("member-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const userId = $("member-id").value.trim();
    if (!userId) {
      notify("Enter the user id of the person to add (they can see it next to their name).");
      return;
    }
    if (await addMember(currentRoom, userId)) $("member-id").value = "";
  });
  $("load-older").addEventListener("click", () => currentRoom && loadOlder(rooms.get(currentRoom)));
  $("scroller").addEventListener("scroll", () => {
    const r = currentRoom && rooms.get(currentRoom);
    if (r && $("scroller").scrollTop < 30) loadOlder(r);
  });

  const input = $("composer-input");
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const r = currentRoom && rooms.get(currentRoom);
    if (!r) return;
    const body = input.value;
    if (!body.trim()) return;
    const len = [...body].length;
    if (len > BODY_MAX) {
      notify(`${ERROR_TEXT.payload_too_large} (${len} of at most ${BODY_MAX} characters)`);
      return;
    }
    input.value = "";
    lastTypingSent = 0;
    sendMessage(r, body);
  });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  input.addEventListener("input", () => {
    const r = currentRoom && rooms.get(currentRoom);
    if (!r || !r.joined || !input.value) return;
    const now = Date.now();
    if (now - lastTypingSent > TYPING_SEND_EVERY_MS) {
      lastTypingSent = now;
      sendFrame({ action: "typing", room: r.id });
    }
  });

  window.addEventListener("online", () => {
    if (wantConnection && !ws) {
      reconnectAttempt = 0;
      connect();
    }
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && session.refreshToken && !session.fresh()) session.refresh().catch(() => {});
  });
}

function main() {
  wire();
  if (session.load()) {
    session.schedule();
    startChat();
  } else {
    showAuth();
  }
}

main();
