// The room WebSocket: sends protocol v1 messages, delivers the edge's, reconnects after a drop.
export const PROTOCOL_VERSION = 1;

export class Signaling extends EventTarget {
  /** @param {string} path e.g. "/api/rooms/my-room" or "/api/rooms/tenant/my-room" */
  constructor(path) {
    super();
    this.path = path;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.closedOnPurpose = false;
    this.attempt = 0;
    /** @type {object | null} the join message, re-sent after a reconnect */
    this.joinMessage = null;
  }

  /** Open the socket and send `join`. */
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
      if (msg.v !== PROTOCOL_VERSION) return;
      this.dispatchEvent(new CustomEvent('message', { detail: msg }));
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      const final = this.closedOnPurpose || ev.code === 1000 || ev.code === 4001 || ev.code === 1008;
      this.dispatchEvent(new CustomEvent('closed', { detail: { code: ev.code, reason: ev.reason, final } }));
      if (!final) this.reconnectLater();
    };
  }

  reconnectLater() {
    const delay = Math.min(10000, 500 * 2 ** this.attempt++);
    this.dispatchEvent(new CustomEvent('reconnecting', { detail: { delay } }));
    setTimeout(() => { if (!this.closedOnPurpose) this.connect(this.joinMessage); }, delay);
  }

  /** @param {object} msg */
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
