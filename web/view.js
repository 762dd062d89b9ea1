// The page: renders the room list (unread badges, direct rooms by the other person's name), the
// open room (messages in seq order, then the sends still pending), its members panel, presence,
// typing and notices from the room state, and turns clicks, key presses and
// form submissions into calls of the actions app.js passes in. The only module that touches the
// DOM; it keeps no chat state of its own beyond the elements it reuses between renders.

import { ERROR_TEXT, describeError } from "./errors.js";
import { REACTIONS, displayName, lowestSeq } from "./room-state.js";

// The protocol's limit on a message body, in characters.
const BODY_MAX = 4000;
// A notice stays this long unless dismissed.
const NOTICE_MS = 12_000;
// The live region keeps this many announcements (older ones have been read out already).
const LIVE_KEEP = 5;
// Closer than this to the bottom counts as "reading the newest": new messages keep it there.
const STICK_PX = 40;
// Closer than this to the top loads the page before.
const LOAD_OLDER_PX = 30;
const PLACEHOLDER = "Write a message (Enter sends, Shift+Enter for a new line)";
// The register rule for usernames (docs/protocol.md, "Field rules"). What matches it is taken as
// a username when adding a member; anything else (a UUID is 36 characters) as a user id.
const USERNAME = /^[A-Za-z0-9_.-]{3,32}$/;

const $ = (id) => document.getElementById(id);

function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? "" : d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// `store`: the RoomStore; `me()`: the signed-in user; `isOnline()`: whether the socket is open;
// `actions`: what the page's controls do (see bind).
export function createView({ store, me, isOnline, actions }) {
  // Room id -> (render key -> <li>): a message keeps its element across renders.
  const elements = new Map();
  let noticeTimer = 0;

  // `code`: the protocol's error code behind the notice, when there is one (kept on the element).
  function notify(text, code = "") {
    $("notice-text").textContent = text;
    $("notice").dataset.code = code;
    $("notice").hidden = false;
    clearTimeout(noticeTimer);
    noticeTimer = setTimeout(() => ($("notice").hidden = true), NOTICE_MS);
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
    while (live.childElementCount > LIVE_KEEP) live.firstElementChild.remove();
  }

  function renderRooms() {
    const list = $("room-list");
    const sorted = [...store.rooms.values()].sort((a, b) => displayName(a).localeCompare(displayName(b)));
    list.replaceChildren(
      ...sorted.map((r) => {
        const li = document.createElement("li");
        const b = document.createElement("button");
        b.type = "button";
        b.className = "room-link";
        b.dataset.room = r.id;
        if (r.id === store.current) b.setAttribute("aria-current", "true");
        const label = document.createElement("span");
        label.textContent = displayName(r);
        b.append(label);
        const extra = [];
        if (r.kind === "direct") extra.push("direct");
        else if (r.private) extra.push("private");
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
        b.addEventListener("click", () => actions.openRoom(r.id));
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

  function messageElement(r, key, build) {
    let cache = elements.get(r.id);
    if (!cache) {
      cache = new Map();
      elements.set(r.id, cache);
    }
    let li = cache.get(key);
    if (!li) {
      li = document.createElement("li");
      cache.set(key, li);
    }
    build(li);
    return li;
  }

  // The quote of a reply, the "edited" mark, reactions and the message's own buttons.
  function extras(m, r, state) {
    const before = [];
    const after = [];
    if (m.replyTo) {
      const q = document.createElement("blockquote");
      q.className = "quote";
      q.textContent = `${m.replyTo.sender?.name || "?"}: ${m.replyTo.deleted ? "(message deleted)" : m.replyTo.bodyPreview}`;
      before.push(q);
    }
    if (state !== "sent" || m.deleted) return { before, after };
    if (m.reactions && m.reactions.length) {
      const p = document.createElement("p");
      p.className = "reactions";
      for (const x of m.reactions) {
        const b = document.createElement("button");
        b.type = "button";
        b.className = `reaction${x.me ? " mine" : ""}`;
        b.setAttribute("aria-pressed", String(!!x.me));
        b.textContent = `${x.emoji} ${x.count}`;
        b.addEventListener("click", () => actions.react(r.id, m.seq, x.emoji));
        p.append(b);
      }
      after.push(p);
    }
    const tools = document.createElement("p");
    tools.className = "tools";
    const button = (label, text, fn) => {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = text;
      b.setAttribute("aria-label", label);
      b.addEventListener("click", fn);
      tools.append(b);
    };
    button("Reply", "Reply", () => startReply(r, m));
    for (const e of REACTIONS) button(`React ${e}`, e, () => actions.react(r.id, m.seq, e));
    if (m.sender && m.sender.id === me()?.id) {
      button("Edit", "Edit", () => {
        const body = window.prompt("Edit your message", m.body);
        if (body && body !== m.body) actions.edit(r.id, m.seq, body);
      });
      button("Delete", "Delete", () => {
        if (window.confirm("Delete this message?")) actions.remove(r.id, m.seq);
      });
    }
    after.push(tools);
    return { before, after };
  }

  // The composer answers message `m` until the reply is sent or cancelled.
  let replyTo = null;
  function startReply(r, m) {
    replyTo = { room: r.id, seq: m.seq };
    $("replying-text").textContent = `Replying to ${m.sender?.name || "?"}: ${m.body.slice(0, 60)}`;
    $("replying").hidden = false;
    $("composer-input").focus();
  }
  function endReply() {
    replyTo = null;
    $("replying").hidden = true;
  }

  function fillMessage(li, m, state, error, clientMsgId, r) {
    const sig = `${state}|${error}|${m.body}|${m.deleted}|${m.editSeq}|${JSON.stringify(m.reactions || [])}|${JSON.stringify(m.replyTo || null)}`;
    if (li.dataset.sig === sig) return;
    li.dataset.sig = sig;
    li.className = `msg ${state}${m.sender && m.sender.id === me()?.id ? " mine" : ""}`;
    li.dataset.state = state;
    if (m.seq) li.dataset.seq = String(m.seq);
    else delete li.dataset.seq;
    li.dataset.clientMsgId = clientMsgId || m.clientMsgId || "";
    const head = document.createElement("p");
    head.className = "meta";
    const who = document.createElement("strong");
    who.textContent = m.sender ? m.sender.name : me()?.name || "me";
    head.append(who);
    if (m.sentAt) {
      const t = document.createElement("time");
      t.dateTime = m.sentAt;
      t.textContent = ` ${fmtTime(m.sentAt)}`;
      head.append(t);
    }
    if (m.editSeq && !m.deleted) {
      const ed = document.createElement("span");
      ed.className = "edited";
      ed.textContent = " (edited)";
      head.append(ed);
    }
    const body = document.createElement("p");
    body.className = m.deleted ? "body deleted" : "body";
    body.textContent = m.deleted ? "This message was deleted." : m.body;
    const { before, after } = extras(m, r, state);
    const parts = [head, ...before, body, ...after];
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
      retry.addEventListener("click", () => actions.retry(r.id, m.body, clientMsgId));
      s.append(retry);
      parts.push(s);
    }
    li.replaceChildren(...parts);
  }

  function renderRoom({ older = false, toBottom = false } = {}) {
    const r = store.open;
    const scroller = $("scroller");
    const list = $("messages");
    const input = $("composer-input");
    const send = $("send");
    const toggle = $("join-toggle");
    if (!r) {
      $("room-title").textContent = "No room open";
      $("room-private-badge").hidden = true;
      toggle.hidden = true;
      renderMembers();
      list.replaceChildren();
      $("load-older").hidden = true;
      input.disabled = send.disabled = true;
      renderPresence();
      renderTyping();
      return;
    }
    const atBottom = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_PX;
    const fromBottom = scroller.scrollHeight - scroller.scrollTop;

    const title = displayName(r);
    $("room-title").textContent = title === r.id || r.kind === "direct" ? title : `${title} (${r.id})`;
    $("room-private-badge").hidden = !r.private;
    $("room-private-badge").textContent = r.kind === "direct" ? "direct" : "private";
    toggle.hidden = false;
    toggle.textContent = r.joined ? "Leave room" : r.joining ? "Joining…" : "Join room";
    toggle.disabled = r.joining && !r.joined;
    renderMembers();
    input.disabled = !r.joined;
    send.disabled = !(r.joined && isOnline());
    input.placeholder = r.joined ? PLACEHOLDER : "Join the room to write messages";

    const loadOlder = $("load-older");
    loadOlder.hidden = !(r.hasMoreBefore && r.messages.size && lowestSeq(r) > 1);
    loadOlder.disabled = r.loadingOlder;
    loadOlder.textContent = r.loadingOlder ? "Loading older messages…" : "Load older messages";

    const items = [];
    for (const m of store.shownInOrder(r)) {
      items.push(messageElement(r, `s${m.seq}`, (li) => fillMessage(li, m, "sent", "", m.clientMsgId, r)));
    }
    for (const [cid, p] of store.pendingInOrder(r)) {
      const m = { sender: me(), body: p.body, replyTo: p.replyTo };
      items.push(messageElement(r, `p${cid}`, (li) => fillMessage(li, m, p.state, p.error, cid, r)));
    }
    // Drop elements of messages that moved (pending -> confirmed) or belong elsewhere.
    const keep = new Set(items);
    const cache = elements.get(r.id) || new Map();
    for (const [k, li] of cache) if (!keep.has(li)) cache.delete(k);
    if (list.dataset.room !== r.id || list.childElementCount !== items.length || items.some((li, i) => list.children[i] !== li)) {
      list.dataset.room = r.id;
      list.replaceChildren(...items);
    }

    if (toBottom || atBottom) scroller.scrollTop = scroller.scrollHeight;
    else if (older) scroller.scrollTop = scroller.scrollHeight - fromBottom;
    renderPresence();
    renderTyping();
  }

  // The members panel of a private room (not of a direct one, whose two people never change):
  // who belongs to it and with which role; owners add and remove, anyone may leave.
  function renderMembers() {
    const r = store.open;
    const panel = $("members-panel");
    const show = Boolean(r && r.private && r.kind !== "direct");
    panel.hidden = !show;
    if (!show) return;
    $("member-form").hidden = r.role !== "owner";
    const list = $("member-list");
    if (!r.members) {
      // Read once when shown with the panel open (opening the panel reads it again).
      if (panel.open && !r.membersAsked) actions.loadMembers();
      const li = document.createElement("li");
      li.textContent = panel.open ? "Loading members…" : "";
      list.replaceChildren(...(panel.open ? [li] : []));
      return;
    }
    const myId = me()?.id;
    list.replaceChildren(
      ...r.members.map((m) => {
        const li = document.createElement("li");
        li.className = "member";
        li.dataset.user = m.id;
        const who = document.createElement("span");
        who.textContent = m.name || m.id;
        li.append(who);
        const role = document.createElement("small");
        role.className = "role";
        role.textContent = ` ${m.role}${m.id === myId ? " (you)" : ""}`;
        li.append(role);
        if (Number.isInteger(m.lastRead) && m.id !== myId) {
          const read = document.createElement("small");
          read.className = "read";
          read.textContent = ` read up to #${m.lastRead}`;
          li.append(read);
        }
        if (r.role === "owner" && m.id !== myId) {
          const b = document.createElement("button");
          b.type = "button";
          b.className = "remove-member";
          b.textContent = "Remove";
          b.setAttribute("aria-label", `Remove ${m.name || m.id}`);
          b.addEventListener("click", () => {
            if (window.confirm(`Remove ${m.name || m.id} from ${displayName(r)}?`)) actions.removeMember(m.id);
          });
          li.append(b);
        }
        return li;
      }),
    );
  }

  function renderPresence() {
    const r = store.open;
    const el = $("presence");
    if (!r || (!r.online.size && r.count === null)) {
      el.textContent = "";
      return;
    }
    const here = r.count === null ? "" : ` (${r.count} connected)`;
    const names = r.online.size ? `Here since you joined: ${[...r.online.values()].join(", ")}` : "";
    el.textContent = `${names}${here}`.trim();
  }

  function renderTyping() {
    const r = store.open;
    const el = $("typing");
    const names = r ? store.typingNames(r) : [];
    const text = !names.length ? "" : names.length === 1 ? `${names[0]} is typing…` : `${names.join(", ")} are typing…`;
    if (el.textContent !== text) el.textContent = text;
  }

  // The names of users seen so far, suggested in the direct-conversation and add-member forms
  // (usernames only: external users have none here).
  function renderKnownUsers() {
    const names = [...new Set([...store.knownUsers.entries()].filter(([id]) => id !== me()?.id).map(([, n]) => n))]
      .filter((n) => typeof n === "string" && USERNAME.test(n))
      .map((n) => {
        const o = document.createElement("option");
        o.value = n;
        return o;
      });
    const dn = $("known-names");
    if (dn.childElementCount !== names.length) dn.replaceChildren(...names);
  }

  function showAuth() {
    $("auth-view").hidden = false;
    $("chat-view").hidden = true;
    $("whoami").hidden = true;
    setConn("offline", "Signed out");
    $("username").focus();
  }

  function showChat(user) {
    $("auth-view").hidden = true;
    $("chat-view").hidden = false;
    $("whoami").hidden = false;
    $("me-name").textContent = user.name;
    $("me-id").textContent = user.id;
  }

  // The session ended (the room state is already empty): back to the sign-in form.
  function signedOut(text) {
    elements.clear();
    $("messages").replaceChildren();
    $("room-list").replaceChildren();
    renderRoom();
    showAuth();
    if (text) $("auth-error").textContent = text;
  }

  // Connects the page's controls to `actions`.
  function bind() {
    $("notice-close").addEventListener("click", () => ($("notice").hidden = true));
    $("logout").addEventListener("click", () => actions.logout());
    $("auth-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const mode = ev.submitter?.value === "register" ? "register" : "login";
      const username = $("username").value.trim();
      const password = $("password").value;
      const err = $("auth-error");
      if (!USERNAME.test(username)) {
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
        const body = await actions.authenticate(mode, username, password);
        err.textContent = "";
        $("password").value = "";
        await actions.begin(body);
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

    $("rooms-refresh").addEventListener("click", () => actions.loadRooms());
    $("create-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const id = $("room-id").value.trim();
      const name = $("room-name").value.trim() || id;
      if (!/^[a-z0-9][a-z0-9_-]{0,63}$/.test(id)) {
        notify("The room id must be 1 to 64 characters: lowercase letters, digits, _ or -, starting with a letter or digit.");
        $("room-id").focus();
        return;
      }
      if (await actions.createRoom(id, name, $("room-private").checked)) {
        ev.target.reset();
        $("create-room").open = false;
        $("composer-input").focus();
      }
    });
    $("join-toggle").addEventListener("click", () => actions.toggleJoin());
    $("member-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = $("member-id").value.trim();
      if (!value) {
        notify("Enter the username of the person to add, or their user id (shown next to their name).");
        return;
      }
      const who = USERNAME.test(value) ? { username: value } : { userId: value };
      if (await actions.addMember(who)) $("member-id").value = "";
    });
    $("members-panel").addEventListener("toggle", () => {
      if ($("members-panel").open) actions.loadMembers();
    });
    $("leave-membership").addEventListener("click", () => {
      const r = store.open;
      if (r && window.confirm(`Leave ${displayName(r)}? Only an owner can add you back.`)) actions.leaveMembership();
    });
    $("dm-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const username = $("dm-username").value.trim();
      if (!USERNAME.test(username)) {
        notify("Enter a username: 3 to 32 characters, letters, digits, _ . or -.");
        $("dm-username").focus();
        return;
      }
      if (await actions.openDirect(username)) {
        $("dm-username").value = "";
        $("composer-input").focus();
      }
    });
    $("load-older").addEventListener("click", () => actions.loadOlder());
    $("reply-cancel").addEventListener("click", endReply);
    $("scroller").addEventListener("scroll", () => {
      if ($("scroller").scrollTop < LOAD_OLDER_PX) actions.loadOlder();
    });

    const input = $("composer-input");
    $("composer").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!store.open) return;
      const body = input.value;
      if (!body.trim()) return;
      const len = [...body].length;
      if (len > BODY_MAX) {
        notify(`${ERROR_TEXT.payload_too_large} (${len} of at most ${BODY_MAX} characters)`);
        return;
      }
      input.value = "";
      actions.send(body, replyTo && replyTo.room === store.current ? replyTo.seq : null);
      endReply();
    });
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        $("composer").requestSubmit();
      }
    });
    input.addEventListener("input", () => {
      if (input.value) actions.typed();
    });

    window.addEventListener("online", () => actions.online());
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) actions.visible();
    });
  }

  return {
    notify,
    setConn,
    announce,
    renderRooms,
    renderRoom,
    renderMembers,
    renderPresence,
    renderTyping,
    renderKnownUsers,
    showAuth,
    showChat,
    signedOut,
    bind,
    pageVisible: () => !document.hidden,
  };
}
