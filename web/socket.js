// The WebSocket: one connection that offers `hubbub.v1` and `bearer.<access JWT>` as
// subprotocols (the token never goes into the URL), parses incoming JSON frames, pings while
// idle, reconnects after a drop with exponential backoff and jitter, and moves to a new connection
// when the session renews its access token (the server closes connections whose token expired). What the frames mean
// is the room state's business; this module only moves them. No DOM access.

export const PROTOCOL = "hubbub.v1";
// The server closes connections idle for 10 minutes: a ping well inside that keeps it open.
export const PING_EVERY_MS = 5 * 60_000;
// Reconnect delays: 0.5 s doubling up to 30 s (see backoffDelay).
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_MAX_MS = 30_000;
// After a renewal, the old connection stays open this long beside the new one: acks of sends in
// flight and messages posted before the new one rejoined still arrive on it (the room state
// drops a seq it already has), and the catch-up by seq on the new one covers the rest. The old
// token outlives this by far (the session renews well before expiry).
export const RENEW_OVERLAP_MS = 5_000;

const OPEN = 1;
const CONNECTING = 0;

// The delay before reconnect attempt `attempt` (0-based): 0.5 s, 1 s, 2 s, ... capped at 30 s,
// each randomised to 50-100% so that clients dropped together do not come back together.
export function backoffDelay(attempt, random = Math.random) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(base / 2 + (random() * base) / 2);
}

export class Socket {
  // `token({ refresh })` resolves to a current access token, one newly issued by the HTTP API
  // when `refresh` is true (and rejects with `code` "unauthorized" when the session is over). `onOpen()`, `onFrame(frame)` and `onClose()` follow the connection;
  // `onStatus(state, text)` describes it for people.
  constructor({
    url,
    token,
    onOpen = () => {},
    onFrame = () => {},
    onClose = () => {},
    onStatus = () => {},
    WebSocket: Impl = null,
    timers = {
      set: (fn, ms) => setTimeout(fn, ms),
      clear: (id) => clearTimeout(id),
      every: (fn, ms) => setInterval(fn, ms),
      stop: (id) => clearInterval(id),
    },
    random = Math.random,
  }) {
    Object.assign(this, { url, token, onOpen, onFrame, onClose, onStatus, Impl, timers, random });
    this.ws = null;
    this.isOpen = false;
    this.wanted = false;
    this.attempt = 0;
    // The last connection closed before it opened: see connect().
    this.refused = false;
    this.reconnectTimer = 0;
    this.pingTimer = 0;
    this.renewing = null; // the new connection of a renewal, until it opens
    this.retiring = null; // the old connection of a renewal, during the overlap
    this.retireTimer = 0;
  }

  // Connects, and keeps reconnecting until stop().
  start() {
    this.wanted = true;
    this.connect();
  }

  // The browser says the network is back: try at once instead of waiting out the backoff.
  online() {
    if (this.wanted && !this.ws) {
      this.attempt = 0;
      this.connect();
    }
  }

  async connect() {
    if (!this.wanted || this.ws) return;
    this.timers.clear(this.reconnectTimer);
    this.onStatus("connecting", this.attempt ? "Reconnecting…" : "Connecting…");
    // A connection that closed before it opened was refused (a handshake answers 401 once a
    // logout on another device revoked the token) or never reached the server; the browser does
    // not say which. So the next attempt refreshes first: the HTTP API then says whether the
    // session still holds, and a refused refresh ends it instead of reconnecting for ever.
    let token;
    try {
      token = await this.token({ refresh: this.refused });
    } catch (e) {
      if (e.code !== "unauthorized") this.scheduleReconnect();
      return;
    }
    if (!this.wanted || this.ws) return;
    const sock = this.open(token);
    if (!sock) {
      this.onStatus("offline", "The WebSocket address is invalid");
      return;
    }
    this.ws = sock;
    sock.addEventListener("open", () => {
      if (this.ws === sock) this.opened();
    });
    this.watch(sock);
  }

  // A new WebSocket offering the token, or null when the address is unusable.
  open(token) {
    try {
      // Looked up now, not at load: whatever `WebSocket` the page has when connecting.
      const Impl = this.Impl || globalThis.WebSocket;
      return new Impl(this.url, [PROTOCOL, `bearer.${token}`]);
    } catch {
      return null;
    }
  }

  // `this.ws` has just opened.
  opened() {
    this.isOpen = true;
    this.refused = false;
    this.attempt = 0;
    this.onStatus("online", "Connected");
    this.timers.stop(this.pingTimer);
    this.pingTimer = this.timers.every(() => this.send({ action: "ping" }), PING_EVERY_MS);
    this.onOpen();
  }

  // Passes on the frames of `sock` while it is the connection (or the old one of a renewal),
  // and reconnects when the connection drops.
  watch(sock) {
    sock.addEventListener("message", (ev) => {
      if (this.ws !== sock && this.retiring !== sock) return;
      let frame;
      try {
        frame = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.onFrame(frame);
    });
    sock.addEventListener("close", () => {
      if (this.ws !== sock) return;
      this.ws = null;
      this.refused = !this.isOpen;
      this.isOpen = false;
      this.timers.stop(this.pingTimer);
      this.onClose();
      if (this.wanted) this.scheduleReconnect();
    });
  }

  // The session has a fresh access token: the server closes a connection whose token has
  // expired, so move to a new connection opened with the fresh one before that happens. The new
  // connection opens beside the old; once it is open it becomes the connection (onOpen() rejoins
  // the rooms and catches up by seq), and the old one closes after RENEW_OVERLAP_MS.
  async renew() {
    if (!this.wanted || !this.isOpen || this.renewing) return;
    this.renewing = true; // claimed before the await: one renewal at a time
    let token;
    try {
      token = await this.token();
    } catch {
      this.renewing = null;
      return;
    }
    const sock = this.wanted && this.isOpen ? this.open(token) : null;
    this.renewing = sock;
    if (!sock) return;
    sock.addEventListener("open", () => {
      if (this.renewing !== sock) return;
      this.renewing = null;
      const old = this.ws;
      if (!this.wanted || !old) {
        sock.close(1000, "bye");
        return;
      }
      this.retire(old);
      this.ws = sock;
      this.opened();
    });
    sock.addEventListener("close", () => {
      // A renewal that did not open leaves the current connection as it was.
      if (this.renewing === sock) this.renewing = null;
    });
    this.watch(sock);
  }

  // Closes the old connection of a renewal once the overlap is over.
  retire(old) {
    this.finishRetiring();
    this.retiring = old;
    this.retireTimer = this.timers.set(() => this.finishRetiring(), RENEW_OVERLAP_MS);
  }

  finishRetiring() {
    this.timers.clear(this.retireTimer);
    const old = this.retiring;
    this.retiring = null;
    if (old && old.readyState === OPEN) old.close(1000, "renewed");
  }

  scheduleReconnect() {
    this.timers.clear(this.reconnectTimer);
    const delay = backoffDelay(this.attempt, this.random);
    this.attempt += 1;
    this.onStatus("reconnecting", `Disconnected. Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    this.reconnectTimer = this.timers.set(() => this.connect(), delay);
  }

  // Closes the connection for good (until the next start()).
  stop() {
    this.wanted = false;
    this.timers.clear(this.reconnectTimer);
    this.timers.stop(this.pingTimer);
    this.finishRetiring();
    if (this.renewing && this.renewing !== true) {
      const next = this.renewing;
      if (next.readyState === CONNECTING) next.addEventListener("open", () => next.close(1000, "bye"));
      else if (next.readyState === OPEN) next.close(1000, "bye");
    }
    this.renewing = null;
    if (this.ws) {
      const sock = this.ws;
      this.ws = null;
      this.isOpen = false;
      // Closing a socket that is still connecting makes the browser log an error: wait for it.
      if (sock.readyState === CONNECTING) sock.addEventListener("open", () => sock.close(1000, "bye"));
      else if (sock.readyState === OPEN) sock.close(1000, "bye");
    }
  }

  // Sends `frame` as JSON when connected; false when it could not go.
  send(frame) {
    if (!this.ws || !this.isOpen || this.ws.readyState !== OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }
}
