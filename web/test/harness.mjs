// Shared pieces of the unit tests: a manual clock with timers, and a RoomStore wired to
// recorders instead of a socket and a page.

import { RoomStore } from "../room-state.js";

export const ALICE = { id: "u-alice", name: "alice" };
export const BOB = { id: "u-bob", name: "bob" };

// Timers that run only when the test moves the clock.
export function manualClock() {
  let now = 1_000_000;
  let nextId = 1;
  const due = new Map(); // id -> {at, fn}
  return {
    now: () => now,
    set(fn, ms) {
      const id = nextId++;
      due.set(id, { at: now + ms, fn });
      return id;
    },
    clear(id) {
      due.delete(id);
    },
    // Moves the clock by `ms`, running every timer that falls due, earliest first.
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let first = null;
        for (const [id, t] of due) if (t.at <= end && (!first || t.at < first[1].at)) first = [id, t];
        if (!first) break;
        due.delete(first[0]);
        now = first[1].at;
        first[1].fn();
      }
      now = end;
    },
    get scheduled() {
      return due.size;
    },
  };
}

// A store as the page has it, with the socket and the page replaced by recorders: `sent` holds
// the frames transmitted, `events` what was emitted. `online` says whether frames can go out.
export function setup({ self = ALICE, visible = true } = {}) {
  const clock = manualClock();
  const sent = [];
  const events = [];
  const h = { clock, sent, events, online: true, visible };
  let ids = 0;
  h.store = new RoomStore({
    transmit: (frame) => {
      if (!h.online) return false;
      sent.push(frame);
      return true;
    },
    emit: (event, detail) => events.push([event, detail]),
    self: () => self,
    visible: () => h.visible,
    now: clock.now,
    timers: clock,
    newId: () => `cid-${++ids}`,
  });
  // Frames of one kind sent so far.
  h.sentOf = (action) => sent.filter((f) => f.action === action);
  h.eventsOf = (name) => events.filter(([e]) => e === name).map(([, d]) => d);
  return h;
}

// A message as the server sends it (the fields of a `message` frame without `type`).
export function msg(seq, { room = "lobby", sender = BOB, body = `message ${seq}`, clientMsgId = `b-${seq}` } = {}) {
  return { room, id: `m-${seq}`, seq, sender, body, clientMsgId, sentAt: `2025-01-01T00:00:${String(seq % 60).padStart(2, "0")}Z` };
}

// The `message` frame of `m`.
export function frame(m) {
  return { type: "message", ...m };
}

// Joins `room` and answers the join, as the server does.
export function joined(h, room = "lobby") {
  h.store.join(room);
  h.store.apply({ type: "joined", room });
  return h.store.rooms.get(room);
}

export function seqs(h, room = "lobby") {
  return h.store.messagesInOrder(h.store.rooms.get(room)).map((m) => m.seq);
}
