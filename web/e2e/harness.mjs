// Shared pieces of the browser tests: one headless Chromium, one isolated context per user,
// console-error capture, and test-side WebSocket instrumentation.
//
// The instrumentation is injected by the test with `addInitScript` before the page's own
// scripts run; the product has no test hooks. It wraps `window.WebSocket` so a test can:
//   - see every socket the page opened, with its URL and subprotocols (`__hubbub.opened`);
//   - make the server drop the connection: a frame over API Gateway's 32 KB limit makes
//     hubbub-local close the socket with 1009, exactly as API Gateway does (`dropConnection`);
//   - keep the page offline for a while (`__hubbub.block`): new sockets then fail at once,
//     as when the network is down, without a request (so Chromium logs no error for them);
//   - lose or rewrite frames in transit (`__hubbub.filter`): lost acks, error frames, seq gaps;
//   - see the actions the page sent (`__hubbub.sent`).

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const BASE_URL = process.env.HUBBUB_WEB_URL || "http://127.0.0.1:3001";
export const ARTIFACTS = process.env.HUBBUB_ARTIFACTS || join(process.cwd(), "test-artifacts");

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export async function launch() {
  // Playwright gives each launch a fresh temporary profile (it refuses --user-data-dir in
  // `args`); the explicit TMPDIR keeps that profile, and Chromium's other scratch files, in
  // a directory of our own that is removed afterwards.
  const scratch = mkdtempSync(join(tmpdir(), "hubbub-chromium-"));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, TMPDIR: scratch },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  const close = browser.close.bind(browser);
  browser.close = async () => {
    await close();
    rmSync(scratch, { recursive: true, force: true });
  };
  return browser;
}

function instrument() {
  const Native = window.WebSocket;
  // `filter`, when set, sees each incoming text frame: it returns the frame, another frame
  // (a string) to deliver instead, or null to lose it.
  const state = { opened: [], sockets: [], sent: [], closeCodes: [], block: false, filter: null };
  window.__hubbub = state;
  function Hooked(url, protocols) {
    state.opened.push({ url: String(url), protocols: [].concat(protocols || []) });
    if (state.block) {
      const fake = new EventTarget();
      fake.readyState = 3;
      fake.send = () => {};
      fake.close = () => {};
      setTimeout(() => {
        fake.dispatchEvent(new Event("error"));
        fake.dispatchEvent(new CloseEvent("close", { code: 1006 }));
      }, 20);
      return fake;
    }
    const s = new Native(url, protocols);
    state.sockets.push(s);
    s.addEventListener("close", (e) => state.closeCodes.push(e.code));
    const send = s.send.bind(s);
    s.send = (data) => {
      let action = "(not JSON)";
      try {
        action = JSON.parse(data).action;
      } catch {
        /* the oversized frame of dropConnection */
      }
      state.sent.push(action);
      return send(data);
    };
    const add = s.addEventListener.bind(s);
    s.addEventListener = (type, fn, opts) => {
      if (type !== "message") return add(type, fn, opts);
      return add(
        type,
        (ev) => {
          const out = state.filter && typeof ev.data === "string" ? state.filter(ev.data) : ev.data;
          if (out === null) return;
          fn(out === ev.data ? ev : new MessageEvent("message", { data: out }));
        },
        opts,
      );
    };
    return s;
  }
  Hooked.prototype = Native.prototype;
  Object.assign(Hooked, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
  window.WebSocket = Hooked;
}

// A user: an isolated browser context (its own storage) with one page.
export async function newUser(browser, t, { clock = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 } });
  const page = await context.newPage();
  const errors = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`pageerror: ${err.message}`));
  await page.addInitScript(instrument);
  if (clock) await page.clock.install();
  const user = { context, page, errors, allowed: [] };
  // Every test ends by failing on any console error that it did not expect by name.
  t.after(async () => {
    await context.close();
  });
  return user;
}

export function assertNoConsoleErrors(assert, ...users) {
  for (const u of users) {
    const unexpected = u.errors.filter((e) => !u.allowed.some((re) => re.test(e)));
    assert.deepEqual(unexpected, [], "console errors");
  }
}

let counter = 0;
export function uniq(prefix) {
  counter += 1;
  return `${prefix}${Date.now().toString(36)}${counter}`;
}

export async function signUp(user, name) {
  const { page } = user;
  await page.goto(BASE_URL + "/");
  await page.getByLabel("Username", { exact: true }).fill(name);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Create account" }).click();
  await page.locator("#whoami").waitFor({ state: "visible" });
  await waitOnline(page);
  user.name = name;
  user.id = await page.locator("#me-id").textContent();
  return user;
}

// Signs in to an existing account (another device of the same person: its own context).
export async function signIn(user, name) {
  const { page } = user;
  await page.goto(BASE_URL + "/");
  await page.getByLabel("Username", { exact: true }).fill(name);
  await page.getByLabel("Password").fill("correct horse battery");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#whoami").waitFor({ state: "visible" });
  await waitOnline(page);
  user.name = name;
  user.id = await page.locator("#me-id").textContent();
  return user;
}

export async function waitOnline(page) {
  await page.locator('#conn-status[data-state="online"]').waitFor();
}

export async function createRoom(page, id, { name = id, isPrivate = false } = {}) {
  const details = page.locator("#create-room");
  if (!(await details.evaluate((d) => d.open))) await page.getByText("Create a room").click();
  await page.getByLabel("Room id").fill(id);
  await page.getByLabel("Name", { exact: true }).fill(name);
  if (isPrivate) await page.getByLabel(/^Private/).check();
  await page.getByRole("button", { name: "Create room" }).click();
  await waitJoined(page);
}

export async function openRoom(page, id) {
  await page.getByRole("button", { name: "Refresh list" }).click();
  await page.locator(`.room-link[data-room="${id}"]`).click();
  await waitJoined(page);
}

export async function waitJoined(page) {
  await page.getByRole("button", { name: "Leave room" }).waitFor();
}

export async function say(page, text) {
  const box = page.getByLabel("Message", { exact: true });
  await box.fill(text);
  await box.press("Enter");
}

export function message(page, text) {
  return page.locator("#messages li.msg", { has: page.locator(".body", { hasText: text }) });
}

// Waits until `text` shows as a confirmed message, then checks it is there exactly once.
export async function expectOnce(assert, page, text) {
  await page.locator("#messages li.msg[data-state=sent] .body", { hasText: text }).first().waitFor();
  await page.waitForTimeout(150);
  assert.equal(await message(page, text).count(), 1, `"${text}" shown once`);
}

export async function seqsInOrder(page) {
  return page.locator("#messages li.msg[data-seq]").evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
}

// The server drops the connection: a frame over 32 KB, which API Gateway (and hubbub-local)
// answer by closing with 1009.
export async function dropConnection(page, { block = false } = {}) {
  const closed = await page.evaluate((block) => {
    const h = window.__hubbub;
    h.block = block;
    h.sockets.at(-1).send("x".repeat(40 * 1024));
    return h.closeCodes.length;
  }, block);
  await page.waitForFunction((n) => window.__hubbub.closeCodes.length > n, closed);
}
