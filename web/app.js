// hubbub's web client, wired together: ES modules without a build step (see README.md for what
// each module does). The contract it speaks is docs/protocol.md: the HTTP API for accounts, rooms and
// scroll-back, the WebSocket for live chat (token only in the `bearer.<jwt>` subprotocol, never
// in the URL).
//
// Base URLs default to the page's own origin (http -> ws) and can be overridden with
// `?api=https://...&ws=wss://...` (see web/README.md).

import { createApi } from "./api.js";
import { describeError } from "./errors.js";
import { RoomStore, displayName } from "./room-state.js";
import { Session } from "./session.js";
import { Socket } from "./socket.js";
import { createView } from "./view.js";

export { ERROR_TEXT, describeError } from "./errors.js";

const params = new URLSearchParams(location.search);
const API_BASE = (params.get("api") || location.origin).replace(/\/+$/, "");
const WS_URL = params.get("ws") || location.origin.replace(/^http/, "ws") + "/";

// Messages per HTTP page: the newest page on opening a room, then one per scroll-back.
const PAGE = 50;
// Where the joined rooms and the open room are kept, so a reload comes back to them.
const VIEW_KEY = "hubbub.view";

const session = new Session({
  storage: sessionStorage,
  refreshCall: (refreshToken) => api.refresh(refreshToken),
  onEnded: (text) => endSession(text),
  // A connection must not outlive its token (the server closes it): move to a fresh one.
  onRefreshed: () => socket.renew(),
});
const api = createApi({ base: API_BASE, tokens: session });
const store = new RoomStore({
  transmit: (frame) => socket.send(frame),
  emit: onStateEvent,
  self: () => session.user,
  visible: () => view.pageVisible(),
});
const socket = new Socket({
  url: WS_URL,
  token: (options) => session.token(options),
  onOpen: () => {
    store.connected();
    view.renderRoom();
  },
  // Every frame, whatever its type, goes to the room state (which ignores unknown ones).
  onFrame: (frame) => store.apply(frame),
  onClose: () => {
    store.disconnected();
    view.renderRoom();
  },
  onStatus: (state, text) => view.setConn(state, text),
});
const view = createView({
  store,
  me: () => session.user,
  isOnline: () => socket.isOpen,
  actions: {
    authenticate: (mode, username, password) => api.signIn(mode, username, password),
    begin: async (body) => {
      session.adopt(body);
      await startChat();
    },
    logout,
    loadRooms,
    openRoom: (id) => store.openRoom(id),
    createRoom,
    addMember,
    removeMember,
    leaveMembership,
    loadMembers,
    openDirect,
    toggleJoin,
    loadOlder,
    send: (body, replyTo) => {
      if (!store.open) return;
      store.composed();
      store.sendMessage(store.current, body, undefined, replyTo);
    },
    edit: (room, seq, body) => store.editMessage(room, seq, body),
    remove: (room, seq) => store.deleteMessage(room, seq),
    react: (room, seq, emoji) => store.toggleReaction(room, seq, emoji),
    retry: (room, body, clientMsgId) => store.sendMessage(room, body, clientMsgId),
    typed: () => store.typed(),
    online: () => socket.online(),
    visible: () => {
      if (session.refreshToken && !session.fresh()) session.refresh().catch(() => {});
      store.viewed();
    },
  },
});

// What the room state announces (see room-state.js) becomes rendering, storage and HTTP calls.
function onStateEvent(event, detail) {
  switch (event) {
    case "rooms":
      view.renderRooms();
      break;
    case "render":
      view.renderRoom(detail);
      break;
    case "view":
      sessionStorage.setItem(VIEW_KEY, JSON.stringify({ joined: store.joinedIds(), current: store.current }));
      break;
    case "needLatest":
      loadLatest(detail.room);
      break;
    case "live":
      view.announce(`${detail.message.sender?.name}: ${detail.message.body}`);
      break;
    case "presence":
      view.renderPresence();
      announcePresence(detail);
      break;
    case "typing":
      view.renderTyping();
      break;
    case "sendFailed":
      view.announce(`Message not sent: ${detail.text}`);
      break;
    case "knownUsers":
      view.renderKnownUsers();
      break;
    case "notice":
      view.notify(detail.text, detail.code);
      break;
    case "added":
      onAdded(detail.room.id);
      break;
    case "removed":
      view.notify(
        detail.left
          ? `You left ${displayName(detail.room)}.`
          : `You were removed from ${displayName(detail.room)} and can no longer read or write in it.`,
      );
      view.announce(`No longer a member of ${displayName(detail.room)}`);
      break;
    case "members":
      if (detail.room.id === store.current) view.renderMembers();
      break;
    case "unauthorized":
      session.refresh().catch(() => {});
      break;
    default:
      break;
  }
}

// Reads the room list (names, roles, read positions, unread counts); false when it failed.
async function loadRooms() {
  try {
    const { rooms } = await api.rooms();
    for (const info of rooms) store.room(info.id, info);
    view.renderRooms();
    return true;
  } catch (e) {
    view.notify(`Could not load the rooms: ${describeError(e.code, e.message)}`, e.code);
    return false;
  }
}

// The user was made a member of a private room, or someone opened a direct room with them: the
// room list says what it is, and joining it brings its messages (and unread count) live.
async function onAdded(id) {
  await loadRooms();
  const r = store.rooms.get(id);
  if (!r || !r.listed) return;
  if (!r.joined && !r.joining) store.join(id);
  view.announce(r.kind === "direct" ? `${displayName(r)} started a conversation with you` : `You were added to ${displayName(r)}`);
}

// The newest page, over HTTP (also readable before the WebSocket is up).
async function loadLatest(r) {
  r.loadedLatest = true;
  try {
    store.applyLatest(r, await api.messages(r.id, { limit: PAGE }));
  } catch (e) {
    r.loadedLatest = false;
    if (e.code !== "unauthorized") view.notify(`Could not load messages of ${displayName(r)}: ${describeError(e.code, e.message)}`, e.code);
  }
}

// Scroll-back over HTTP: the page before the oldest message held.
async function loadOlder() {
  const r = store.open;
  if (!r) return;
  const before = store.olderCursor(r);
  if (before === null) return;
  r.loadingOlder = true;
  view.renderRoom();
  try {
    store.applyOlder(r, await api.messages(r.id, { before, limit: PAGE }));
  } catch (e) {
    view.notify(`Could not load older messages: ${describeError(e.code, e.message)}`, e.code);
  } finally {
    r.loadingOlder = false;
    if (r.id === store.current) view.renderRoom();
  }
}

async function createRoom(id, name, isPrivate) {
  try {
    const room = await api.createRoom(id, name, isPrivate);
    // The creator of a private room is its owner (docs/protocol.md, "Members and roles").
    store.room(room.id, isPrivate ? { ...room, role: "owner" } : room);
    store.openRoom(room.id);
    return true;
  } catch (e) {
    const text = e.code === "conflict" ? "A room with this id already exists. Choose another id." : describeError(e.code, e.message);
    view.notify(`Could not create the room: ${text}`, e.code);
    return false;
  }
}

// The open room's member list (private rooms only).
async function loadMembers() {
  const r = store.open;
  if (!r || !r.private || r.kind === "direct" || r.membersLoading) return;
  r.membersLoading = r.membersAsked = true;
  try {
    store.setMembers(r.id, await api.members(r.id));
  } catch (e) {
    view.notify(`Could not list the members: ${describeError(e.code, e.message, "members")}`, e.code);
  } finally {
    r.membersLoading = false;
  }
}

// `who`: {username} or {userId}.
async function addMember(who) {
  const id = store.current;
  try {
    await api.addMember(id, who);
    const userId = who.userId;
    const name = who.username || store.knownUsers.get(userId);
    view.notify(`${name && userId ? `${name} (${userId})` : name || userId} can now use this room.`);
    await loadMembers();
    return true;
  } catch (e) {
    view.notify(`Could not add the member: ${describeError(e.code, e.message, "addMember")}`, e.code);
    return false;
  }
}

async function removeMember(userId) {
  const r = store.open;
  if (!r) return;
  try {
    await api.removeMember(r.id, userId);
    const m = r.members && r.members.find((x) => x.id === userId);
    view.notify(`${m && m.name ? m.name : userId} is no longer a member of ${displayName(r)}.`);
    await loadMembers();
  } catch (e) {
    view.notify(`Could not remove the member: ${describeError(e.code, e.message, "removeMember")}`, e.code);
  }
}

// Leaves the open private room for good (`DELETE .../members/me`). A connection that had joined it
// also gets `removed`; whichever comes first forgets the room.
async function leaveMembership() {
  const r = store.open;
  if (!r) return;
  r.leavingMembership = true;
  try {
    await api.removeMember(r.id, "me");
    if (store.forget(r.id)) view.notify(`You left ${displayName(r)}.`);
  } catch (e) {
    r.leavingMembership = false;
    view.notify(`Could not leave the room: ${describeError(e.code, e.message, "leaveRoom")}`, e.code);
  }
}

// Opens (creating on first use) the direct room with `username`, and shows it.
async function openDirect(username) {
  try {
    const entry = await api.openDirect(username);
    store.room(entry.id, entry);
    store.openRoom(entry.id);
    return true;
  } catch (e) {
    view.notify(`Could not start the conversation: ${describeError(e.code, e.message, "openDirect")}`, e.code);
    return false;
  }
}

function toggleJoin() {
  const r = store.open;
  if (!r) return;
  if (r.joined) store.leave(r.id);
  else {
    store.join(r.id);
    view.renderRoom();
  }
}

async function startChat() {
  view.showChat(session.user);
  let saved = { joined: [], current: null };
  try {
    saved = JSON.parse(sessionStorage.getItem(VIEW_KEY) || "null") || saved;
  } catch {
    /* ignored */
  }
  const listed = await loadRooms();
  // Rooms the list no longer has are not the user's any more (removed meanwhile): not rejoined.
  const usable = (id) => !listed || store.rooms.has(id);
  for (const id of saved.joined || []) if (usable(id)) store.room(id).joining = true;
  view.renderRooms();
  if (saved.current && usable(saved.current)) store.openRoom(saved.current);
  socket.start();
}

function endSession(text) {
  socket.stop();
  session.clear();
  sessionStorage.removeItem(VIEW_KEY);
  store.reset();
  view.signedOut(text);
}

async function logout() {
  const token = session.refreshToken;
  socket.stop();
  try {
    if (token) await api.logout(token);
  } catch {
    /* the local session ends anyway */
  }
  endSession("You are signed out.");
}

view.bind();
if (session.load()) {
  session.schedule();
  startChat();
} else {
  view.showAuth();
}

// Reads a presence window out loud: who joined and left (not us), or nothing when the frame
// carries only the room's count (large rooms).
function announcePresence({ room, joined, left }) {
  const me = session.user?.id;
  const names = (list) => list.filter((u) => u.id !== me).map((u) => u.name);
  const parts = [];
  if (names(joined).length) parts.push(`${names(joined).join(", ")} joined`);
  if (names(left).length) parts.push(`${names(left).join(", ")} left`);
  if (parts.length) view.announce(`${parts.join("; ")} ${room.name}`);
}
