// The room WebSocket: sends protocol v1 messages, delivers the edge's, reconnects after a drop.
import { Emitter } from './events.js';

export const PROTOCOL_VERSION = 1;

/**
 * @typedef {import('./protocol.js').ClientMessage} ClientMessage
 * @typedef {import('./protocol.js').ServerMessage} ServerMessage
 * @typedef {import('./protocol.js').Join} Join
 * @typedef {object} SignalingEvents
 * @property {ServerMessage} message a message from the edge (of this protocol version)
 * @property {{code: number, reason: string, final: boolean}} closed the socket closed; `final`:
 *   on purpose, or by the edge for good (kicked, policy): no reconnect follows
 * @property {{delay: number}} reconnecting the socket dropped; a new one opens in `delay` ms
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
    /** @type {Join} the join message, re-sent after a reconnect */
    this.joinMessage = { profile: {} };
  }

  /** Open the socket and send `join`. @param {Join} join */
  connect(join) {
    this.joinMessage = join;
    this.closedOnPurpose = false;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${this.path}`);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this.send({ type: 'join', ...this.joinMessage });
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg?.v !== PROTOCOL_VERSION) return;
      this.emit('message', /** @type {ServerMessage} */ (msg));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      // 4002: the meeting was ended for everyone (or while we knocked); 4003: refused at the lobby.
      const final = this.closedOnPurpose || [1000, 1008, 4001, 4002, 4003].includes(ev.code);
      this.emit('closed', { code: ev.code, reason: ev.reason, final });
      if (!final) this.reconnectLater();
    };
  }

  reconnectLater() {
    const delay = Math.min(10000, 500 * 2 ** this.attempt++);
    this.emit('reconnecting', { delay });
    setTimeout(() => { if (!this.closedOnPurpose) this.connect(this.joinMessage); }, delay);
  }

  /** @param {ClientMessage} msg */
  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ v: PROTOCOL_VERSION, ...msg }));
    }
  }

  leave() {
    this.closedOnPurpose = true;
    this.send({ type: 'leave' });
    setTimeout(() => this.ws?.close(1000), 200);
  }
}
