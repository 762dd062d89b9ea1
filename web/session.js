// The signed-in session: the user, the access token and the refresh token, kept in
// `sessionStorage` (it survives a reload of the tab, not the closing of it, and is not shared
// between tabs: two tabs refreshing one token would trip the server's reuse detection). Refreshes
// the access token ahead of its expiry and on demand; a refused refresh ends the session. No DOM
// access: storage, clock and timers are passed in.

export const SESSION_KEY = "hubbub.session";
// A token with less than this left is refreshed before use, and the scheduled refresh comes at
// least this early: a request or handshake started now must not carry an expired token.
const EARLY_MS = 15_000;
// A refresh that failed for another reason than a refusal (network, 5xx) is tried again after
// this long, while the access token still lives.
const RETRY_MS = 10_000;

export class Session {
  // `refreshCall(refreshToken)` resolves to the server's session body; `onEnded(text)` is told
  // when the server refuses the refresh token; `onRefreshed()` when a refresh brought a new
  // access token (the WebSocket then reconnects with it before the old one expires).
  constructor({
    storage,
    refreshCall,
    onEnded = () => {},
    onRefreshed = () => {},
    now = Date.now,
    timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (id) => clearTimeout(id) },
  }) {
    this.user = null; // {id, name}
    this.accessToken = null;
    this.accessExp = 0; // ms epoch
    this.refreshToken = null;
    this.storage = storage;
    this.refreshCall = refreshCall;
    this.onEnded = onEnded;
    this.onRefreshed = onRefreshed;
    this.now = now;
    this.timers = timers;
    this.refreshTimer = 0;
    this.refreshing = null;
  }

  load() {
    try {
      const s = JSON.parse(this.storage.getItem(SESSION_KEY) || "null");
      if (s && s.refreshToken && s.user) {
        this.user = s.user;
        this.accessToken = s.accessToken;
        this.accessExp = s.accessExp;
        this.refreshToken = s.refreshToken;
      }
    } catch {
      /* a damaged entry is ignored */
    }
    return Boolean(this.refreshToken);
  }

  save() {
    const { user, accessToken, accessExp, refreshToken } = this;
    this.storage.setItem(SESSION_KEY, JSON.stringify({ user, accessToken, accessExp, refreshToken }));
  }

  clear() {
    this.timers.clear(this.refreshTimer);
    this.user = this.accessToken = this.refreshToken = null;
    this.accessExp = 0;
    this.storage.removeItem(SESSION_KEY);
  }

  // Takes the answer of register, login or refresh.
  adopt(body) {
    this.user = body.user;
    this.accessToken = body.accessToken;
    this.refreshToken = body.refreshToken;
    this.accessExp = this.now() + body.expiresIn * 1000;
    this.save();
    this.schedule();
  }

  // Refreshes at 80% of the lifetime (at least EARLY_MS early), so a slow network still beats
  // the expiry.
  schedule() {
    this.timers.clear(this.refreshTimer);
    if (!this.refreshToken) return;
    const lifetime = Math.max(this.accessExp - this.now(), 0);
    const wait = Math.max(lifetime - Math.max(lifetime * 0.2, EARLY_MS), 0);
    this.refreshTimer = this.timers.set(() => this.refresh().catch(() => {}), wait);
  }

  fresh() {
    return Boolean(this.accessToken) && this.accessExp - this.now() > EARLY_MS;
  }

  // A current access token; with `refresh`, one newly issued (whatever the old one's expiry).
  async token({ refresh = false } = {}) {
    if (refresh || !this.fresh()) await this.refresh();
    return this.accessToken;
  }

  // One refresh at a time: concurrent callers share it (the refresh token is single-use).
  refresh() {
    if (!this.refreshing) {
      this.refreshing = (async () => {
        try {
          this.adopt(await this.refreshCall(this.refreshToken));
        } catch (e) {
          if (e.code === "unauthorized") {
            this.onEnded("Your session has ended. Please sign in again.");
          } else {
            this.timers.clear(this.refreshTimer);
            this.refreshTimer = this.timers.set(() => this.refresh().catch(() => {}), RETRY_MS);
          }
          throw e;
        } finally {
          this.refreshing = null;
        }
        this.onRefreshed();
      })();
    }
    return this.refreshing;
  }
}
