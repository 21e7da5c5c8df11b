// Test helpers shared by the Worker's own tests and its benchmark: a WebSocket client of the room
// protocol (Node 20: run with --experimental-websocket) and the test probes of the dev build.

export const BASE = (process.env.EDGEMEET_URL || "http://127.0.0.1:8787").replace(/\/$/, "");
export const WS_BASE = BASE.replace(/^http/, "ws");

export function uniqueRoom(prefix) {
  return `${prefix}-${Math.random().toString(16).slice(2, 14)}`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` every 50 ms until it returns something truthy (that), or throws after `timeoutMs`. */
export async function waitFor(pred, timeoutMs = 4000) {
  const start = Date.now();
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() - start > timeoutMs) throw new Error("condition not reached");
    await sleep(50);
  }
}

const open = new Set();

/** Close every client still open (a socket left open keeps the test process alive). */
export function closeAll() {
  for (const c of open) c.close();
}

export class Client {
  constructor(ws) {
    open.add(this);
    this.ws = ws;
    this.queue = [];
    this.waiters = [];
    this.closed = null;
    this.id = null;
    ws.onmessage = (e) => this.push(typeof e.data === "string" ? JSON.parse(e.data) : { type: "_binary" });
    ws.onclose = (e) => {
      this.closed = { code: e.code, reason: e.reason };
      this.push({ type: "_closed", code: e.code, reason: e.reason });
    };
  }

  static open(path) {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${WS_BASE}${path}`);
      const c = new Client(ws);
      ws.onopen = () => resolve(c);
      ws.onerror = (e) => reject(new Error(`socket ${path}: ${e.message || "error"}`));
    });
  }

  static async join(room, profile = {}, extra = {}) {
    const c = await Client.open(`/api/rooms/${room}`);
    c.send({ type: "join", profile, ...extra });
    const welcome = await c.next("welcome");
    c.id = welcome.you;
    c.welcome = welcome;
    return c;
  }

  push(msg) {
    const i = this.waiters.findIndex((w) => w.pred(msg));
    if (i >= 0) {
      const [w] = this.waiters.splice(i, 1);
      clearTimeout(w.timer);
      w.resolve(msg);
    } else {
      this.queue.push(msg);
    }
  }

  send(obj) {
    this.ws.send(JSON.stringify({ v: 1, ...obj }));
  }

  sendRaw(data) {
    this.ws.send(data);
  }

  /** The next message matching `type` (a string) or a predicate; earlier non-matching ones stay queued. */
  next(type, timeoutMs = 5000) {
    const pred = typeof type === "function" ? type : (m) => m.type === type;
    const i = this.queue.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.queue.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const w = { pred, resolve };
      w.timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(w), 1);
        reject(new Error(`timed out waiting for ${typeof type === "string" ? type : "a message"}; queued: ${JSON.stringify(this.queue)}`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** Nothing arrives for `ms` (returns what did arrive otherwise). */
  async silence(ms) {
    await sleep(ms);
    return this.queue.splice(0);
  }

  close() {
    open.delete(this);
    try {
      this.ws.close(1000, "bye");
    } catch {}
  }
}

export async function probe(path, body) {
  const res = await fetch(`${BASE}/__test/${path}`, {
    method: body ? "POST" : "GET",
    headers: { "content-type": "application/json" },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`probe ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

export const roomState = (room) => probe(`room/-/${room}/state`, {});

export function percentile(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}
