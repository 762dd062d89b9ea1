// Unit tests of the room state (web/room-state.js) under node's test runner: seq ordering,
// duplicates, gap detection and fill, pending sends and their acks, history merges, the batched
// `messages` frame, and frames it does not know. Run: node --test web/test/*.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";

import { ERROR_TEXT } from "../errors.js";
import { CATCH_UP_LIMIT, GAP_WAIT_MS, SEND_TIMEOUT_MS, contiguousSeq } from "../room-state.js";
import { ALICE, BOB, frame, joined, msg, seqs, setup } from "./harness.mjs";

test("live messages that arrive out of seq order are kept in seq order", () => {
  const h = setup();
  joined(h);
  for (const s of [2, 1, 4, 3]) h.store.apply(frame(msg(s)));
  assert.deepEqual(seqs(h), [1, 2, 3, 4]);
  const r = h.store.rooms.get("lobby");
  assert.equal(r.messages.get(3).body, "message 3");
  assert.equal(r.messages.get(3).sender.name, "bob");
  assert.equal(contiguousSeq(r), 4);
});

test("a seq already held is ignored, whatever path brings it again", () => {
  const h = setup();
  const r = joined(h);
  h.store.apply(frame(msg(1)));
  h.store.apply(frame(msg(1, { body: "a second copy" })));
  h.store.apply({ type: "history", room: "lobby", messages: [msg(1, { body: "from history" }), msg(2)], hasMore: false });
  h.store.applyLatest(r, { messages: [msg(1, { body: "from a page" }), msg(2)], hasMore: false });
  h.store.apply({ type: "messages", room: "lobby", messages: [msg(2), msg(1)] });
  assert.deepEqual(seqs(h), [1, 2]);
  assert.equal(r.messages.get(1).body, "message 1", "the first copy stays");
  // Not open: unread counts seqs after the read position, as the server does, however often
  // each one arrived.
  assert.equal(r.unread, 2);
});

test("a live message in the open room is announced once, elsewhere it counts as unread", () => {
  const h = setup();
  joined(h, "lobby");
  joined(h, "side");
  h.store.openRoom("lobby");
  h.store.apply(frame(msg(1)));
  h.store.apply(frame(msg(1)));
  h.store.apply(frame(msg(1, { room: "side" })));
  assert.deepEqual(h.eventsOf("live").map((d) => [d.room.id, d.message.seq]), [["lobby", 1]]);
  assert.equal(h.store.rooms.get("lobby").unread, 0);
  assert.equal(h.store.rooms.get("side").unread, 1);
  // A hidden page does not read it out: it is unread.
  h.visible = false;
  h.store.apply(frame(msg(2)));
  assert.equal(h.store.rooms.get("lobby").unread, 1);
  assert.equal(h.eventsOf("live").length, 1);
});

test("a gap that fills by itself within the wait fetches nothing", () => {
  const h = setup();
  joined(h);
  h.store.apply(frame(msg(1)));
  h.store.apply(frame(msg(3)));
  h.clock.advance(GAP_WAIT_MS - 1);
  h.store.apply(frame(msg(2)));
  h.clock.advance(GAP_WAIT_MS * 2);
  assert.deepEqual(h.sentOf("history"), []);
  assert.deepEqual(seqs(h), [1, 2, 3]);
});

test("a gap that does not fill is fetched with history after the highest contiguous seq", () => {
  const h = setup();
  const r = joined(h);
  for (const s of [1, 2, 5]) h.store.apply(frame(msg(s)));
  h.clock.advance(GAP_WAIT_MS - 1);
  assert.deepEqual(h.sentOf("history"), [], "waits before fetching");
  h.clock.advance(1);
  assert.deepEqual(h.sentOf("history"), [{ action: "history", room: "lobby", after: 2, limit: CATCH_UP_LIMIT }]);
  assert.equal(r.catchingUp, true);

  // The answer fills it; nothing more is asked.
  h.store.apply({ type: "history", room: "lobby", messages: [msg(3), msg(4), msg(5)], hasMore: false });
  assert.deepEqual(seqs(h), [1, 2, 3, 4, 5]);
  assert.equal(r.catchingUp, false);
  h.clock.advance(GAP_WAIT_MS * 2);
  assert.equal(h.sentOf("history").length, 1);
});

test("a gap longer than a page is fetched page after page", () => {
  const h = setup();
  joined(h);
  h.store.apply(frame(msg(1)));
  h.store.apply(frame(msg(250)));
  h.clock.advance(GAP_WAIT_MS);
  const page = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => msg(from + i));
  h.store.apply({ type: "history", room: "lobby", messages: page(2, 101), hasMore: true });
  h.store.apply({ type: "history", room: "lobby", messages: page(102, 201), hasMore: true });
  h.store.apply({ type: "history", room: "lobby", messages: page(202, 250), hasMore: false });
  assert.deepEqual(h.sentOf("history").map((f) => f.after), [1, 101, 201]);
  assert.deepEqual(seqs(h), page(1, 250).map((m) => m.seq));
});

test("a gap is not fetched for a room that was left meanwhile", () => {
  const h = setup();
  joined(h);
  h.store.apply(frame(msg(1)));
  h.store.apply(frame(msg(3)));
  h.store.leave("lobby");
  h.clock.advance(GAP_WAIT_MS);
  assert.deepEqual(h.sentOf("history"), []);
});

test("a send is pending until its ack, which confirms it at the acked seq", () => {
  const h = setup();
  const r = joined(h);
  h.store.openRoom("lobby");
  const cid = h.store.sendMessage("lobby", "hello");
  assert.deepEqual(h.sentOf("sendMessage"), [{ action: "sendMessage", room: "lobby", body: "hello", clientMsgId: cid }]);
  assert.equal(r.pending.get(cid).state, "pending");

  // An ack for some other clientMsgId confirms nothing.
  h.store.apply({ type: "ack", room: "lobby", clientMsgId: "someone-else", id: "m-9", seq: 9, sentAt: "t" });
  assert.equal(r.pending.size, 1);
  assert.equal(r.messages.size, 0);

  h.store.apply({ type: "ack", room: "lobby", clientMsgId: cid, id: "m-1", seq: 1, sentAt: "2025-01-01T00:00:01Z" });
  assert.equal(r.pending.size, 0);
  assert.deepEqual(r.messages.get(1), {
    room: "lobby", id: "m-1", seq: 1, kind: "message", target: null, sender: ALICE, body: "hello", clientMsgId: cid,
    sentAt: "2025-01-01T00:00:01Z", replyTo: null, editSeq: 0, editedAt: null, deleted: false, reactions: [],
  });
  // The timeout was cancelled with the ack.
  h.clock.advance(SEND_TIMEOUT_MS * 2);
  assert.deepEqual(h.eventsOf("sendFailed"), []);
});

test("a send without an ack fails after the timeout, and a retry resends the same clientMsgId", () => {
  const h = setup();
  const r = joined(h);
  h.store.openRoom("lobby");
  const cid = h.store.sendMessage("lobby", "did this arrive?");
  h.clock.advance(SEND_TIMEOUT_MS - 1);
  assert.equal(r.pending.get(cid).state, "pending");
  h.clock.advance(1);
  assert.equal(r.pending.get(cid).state, "failed");
  assert.match(r.pending.get(cid).error, /did not confirm/);
  assert.deepEqual(h.eventsOf("sendFailed").map((d) => d.room.id), ["lobby"]);

  h.store.sendMessage("lobby", "did this arrive?", cid);
  const sends = h.sentOf("sendMessage");
  assert.equal(sends.length, 2);
  assert.deepEqual(sends[1], sends[0], "the same frame, clientMsgId included");
  assert.equal(r.pending.get(cid).state, "pending");
  assert.equal(r.pending.size, 1, "still one send");

  // The server answers the retry with the ack of the message stored the first time.
  h.store.apply({ type: "ack", room: "lobby", clientMsgId: cid, id: "m-1", seq: 1, sentAt: "t" });
  assert.equal(r.pending.size, 0);
  assert.deepEqual(seqs(h), [1]);
});

test("a late ack still confirms a send already marked failed", () => {
  const h = setup();
  const r = joined(h);
  const cid = h.store.sendMessage("lobby", "slow");
  h.clock.advance(SEND_TIMEOUT_MS);
  assert.equal(r.pending.get(cid).state, "failed");
  h.store.apply({ type: "ack", room: "lobby", clientMsgId: cid, id: "m-1", seq: 1, sentAt: "t" });
  assert.equal(r.pending.size, 0);
  assert.equal(r.messages.get(1).body, "slow");
});

test("an error frame for a send marks that send failed with the plain-words text", () => {
  const h = setup();
  const r = joined(h);
  const first = h.store.sendMessage("lobby", "one");
  const second = h.store.sendMessage("lobby", "two");
  h.store.apply({ type: "error", code: "unavailable", message: "try again", requestId: "r1", action: "sendMessage", clientMsgId: second });
  assert.equal(r.pending.get(second).state, "failed");
  assert.equal(r.pending.get(second).error, ERROR_TEXT.unavailable);
  assert.equal(r.pending.get(first).state, "pending");
  assert.deepEqual(h.eventsOf("notice"), [], "shown on the message, not as a notice");
});

test("a send whose ack was lost is confirmed when it comes back through history (replay)", () => {
  const h = setup();
  const r = joined(h);
  h.store.apply(frame(msg(1)));
  const cid = h.store.sendMessage("lobby", "mine");
  // The connection drops before the ack: the send is failed, to be retried.
  h.store.disconnected();
  assert.equal(r.pending.get(cid).state, "failed");
  assert.match(r.pending.get(cid).error, /connection dropped/);

  // Reconnected: the room is joined again and caught up; our message is in the history.
  h.store.connected();
  assert.deepEqual(h.sentOf("joinRoom").at(-1), { action: "joinRoom", room: "lobby" });
  h.store.apply({ type: "joined", room: "lobby" });
  assert.deepEqual(h.sentOf("history").at(-1), { action: "history", room: "lobby", after: 1, limit: CATCH_UP_LIMIT });
  h.store.apply({
    type: "history", room: "lobby", hasMore: false,
    messages: [msg(2, { sender: ALICE, body: "mine", clientMsgId: cid }), msg(3)],
  });
  assert.equal(r.pending.size, 0, "confirmed by the history");
  assert.deepEqual(seqs(h), [1, 2, 3]);
  // A history copy of someone else's message with the same clientMsgId confirms nothing.
  const other = h.store.sendMessage("lobby", "again");
  h.store.apply(frame(msg(4, { sender: BOB, clientMsgId: other })));
  assert.equal(r.pending.size, 1);
});

test("sending while disconnected or outside the room fails at once", () => {
  const h = setup();
  const r = joined(h);
  h.online = false;
  const cid = h.store.sendMessage("lobby", "offline");
  assert.equal(r.pending.get(cid).state, "failed");
  assert.match(r.pending.get(cid).error, /Not connected/);
  h.online = true;
  const cid2 = h.store.sendMessage("elsewhere", "not joined");
  assert.match(h.store.rooms.get("elsewhere").pending.get(cid2).error, /Join the room/);
  assert.deepEqual(h.sentOf("sendMessage"), []);
});

test("pending sends keep the order in which they were first sent, across retries", () => {
  const h = setup();
  const r = joined(h);
  const a = h.store.sendMessage("lobby", "a");
  const b = h.store.sendMessage("lobby", "b");
  h.clock.advance(SEND_TIMEOUT_MS);
  h.store.sendMessage("lobby", "b", b);
  h.store.sendMessage("lobby", "a", a);
  assert.deepEqual(h.store.pendingInOrder(r).map(([cid]) => cid), [a, b]);
});

test("the newest page, older pages and history merge into one seq-ordered list", () => {
  const h = setup();
  const r = joined(h);
  const range = (from, to) => Array.from({ length: to - from + 1 }, (_, i) => msg(from + i));
  h.sentOf("history").length = 0;
  // The newest page arrives after the join: what came in between is asked for.
  h.store.applyLatest(r, { messages: range(71, 120), hasMore: true });
  assert.deepEqual(h.sentOf("history").at(-1), { action: "history", room: "lobby", after: 120, limit: CATCH_UP_LIMIT });
  h.store.apply({ type: "history", room: "lobby", messages: range(119, 122), hasMore: false });
  h.store.apply(frame(msg(123)));

  assert.equal(h.store.olderCursor(r), 71);
  h.store.applyOlder(r, { messages: range(21, 72), hasMore: true });
  assert.equal(h.store.olderCursor(r), 21);
  h.store.applyOlder(r, { messages: range(1, 20), hasMore: false });
  assert.equal(h.store.olderCursor(r), null, "nothing before seq 1");
  assert.deepEqual(seqs(h), range(1, 123).map((m) => m.seq));
  assert.equal(r.hasMoreBefore, false);
});

test("a page that arrives after sign-out is dropped", () => {
  const h = setup();
  const r = joined(h);
  h.store.reset();
  h.store.applyLatest(r, { messages: [msg(1)], hasMore: false });
  assert.equal(h.store.rooms.size, 0);
});

test("a batched messages frame equals its messages applied one by one, in order", () => {
  // Held: 1 and 2. The batch: out of order, a duplicate, our own lost-ack send, a gap at 6.
  const batch = (cid) => [msg(4), msg(3), msg(2), msg(5, { sender: ALICE, body: "mine", clientMsgId: cid }), msg(7)];
  const run = (apply) => {
    const h = setup();
    joined(h, "lobby");
    joined(h, "side");
    h.store.openRoom("side");
    h.store.apply(frame(msg(1)));
    h.store.apply(frame(msg(2)));
    const cid = h.store.sendMessage("lobby", "mine");
    h.store.apply({ type: "typing", room: "lobby", user: BOB });
    h.sent.length = 0;
    apply(h, batch(cid));
    const r = h.store.rooms.get("lobby");
    const snapshot = () => ({
      messages: h.store.messagesInOrder(r),
      pending: [...r.pending.keys()],
      unread: r.unread,
      typing: [...r.typing.keys()],
      known: [...h.store.knownUsers],
      sent: [...h.sent],
    });
    const now = snapshot();
    h.clock.advance(GAP_WAIT_MS);
    return { now, later: snapshot() };
  };
  const singles = run((h, list) => {
    for (const m of list) h.store.apply({ type: "message", ...m });
  });
  const batched = run((h, list) => {
    const messages = list.map(({ room, ...m }) => m); // the elements carry no room of their own
    assert.equal(h.store.apply({ type: "messages", room: "lobby", messages }), true);
  });
  assert.deepEqual(batched, singles);
  // And what that is: everything once, in order, the send confirmed, the gap fetched.
  assert.deepEqual(batched.now.messages.map((m) => m.seq), [1, 2, 3, 4, 5, 7]);
  assert.equal(batched.now.messages[0].room, "lobby");
  assert.deepEqual(batched.now.pending, []);
  assert.equal(batched.now.unread, 7, "seqs 1 to 7 after read position 0 (6 still in flight)");
  assert.deepEqual(batched.now.typing, []);
  assert.deepEqual(batched.later.sent, [{ action: "history", room: "lobby", after: 5, limit: CATCH_UP_LIMIT }]);
});

test("a batch that opens and fills a gap times the gap check as single frames would", () => {
  // One by one, seq 3 opens a gap (2 missing) and starts the wait; 2 fills it. A later gap
  // (seq 5, 4 missing) is then fetched when that first wait ends, not a full wait after seq 5.
  const run = (apply) => {
    const h = setup();
    joined(h);
    h.store.apply(frame(msg(1)));
    h.sent.length = 0;
    apply(h, [msg(3), msg(2)]);
    h.clock.advance(1_000);
    h.store.apply(frame(msg(5)));
    const sentAt = [];
    for (let t = 0; t < 3; t += 1) {
      h.clock.advance(1_000);
      sentAt.push(h.sentOf("history").length);
    }
    return { sentAt, sent: h.sent };
  };
  const singles = run((h, list) => list.forEach((m) => h.store.apply(frame(m))));
  const batched = run((h, list) => h.store.apply({ type: "messages", room: "lobby", messages: list }));
  assert.deepEqual(singles.sentAt, [0, 1, 1], "fetched when the first wait ends");
  assert.deepEqual(batched, singles);
});

test("a batch in the open room announces each new message once, in order", () => {
  const h = setup();
  joined(h);
  h.store.openRoom("lobby");
  h.store.apply(frame(msg(1)));
  h.store.apply({ type: "messages", room: "lobby", messages: [msg(3), msg(1), msg(2)] });
  assert.deepEqual(h.eventsOf("live").map((d) => d.message.seq), [1, 3, 2]);
  assert.deepEqual(seqs(h), [1, 2, 3]);
});

test("frames of unknown types, and malformed frames, are ignored without error", () => {
  const h = setup();
  joined(h);
  h.store.apply(frame(msg(1)));
  h.events.length = 0;
  h.sent.length = 0;
  const before = JSON.stringify([...h.store.rooms.keys()]);
  for (const f of [
    { type: "reaction", room: "lobby", emoji: "+1" },
    { type: "constructor" },
    { type: "__proto__", room: "lobby" },
    { room: "lobby" },
    { type: 42 },
    null,
    42,
    "message",
    [{ type: "message" }],
    { type: "message", seq: 2, body: "no room" },
    { type: "messages", room: "lobby" },
    { type: "messages", room: "lobby", messages: "not a list" },
    { type: "messages", room: "lobby", messages: [null, 7, { body: "no seq" }] },
    { type: "presence", room: "lobby", state: "joined" },
    { type: "error", code: "bad_request", action: "toString" },
  ]) {
    assert.doesNotThrow(() => h.store.apply(f), JSON.stringify(f));
  }
  assert.equal(h.store.apply({ type: "reaction", room: "lobby" }), false);
  assert.equal(JSON.stringify([...h.store.rooms.keys()]), before, "no room made up");
  assert.deepEqual(seqs(h), [1]);
  assert.deepEqual(h.sent, []);
  // Only the error frame had something to say.
  assert.deepEqual(h.events.filter(([e]) => e === "notice").length, 1);
});

test("error frames for joins and history are matched to the oldest such request", () => {
  const h = setup();
  h.store.join("one");
  h.store.join("two");
  h.store.apply({ type: "error", code: "forbidden", action: "joinRoom", requestId: "r" });
  assert.equal(h.store.rooms.get("one").joining, false);
  assert.equal(h.store.rooms.get("two").joining, true);
  assert.deepEqual(h.eventsOf("notice").map((d) => d.text), [`Could not join one: ${ERROR_TEXT.forbidden}`]);
  h.store.apply({ type: "joined", room: "two" });
  assert.equal(h.store.rooms.get("two").joined, true);
  // An error frame naming its room is attributed to that room, whatever the order asked.
  h.store.join("three");
  h.store.join("four");
  h.store.apply({ type: "error", code: "not_found", action: "joinRoom", requestId: "r", room: "four" });
  assert.equal(h.store.rooms.get("four").joining, false);
  assert.equal(h.store.rooms.get("three").joining, true);
  // An unauthorized error frame about nothing pending asks for a new token.
  h.store.apply({ type: "error", code: "unauthorized", action: "typing", requestId: "r" });
  assert.equal(h.eventsOf("unauthorized").length, 1);
});

test("a reconnect re-joins joined rooms and catches up after the highest contiguous seq", () => {
  const h = setup();
  const r = joined(h);
  for (const s of [1, 2, 3, 6]) h.store.apply(frame(msg(s)));
  h.store.connected();
  assert.equal(r.joined, false, "not joined until the server says so");
  assert.equal(r.joining, true);
  h.store.apply({ type: "joined", room: "lobby" });
  assert.deepEqual(h.sentOf("history").at(-1), { action: "history", room: "lobby", after: 3, limit: CATCH_UP_LIMIT });
  assert.deepEqual(h.store.joinedIds(), ["lobby"]);
});

test("typing: others' notices show until they expire, ours go out at most every 3 s", () => {
  const h = setup();
  const r = joined(h);
  h.store.openRoom("lobby");
  h.store.apply({ type: "typing", room: "lobby", user: BOB });
  h.store.apply({ type: "typing", room: "lobby", user: ALICE });
  assert.deepEqual(h.store.typingNames(r), ["bob"]);
  h.clock.advance(5_001);
  assert.deepEqual(h.store.typingNames(r), []);

  h.store.typed();
  h.store.typed();
  h.clock.advance(3_001);
  h.store.typed();
  assert.equal(h.sentOf("typing").length, 2);
  h.store.composed();
  h.store.typed();
  assert.equal(h.sentOf("typing").length, 3);
});

test("a presence frame updates who is here (never us) and the room's count", () => {
  const h = setup();
  const r = joined(h);
  h.store.openRoom("lobby");
  h.store.apply({ type: "presence", room: "lobby", joined: [ALICE, BOB], left: [], count: 2 });
  assert.deepEqual([...r.online.values()], [BOB.name], "our own join is not listed");
  assert.equal(r.count, 2);
  h.store.apply({ type: "presence", room: "lobby", joined: [], left: [BOB], count: 1 });
  assert.equal(r.online.size, 0);
  assert.equal(r.count, 1);
  // A large room's frame: the count alone.
  h.store.apply({ type: "presence", room: "lobby", joined: [], left: [], count: 5000 });
  assert.equal(r.count, 5000);
  assert.equal(h.eventsOf("presence").length, 3);
});
