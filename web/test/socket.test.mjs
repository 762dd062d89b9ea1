// Unit tests of the WebSocket wrapper (web/socket.js) with a stand-in WebSocket: the token in
// the `bearer.` subprotocol only, frames parsed and passed on, pings, and reconnects with
// backoff. Run: node --test web/test/*.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";

import { BACKOFF_BASE_MS, BACKOFF_MAX_MS, PING_EVERY_MS, RENEW_OVERLAP_MS, Socket, backoffDelay } from "../socket.js";
import { manualClock } from "./harness.mjs";

// A WebSocket the test opens, feeds and closes by hand.
class FakeSocket extends EventTarget {
  static made = [];
  constructor(url, protocols) {
    super();
    this.url = url;
    this.protocols = protocols;
    this.readyState = 0;
    this.out = [];
    this.closedWith = null;
    FakeSocket.made.push(this);
  }
  send(data) {
    this.out.push(JSON.parse(data));
  }
  close(code) {
    this.closedWith = code;
    this.readyState = 3;
  }
  serverOpens() {
    this.readyState = 1;
    this.dispatchEvent(new Event("open"));
  }
  serverSends(data) {
    const ev = new Event("message");
    ev.data = data;
    this.dispatchEvent(ev);
  }
  serverDrops() {
    this.readyState = 3;
    this.dispatchEvent(new Event("close"));
  }
}

function setup({ token = async () => "eyJ.token" } = {}) {
  FakeSocket.made = [];
  const clock = manualClock();
  const log = [];
  const timers = { set: clock.set, clear: clock.clear, every: (fn, ms) => {
    const tick = () => {
      fn();
      id.current = clock.set(tick, ms);
    };
    const id = { current: clock.set(tick, ms) };
    return id;
  }, stop: (id) => id && clock.clear(id.current) };
  const socket = new Socket({
    url: "ws://127.0.0.1:3001/",
    token,
    WebSocket: FakeSocket,
    timers,
    random: () => 1,
    onOpen: () => log.push("open"),
    onFrame: (f) => log.push(f),
    onClose: () => log.push("close"),
    onStatus: (state, text) => log.push(`${state}: ${text}`),
  });
  return { socket, clock, log };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

test("the backoff doubles from 0.5 s up to 30 s, randomised to 50-100%", () => {
  assert.deepEqual([0, 1, 2, 3].map((a) => backoffDelay(a, () => 1)), [500, 1000, 2000, 4000]);
  assert.equal(backoffDelay(20, () => 1), BACKOFF_MAX_MS);
  assert.equal(backoffDelay(0, () => 0), BACKOFF_BASE_MS / 2);
  assert.equal(backoffDelay(30, () => 0), BACKOFF_MAX_MS / 2);
});

test("the token goes in the bearer. subprotocol, never the URL; frames are parsed and passed on", async () => {
  const { socket, log } = setup();
  socket.start();
  await settle();
  const [ws] = FakeSocket.made;
  assert.equal(ws.url, "ws://127.0.0.1:3001/");
  assert.deepEqual(ws.protocols, ["hubbub.v1", "bearer.eyJ.token"]);
  assert.equal(socket.send({ action: "ping" }), false, "nothing goes out before the open");
  ws.serverOpens();
  assert.equal(socket.send({ action: "joinRoom", room: "lobby" }), true);
  assert.deepEqual(ws.out, [{ action: "joinRoom", room: "lobby" }]);
  ws.serverSends('{"type":"messages","room":"lobby","messages":[]}');
  ws.serverSends("not json");
  assert.deepEqual(log, [
    "connecting: Connecting…",
    "online: Connected",
    "open",
    { type: "messages", room: "lobby", messages: [] },
  ]);
});

test("pings keep an idle connection open", async () => {
  const { socket, clock } = setup();
  socket.start();
  await settle();
  FakeSocket.made[0].serverOpens();
  clock.advance(PING_EVERY_MS * 2);
  assert.deepEqual(FakeSocket.made[0].out, [{ action: "ping" }, { action: "ping" }]);
});

test("a dropped connection reconnects with growing delays, and resets them once open", async () => {
  const { socket, clock, log } = setup();
  socket.start();
  await settle();
  FakeSocket.made[0].serverOpens();
  FakeSocket.made[0].serverDrops();
  assert.ok(log.includes("close"));
  assert.equal(log.at(-1), "reconnecting: Disconnected. Reconnecting in 1 s…");
  for (const delay of [500, 1000, 2000]) {
    const made = FakeSocket.made.length;
    clock.advance(delay - 1);
    await settle();
    assert.equal(FakeSocket.made.length, made, `not before ${delay} ms`);
    clock.advance(1);
    await settle();
    assert.equal(FakeSocket.made.length, made + 1, `after ${delay} ms`);
    FakeSocket.made.at(-1).serverDrops();
  }
  const last = FakeSocket.made.length;
  clock.advance(4000);
  await settle();
  FakeSocket.made.at(-1).serverOpens();
  assert.equal(FakeSocket.made.length, last + 1);
  FakeSocket.made.at(-1).serverDrops();
  assert.equal(log.at(-1), "reconnecting: Disconnected. Reconnecting in 1 s…", "back to the first delay");
});

test("back online reconnects at once; stop() closes and stays closed", async () => {
  const { socket, clock } = setup();
  socket.start();
  await settle();
  FakeSocket.made[0].serverDrops();
  socket.online();
  await settle();
  assert.equal(FakeSocket.made.length, 2, "without waiting out the backoff");
  FakeSocket.made[1].serverOpens();
  socket.stop();
  assert.equal(FakeSocket.made[1].closedWith, 1000);
  clock.advance(BACKOFF_MAX_MS * 2);
  socket.online();
  await settle();
  assert.equal(FakeSocket.made.length, 2);
});

test("a refused token stops reconnecting; other token failures retry", async () => {
  const refused = Object.assign(new Error("no"), { code: "unauthorized" });
  const a = setup({ token: async () => Promise.reject(refused) });
  a.socket.start();
  await settle();
  assert.equal(a.clock.scheduled, 0);
  const b = setup({ token: async () => Promise.reject(Object.assign(new Error("down"), { code: "network" })) });
  b.socket.start();
  await settle();
  assert.equal(b.clock.scheduled, 1);
  assert.match(b.log.at(-1), /^reconnecting: /);
});

test("renew() moves to a connection opened with the fresh token, keeping the old one's frames during the overlap", async () => {
  let current = "eyJ.old";
  const { socket, clock, log } = setup({ token: async () => current });
  socket.start();
  await settle();
  const [old] = FakeSocket.made;
  old.serverOpens();
  current = "eyJ.fresh";
  socket.renew();
  await settle();
  assert.equal(FakeSocket.made.length, 2, "a second connection opens beside the first");
  const fresh = FakeSocket.made[1];
  assert.deepEqual(fresh.protocols, ["hubbub.v1", "bearer.eyJ.fresh"]);
  socket.renew();
  await settle();
  assert.equal(FakeSocket.made.length, 2, "one renewal at a time");
  assert.equal(socket.send({ action: "ping" }), true);
  assert.deepEqual(old.out, [{ action: "ping" }], "the old connection serves until the new one is open");

  const opens = log.filter((l) => l === "open").length;
  fresh.serverOpens();
  assert.equal(log.filter((l) => l === "open").length, opens + 1, "onOpen rejoins and catches up");
  assert.equal(socket.send({ action: "joinRoom", room: "lobby" }), true);
  assert.deepEqual(fresh.out, [{ action: "joinRoom", room: "lobby" }], "sends go to the new connection");
  // A message posted to the old connection before the new one rejoined still arrives.
  old.serverSends('{"type":"message","room":"lobby","seq":7}');
  assert.deepEqual(log.at(-1), { type: "message", room: "lobby", seq: 7 });
  assert.equal(old.closedWith, null, "the old connection stays open during the overlap");
  clock.advance(RENEW_OVERLAP_MS);
  assert.equal(old.closedWith, 1000);
  old.serverDrops();
  assert.ok(!log.includes("close"), "the old connection closing is not a disconnect");
  assert.equal(FakeSocket.made.length, 2, "and does not reconnect");
  fresh.serverSends('{"type":"pong"}');
  assert.deepEqual(log.at(-1), { type: "pong" });
});

test("a renewal that fails to open leaves the connection as it was", async () => {
  const { socket, log } = setup();
  socket.start();
  await settle();
  const [ws] = FakeSocket.made;
  ws.serverOpens();
  socket.renew();
  await settle();
  FakeSocket.made[1].serverDrops();
  assert.ok(!log.includes("close"));
  assert.equal(socket.send({ action: "ping" }), true);
  assert.deepEqual(ws.out, [{ action: "ping" }]);
  socket.renew();
  await settle();
  assert.equal(FakeSocket.made.length, 3, "and a later renewal is tried again");
});

test("a connection that closes before it opens is tried again with a refreshed token; a refused refresh stops", async () => {
  const ended = Object.assign(new Error("ended"), { code: "unauthorized" });
  const asked = [];
  let refreshRefused = false;
  const token = async ({ refresh = false } = {}) => {
    asked.push(refresh);
    if (refresh && refreshRefused) throw ended;
    return refresh ? "eyJ.refreshed" : "eyJ.cached";
  };
  const { socket, clock } = setup({ token });
  socket.start();
  await settle();
  // The server closes an open connection (a logout on another device): the next attempt
  // has no reason to doubt the token.
  FakeSocket.made[0].serverOpens();
  FakeSocket.made[0].serverDrops();
  clock.advance(500);
  await settle();
  assert.deepEqual(FakeSocket.made[1].protocols, ["hubbub.v1", "bearer.eyJ.cached"]);
  // That handshake is refused (401 for a revoked token): the socket closes without opening.
  FakeSocket.made[1].serverDrops();
  clock.advance(1000);
  await settle();
  assert.deepEqual(FakeSocket.made[2].protocols, ["hubbub.v1", "bearer.eyJ.refreshed"], "refreshed before trying again");
  // Refused once more, and this time the session itself is over: no further attempt.
  refreshRefused = true;
  FakeSocket.made[2].serverDrops();
  clock.advance(2000);
  await settle();
  assert.equal(FakeSocket.made.length, 3);
  assert.equal(clock.scheduled, 0);
  assert.deepEqual(asked, [false, false, true, true]);
});
