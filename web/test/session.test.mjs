// Unit tests of the session (web/session.js): a refresh that brings a new access token is
// announced, so the WebSocket can move to it before the old token expires. Run: node --test
// web/test/*.test.mjs

import { test } from "node:test";
import assert from "node:assert/strict";

import { Session } from "../session.js";
import { ALICE, manualClock } from "./harness.mjs";

function memoryStorage() {
  const m = new Map();
  return { getItem: (k) => m.get(k) ?? null, setItem: (k, v) => m.set(k, v), removeItem: (k) => m.delete(k) };
}

const body = (n) => ({ user: ALICE, accessToken: `eyJ.${n}`, refreshToken: `r-${n}`, expiresIn: 900 });

test("the scheduled refresh announces the fresh token; signing in does not", async () => {
  const clock = manualClock();
  let n = 0;
  const renewed = [];
  const session = new Session({
    storage: memoryStorage(),
    refreshCall: async () => body(++n),
    onRefreshed: () => renewed.push(session.accessToken),
    now: clock.now,
    timers: { set: clock.set, clear: clock.clear },
  });
  session.adopt(body(0));
  assert.deepEqual(renewed, [], "a sign-in is not a renewal");
  clock.advance(900_000 * 0.8);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(renewed, ["eyJ.1"], "announced once the new token is adopted");
});

test("a refused refresh is not announced", async () => {
  const clock = manualClock();
  const ended = [];
  const renewed = [];
  const session = new Session({
    storage: memoryStorage(),
    refreshCall: async () => Promise.reject(Object.assign(new Error("no"), { code: "unauthorized" })),
    onEnded: (t) => ended.push(t),
    onRefreshed: () => renewed.push(1),
    now: clock.now,
    timers: { set: clock.set, clear: clock.clear },
  });
  session.adopt(body(0));
  await assert.rejects(session.refresh());
  assert.equal(ended.length, 1);
  assert.deepEqual(renewed, []);
});

test("token() reuses a fresh token; token({ refresh: true }) asks the server for a new one", async () => {
  const clock = manualClock();
  let n = 0;
  const session = new Session({
    storage: memoryStorage(),
    refreshCall: async () => body(++n),
    now: clock.now,
    timers: { set: clock.set, clear: clock.clear },
  });
  session.adopt(body(0));
  assert.equal(await session.token(), "eyJ.0");
  assert.equal(await session.token({ refresh: true }), "eyJ.1");
  assert.equal(session.refreshToken, "r-1", "the spent refresh token is replaced");
});
