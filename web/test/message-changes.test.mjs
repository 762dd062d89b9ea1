// Unit tests of edits, deletes, reactions and replies in the room state (web/room-state.js):
// entries applied in seq order whatever brings them, the convergence rule of docs/protocol.md,
// our own changes confirmed by their acks, reaction frames, and the frames sent.

import { test } from "node:test";
import assert from "node:assert/strict";

import { ALICE, BOB, frame, joined, msg } from "./harness.mjs";
import { setup } from "./harness.mjs";

const edit = (seq, target, body) => ({ ...msg(seq, { body }), kind: "edit", target });
const del = (seq, target) => ({ ...msg(seq, { body: "" }), kind: "delete", target });

test("edits and deletes apply to their targets, live or from history, and a stale edit does not win", () => {
  const live = setup();
  const r = joined(live);
  for (const e of [msg(1), msg(2), edit(3, 1, "one, fixed"), edit(4, 1, "one, again"), del(5, 2)]) live.store.apply(frame(e));
  assert.deepEqual(live.store.shownInOrder(r).map((m) => [m.seq, m.body, m.deleted, m.editSeq]), [
    [1, "one, again", false, 4],
    [2, "", true, 0],
  ]);

  // A client that reads history: the page shows the current state, and the events again.
  const late = setup();
  const r2 = joined(late);
  late.store.apply({
    type: "history",
    room: "lobby",
    messages: [
      { ...msg(1, { body: "one, again" }), editSeq: 4, editedAt: "t" },
      { ...msg(2, { body: "" }), deleted: true },
      edit(3, 1, "one, fixed"),
      edit(4, 1, "one, again"),
      del(5, 2),
    ],
    hasMore: false,
  });
  assert.deepEqual(
    late.store.shownInOrder(r2).map((m) => [m.seq, m.body, m.deleted]),
    live.store.shownInOrder(r).map((m) => [m.seq, m.body, m.deleted]),
  );
});

test("our edits, deletes, replies and reactions send the documented frames and are confirmed by acks", () => {
  const h = setup();
  const r = joined(h);
  h.store.apply(frame(msg(1, { sender: ALICE, body: "mine" })));
  h.store.editMessage("lobby", 1, "mine, fixed");
  const [e] = h.sentOf("editMessage");
  assert.deepEqual({ ...e, clientMsgId: "x" }, { action: "editMessage", room: "lobby", seq: 1, body: "mine, fixed", clientMsgId: "x" });
  // The moderation hook may have replaced the body: the ack's body wins.
  h.store.apply({ type: "ack", room: "lobby", clientMsgId: e.clientMsgId, id: "e", seq: 2, sentAt: "t", kind: "edit", target: 1, body: "mine, f**ed" });
  assert.equal(r.messages.get(1).body, "mine, f**ed");

  const cid = h.store.sendMessage("lobby", "an answer", undefined, 1);
  assert.equal(h.sentOf("sendMessage").at(-1).replyTo, 1);
  h.store.apply({ type: "ack", room: "lobby", clientMsgId: cid, id: "r", seq: 3, sentAt: "t" });
  assert.equal(r.messages.get(3).replyTo.seq, 1);

  h.store.toggleReaction("lobby", 1, "👍");
  assert.deepEqual(h.sentOf("react").at(-1), { action: "react", room: "lobby", seq: 1, emoji: "👍" });
  h.store.apply({ type: "reaction", room: "lobby", seq: 1, emoji: "👍", count: 1, user: ALICE, added: true });
  h.store.apply({ type: "reaction", room: "lobby", seq: 1, emoji: "👍", count: 2, user: BOB, added: true });
  assert.deepEqual(r.messages.get(1).reactions, [{ emoji: "👍", count: 2, me: true }]);
  h.store.toggleReaction("lobby", 1, "👍");
  assert.equal(h.sentOf("react").at(-1).remove, true, "a second click takes it back");
  h.store.apply({ type: "reaction", room: "lobby", seq: 1, emoji: "👍", count: 1, user: ALICE, added: false });
  assert.deepEqual(r.messages.get(1).reactions, [{ emoji: "👍", count: 1, me: false }]);

  h.store.deleteMessage("lobby", 1);
  const d = h.sentOf("deleteMessage").at(-1);
  h.store.apply({ type: "ack", room: "lobby", clientMsgId: d.clientMsgId, id: "d", seq: 4, sentAt: "t", kind: "delete", target: 1 });
  assert.equal(r.messages.get(1).deleted, true);
  assert.deepEqual(r.messages.get(1).reactions, []);
  assert.equal(r.messages.get(3).replyTo.deleted, true, "the quote shows the delete");
});

test("a refused change is explained", () => {
  const h = setup();
  joined(h);
  h.store.apply(frame(msg(1)));
  h.store.editMessage("lobby", 1, "not mine");
  const e = h.sentOf("editMessage")[0];
  h.store.apply({ type: "error", code: "forbidden", message: "you may edit only your own messages", requestId: "q", action: "editMessage", clientMsgId: e.clientMsgId, room: "lobby" });
  assert.equal(h.eventsOf("notice").length, 1);
});
