// Browser end-to-end test of unread badges, direct conversations and members between two users
// (two browser contexts), and a third client, a new device of one of them, that converges from
// the server's state alone. Against hubbub-local (scripts/test-web starts it). Run: node --test
// (from web/e2e).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import {
  assertNoConsoleErrors,
  createRoom,
  expectOnce,
  launch,
  newUser,
  openRoom,
  say,
  signIn,
  signUp,
  uniq,
  waitJoined,
} from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const link = (page, room) => page.locator(`.room-link[data-room="${room}"]`);
const badge = (page, room) => link(page, room).locator(".unread");

// The rooms of `ids` as the list shows them: [id, label, unread badge].
async function listed(page, ids) {
  const rows = await page.locator(".room-link").evaluateAll((els) =>
    els.map((b) => [b.dataset.room, b.querySelector("span").textContent, b.querySelector(".unread")?.textContent || ""]),
  );
  return rows.filter(([id]) => ids.includes(id)).sort();
}

// The confirmed messages of the open room, in seq order: [seq, sender, body].
async function shown(page) {
  return page.locator("#messages li.msg[data-seq]").evaluateAll((els) =>
    els.map((li) => [Number(li.dataset.seq), li.querySelector(".meta strong").textContent, li.querySelector(".body").textContent]),
  );
}

test("unread badges, direct conversations and members between two users; a new device converges", async (t) => {
  const alice = await signUp(await newUser(browser, t), uniq("alice"));
  const bob = await signUp(await newUser(browser, t), uniq("bob"));

  // Unread: Bob follows the lobby but is looking at another room when Alice writes.
  const lobby = uniq("town-");
  const side = uniq("side-");
  await createRoom(alice.page, lobby);
  await openRoom(bob.page, lobby);
  await createRoom(bob.page, side);
  await say(alice.page, "anyone here?");
  await expectOnce(assert, alice.page, "anyone here?");
  await badge(bob.page, lobby).filter({ hasText: "1" }).waitFor();
  assert.equal(await badge(bob.page, lobby).getAttribute("aria-label"), "1 unread");
  await link(bob.page, lobby).click();
  await expectOnce(assert, bob.page, "anyone here?");
  await badge(bob.page, lobby).waitFor({ state: "detached" });

  // A direct conversation: Alice starts it by Bob's username; Bob sees it listed under Alice's
  // name, with her message unread, and answers.
  await alice.page.getByLabel("Message a person (username)").fill(bob.name);
  await alice.page.getByRole("button", { name: "Start conversation" }).click();
  await alice.page.locator("#room-title", { hasText: bob.name }).waitFor();
  await waitJoined(alice.page);
  const dm = await alice.page.locator('.room-link[aria-current="true"]').getAttribute("data-room");
  assert.match(dm, /^dm-[0-9a-f]{40}$/);
  await say(alice.page, "hi bob, just between us");
  await link(bob.page, dm).filter({ hasText: alice.name }).filter({ hasText: "direct" }).waitFor();
  await badge(bob.page, dm).filter({ hasText: "1" }).waitFor();
  await link(bob.page, dm).click();
  await bob.page.locator("#room-title", { hasText: alice.name }).waitFor();
  await expectOnce(assert, bob.page, "hi bob, just between us");
  await badge(bob.page, dm).waitFor({ state: "detached" });
  await say(bob.page, "hi alice");
  await expectOnce(assert, alice.page, "hi alice");
  assert.equal(await bob.page.locator("#members-panel").isVisible(), false, "a direct room's people never change");

  // Members: Alice makes a private room and adds Bob by username; Bob sees it and writes in it.
  const club = uniq("club-");
  await createRoom(alice.page, club, { name: "Club", isPrivate: true });
  await alice.page.locator("#members-panel summary").click();
  await alice.page.locator("#member-list .member", { hasText: "owner (you)" }).waitFor();
  await alice.page.getByLabel("Add a member (username or user id)").fill(bob.name);
  await alice.page.getByRole("button", { name: "Add member" }).click();
  await alice.page.locator(`#member-list .member[data-user="${bob.id}"]`, { hasText: "member" }).waitFor();
  await link(bob.page, club).filter({ hasText: "private" }).waitFor();
  await link(bob.page, club).click();
  await waitJoined(bob.page);
  await bob.page.locator("#members-panel summary").click();
  await bob.page.locator(`#member-list .member[data-user="${alice.id}"]`, { hasText: "owner" }).waitFor();
  assert.equal(await bob.page.locator("#member-form").isVisible(), false, "members do not add");
  assert.equal(await bob.page.locator(".remove-member").count(), 0, "members do not remove");
  await say(bob.page, "thanks for the invite");
  await expectOnce(assert, alice.page, "thanks for the invite");

  // Alice removes Bob: his page leaves the room at once and says why; he cannot rejoin.
  alice.page.once("dialog", (d) => d.accept());
  await alice.page.getByRole("button", { name: `Remove ${bob.name}` }).click();
  await alice.page.locator(`#member-list .member[data-user="${bob.id}"]`).waitFor({ state: "detached" });
  await bob.page.locator("#notice", { hasText: "You were removed from Club" }).waitFor();
  await bob.page.locator("#room-title", { hasText: "No room open" }).waitFor();
  await link(bob.page, club).waitFor({ state: "detached" });
  // A join sent anyway (a stale tab would send it) is refused with the stable code.
  await bob.page.evaluate((room) => window.__hubbub.sockets.at(-1).send(JSON.stringify({ action: "joinRoom", room })), club);
  await bob.page.locator('#notice[data-code="forbidden"]').waitFor();
  await bob.page.getByRole("button", { name: "Refresh list" }).click();
  await bob.page.waitForTimeout(300);
  assert.equal(await link(bob.page, club).count(), 0, "the room is not listed to him any more");
  // Nothing Alice writes there reaches him.
  await say(alice.page, "after bob left");
  await expectOnce(assert, alice.page, "after bob left");

  // A new device of Bob's, signed in afterwards, reads the same state from the server alone.
  const bob2 = await signIn(await newUser(browser, t), bob.name);
  const ids = [lobby, side, dm, club];
  await link(bob2.page, dm).waitFor();
  assert.deepEqual(await listed(bob2.page, ids), await listed(bob.page, ids));
  assert.deepEqual(
    await listed(bob2.page, ids),
    [
      [dm, alice.name, ""],
      [lobby, lobby, ""],
      [side, side, ""],
    ].sort(),
  );
  await link(bob2.page, dm).click();
  await expectOnce(assert, bob2.page, "hi alice");
  await link(bob.page, dm).click();
  await expectOnce(assert, bob.page, "hi alice");
  assert.deepEqual(await shown(bob2.page), await shown(bob.page));
  assert.deepEqual(
    (await shown(bob2.page)).map(([, who, body]) => [who, body]),
    [
      [alice.name, "hi bob, just between us"],
      [bob.name, "hi alice"],
    ],
  );

  // Read state follows the person across devices, live: Bob's first page shows a new lobby
  // message unread until his new device reads it.
  await link(alice.page, lobby).click();
  await waitJoined(alice.page);
  await say(alice.page, "second call");
  await badge(bob.page, lobby).filter({ hasText: "1" }).waitFor();
  await openRoom(bob2.page, lobby);
  await expectOnce(assert, bob2.page, "second call");
  await badge(bob.page, lobby).waitFor({ state: "detached" });

  assertNoConsoleErrors(assert, alice, bob, bob2);
});
