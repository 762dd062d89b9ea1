// The HTTP API: accounts, rooms, members, direct rooms and scroll-back pages (docs/protocol.md, "HTTP API"). Every call is
// JSON over `fetch`; authenticated calls carry the session's access token and, on a 401, refresh
// it once and retry. Failures are thrown as `ApiError` with the protocol's error code. No DOM
// access.

import { ERROR_TEXT } from "./errors.js";

export class ApiError extends Error {
  constructor(code, message, status) {
    super(message || code);
    this.code = code;
    this.status = status;
  }
}

// The error code for an answer without a JSON error body (a proxy's page, say).
export function statusCode(status) {
  return (
    { 400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict",
      413: "payload_too_large", 429: "rate_limited", 503: "unavailable" }[status] || "internal"
  );
}

// `base`: the API's base URL without a trailing slash. `tokens`: `token()` resolves to a usable
// access token, `refresh()` gets a new one (both from the session).
export function createApi({ base, tokens, fetch: fetchImpl = (...args) => fetch(...args) }) {
  async function request(method, path, body, { auth = true, retried = false } = {}) {
    const headers = {};
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth) headers.authorization = `Bearer ${await tokens.token()}`;
    let resp;
    try {
      resp = await fetchImpl(base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch {
      throw new ApiError("network", ERROR_TEXT.network, 0);
    }
    if (resp.status === 204) return null;
    let data = null;
    try {
      data = await resp.json();
    } catch {
      data = null;
    }
    if (resp.ok) return data;
    const err = data && data.error ? data.error : { code: statusCode(resp.status), message: "" };
    if (err.code === "unauthorized" && auth && !retried) {
      // The access token may have expired in flight: refresh once and retry.
      await tokens.refresh();
      return request(method, path, body, { auth, retried: true });
    }
    throw new ApiError(err.code, err.message, resp.status);
  }

  const room = (id) => `/rooms/${encodeURIComponent(id)}`;
  // Every page of a paged list: `path` answers `{[key]: [...], next?}`; the next page starts
  // `after` the previous page's `next`.
  async function all(path, key) {
    const items = [];
    let after = null;
    for (;;) {
      const sep = path.includes("?") ? "&" : "?";
      const page = await request("GET", after === null ? path : `${path}${sep}after=${encodeURIComponent(after)}`);
      items.push(...(Array.isArray(page?.[key]) ? page[key] : []));
      // A page without `next` is the last; one that repeats its cursor would never end.
      if (typeof page?.next !== "string" || page.next === after) return items;
      after = page.next;
    }
  }
  return {
    request,
    // `mode` is "login" or "register"; both answer the session body.
    signIn: (mode, username, password) => request("POST", `/auth/${mode}`, { username, password }, { auth: false }),
    refresh: (refreshToken) => request("POST", "/auth/refresh", { refreshToken }, { auth: false }),
    logout: (refreshToken) => request("POST", "/auth/logout", { refreshToken }, { auth: false }),
    // Every room the user may use, with their role, read position and unread count.
    rooms: async () => ({ rooms: await all("/rooms", "rooms") }),
    createRoom: (id, name, isPrivate) => request("POST", "/rooms", { id, name, private: isPrivate }),
    // `who` is {username} or {userId}.
    addMember: (id, who) => request("POST", `${room(id)}/members`, who),
    members: (id) => all(`${room(id)}/members`, "members"),
    // `user`: a member's user id, or "me" to leave.
    removeMember: (id, user) => request("DELETE", `${room(id)}/members/${encodeURIComponent(user)}`),
    // The direct room with `username`: created on the first call, found on later ones.
    openDirect: (username) => request("POST", `/dm/${encodeURIComponent(username)}`),
    // The newest `limit` messages, or the `limit` before seq `before`.
    messages: (id, { before, limit }) =>
      request("GET", `${room(id)}/messages?${before === undefined ? "" : `before=${before}&`}limit=${limit}`),
  };
}
