// Browser end-to-end tests of the web client against hubbub-local (scripts/test-web starts
// the server and sets HUBBUB_WEB_URL). Run: node --test (from web/e2e).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";

import {
  ARTIFACTS,
  BASE_URL,
  assertNoConsoleErrors,
  createRoom,
  dropConnection,
  expectOnce,
  launch,
  message,
  newUser,
  openRoom,
  say,
  seqsInOrder,
  signIn,
  signUp,
  uniq,
  waitOnline,
} from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("two users sign up, join a room and chat both ways, each message once", async (t) => {
  const alice = await signUp(await newUser(browser, t), uniq("alice"));
  const bob = await signUp(await newUser(browser, t), uniq("bob"));
  const room = uniq("lobby-");

  await createRoom(alice.page, room, { name: "Lobby" });
  await openRoom(bob.page, room);
  // Alice sees Bob arrive (presence).
  await alice.page.locator("#presence", { hasText: bob.name }).waitFor();

  // The token travels only in the subprotocol, never in the URL.
  for (const u of [alice, bob]) {
    const opened = await u.page.evaluate(() => window.__hubbub.opened);
    assert.ok(opened.length >= 1);
    for (const o of opened) {
      assert.ok(!/token|bearer|eyJ/i.test(o.url), `no token in ${o.url}`);
      assert.equal(o.protocols[0], "hubbub.v1");
      assert.match(o.protocols[1], /^bearer\.eyJ/);
    }
  }

  // Own message: pending, then confirmed by the ack; the other side gets it once.
  await say(alice.page, "hello from alice");
  await expectOnce(assert, alice.page, "hello from alice");
  await expectOnce(assert, bob.page, "hello from alice");

  // Typing indicator.
  await bob.page.getByLabel("Message", { exact: true }).pressSequentially("hel");
  await alice.page.locator("#typing", { hasText: `${bob.name} is typing` }).waitFor();

  await say(bob.page, "hi alice, bob here");
  await expectOnce(assert, bob.page, "hi alice, bob here");
  await expectOnce(assert, alice.page, "hi alice, bob here");
  for (let i = 1; i <= 3; i += 1) {
    await say(alice.page, `ping ${i}`);
    await say(bob.page, `pong ${i}`);
  }
  for (const u of [alice, bob]) {
    for (let i = 1; i <= 3; i += 1) {
      await expectOnce(assert, u.page, `ping ${i}`);
      await expectOnce(assert, u.page, `pong ${i}`);
    }
    const seqs = await seqsInOrder(u.page);
    assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8], "each seq once, in order");
  }

  mkdirSync(ARTIFACTS, { recursive: true });
  await alice.page.screenshot({ path: join(ARTIFACTS, "web-chat.png"), fullPage: true });

  // A private room: Alice creates it and adds Bob by user id; Bob then sees and joins it.
  const secret = uniq("secret-");
  await createRoom(alice.page, secret, { name: "Secret", isPrivate: true });
  await alice.page.locator("#members-panel summary").click();
  await alice.page.getByLabel("Add a member (username or user id)").fill(bob.id);
  await alice.page.getByRole("button", { name: "Add member" }).click();
  await alice.page.locator("#notice", { hasText: "can now use this room" }).waitFor();
  await openRoom(bob.page, secret);
  await say(bob.page, "psst");
  await expectOnce(assert, alice.page, "psst");

  // Leaving: Bob leaves the lobby; Alice sees him go.
  await bob.page.locator(`.room-link[data-room="${room}"]`).click();
  await bob.page.getByRole("button", { name: "Leave room" }).click();
  await bob.page.getByRole("button", { name: "Join room" }).waitFor();
  await alice.page.locator(`.room-link[data-room="${room}"]`).click();
  await alice.page.waitForFunction((n) => !document.getElementById("presence").textContent.includes(n), bob.name);

  assertNoConsoleErrors(assert, alice, bob);
});

test("history scroll-back after a reload", async (t) => {
  const carol = await signUp(await newUser(browser, t), uniq("carol"));
  const room = uniq("history-");
  await createRoom(carol.page, room);
  const total = 120;
  for (let i = 1; i <= total; i += 1) await say(carol.page, `history message ${String(i).padStart(3, "0")}`);
  await carol.page.locator("#messages li.msg[data-seq='120'][data-state=sent]").waitFor();
  assert.equal(await carol.page.locator("#messages li.msg[data-state=sent]").count(), total);

  await carol.page.reload();
  await waitOnline(carol.page);
  await carol.page.locator("#messages li.msg[data-seq='120']").waitFor();
  // The newest page only.
  assert.equal(await carol.page.locator("#messages li.msg").count(), 50);
  assert.equal(await message(carol.page, "history message 001").count(), 0);

  // Scrolling to the top loads the page before, keeping the reader's place.
  await carol.page.locator("#scroller").evaluate((el) => el.scrollTo(0, 0));
  await carol.page.locator("#messages li.msg[data-seq='21']").waitFor();
  assert.equal(await carol.page.locator("#messages li.msg").count(), 100);
  const top = await carol.page.locator("#scroller").evaluate((el) => el.scrollTop);
  assert.ok(top > 100, `the view stays where it was (scrollTop ${top})`);
  // And by keyboard: the button at the top.
  await carol.page.getByRole("button", { name: "Load older messages" }).evaluate((b) => b.focus({ preventScroll: true }));
  await carol.page.keyboard.press("Enter");
  await carol.page.locator("#messages li.msg[data-seq='1']").waitFor();
  assert.deepEqual(await seqsInOrder(carol.page), Array.from({ length: total }, (_, i) => i + 1));
  await expectOnce(assert, carol.page, "history message 001");
  assert.equal(await carol.page.locator("#load-older").isVisible(), false, "no more to load");

  assertNoConsoleErrors(assert, carol);
});

test("reconnects after the server drops the connection and catches up", async (t) => {
  const dave = await signUp(await newUser(browser, t), uniq("dave"));
  const erin = await signUp(await newUser(browser, t), uniq("erin"));
  const room = uniq("drop-");
  await createRoom(dave.page, room);
  await openRoom(erin.page, room);
  await say(erin.page, "before the drop");
  await expectOnce(assert, dave.page, "before the drop");

  // The server closes Dave's connection (1009) and Dave stays offline for a while.
  await dropConnection(dave.page, { block: true });
  await say(erin.page, "while you were away 1");
  await say(erin.page, "while you were away 2");
  await expectOnce(assert, erin.page, "while you were away 2");
  // Backoff: several failed attempts while offline, growing apart.
  await dave.page.waitForFunction(() => window.__hubbub.opened.length >= 3, null, { timeout: 15_000 });

  // Back online: reconnect, re-join, catch up with `history after`.
  await dave.page.evaluate(() => {
    window.__hubbub.block = false;
    window.dispatchEvent(new Event("online"));
  });
  await waitOnline(dave.page);
  await expectOnce(assert, dave.page, "while you were away 1");
  await expectOnce(assert, dave.page, "while you were away 2");
  assert.deepEqual(await seqsInOrder(dave.page), [1, 2, 3]);
  const codes = await dave.page.evaluate(() => window.__hubbub.closeCodes);
  assert.equal(codes[0], 1009, "the server closed the connection");

  await say(dave.page, "back again");
  await expectOnce(assert, dave.page, "back again");
  await expectOnce(assert, erin.page, "back again");

  // Dropped once more without blocking: the client comes back by itself.
  await dropConnection(dave.page);
  await waitOnline(dave.page);
  await say(erin.page, "after the second drop");
  await expectOnce(assert, dave.page, "after the second drop");

  assertNoConsoleErrors(assert, dave, erin);
});

test("a logout on another device closes this one's connection; it refreshes its own login and reconnects", async (t) => {
  const name = uniq("fay");
  const phone = await signUp(await newUser(browser, t), name);
  const laptop = await signIn(await newUser(browser, t), name);
  const room = uniq("devices-");
  await createRoom(phone.page, room);
  // Past the authorizer's 5 s cache of what it read of the user at the phone's handshake, so
  // that the phone's next handshake sees the logout.
  await phone.page.waitForTimeout(5_500);
  const closed = await phone.page.evaluate(() => window.__hubbub.closeCodes.length);
  await laptop.page.getByRole("button", { name: "Log out" }).click();
  await laptop.page.getByRole("button", { name: "Sign in" }).waitFor();
  // The server closes the phone's connection (1000). Its access token no longer opens one (the
  // handshake answers 401), but the refresh token of its own login is still good.
  await phone.page.waitForFunction((n) => window.__hubbub.closeCodes.length > n, closed);
  await phone.page.locator('#conn-status[data-state="online"]').waitFor({ timeout: 15_000 });
  await say(phone.page, "still signed in here");
  await expectOnce(assert, phone.page, "still signed in here");
  // The one handshake with the revoked token, answered 401.
  phone.allowed.push(/HTTP Authentication failed/);
  assertNoConsoleErrors(assert, phone, laptop);
});

test("a send whose ack is lost fails, and a retry with the same clientMsgId stores it once", async (t) => {
  const frank = await signUp(await newUser(browser, t), uniq("frank"));
  const gina = await signUp(await newUser(browser, t), uniq("gina"));
  const room = uniq("retry-");
  await createRoom(frank.page, room);
  await openRoom(gina.page, room);

  await frank.page.evaluate(() => (window.__hubbub.filter = (d) => (d.includes('"type":"ack"') ? null : d)));
  await say(frank.page, "did this arrive?");
  const mine = message(frank.page, "did this arrive?");
  await mine.and(frank.page.locator("[data-state=pending]")).waitFor();
  await expectOnce(assert, gina.page, "did this arrive?"); // it was committed
  await mine.and(frank.page.locator("[data-state=failed]")).waitFor({ timeout: 15_000 });
  const id = await mine.getAttribute("data-client-msg-id");

  await frank.page.evaluate(() => (window.__hubbub.filter = null));
  await mine.getByRole("button", { name: "Retry" }).click();
  await expectOnce(assert, frank.page, "did this arrive?");
  assert.equal(await mine.getAttribute("data-client-msg-id"), id, "same clientMsgId");
  assert.deepEqual(await seqsInOrder(frank.page), [1]);
  await say(gina.page, "yes, once");
  await expectOnce(assert, frank.page, "yes, once");
  assert.equal(await message(gina.page, "did this arrive?").count(), 1);

  // An error frame instead of the ack (the server's `unavailable`): a plain message, and the
  // retry (same clientMsgId) is answered with the ack of the message already stored.
  await frank.page.evaluate(() => {
    window.__hubbub.filter = (d) => {
      const f = JSON.parse(d);
      if (f.type !== "ack") return d;
      window.__hubbub.filter = null;
      return JSON.stringify({ type: "error", code: "unavailable", message: "try again", requestId: "r1",
        action: "sendMessage", clientMsgId: f.clientMsgId });
    };
  });
  await say(frank.page, "second try");
  const second = message(frank.page, "second try");
  await second.and(frank.page.locator("[data-state=failed]")).waitFor();
  assert.match(await second.locator(".state").textContent(), /busy right now/);
  await second.getByRole("button", { name: "Retry" }).click();
  await expectOnce(assert, frank.page, "second try");
  await expectOnce(assert, gina.page, "second try");
  assert.deepEqual(await seqsInOrder(frank.page), [1, 2, 3]);

  assertNoConsoleErrors(assert, frank, gina);
});

test("a seq gap that does not fill is fetched with history after", async (t) => {
  const kim = await signUp(await newUser(browser, t), uniq("kim"));
  const lee = await signUp(await newUser(browser, t), uniq("lee"));
  const room = uniq("gap-");
  await createRoom(kim.page, room);
  await openRoom(lee.page, room);
  await say(lee.page, "first");
  await expectOnce(assert, kim.page, "first");
  // Kim loses the next live message in transit.
  await kim.page.evaluate(() => {
    window.__hubbub.filter = (d) => {
      if (!d.includes('"type":"message"')) return d;
      window.__hubbub.filter = null;
      return null;
    };
  });
  await say(lee.page, "lost in transit");
  await expectOnce(assert, lee.page, "lost in transit");
  await say(lee.page, "after the gap");
  await expectOnce(assert, kim.page, "after the gap");
  await expectOnce(assert, kim.page, "lost in transit");
  assert.deepEqual(await seqsInOrder(kim.page), [1, 2, 3]);
  assert.ok((await kim.page.evaluate(() => window.__hubbub.sent)).includes("history"));
  assertNoConsoleErrors(assert, kim, lee);
});

test("the access token is refreshed before it expires, the new one is used, and pings keep the socket alive", async (t) => {
  const hank = await newUser(browser, t, { clock: true });
  await signUp(hank, uniq("hank"));
  const room = uniq("refresh-");
  await createRoom(hank.page, room);
  const expiresIn = await hank.page.evaluate(() => {
    const s = JSON.parse(sessionStorage.getItem("hubbub.session"));
    return Math.round((s.accessExp - Date.now()) / 1000);
  });
  assert.ok(expiresIn > 30, `expiresIn ${expiresIn}`);

  const refreshed = hank.page.waitForResponse((r) => r.url().endsWith("/auth/refresh"));
  await hank.page.clock.fastForward(expiresIn * 1000 - 5_000);
  const resp = await refreshed;
  assert.equal(resp.status(), 200);
  const { accessToken } = await resp.json();
  // Meanwhile (over 5 minutes) the connection was kept alive with a ping.
  assert.ok((await hank.page.evaluate(() => window.__hubbub.sent)).includes("ping"), "a ping was sent");

  // The next connection offers the new token.
  await dropConnection(hank.page);
  await hank.page.clock.fastForward(2_000);
  await waitOnline(hank.page);
  const opened = await hank.page.evaluate(() => window.__hubbub.opened.at(-1));
  assert.equal(opened.protocols[1], `bearer.${accessToken}`);
  await say(hank.page, "still here");
  await expectOnce(assert, hank.page, "still here");

  assertNoConsoleErrors(assert, hank);
});

test("errors are explained in plain words", async (t) => {
  const ivy = await newUser(browser, t);
  const name = uniq("ivy");
  await signUp(ivy, name);
  await ivy.page.getByRole("button", { name: "Log out" }).click();
  await ivy.page.locator("#auth-error", { hasText: "You are signed out" }).waitFor();

  // The browser itself logs failed HTTP answers; these two are the point of this test.
  ivy.allowed.push(/status of 401/, /status of 409/);
  await ivy.page.getByLabel("Username", { exact: true }).fill(name);
  await ivy.page.getByLabel("Password").fill("not the password");
  await ivy.page.getByRole("button", { name: "Sign in" }).click();
  await ivy.page.locator("#auth-error", { hasText: "The username or password is wrong." }).waitFor();

  await ivy.page.getByRole("button", { name: "Create account" }).click();
  await ivy.page.locator("#auth-error", { hasText: "That username is taken" }).waitFor();

  // Every error code of docs/protocol.md has a human message.
  const texts = await ivy.page.evaluate(async () => (await import("./app.js")).ERROR_TEXT);
  for (const code of ["bad_request", "unauthorized", "forbidden", "not_found", "conflict",
    "payload_too_large", "gone", "rejected", "rate_limited", "limit_exceeded", "unavailable", "internal"]) {
    assert.ok(texts[code] && texts[code].length > 10 && !texts[code].includes("_"), code);
  }

  await ivy.page.getByLabel("Password").fill("correct horse battery");
  await ivy.page.getByRole("button", { name: "Sign in" }).click();
  await waitOnline(ivy.page);
  assertNoConsoleErrors(assert, ivy);
});

test("the page works on a narrow screen", async (t) => {
  const jo = await newUser(browser, t);
  await jo.page.setViewportSize({ width: 380, height: 740 });
  await signUp(jo, uniq("jo"));
  const room = uniq("phone-");
  await createRoom(jo.page, room);
  await say(jo.page, "from a phone");
  await expectOnce(assert, jo.page, "from a phone");
  const overflow = await jo.page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth + 1);
  assert.equal(overflow, false, "no horizontal scrolling");
  assert.ok(BASE_URL.startsWith("http"));
  assertNoConsoleErrors(assert, jo);
});
