// Room state: every room the client knows, its messages keyed by `seq`, the sends still waiting
// for their `ack`, membership, presence and typing; and the protocol logic around them: frames
// from the server are applied here (`apply`), messages are kept once each in `seq` order whatever
// brought them (live frame, batch, ack, HTTP page, `history`), a `seq` gap that does not fill is
// fetched with `history after`, and pending sends are matched to their ack by `clientMsgId`.
// Edits and deletes are entries of the sequence too: each is applied to its target (a newer
// edit wins, a delete is final), a re-read history page brings a message's latest state and
// reactions, and `reaction` frames update one emoji's count.
// Read state and membership: each room keeps the room's last `seq` and the user's read position
// (from the room list, entries held and `read` frames of the user's other connections); its
// unread count is the difference, as the server counts it. Viewing a room marks it read
// (`markRead`, at most once per MARK_READ_EVERY_MS per room). `added` and `removed` frames say
// the user's membership of a private room changed; a removed room is forgotten.
//
// No DOM access (it runs under `node --test`): frames go out through `transmit(frame)`, and
// everything the page should show or do is announced through `emit(event, detail)`:
//   "rooms"          the room list changed (names, membership, unread counts)
//   "render"         the open room changed; detail {older, toBottom}: how to scroll
//   "view"           the joined rooms or the open room changed (worth saving)
//   "needLatest"     detail {room}: the room's newest page should be loaded over HTTP
//   "live"           detail {room, message}: a new message arrived in the open room, on screen
//   "presence"       detail {room, joined, left, count}: a window's joins and leaves in the open room
//   "typing"         detail {room}: who is typing in the open room changed
//   "sendFailed"     detail {room, text}: a send in the open room failed
//   "knownUsers"     the users seen so far changed
//   "notice"         detail {text}: something failed and the person should be told
//   "unauthorized"   the server refused the access token on the socket
//   "added"          detail {room}: the user was made a member of the room (or a direct room
//                    was opened with them): the room list should be read again
//   "removed"        detail {room, left, wasOpen}: the user is no longer a member of the room
//                    (removed by an owner, or `left` it from this page); it is forgotten
//   "members"        detail {room}: the room's member list (or the user's role) changed

import { describeError } from "./errors.js";

// No ack by then: the send is marked failed (a retry keeps the clientMsgId, so the server
// stores the message once however often it is sent).
export const SEND_TIMEOUT_MS = 10_000;
// Concurrent senders' messages can arrive out of order: a gap is given this long to fill by
// itself before it is fetched with `history after`.
export const GAP_WAIT_MS = 3_000;
// A typing notice shows this long unless renewed (others send one at most every 3 s).
export const TYPING_SHOW_MS = 5_000;
// Our own typing notices go out at most this often while the person keeps typing.
export const TYPING_SEND_EVERY_MS = 3_000;
// The largest `history` page the protocol allows; a longer gap takes several.
export const CATCH_UP_LIMIT = 100;
// Read marks of one room go out at most this often: in a busy open room every message moves the
// read position, and `markRead` shares the connection's route budget (10 a second) with joins
// and history. The latest position goes out when the wait ends.
export const MARK_READ_EVERY_MS = 1_000;

// The actions whose answers (or error frames) come back in the order they were sent.
const ANSWERED = ["joinRoom", "leaveRoom", "history"];

export function lowestSeq(r) {
  let low = null;
  for (const s of r.messages.keys()) if (low === null || s < low) low = s;
  return low;
}

export function highestSeq(r) {
  let high = null;
  for (const s of r.messages.keys()) if (high === null || s > high) high = s;
  return high;
}

// The highest seq up to which everything from the oldest held message is present.
export function contiguousSeq(r) {
  let s = lowestSeq(r);
  if (s === null) return null;
  while (r.messages.has(s + 1)) s += 1;
  return s;
}

export function newClientMsgId() {
  const rnd = new Uint8Array(8);
  crypto.getRandomValues(rnd);
  return `w${Date.now().toString(36)}-${[...rnd].map((b) => b.toString(16).padStart(2, "0")).join("")}`;
}

// An entry as kept: the fields of the protocol's message object, in the room it belongs to.
// `kind` is "message", "edit" or "delete" (servers before edits send no kind: a message).
function toMessage(room, m) {
  return {
    room,
    id: m.id,
    seq: m.seq,
    kind: m.kind === "edit" || m.kind === "delete" ? m.kind : "message",
    target: Number.isInteger(m.target) ? m.target : null,
    sender: m.sender,
    body: typeof m.body === "string" ? m.body : "",
    clientMsgId: m.clientMsgId,
    sentAt: m.sentAt,
    replyTo: isObject(m.replyTo) ? m.replyTo : null,
    editSeq: Number.isInteger(m.editSeq) ? m.editSeq : 0,
    editedAt: m.editedAt || null,
    deleted: m.deleted === true,
    reactions: Array.isArray(m.reactions) ? m.reactions.filter(isObject).map((x) => ({ ...x })) : [],
  };
}

// How a room is named to the person: a direct room by the other person's name.
export function displayName(r) {
  return r.kind === "direct" && r.with && r.with.name ? r.with.name : r.name;
}

// A room's members as shown: owners first, then by name (or id, for members added by id).
export function membersInOrder(list) {
  const label = (m) => m.name || m.id;
  return [...list].sort((a, b) => (a.role === b.role ? label(a).localeCompare(label(b)) : a.role === "owner" ? -1 : 1));
}

// The quick reactions the page offers (the server takes any short emoji).
export const REACTIONS = ["👍", "❤️", "😂", "🎉"];

const isObject = (v) => v !== null && typeof v === "object" && !Array.isArray(v);

export class RoomStore {
  constructor({
    transmit = () => false,
    emit = () => {},
    self = () => null,
    visible = () => true,
    now = Date.now,
    timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) },
    newId = newClientMsgId,
  } = {}) {
    Object.assign(this, { transmit, emit, self, visible, now, timers, newId });
    this.rooms = new Map(); // id -> room
    this.current = null; // the id of the open room
    this.knownUsers = new Map(); // user id -> name, for the add-member suggestions
    // Rooms awaiting an answer, per action, in the order asked: for error frames that do not
    // name the room.
    this.awaiting = new Map(ANSWERED.map((a) => [a, []]));
    this.sendCounter = 0;
    this.lastTypingSent = 0;
  }

  // The room `id`, created on first mention; `info` (from the room list) updates its name and
  // privacy.
  room(id, info = {}) {
    let r = this.rooms.get(id);
    if (!r) {
      r = {
        id,
        name: id,
        private: false,
        joined: false,
        joining: false,
        messages: new Map(), // seq -> entry (messages, edits, deletes)
        changes: new Map(), // clientMsgId -> {kind, target, body}: edits and deletes awaiting their ack
        pending: new Map(), // clientMsgId -> {body, state: "pending"|"failed", error, timer, order}
        hasMoreBefore: true,
        loadedLatest: false,
        loadingOlder: false,
        online: new Map(), // user id -> name (from presence; not us)
        count: null, // connections in the room, from the latest presence frame
        typing: new Map(), // user id -> {name, until}
        kind: "room", // or "direct"
        with: null, // a direct room's other person {id, name}
        role: null, // "owner" or "member" in private rooms the user belongs to
        readReceipts: false,
        listed: false, // seen in the room list (or created, or opened as a direct room)
        members: null, // [{id, name, role, lastRead?}] once read
        lastSeq: 0, // the room's last seq, as far as this client knows
        lastRead: 0, // the user's read position (raised here when the room is viewed)
        readSaved: 0, // the position the server is known to hold
        markSent: 0, // the highest position sent with markRead on this connection
        markTimer: 0,
        unread: 0, // lastSeq - lastRead
        gapTimer: 0,
        catchingUp: false,
      };
      this.rooms.set(id, r);
    }
    if (info.name) r.name = info.name;
    if (info.private !== undefined) r.private = info.private;
    if (info.id === id) r.listed = true;
    if (info.kind === "room" || info.kind === "direct") r.kind = info.kind;
    if (isObject(info.with) && typeof info.with.id === "string") r.with = { id: info.with.id, name: info.with.name };
    if (info.role === "owner" || info.role === "member") r.role = info.role;
    if (typeof info.readReceipts === "boolean") r.readReceipts = info.readReceipts;
    if (Number.isInteger(info.lastSeq)) r.lastSeq = Math.max(r.lastSeq, info.lastSeq);
    if (Number.isInteger(info.lastRead)) this.#readAt(r, info.lastRead);
    this.#recount(r);
    return r;
  }

  // Forgets room `id` (the user is no longer a member): its timers, sends and messages go, and
  // the page leaves it when it was open. Returns whether it was held.
  forget(id) {
    const r = this.rooms.get(id);
    if (!r) return false;
    this.timers.clear(r.gapTimer);
    this.timers.clear(r.markTimer);
    for (const p of r.pending.values()) this.timers.clear(p.timer);
    this.rooms.delete(id);
    for (const q of this.awaiting.values()) {
      for (let i = q.indexOf(id); i >= 0; i = q.indexOf(id)) q.splice(i, 1);
    }
    const wasOpen = this.current === id;
    if (wasOpen) this.current = null;
    this.emit("view");
    this.emit("rooms");
    if (wasOpen) this.emit("render", {});
    return true;
  }

  // The room's member list as read over HTTP; the user's own entry gives their role.
  setMembers(id, list) {
    const r = this.rooms.get(id);
    if (!r) return;
    r.members = membersInOrder(list.filter(isObject));
    const mine = r.members.find((m) => m.id === this.self()?.id);
    r.role = mine ? mine.role : null;
    for (const m of r.members) if (m.name) this.knownUsers.set(m.id, m.name);
    this.emit("members", { room: r });
    this.emit("knownUsers");
  }

  // --- read state ----------------------------------------------------------------------------

  #recount(r) {
    r.unread = Math.max(0, r.lastSeq - r.lastRead);
  }

  // The server holds read position `seq` for the user (room list, `read` frame).
  #readAt(r, seq) {
    r.readSaved = Math.max(r.readSaved, seq);
    r.markSent = Math.max(r.markSent, seq);
    r.lastRead = Math.max(r.lastRead, seq);
  }

  // The open room, on a visible page, is read up to the end of what it shows without a gap.
  #markViewed(r) {
    if (r.id !== this.current || !this.visible()) return;
    const upTo = contiguousSeq(r);
    if (upTo === null || upTo <= r.lastRead) return;
    r.lastRead = upTo;
    const before = r.unread;
    this.#recount(r);
    if (r.unread !== before) this.emit("rooms");
    this.#sendMark(r);
  }

  // Sends the read position when the server does not have it, at most every MARK_READ_EVERY_MS;
  // offline, it goes when the connection is back (connected()).
  #sendMark(r) {
    if (r.markTimer || r.lastRead <= r.markSent) return;
    if (!this.transmit({ action: "markRead", room: r.id, seq: r.lastRead })) return;
    r.markSent = r.lastRead;
    r.markTimer = this.timers.set(() => {
      r.markTimer = 0;
      if (this.#holds(r)) this.#sendMark(r);
    }, MARK_READ_EVERY_MS);
  }

  // The page became visible again: the open room counts as read.
  viewed() {
    if (this.open) this.#markViewed(this.open);
  }

  get open() {
    return this.current === null ? null : this.rooms.get(this.current) || null;
  }

  // The rooms joined or being joined (to re-join after a reload).
  joinedIds() {
    return [...this.rooms.values()].filter((r) => r.joined || r.joining).map((r) => r.id);
  }

  // Room `r`'s messages in seq order.
  messagesInOrder(r) {
    return [...r.messages.keys()].sort((a, b) => a - b).map((s) => r.messages.get(s));
  }

  // Room `r`'s sends not yet confirmed, in the order they were first sent: [clientMsgId, send].
  pendingInOrder(r) {
    return [...r.pending.entries()].sort((a, b) => a[1].order - b[1].order);
  }

  // Forgets everything (sign-out).
  reset() {
    for (const r of this.rooms.values()) {
      this.timers.clear(r.gapTimer);
      this.timers.clear(r.markTimer);
      for (const p of r.pending.values()) this.timers.clear(p.timer);
    }
    this.rooms.clear();
    this.current = null;
    this.knownUsers.clear();
    for (const q of this.awaiting.values()) q.length = 0;
    this.lastTypingSent = 0;
  }

  #renderIfOpen(r, opts = {}) {
    if (r.id === this.current) this.emit("render", opts);
  }

  #answered(action, room) {
    const q = this.awaiting.get(action);
    const i = q.indexOf(room);
    if (i >= 0) q.splice(i, 1);
  }

  #ask(action, frame) {
    if (this.transmit(frame)) this.awaiting.get(action).push(frame.room);
  }

  // --- the connection ------------------------------------------------------------------------

  // A (re)opened connection: re-join every room that was joined or being joined.
  connected() {
    for (const q of this.awaiting.values()) q.length = 0;
    for (const r of this.rooms.values()) {
      if (r.joined || r.joining) {
        r.joined = false;
        this.join(r.id);
      }
      // A mark sent on the old connection may not have arrived: send what the server lacks.
      this.timers.clear(r.markTimer);
      r.markTimer = 0;
      r.markSent = r.readSaved;
      this.#sendMark(r);
    }
  }

  // The connection dropped: sends in flight lose their ack with it, and can be retried.
  disconnected() {
    for (const r of this.rooms.values()) {
      for (const [cid, p] of r.pending) {
        if (p.state === "pending") this.failSend(r.id, cid, "The connection dropped before the server confirmed this message.");
      }
    }
  }

  // --- what the person does ------------------------------------------------------------------

  join(id) {
    const r = this.room(id);
    r.joining = true;
    this.emit("view");
    this.#ask("joinRoom", { action: "joinRoom", room: id });
    this.emit("rooms");
  }

  leave(id) {
    const r = this.rooms.get(id);
    if (!r) return;
    r.joining = false;
    this.#ask("leaveRoom", { action: "leaveRoom", room: id });
    r.joined = false;
    this.emit("view");
    this.emit("rooms");
    this.emit("render", {});
  }

  // Opens room `id`: joins it and loads its newest page when that has not happened yet.
  openRoom(id) {
    const r = this.room(id);
    this.current = id;
    this.#markViewed(r);
    this.emit("view");
    if (!r.joined && !r.joining) this.join(id);
    if (!r.loadedLatest) this.emit("needLatest", { room: r });
    this.emit("rooms");
    this.emit("render", { toBottom: true });
  }

  // Sends `body` to room `id` (answering the message `replyTo`, a seq); with the `clientMsgId`
  // of a failed send, retries that send.
  sendMessage(id, body, clientMsgId = this.newId(), replyTo = null) {
    const r = this.room(id);
    const existing = r.pending.get(clientMsgId);
    const quoted = replyTo && r.messages.get(replyTo);
    const p = existing || {
      body,
      state: "pending",
      error: "",
      timer: 0,
      order: ++this.sendCounter,
      replyTo: quoted ? { seq: replyTo, sender: quoted.sender, bodyPreview: quoted.body.slice(0, 100) } : null,
    };
    p.state = "pending";
    p.error = "";
    this.timers.clear(p.timer);
    r.pending.set(clientMsgId, p);
    const frame = { action: "sendMessage", room: r.id, body: p.body, clientMsgId };
    if (p.replyTo) frame.replyTo = p.replyTo.seq;
    if (!r.joined || !this.transmit(frame)) {
      this.failSend(id, clientMsgId, r.joined ? "Not connected. The message was not sent." : "Join the room to send messages.");
      return clientMsgId;
    }
    p.timer = this.timers.set(() => this.failSend(id, clientMsgId, "The server did not confirm this message in time."), SEND_TIMEOUT_MS);
    this.emit("render", { toBottom: true });
    return clientMsgId;
  }

  // Replaces the body of our message `seq` in room `id`.
  editMessage(id, seq, body) {
    this.#change(id, { action: "editMessage", room: id, seq, body }, { kind: "edit", target: seq, body });
  }

  // Deletes message `seq` of room `id` (ours, or any in a room we created).
  deleteMessage(id, seq) {
    this.#change(id, { action: "deleteMessage", room: id, seq }, { kind: "delete", target: seq, body: "" });
  }

  #change(id, frame, change) {
    const r = this.room(id);
    const clientMsgId = this.newId();
    if (!r.joined || !this.transmit({ ...frame, clientMsgId })) {
      this.emit("notice", { text: r.joined ? "Not connected. Nothing was changed." : "Join the room to change its messages." });
      return;
    }
    r.changes.set(clientMsgId, change);
  }

  // Adds our reaction `emoji` to message `seq` of room `id`, or takes it back if we had it.
  toggleReaction(id, seq, emoji) {
    const r = this.room(id);
    const m = r.messages.get(seq);
    const mine = !!m && m.reactions.some((x) => x.emoji === emoji && x.me);
    const frame = { action: "react", room: id, seq, emoji };
    if (mine) frame.remove = true;
    if (!r.joined || !this.transmit(frame)) {
      this.emit("notice", { text: r.joined ? "Not connected. Nothing was changed." : "Join the room to react." });
    }
  }

  failSend(id, clientMsgId, text) {
    const r = this.rooms.get(id);
    const p = r && r.pending.get(clientMsgId);
    if (!p) return;
    this.timers.clear(p.timer);
    p.state = "failed";
    p.error = text;
    if (r.id === this.current) {
      this.emit("render", {});
      this.emit("sendFailed", { room: r, text });
    }
  }

  // The person is typing in the open room: tell the others, at most every TYPING_SEND_EVERY_MS.
  typed() {
    const r = this.open;
    if (!r || !r.joined) return;
    const now = this.now();
    if (now - this.lastTypingSent > TYPING_SEND_EVERY_MS) {
      this.lastTypingSent = now;
      this.transmit({ action: "typing", room: r.id });
    }
  }

  // A message was sent from the composer: the next keystroke may announce typing again.
  composed() {
    this.lastTypingSent = 0;
  }

  // The names typing in room `r` now (expired notices are dropped).
  typingNames(r) {
    const now = this.now();
    const names = [];
    for (const [id, t] of r.typing) {
      if (t.until > now) names.push(t.name);
      else r.typing.delete(id);
    }
    return names;
  }

  // --- pages over HTTP -----------------------------------------------------------------------

  // Whether `r` is still one of this store's rooms (not forgotten by a sign-out while an HTTP
  // page was on its way).
  #holds(r) {
    return this.rooms.get(r.id) === r;
  }

  // The newest page of room `r` (`{messages, hasMore}`).
  applyLatest(r, page) {
    if (!this.#holds(r)) return;
    r.hasMoreBefore = page.hasMore;
    this.addMessages(r, page.messages, { toBottom: true });
    // Anything committed between this read and the join is fetched over the WebSocket.
    if (r.joined) this.catchUp(r);
  }

  // Where scroll-back of room `r` continues: the seq to load `before`, or null when there is
  // nothing (more) to load or a page is on its way.
  olderCursor(r) {
    if (r.loadingOlder || !r.hasMoreBefore) return null;
    const oldest = lowestSeq(r);
    if (oldest === null) return null;
    if (oldest <= 1) {
      r.hasMoreBefore = false;
      this.emit("render", {});
      return null;
    }
    return oldest;
  }

  // A page of room `r` before its oldest message.
  applyOlder(r, page) {
    if (!this.#holds(r)) return;
    r.hasMoreBefore = page.hasMore;
    this.addMessages(r, page.messages, { older: true });
  }

  // --- frames from the server ----------------------------------------------------------------

  // Applies one frame from the server. Frames of unknown types, and frames that are not objects
  // or do not name a room where they must, are ignored. Returns whether the frame was used.
  apply(f) {
    if (!isObject(f) || typeof f.type !== "string") return false;
    const roomless = f.type === "pong" || f.type === "error";
    if (!roomless && typeof f.room !== "string") return false;
    switch (f.type) {
      case "joined":
        this.#onJoined(f);
        return true;
      case "left":
        this.#onLeft(f);
        return true;
      case "ack":
        this.#onAck(f);
        return true;
      case "message":
        this.addMessages(this.room(f.room), [f], { live: true });
        return true;
      case "messages":
        // A batch: the same as each of its messages as a `message` frame, in order.
        if (!Array.isArray(f.messages)) return false;
        this.addMessages(this.room(f.room), f.messages, { live: true });
        return true;
      case "history":
        this.#onHistory(f);
        return true;
      case "reaction":
        return this.#onReaction(f);
      case "presence":
        return this.#onPresence(f);
      case "typing":
        return this.#onTyping(f);
      case "read":
        return this.#onRead(f);
      case "receipt":
        return this.#onReceipt(f);
      case "added":
        this.emit("added", { room: this.room(f.room) });
        return true;
      case "removed":
        this.#onRemoved(f);
        return true;
      case "pong":
        return true;
      case "error":
        this.#onError(f);
        return true;
      default:
        return false;
    }
  }

  #onJoined(f) {
    this.#answered("joinRoom", f.room);
    const r = this.room(f.room);
    r.joined = true;
    r.joining = false;
    this.emit("view");
    this.catchUp(r);
    this.emit("rooms");
    this.#renderIfOpen(r);
  }

  #onLeft(f) {
    this.#answered("leaveRoom", f.room);
    const r = this.rooms.get(f.room);
    if (!r) return;
    r.joined = false;
    r.online.clear();
    this.emit("view");
    this.emit("rooms");
    this.#renderIfOpen(r);
  }

  // The user's read position moved (our own mark's answer, or another connection's mark).
  #onRead(f) {
    if (!Number.isInteger(f.lastRead)) return false;
    const r = this.rooms.get(f.room);
    if (!r) return true; // a room this page does not list: the list brings it with its state
    this.#readAt(r, f.lastRead);
    if (Number.isInteger(f.unread)) r.lastSeq = Math.max(r.lastSeq, f.lastRead + f.unread);
    const before = r.unread;
    this.#recount(r);
    if (r.unread !== before) this.emit("rooms");
    return true;
  }

  // Another member's read position moved (rooms with read receipts).
  #onReceipt(f) {
    if (!isObject(f.user) || typeof f.user.id !== "string" || !Number.isInteger(f.lastRead)) return false;
    const r = this.rooms.get(f.room);
    const m = r && r.members && r.members.find((x) => x.id === f.user.id);
    if (m && !(m.lastRead >= f.lastRead)) {
      m.lastRead = f.lastRead;
      this.emit("members", { room: r });
    }
    return true;
  }

  // The user is no longer a member: the connection has left the room already.
  #onRemoved(f) {
    const r = this.rooms.get(f.room);
    if (!r) return;
    const wasOpen = this.current === r.id;
    const left = r.leavingMembership === true;
    this.forget(r.id);
    this.emit("removed", { room: r, left, wasOpen });
  }

  #onAck(a) {
    const r = this.room(a.room);
    const change = r.changes.get(a.clientMsgId);
    if (change) {
      // Our own edit or delete: an entry of the sequence like any other.
      r.changes.delete(a.clientMsgId);
      const body = typeof a.body === "string" ? a.body : change.body;
      this.addMessages(r, [{ ...a, sender: this.self(), body, kind: change.kind, target: change.target }], {});
      return;
    }
    const p = r.pending.get(a.clientMsgId);
    if (p) {
      this.timers.clear(p.timer);
      r.pending.delete(a.clientMsgId);
      if (Number.isInteger(a.seq) && !r.messages.has(a.seq)) {
        const body = typeof a.body === "string" ? a.body : p.body;
        r.messages.set(a.seq, toMessage(r.id, { ...a, sender: this.self(), body, replyTo: p.replyTo }));
      }
    }
    if (Number.isInteger(a.seq)) {
      // Our own entries count as unread on the server too, until the room is viewed.
      r.lastSeq = Math.max(r.lastSeq, a.seq);
      this.#recount(r);
      this.#markViewed(r);
    }
    this.#checkGap(r);
    this.#renderIfOpen(r);
  }

  #onHistory(f) {
    this.#answered("history", f.room);
    const r = this.room(f.room);
    r.catchingUp = false;
    const list = Array.isArray(f.messages) ? f.messages : [];
    this.addMessages(r, list, {});
    // More than a page was missed: keep going from the new contiguous end.
    if (f.hasMore && list.length) this.catchUp(r);
  }

  // One frame per room and window: who joined, who left (names only in rooms up to the
  // server's detail limit) and how many connections are in the room now.
  #onPresence(f) {
    const users = (v) => (Array.isArray(v) ? v : []).filter((u) => isObject(u) && typeof u.id === "string");
    if (!Array.isArray(f.joined) && !Array.isArray(f.left)) return false;
    const r = this.room(f.room);
    const me = this.self()?.id;
    const joined = users(f.joined);
    const left = users(f.left);
    for (const u of joined) {
      this.knownUsers.set(u.id, u.name);
      if (u.id !== me) r.online.set(u.id, u.name);
      r.typing.delete(u.id);
    }
    for (const u of left) {
      r.online.delete(u.id);
      r.typing.delete(u.id);
    }
    if (Number.isInteger(f.count)) r.count = f.count;
    if (r.id === this.current) this.emit("presence", { room: r, joined, left, count: r.count });
    this.emit("knownUsers");
    return true;
  }

  #onTyping(f) {
    if (!isObject(f.user)) return false;
    const r = this.room(f.room);
    if (f.user.id === this.self()?.id) return true;
    r.typing.set(f.user.id, { name: f.user.name, until: this.now() + TYPING_SHOW_MS });
    if (r.id === this.current) this.emit("typing", { room: r });
    // Shortly after it expires, so the notice disappears without another event.
    this.timers.set(() => r.id === this.current && this.emit("typing", { room: r }), TYPING_SHOW_MS + 50);
    return true;
  }

  // A reaction changed: the count for one emoji of one message, and whether it is now ours.
  #onReaction(f) {
    if (!Number.isInteger(f.seq) || typeof f.emoji !== "string" || !Number.isInteger(f.count)) return false;
    const r = this.room(f.room);
    const m = r.messages.get(f.seq);
    if (!m) return true; // not held: its page brings the counts when it is read
    const mineNow = isObject(f.user) && f.user.id === this.self()?.id ? f.added === true : null;
    const i = m.reactions.findIndex((x) => x.emoji === f.emoji);
    const me = mineNow === null ? i >= 0 && m.reactions[i].me : mineNow;
    if (f.count <= 0) {
      if (i >= 0) m.reactions.splice(i, 1);
    } else if (i >= 0) {
      m.reactions[i] = { emoji: f.emoji, count: f.count, me };
    } else {
      m.reactions.push({ emoji: f.emoji, count: f.count, me });
      m.reactions.sort((a, b) => (a.emoji < b.emoji ? -1 : a.emoji > b.emoji ? 1 : 0));
    }
    this.#renderIfOpen(r);
    return true;
  }

  #onError(f) {
    const text = describeError(f.code, f.message);
    // A mark for a room the user has just lost (removed meanwhile): nothing to tell.
    if (f.action === "markRead" && typeof f.room === "string" && !this.rooms.has(f.room)) return;
    if (f.clientMsgId) {
      for (const r of this.rooms.values()) {
        if (r.changes.delete(f.clientMsgId)) {
          this.emit("notice", { text });
          return;
        }
      }
    }
    if (f.action === "sendMessage" || f.clientMsgId) {
      for (const r of this.rooms.values()) {
        if (r.pending.has(f.clientMsgId)) {
          this.failSend(r.id, f.clientMsgId, text);
          return;
        }
      }
    }
    // An error frame names the room when the failed frame named a well-formed one; otherwise
    // the oldest request of that action is the one answered.
    const q = this.awaiting.get(f.action);
    let id = null;
    if (q && typeof f.room === "string" && q.includes(f.room)) {
      id = f.room;
      this.#answered(f.action, f.room);
    } else if (q && q.length) {
      id = q.shift();
    }
    const room = id === null ? null : this.rooms.get(id);
    if (f.action === "joinRoom" && room && f.code === "forbidden" && room.private) {
      // A private room that no longer lets the user in (removed while this page was away).
      this.forget(room.id);
      this.emit("notice", { text: `Could not join ${displayName(room)}: ${text}`, code: f.code });
      return;
    }
    if (f.action === "joinRoom" && room) {
      room.joining = false;
      room.joined = false;
      this.emit("view");
      this.emit("rooms");
      this.#renderIfOpen(room);
      this.emit("notice", { text: `Could not join ${displayName(room)}: ${text}`, code: f.code });
      return;
    }
    if (f.action === "history" && room) {
      room.catchingUp = false;
      this.emit("notice", { text: `Could not load messages of ${displayName(room)}: ${text}`, code: f.code });
      return;
    }
    if (f.code === "unauthorized") {
      this.emit("unauthorized");
      return;
    }
    this.emit("notice", { text, code: f.code });
  }

  // --- messages ------------------------------------------------------------------------------

  // Adds messages to room `r`, each seq once whatever path brought it. `live`: they arrived as
  // they were sent (count as unread, announce, and may reveal a gap); `older`/`toBottom`: how
  // the view should scroll.
  addMessages(r, list, { live = false, older = false, toBottom = false } = {}) {
    const unreadBefore = r.unread;
    const me = this.self()?.id;
    for (const raw of Array.isArray(list) ? list : []) {
      if (!isObject(raw) || !Number.isInteger(raw.seq)) continue;
      const m = toMessage(r.id, raw);
      if (isObject(m.sender)) this.knownUsers.set(m.sender.id, m.sender.name);
      const held = r.messages.get(m.seq);
      // A page re-read: its state (edits, delete, reactions) is the server's latest.
      if (held && held.kind === "message" && !live) this.#merge(held, m);
      if (!held) {
        r.messages.set(m.seq, m);
        if (m.kind !== "message") this.#applyChange(r, m);
        else this.#applyPendingChanges(r, m);
        r.lastSeq = Math.max(r.lastSeq, m.seq);
        // Our own message that came back another way (its ack was lost): it is confirmed.
        if (m.sender && m.sender.id === me && r.pending.has(m.clientMsgId)) {
          this.timers.clear(r.pending.get(m.clientMsgId).timer);
          r.pending.delete(m.clientMsgId);
        }
        if (live) {
          if (m.sender) r.typing.delete(m.sender.id);
          if (r.id === this.current && this.visible()) this.emit("live", { room: r, message: m });
        }
      }
      // After every live message, as when each came in its own frame.
      if (live) this.#checkGap(r);
    }
    this.emit("knownUsers");
    if (!this.#holds(r)) return;
    this.#recount(r);
    this.#markViewed(r);
    if (r.unread !== unreadBefore) this.emit("rooms");
    this.#renderIfOpen(r, { older, toBottom });
  }

  // A message's state from a newer reading of it (a history page).
  #merge(held, fresh) {
    if (fresh.deleted && !held.deleted) Object.assign(held, { deleted: true, body: "", reactions: [] });
    else if (!held.deleted && fresh.editSeq > held.editSeq) Object.assign(held, { body: fresh.body, editSeq: fresh.editSeq, editedAt: fresh.editedAt });
    if (!held.deleted) held.reactions = fresh.reactions;
    if (fresh.replyTo) held.replyTo = fresh.replyTo;
  }

  // An edit or delete entry: applied to its target when held (docs/protocol.md, "Converging").
  #applyChange(r, e) {
    const t = r.messages.get(e.target);
    if (!t || t.kind !== "message" || t.deleted) return;
    if (e.kind === "delete") Object.assign(t, { deleted: true, body: "", reactions: [] });
    else if (e.seq > t.editSeq) Object.assign(t, { body: e.body, editSeq: e.seq, editedAt: e.sentAt });
    for (const m of r.messages.values()) {
      if (m.replyTo && m.replyTo.seq === t.seq) m.replyTo = { ...m.replyTo, bodyPreview: t.body.slice(0, 100), deleted: t.deleted };
    }
  }

  // A message that arrives after entries that change it (an older page read late).
  #applyPendingChanges(r, m) {
    for (const e of r.messages.values()) if (e.kind !== "message" && e.target === m.seq) this.#applyChange(r, e);
  }

  // Room `r`'s messages to show, in seq order (edits and deletes are applied to them).
  shownInOrder(r) {
    return this.messagesInOrder(r).filter((m) => m.kind === "message");
  }

  // After a (re)join or a gap: fetch what was missed with `history after` the highest
  // contiguous seq (or the newest page over HTTP when nothing is held yet).
  catchUp(r) {
    const after = contiguousSeq(r);
    if (after === null) {
      if (!r.loadedLatest) this.emit("needLatest", { room: r });
      return;
    }
    r.catchingUp = true;
    this.#ask("history", { action: "history", room: r.id, after, limit: CATCH_UP_LIMIT });
  }

  // A message past a gap: the missing ones are probably in flight; fetch them if they do not
  // arrive within GAP_WAIT_MS.
  #checkGap(r) {
    const high = highestSeq(r);
    if (high === null || high === contiguousSeq(r) || r.gapTimer) return;
    r.gapTimer = this.timers.set(() => {
      r.gapTimer = 0;
      if (contiguousSeq(r) !== highestSeq(r) && r.joined) this.catchUp(r);
    }, GAP_WAIT_MS);
  }
}
