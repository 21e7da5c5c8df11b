// The room WebSocket: sends protocol v1 messages, delivers the edge's, keeps the link alive with
// pings, and after a drop comes back as the same participant (`resume`) with backoff.
import { Emitter } from './events.js';

export const PROTOCOL_VERSION = 1;

/** How often the page pings: the edge drops a socket it has not heard from for 15 s. */
const PING_EVERY_MS = 5000;
/** Nothing from the edge this long (pongs included): the link is dead, open a new socket. */
const DEAD_AFTER_MS = 12000;
/**
 * A new socket that has not opened after this long is given up and another one tried: a
 * connection attempt made while the network was down waits out TCP's SYN backoff (seconds to
 * minutes) even once the network is back.
 */
const OPEN_TIMEOUT_MS = 3000;
/** Exactly this text: the Worker's runtime answers it without waking the room. */
const PING = '{"v":1,"type":"ping"}';

/**
 * @typedef {import('./protocol.js').ClientMessage} ClientMessage
 * @typedef {import('./protocol.js').ServerMessage} ServerMessage
 * @typedef {import('./protocol.js').Join} Join
 * @typedef {object} SignalingEvents
 * @property {ServerMessage} message a message from the edge (of this protocol version)
 * @property {{code: number, reason: string, final: boolean}} closed the socket closed; `final`:
 *   on purpose, or by the edge for good (kicked, policy): no reconnect follows
 * @property {{delay: number, attempt: number}} reconnecting the socket dropped; a new one opens
 *   in `delay` ms
 * @property {{inWindow: boolean}} resume-failed the edge does not know this participant any more:
 *   `inWindow` means it should have (the meeting is gone: the edge restarted, or we were removed);
 *   otherwise we were away longer than the resume window
 */

/** @extends {Emitter<SignalingEvents>} */
export class Signaling extends Emitter {
  /** @param {string} path e.g. "/api/rooms/my-room" or "/api/rooms/tenant/my-room" */
  constructor(path) {
    super();
    this.path = path;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.closedOnPurpose = false;
    this.attempt = 0;
    /** @type {Join} the join message */
    this.joinMessage = { profile: {} };
    /**
     * How to come back as this participant: from the last `welcome`, in this object only (never
     * stored, logged or put in a URL).
     * @type {{id: string, secret: string, windowMs: number} | null}
     */
    this.resumeWith = null;
    /** When a frame last came from the edge (ms, Date.now()). */
    this.lastHeard = 0;
    /** When the edge was last heard before the current outage (0: connected). */
    this.lostAt = 0;
    this.pinger = 0;
    this.retryTimer = 0;
  }

  /** Open the socket and send `join` (a fresh participant). @param {Join} join */
  connect(join) {
    this.joinMessage = join;
    this.resumeWith = null;
    this.lostAt = 0;
    this.closedOnPurpose = false;
    this.open();
  }

  open() {
    clearTimeout(this.retryTimer);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${this.path}`);
    this.ws = ws;
    ws.onopen = () => {
      this.lastHeard = Date.now();
      const r = this.resumeWith;
      if (r) this.send({ type: 'resume', id: r.id, secret: r.secret });
      else this.send({ type: 'join', ...this.joinMessage });
      clearInterval(this.pinger);
      this.pinger = window.setInterval(() => this.keepAlive(ws), PING_EVERY_MS);
    };
    ws.onmessage = (ev) => {
      this.lastHeard = Date.now();
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg?.v !== PROTOCOL_VERSION) return;
      if (msg.type === 'welcome') {
        this.attempt = 0;
        this.lostAt = 0;
        this.resumeWith = msg.resume ? { id: msg.you, secret: msg.resume.secret, windowMs: msg.resume.window_ms } : null;
      }
      if (msg.type === 'error' && msg.code === 'resume_failed') {
        const r = this.resumeWith;
        this.resumeWith = null;
        const inWindow = !!r && Date.now() - this.lostAt < r.windowMs - 1000;
        this.emit('resume-failed', { inWindow });
        return;
      }
      this.emit('message', /** @type {ServerMessage} */ (msg));
    };
    ws.onclose = (ev) => this.dropped(ws, ev.code, ev.reason);
    setTimeout(() => {
      if (this.ws !== ws || ws.readyState !== WebSocket.CONNECTING) return;
      ws.onclose = null;
      ws.close();
      this.dropped(ws, 1006, 'no connection');
    }, OPEN_TIMEOUT_MS);
  }

  /** Ping, or give up on a socket the edge has not answered for too long. @param {WebSocket} ws */
  keepAlive(ws) {
    if (this.ws !== ws) return;
    if (Date.now() - this.lastHeard > DEAD_AFTER_MS) {
      // The network went away without a word (TCP would wait minutes): a new socket.
      ws.onclose = null;
      try { ws.close(4000, 'no answer'); } catch { /* already closing */ }
      this.dropped(ws, 1006, 'no answer');
      return;
    }
    if (ws.readyState === WebSocket.OPEN) ws.send(PING);
  }

  /** @param {WebSocket} ws @param {number} code @param {string} reason */
  dropped(ws, code, reason) {
    if (this.ws !== ws) return;
    this.ws = null;
    clearInterval(this.pinger);
    // 4003: this participant resumed on another socket (a newer one of this page, or another
    // page that holds the secret: then this one stops). 4004: the meeting was ended for everyone
    // (or while we knocked); 4005: refused at the lobby.
    const final = this.closedOnPurpose || [1000, 1008, 4001, 4003, 4004, 4005].includes(code);
    this.emit('closed', { code, reason, final });
    if (final) return;
    if (!this.lostAt) this.lostAt = this.lastHeard || Date.now();
    this.reconnectLater();
  }

  reconnectLater() {
    const delay = Math.min(2000, 250 * 2 ** this.attempt++);
    this.emit('reconnecting', { delay, attempt: this.attempt });
    clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => { if (!this.closedOnPurpose) this.open(); }, delay);
  }

  /** Stop trying: the page shows why. */
  stop() {
    this.closedOnPurpose = true;
    clearTimeout(this.retryTimer);
    clearInterval(this.pinger);
    this.ws?.close(1000);
  }

  /** @param {ClientMessage} msg */
  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...msg }));
    }
  }

  leave() {
    this.closedOnPurpose = true;
    clearInterval(this.pinger);
    this.resumeWith = null;
    this.send({ type: 'leave' });
    setTimeout(() => this.ws?.close(1000), 200);
  }
}
