// Unit tests of read state and membership in the room state (web/room-state.js): unread counts
// from the room list, live entries and `read` frames; marking read when a room is viewed (and
// how often); direct rooms named by the other person; `added`, `removed` and `receipt` frames;
// the member list. Run: node --test web/test/*.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";

import { ERROR_TEXT } from "../errors.js";
import { MARK_READ_EVERY_MS, displayName, membersInOrder } from "../room-state.js";
import { ALICE, BOB, frame, joined, msg, setup } from "./harness.mjs";

// A room entry as GET /rooms answers it.
const entry = (id, fields = {}) => ({
  id,
  name: id,
  private: false,
  createdAt: "2025-01-01T00:00:00Z",
  kind: "room",
  readReceipts: false,
  lastSeq: 0,
  lastRead: 0,
  unread: 0,
  ...fields,
});

test("the room list's read state gives each room its unread count; a direct room goes by the other's name", () => {
  const h = setup();
  const club = h.store.room("club", entry("club", { private: true, role: "owner", lastSeq: 12, lastRead: 10, unread: 2 }));
  const dm = h.store.room(
    "dm-0123",
    entry("dm-0123", { name: "alice, bob", private: true, kind: "direct", role: "member", with: BOB, lastSeq: 3 }),
  );
  assert.equal(club.unread, 2);
  assert.equal(club.role, "owner");
  assert.equal(club.listed, true);
  assert.equal(dm.unread, 3);
  assert.equal(displayName(dm), "bob");
  assert.equal(displayName(club), "club");
  // A later, older reading of the list does not move anything backwards.
  h.store.room("club", entry("club", { private: true, role: "owner", lastSeq: 11, lastRead: 9, unread: 2 }));
  assert.deepEqual([club.lastSeq, club.lastRead, club.unread], [12, 10, 2]);
  assert.deepEqual(h.sent, [], "listing marks nothing read");
});

test("live entries in a room not open raise its unread count; opening it marks it read once", () => {
  const h = setup();
  joined(h, "lobby");
  const side = joined(h, "side");
  h.store.room("side", entry("side", { lastSeq: 2, lastRead: 2 }));
  h.store.openRoom("lobby");
  h.events.length = 0;
  for (const s of [3, 4, 5]) h.store.apply(frame(msg(s, { room: "side" })));
  assert.equal(side.unread, 3);
  assert.ok(h.eventsOf("rooms").length >= 1, "the list is told");
  assert.deepEqual(h.sentOf("markRead"), []);

  h.store.openRoom("side");
  assert.equal(side.unread, 0);
  assert.deepEqual(h.sentOf("markRead"), [{ action: "markRead", room: "side", seq: 5 }]);
  // Opening it again marks nothing new.
  h.store.openRoom("lobby");
  h.store.openRoom("side");
  assert.equal(h.sentOf("markRead").length, 1);
});

test("in the open room, marks go out at most once per interval, with the latest position", () => {
  const h = setup();
  const r = joined(h);
  h.store.openRoom("lobby");
  for (const s of [1, 2, 3]) h.store.apply(frame(msg(s)));
  assert.deepEqual(h.sentOf("markRead"), [{ action: "markRead", room: "lobby", seq: 1 }]);
  assert.equal(r.unread, 0, "the badge clears at once, not when the mark is answered");
  h.clock.advance(MARK_READ_EVERY_MS);
  assert.deepEqual(h.sentOf("markRead").at(-1), { action: "markRead", room: "lobby", seq: 3 });
  h.clock.advance(MARK_READ_EVERY_MS * 3);
  assert.equal(h.sentOf("markRead").length, 2, "nothing more to send");
  // Our own message counts as unread on the server until marked: its ack marks it.
  h.store.sendMessage("lobby", "mine");
  h.store.apply({ type: "ack", room: "lobby", clientMsgId: "cid-1", id: "m-4", seq: 4, sentAt: "t" });
  assert.deepEqual(h.sentOf("markRead").at(-1), { action: "markRead", room: "lobby", seq: 4 });
});

test("a room past a gap is marked read only up to the gap, then on when it fills", () => {
  const h = setup();
  joined(h);
  h.store.openRoom("lobby");
  for (const s of [1, 2, 4]) h.store.apply(frame(msg(s)));
  h.clock.advance(MARK_READ_EVERY_MS);
  assert.deepEqual(h.sentOf("markRead").at(-1).seq, 2);
  h.store.apply({ type: "history", room: "lobby", messages: [msg(3), msg(4)], hasMore: false });
  h.clock.advance(MARK_READ_EVERY_MS);
  assert.deepEqual(h.sentOf("markRead").at(-1).seq, 4);
});

test("a hidden page marks nothing until it is seen again", () => {
  const h = setup({ visible: false });
  const r = joined(h);
  h.store.openRoom("lobby");
  h.store.apply(frame(msg(1)));
  assert.equal(r.unread, 1);
  assert.deepEqual(h.sentOf("markRead"), []);
  h.visible = true;
  h.store.viewed();
  assert.equal(r.unread, 0);
  assert.deepEqual(h.sentOf("markRead"), [{ action: "markRead", room: "lobby", seq: 1 }]);
});

test("a mark that cannot go out goes when the connection is back, unless the server has it", () => {
  const h = setup();
  const r = joined(h);
  h.store.openRoom("lobby");
  h.online = false;
  h.store.apply(frame(msg(1)));
  assert.equal(r.unread, 0);
  assert.deepEqual(h.sentOf("markRead"), []);
  h.online = true;
  h.store.connected();
  assert.deepEqual(h.sentOf("markRead"), [{ action: "markRead", room: "lobby", seq: 1 }]);
  // The answer says the server holds it: a later reconnect sends nothing.
  h.store.apply({ type: "read", room: "lobby", lastRead: 1, unread: 0 });
  h.clock.advance(MARK_READ_EVERY_MS);
  h.store.connected();
  assert.equal(h.sentOf("markRead").length, 1);
});

test("a read frame from another connection clears the badge, never moving backwards", () => {
  const h = setup();
  const r = joined(h, "side");
  for (const s of [1, 2, 3, 4]) h.store.apply(frame(msg(s, { room: "side" })));
  assert.equal(r.unread, 4);
  h.events.length = 0;
  assert.equal(h.store.apply({ type: "read", room: "side", lastRead: 3, unread: 2 }), true);
  assert.equal(r.unread, 2, "the server knows of seq 5 too");
  assert.equal(r.lastSeq, 5);
  assert.equal(h.eventsOf("rooms").length, 1);
  h.store.apply({ type: "read", room: "side", lastRead: 1, unread: 4 });
  assert.equal(r.lastRead, 3, "an older mark arriving late changes nothing");
  assert.equal(r.unread, 2);
  // Malformed, or about a room this page does not hold: ignored.
  assert.equal(h.store.apply({ type: "read", room: "side", lastRead: "3" }), false);
  assert.equal(h.store.apply({ type: "read", room: "elsewhere", lastRead: 3, unread: 0 }), true);
  assert.equal(h.store.rooms.has("elsewhere"), false);
  assert.deepEqual(h.sentOf("markRead"), [], "nothing is sent back");
});

test("removed: the room is forgotten and the page leaves it; a mark's error for it is not shown", () => {
  const h = setup();
  const r = joined(h, "club");
  h.store.room("club", entry("club", { private: true, role: "member" }));
  h.store.openRoom("club");
  h.store.apply(frame(msg(1, { room: "club" })));
  h.store.sendMessage("club", "in flight");
  h.events.length = 0;
  assert.equal(h.store.apply({ type: "removed", room: "club" }), true);
  assert.equal(h.store.rooms.has("club"), false);
  assert.equal(h.store.current, null);
  assert.deepEqual(h.store.joinedIds(), []);
  const [removed] = h.eventsOf("removed");
  assert.equal(removed.room, r);
  assert.equal(removed.left, false);
  assert.equal(removed.wasOpen, true);
  assert.ok(h.eventsOf("view").length >= 1, "the saved view is updated");
  // Timers of the forgotten room do nothing.
  h.clock.advance(60_000);
  assert.deepEqual(h.eventsOf("sendFailed"), []);
  h.store.apply({ type: "error", code: "forbidden", action: "markRead", room: "club", requestId: "r" });
  assert.deepEqual(h.eventsOf("notice"), []);
  // A second removed frame (another tab's) is nothing new.
  h.store.apply({ type: "removed", room: "club" });
  assert.equal(h.eventsOf("removed").length, 1);
});

test("removed after leaving from this page says so", () => {
  const h = setup();
  joined(h, "club").leavingMembership = true;
  h.store.apply({ type: "removed", room: "club" });
  assert.equal(h.eventsOf("removed")[0].left, true);
});

test("a private room that refuses a join (removed meanwhile) is forgotten with the stable code", () => {
  const h = setup();
  h.store.room("club", entry("club", { private: true, role: "member" }));
  h.store.openRoom("club");
  h.store.apply({ type: "error", code: "forbidden", action: "joinRoom", room: "club", requestId: "r" });
  assert.equal(h.store.rooms.has("club"), false);
  assert.equal(h.store.current, null);
  assert.deepEqual(h.eventsOf("notice"), [{ text: `Could not join club: ${ERROR_TEXT.forbidden}`, code: "forbidden" }]);
});

test("added asks for the room list; members are listed owners first, with our role", () => {
  const h = setup();
  assert.equal(h.store.apply({ type: "added", room: "club" }), true);
  assert.equal(h.eventsOf("added")[0].room.id, "club");
  h.store.setMembers("club", [
    { id: "u-zed", name: null, role: "member" },
    { id: BOB.id, name: "bob", role: "owner" },
    { id: ALICE.id, name: "alice", role: "member", lastRead: 2 },
  ]);
  const r = h.store.rooms.get("club");
  assert.deepEqual(r.members.map((m) => m.id), [BOB.id, ALICE.id, "u-zed"]);
  assert.equal(r.role, "member");
  assert.equal(h.store.knownUsers.get(BOB.id), "bob");
  // A receipt moves a member's position forward only.
  h.store.apply({ type: "receipt", room: "club", user: ALICE, lastRead: 5 });
  h.store.apply({ type: "receipt", room: "club", user: ALICE, lastRead: 4 });
  assert.equal(r.members[1].lastRead, 5);
  assert.equal(h.eventsOf("members").length, 2);
  assert.equal(h.store.apply({ type: "receipt", room: "club", lastRead: 5 }), false);
});

test("members are ordered owners first, then by name or id", () => {
  const list = membersInOrder([
    { id: "3", name: "cy", role: "member" },
    { id: "2", name: null, role: "member" },
    { id: "1", name: "zoe", role: "owner" },
  ]);
  assert.deepEqual(list.map((m) => m.id), ["1", "2", "3"]);
});
