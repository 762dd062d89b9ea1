// Browser end-to-end test of replies, edits, reactions and deletes between two users, against
// hubbub-local (scripts/test-web starts it). Run: node --test (from web/e2e).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";

import { assertNoConsoleErrors, createRoom, expectOnce, launch, message, newUser, openRoom, say, signUp, uniq } from "./harness.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("two users reply, edit, react and delete, and each sees the other's changes", async (t) => {
  const alice = await signUp(await newUser(browser, t), uniq("alice"));
  const bob = await signUp(await newUser(browser, t), uniq("bob"));
  const room = uniq("talk-");
  await createRoom(alice.page, room);
  await openRoom(bob.page, room);
  await alice.page.locator("#presence", { hasText: bob.name }).waitFor();

  await say(alice.page, "lunch at noon?");
  await expectOnce(assert, bob.page, "lunch at noon?");

  // Bob replies: the quote shows on both sides.
  await message(bob.page, "lunch at noon?").getByRole("button", { name: "Reply", exact: true }).click();
  await bob.page.locator("#replying", { hasText: "lunch at noon?" }).waitFor();
  await say(bob.page, "yes, see you there");
  for (const u of [alice, bob]) {
    await expectOnce(assert, u.page, "yes, see you there");
    await message(u.page, "yes, see you there").locator(".quote", { hasText: "lunch at noon?" }).waitFor();
  }

  // Alice edits hers; Bob sees the new text, marked edited, and the quote follows.
  alice.page.once("dialog", (d) => d.accept("lunch at one?"));
  await message(alice.page, "lunch at noon?").getByRole("button", { name: "Edit", exact: true }).click();
  for (const u of [alice, bob]) {
    const m = message(u.page, "lunch at one?");
    await m.locator(".edited").waitFor();
    await message(u.page, "yes, see you there").locator(".quote", { hasText: "lunch at one?" }).waitFor();
  }
  assert.equal(await message(bob.page, "lunch at noon?").count(), 0, "the old text is gone");
  // Bob may not edit or delete Alice's message: the page offers neither.
  assert.equal(await message(bob.page, "lunch at one?").getByRole("button", { name: "Edit", exact: true }).count(), 0);

  // Bob reacts; Alice sees the count, then adds hers.
  await message(bob.page, "lunch at one?").getByRole("button", { name: "React 👍" }).click();
  await message(alice.page, "lunch at one?").locator(".reaction", { hasText: "👍 1" }).waitFor();
  await message(alice.page, "lunch at one?").locator(".reaction", { hasText: "👍 1" }).click();
  for (const u of [alice, bob]) await message(u.page, "lunch at one?").locator(".reaction", { hasText: "👍 2" }).waitFor();

  // Alice deletes hers: a tombstone on both sides, and the reply's quote says so.
  alice.page.once("dialog", (d) => d.accept());
  await message(alice.page, "lunch at one?").getByRole("button", { name: "Delete", exact: true }).click();
  for (const u of [alice, bob]) {
    await u.page.locator("#messages .body.deleted", { hasText: "This message was deleted." }).waitFor();
    await message(u.page, "yes, see you there").locator(".quote", { hasText: "(message deleted)" }).waitFor();
    assert.equal(await message(u.page, "lunch at one?").count(), 0);
  }

  // A reload reads the same room from history.
  await bob.page.reload();
  await bob.page.locator("#messages .body.deleted").waitFor();
  await message(bob.page, "yes, see you there").locator(".quote", { hasText: "(message deleted)" }).waitFor();

  assertNoConsoleErrors(assert, alice, bob);
});
