// Automatic end-to-end encryption (docs/e2ee.md): no shared passphrase. Every page makes a key pair
// for this meeting, tells the others its public key through the edge, and sends its own media key to
// each other participant sealed for that participant alone (ECDH -> HKDF -> AES-GCM). The edge relays
// these blobs (`e2ee_key`) unread. On a join every sender ratchets its key forward (HKDF: the
// newcomer cannot go back); on a leave or kick every sender makes a new key and gives it only to those
// still present. A short authentication string per pair (emoji from both public keys) lets people rule
// out a key swapped on the way. WebCrypto only; the frame transforms get CryptoKeys, never bytes.

import { Emitter } from './events.js';

/**
 * @typedef {import('./protocol.js').ServerMessage} ServerMessage
 * @typedef {import('./protocol.js').ClientMessage} ClientMessage
 * @typedef {import('./e2ee.js').E2ee} E2ee
 * @typedef {Uint8Array<ArrayBuffer>} Bytes
 * @typedef {{material: Bytes, index: number, tag: Bytes}} MediaKey a sender key: raw bytes stay in page memory
 * @typedef {{pub: Bytes, wrap: CryptoKey, sas: string, keys: MediaKey[]}} Peer
 * @typedef {object} KeyEvents
 * @property {null} peers a peer's key, string or verification changed
 */

const enc = new TextEncoder();
const HELLO = 1; // blob: kind | curve | raw public key
const SEALED = 2; // blob: kind | IV (12) | AES-GCM(index (1) | key (32))
const ACK = 3; // blob: kind | key tag (4): "I can open frames under this key"
const CURVES = /** @type {const} */ ({ 1: 'X25519', 2: 'P-256' });
// A sender waits this long at most for everyone's ack before it switches to a new key after a leave.
const SWITCH_AFTER_MS = 1500;
// Keys a receiver keeps per sender: the newest few, so frames sealed just before a switch still open.
const KEEP_KEYS = 4;

// 64 emoji, 6 bits each: 7 of them carry 42 bits of the pair's string.
const EMOJI = [...'🐶🐱🦁🐎🦄🐷🐘🐰🐼🐓🐧🐢🐟🐙🦋🌷🌳🌵🍄🌏🌙☁️🔥🍌🍎🍓🌽🍕🎂❤️😀🤖🎩👓🔧🎅👍☂️⌛⏰🎁💡📕✏️📎✂️🔒🔑🔨☎️🏁🚂🚲✈️🚀🏆⚽🎸🎺🔔⚓🎧📁📌'.replace(/\uFE0F/g, '')];

/** @param {Bytes} b */
const b64 = (b) => btoa(String.fromCharCode(...b)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
/** @param {string} s @returns {Bytes} */
const unb64 = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
/** @param {...(Bytes | number[])} parts @returns {Bytes} */
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};
/** @param {Bytes} a @param {Bytes} b */
const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
/** @param {Bytes} a @param {Bytes} b  byte order, so both ends of a pair put the keys alike */
const before = (a, b) => { for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] < b[i]; return a.length < b.length; };

/** X25519 where the browser has it, else P-256 ECDH. */
async function makeKeyPair() {
  try {
    const pair = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey({ name: 'X25519' }, false, ['deriveBits']));
    return { curve: 1, pair };
  } catch {
    const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']);
    return { curve: 2, pair };
  }
}

/**
 * HKDF-SHA-256 over `secret`, bound to the meeting.
 * @param {Bytes} secret @param {string} meeting @param {string | Bytes} info @param {number} bits
 * @returns {Promise<Bytes>}
 */
async function hkdfBits(secret, meeting, info, bits) {
  const base = await crypto.subtle.importKey('raw', secret, 'HKDF', false, ['deriveBits']);
  const params = { name: 'HKDF', hash: 'SHA-256', salt: enc.encode(`edgemeet-e2ee-auto/${meeting}`), info: typeof info === 'string' ? enc.encode(info) : info };
  return new Uint8Array(await crypto.subtle.deriveBits(params, base, bits));
}

/** @param {Bytes} secret @param {string} meeting @param {string | Bytes} info @param {KeyUsage[]} usages */
async function hkdfAesKey(secret, meeting, info, usages) {
  const base = await crypto.subtle.importKey('raw', secret, 'HKDF', false, ['deriveKey']);
  const params = { name: 'HKDF', hash: 'SHA-256', salt: enc.encode(`edgemeet-e2ee-auto/${meeting}`), info: typeof info === 'string' ? enc.encode(info) : info };
  return crypto.subtle.deriveKey(params, base, { name: 'AES-GCM', length: 256 }, false, usages);
}

/** @extends {Emitter<KeyEvents>} */
export class SenderKeys extends Emitter {
  /**
   * @param {E2ee} e2ee the frame transforms' worker, which gets the CryptoKeys
   * @param {(msg: ClientMessage) => void} send
   */
  constructor(e2ee, send) {
    super();
    this.e2ee = e2ee;
    this.send = send;
    /** @type {string | null} */
    this.me = null;
    this.meeting = '';
    /** @type {Promise<{curve: number, pair: CryptoKeyPair, pub: Bytes}> | null} */
    this.identity = null;
    /** @type {MediaKey | null} what this page seals its frames with now */
    this.current = null;
    /** @type {{key: MediaKey, waiting: Set<string>, timer: number} | null} a new key after a leave, not yet in use */
    this.pending = null;
    /** @type {Map<string, Peer>} */
    this.peers = new Map();
    /** @type {Set<string>} the others in the meeting (with or without a key yet) */
    this.present = new Set();
    /** @type {Set<string>} peers the user compared the string with */
    this.verified = new Set();
    /** @type {Promise<void>} messages are handled one after the other: key state changes in order */
    this.queue = Promise.resolve();
  }

  /** Feed every message from the edge; the ones this module cares about change keys. @param {ServerMessage} msg */
  onMessage(msg) {
    this.queue = this.queue.then(() => this.handle(msg)).catch((e) => console.error('e2ee keys', e));
    return this.queue;
  }

  /** @param {ServerMessage} msg */
  async handle(msg) {
    switch (msg.type) {
      case 'welcome': return this.welcome(msg.you, msg.meeting_id, msg.participants.map((p) => p.id));
      case 'participant_joined': return this.joined(msg.participant.id);
      case 'participant_left': return this.left(msg.id);
      case 'e2ee_key': return this.blob(msg.from, msg.blob);
      default: return undefined;
    }
  }

  /** A fresh key pair and media key for this meeting; hello to everyone already here.
   * @param {string} me @param {string} meeting @param {string[]} ids */
  async welcome(me, meeting, ids) {
    if (this.meeting !== meeting) this.reset();
    this.me = me;
    this.meeting = meeting;
    const { curve, pair } = await (this.identity ??= makeKeyPair().then(async (x) => ({ ...x, pub: new Uint8Array(await crypto.subtle.exportKey('raw', x.pair.publicKey)) })));
    if (!this.current) await this.use(await this.fresh(0));
    for (const id of ids) if (id !== me) { this.present.add(id); this.hello(id, curve); }
  }

  reset() {
    for (const p of this.peers.values()) this.dropKeys(p.keys);
    if (this.pending) clearTimeout(this.pending.timer);
    this.identity = null;
    this.current = null;
    this.pending = null;
    this.peers.clear();
    this.present.clear();
    this.verified.clear();
  }

  /** Someone joined: ratchet forward (they get only the new key), and say hello. @param {string} id */
  async joined(id) {
    if (!this.current || id === this.me) return;
    this.present.add(id);
    // Everyone ratchets every key it holds by itself, in step with the senders; each next step is
    // already known to the worker, so no frame waits for it.
    await this.use(await this.ratchet(this.current));
    if (this.pending) this.pending.key = await this.ratchet(this.pending.key);
    for (const peer of this.peers.values()) {
      const newest = peer.keys[peer.keys.length - 1];
      if (newest) await this.receive(peer, await this.ratchet(newest));
    }
    const identity = await this.identity;
    if (identity) this.hello(id, identity.curve);
  }

  /** Someone left or was kicked: a new key, to those still present only. @param {string} id */
  async left(id) {
    this.present.delete(id);
    const peer = this.peers.get(id);
    this.peers.delete(id);
    this.verified.delete(id);
    if (peer) this.dropKeys(peer.keys);
    this.emit('peers', null);
    if (!this.current) return;
    if (this.pending) { clearTimeout(this.pending.timer); await this.use(this.pending.key); }
    const key = await this.fresh((this.current.index + 1) & 0xff);
    const waiting = new Set([...this.peers.keys()].filter((p) => this.present.has(p)));
    const pending = { key, waiting, timer: 0 };
    this.pending = pending;
    for (const [pid, p] of this.peers) if (waiting.has(pid)) await this.seal(pid, p, key);
    // Switch once everyone who has our key can open the new one (their acks), or after a while.
    pending.timer = setTimeout(() => this.switchTo(pending), waiting.size ? SWITCH_AFTER_MS : 0);
  }

  /** @param {{key: MediaKey, waiting: Set<string>, timer: number}} pending */
  switchTo(pending) {
    if (this.pending !== pending) return;
    clearTimeout(pending.timer);
    this.pending = null;
    this.queue = this.queue.then(() => this.use(pending.key));
  }

  /** @param {string} from @param {string} text */
  async blob(from, text) {
    let data;
    try { data = unb64(text); } catch { return; }
    if (data[0] === HELLO) return this.onHello(from, data);
    const peer = this.peers.get(from);
    if (!peer) return; // a sealed key before the hello: cannot be ours yet
    if (data[0] === SEALED && data.length > 13) {
      let plain;
      try {
        plain = new Uint8Array(await crypto.subtle.decrypt(
          { name: 'AES-GCM', iv: data.subarray(1, 13), additionalData: enc.encode(`${from}>${this.me}`) }, peer.wrap, data.subarray(13)));
      } catch { return; } // not sealed for us (or swapped on the way): ignore
      if (plain.length !== 33) return;
      const material = plain.slice(1);
      const key = { material, index: plain[0], tag: await hkdfBits(material, this.meeting, 'tag', 32) };
      await this.receive(peer, key);
      // Be ready for the sender's next join ratchet too.
      await this.receive(peer, await this.ratchet(key));
      this.post(from, concat([ACK], key.tag));
    } else if (data[0] === ACK && data.length === 5 && this.pending && same(data.subarray(1), this.pending.key.tag)) {
      this.pending.waiting.delete(from);
      if (this.pending.waiting.size === 0) this.switchTo(this.pending);
    }
  }

  /** @param {string} from @param {Bytes} data */
  async onHello(from, data) {
    const identity = await this.identity;
    if (!identity || !this.present.has(from) || from === this.me) return;
    if (data[1] !== identity.curve) { console.warn('e2ee: a participant uses another curve'); return; }
    const pub = data.slice(2);
    const known = this.peers.get(from);
    if (known && same(known.pub, pub)) return;
    if (known) { this.dropKeys(known.keys); this.verified.delete(from); } // a new key for the same id: trust starts over
    const algorithm = identity.curve === 1 ? { name: 'X25519' } : { name: 'ECDH', namedCurve: 'P-256' };
    const theirs = await crypto.subtle.importKey('raw', pub, algorithm, true, []);
    const shared = new Uint8Array(await crypto.subtle.deriveBits({ name: algorithm.name, public: theirs }, identity.pair.privateKey, 256));
    const [lo, hi] = before(identity.pub, pub) ? [identity.pub, pub] : [pub, identity.pub];
    const wrap = await hkdfAesKey(shared, this.meeting, concat(enc.encode('wrap'), lo, hi), ['encrypt', 'decrypt']);
    const sas = await sasOf(this.meeting, lo, hi);
    /** @type {Peer} */
    const peer = { pub, wrap, sas, keys: [] };
    this.peers.set(from, peer);
    this.emit('peers', null);
    if (this.current) await this.seal(from, peer, this.current);
    if (this.pending) { this.pending.waiting.add(from); await this.seal(from, peer, this.pending.key); }
    // Our hello may have gone out before they were ready for it: say it again (once) if they lacked it.
    if (!known) this.hello(from, identity.curve);
  }

  /** @param {string} to @param {number} curve */
  hello(to, curve) {
    this.identity?.then(({ pub }) => this.post(to, concat([HELLO, curve], pub)));
  }

  /** @param {string} to @param {Peer} peer @param {MediaKey} key */
  async seal(to, peer, key) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const sealed = new Uint8Array(await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: enc.encode(`${this.me}>${to}`) }, peer.wrap, concat([key.index], key.material)));
    this.post(to, concat([SEALED], iv, sealed));
  }

  /** @param {string} to @param {Bytes} data */
  post(to, data) {
    this.send({ type: 'e2ee_key', to, blob: b64(data) });
  }

  /** @param {number} index @returns {Promise<MediaKey>} */
  async fresh(index) {
    const material = crypto.getRandomValues(new Uint8Array(32));
    return { material, index, tag: await hkdfBits(material, this.meeting, 'tag', 32) };
  }

  /** The next key of a sender after a join: one-way, so a newcomer cannot go back. @param {MediaKey} key */
  async ratchet(key) {
    const material = await hkdfBits(key.material, this.meeting, 'ratchet', 256);
    return { material, index: (key.index + 1) & 0xff, tag: await hkdfBits(material, this.meeting, 'tag', 32) };
  }

  /** Seal this page's frames with `key` from now on. @param {MediaKey} key */
  async use(key) {
    this.current = key;
    const aes = await hkdfAesKey(key.material, this.meeting, 'frame', ['encrypt', 'decrypt']);
    this.e2ee.worker.postMessage({ type: 'send-key', key: aes, tag: key.tag, index: key.index });
  }

  /** Let the worker open a sender's frames under `key`. @param {Peer} peer @param {MediaKey} key */
  async receive(peer, key) {
    if (peer.keys.some((k) => same(k.tag, key.tag))) return;
    const aes = await hkdfAesKey(key.material, this.meeting, 'frame', ['decrypt']);
    this.e2ee.worker.postMessage({ type: 'recv-key', key: aes, tag: key.tag });
    peer.keys.push(key);
    if (peer.keys.length > KEEP_KEYS) this.dropKeys(peer.keys.splice(0, peer.keys.length - KEEP_KEYS));
  }

  /** @param {MediaKey[]} keys */
  dropKeys(keys) {
    if (keys.length) this.e2ee.worker.postMessage({ type: 'drop-keys', tags: keys.map((k) => k.tag) });
  }

  /** The pair's string (7 emoji), once both keys are known. @param {string} id */
  sas(id) {
    return this.peers.get(id)?.sas ?? null;
  }

  /**
   * Copies of the next `n` video frames this page seals (ciphertext only): tests capture them and
   * hand them to another page's `tryOpen`.
   * @param {number} n @returns {Promise<{data: ArrayBuffer, kind: string, keyFrame: boolean}[]>}
   */
  tapSealed(n) {
    const worker = this.e2ee.worker;
    return new Promise((resolve) => {
      /** @param {MessageEvent} ev */
      const on = ({ data }) => {
        if (data.type !== 'tapped') return;
        worker.removeEventListener('message', on);
        resolve(data.frames);
      };
      worker.addEventListener('message', on);
      worker.postMessage({ type: 'tap', n });
    });
  }

  /**
   * How many of these sealed frames this page's keys open.
   * @param {{data: ArrayBuffer, kind: string, keyFrame: boolean}[]} frames
   * @returns {Promise<{opened: number, tried: number}>}
   */
  tryOpen(frames) {
    const worker = this.e2ee.worker;
    const id = Math.random();
    return new Promise((resolve) => {
      /** @param {MessageEvent} ev */
      const on = ({ data }) => {
        if (data.type !== 'opened' || data.id !== id) return;
        worker.removeEventListener('message', on);
        resolve({ opened: data.opened, tried: data.tried });
      };
      worker.addEventListener('message', on);
      worker.postMessage({ type: 'try-open', id, frames });
    });
  }

  /** The user compared the string with `id` (or takes it back). @param {string} id @param {boolean} yes */
  setVerified(id, yes) {
    if (yes && this.peers.has(id)) this.verified.add(id); else this.verified.delete(id);
    this.emit('peers', null);
  }
}

/**
 * 7 emoji from SHA-256 over the meeting and both public keys (in byte order): the same on both
 * pages of a pair unless someone on the way swapped a key.
 * @param {string} meeting @param {Bytes} lo @param {Bytes} hi
 */
async function sasOf(meeting, lo, hi) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', concat(enc.encode(`edgemeet-sas/${meeting}/`), lo, hi)));
  let bits = 0n;
  for (const b of digest.subarray(0, 6)) bits = (bits << 8n) | BigInt(b);
  const out = [];
  for (let i = 0; i < 7; i++) out.push(EMOJI[Number((bits >> BigInt(42 - 6 * (i + 1))) & 63n)]);
  return out.join(' ');
}

/**
 * The people panel's list of strings: per peer its emoji and a "verified" toggle.
 * @param {SenderKeys} keys @param {HTMLElement} list @param {(id: string) => string} nameOf
 */
export function renderVerification(keys, list, nameOf) {
  const items = [];
  for (const id of keys.present) {
    const li = document.createElement('li');
    li.dataset.id = id;
    const sas = keys.sas(id);
    const label = document.createElement('span');
    label.className = 'sas-name';
    label.textContent = `${nameOf(id)}: `;
    const code = document.createElement('span');
    code.className = 'sas';
    code.textContent = sas ?? 'exchanging keys...';
    li.append(label, code);
    if (sas) {
      const ok = keys.verified.has(id);
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'verify';
      button.textContent = ok ? 'Verified ✓' : 'Mark verified';
      button.setAttribute('aria-pressed', String(ok));
      button.title = ok ? 'You compared these emoji with them: click to take it back'
        : 'Compare these emoji with them (by voice or video); if they match, nobody swapped your keys';
      button.addEventListener('click', () => keys.setVerified(id, !ok));
      li.classList.toggle('verified', ok);
      li.append(' ', button);
    }
    items.push(li);
  }
  list.replaceChildren(...items);
}
