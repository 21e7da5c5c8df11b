// End-to-end encryption of media frames, off the main thread. One worker per page; every encoded
// transform (RTCRtpScriptTransform, or Chromium's encoded streams posted here) runs in it.
//
// Frame on the wire (docs/browser.md, docs/e2ee.md):
//   passphrase mode: clear header | AES-GCM(ciphertext + 16-byte tag) | IV (12) | 0x01
//   automatic mode:  clear header | AES-GCM(ciphertext + 16-byte tag) | IV (12) | key tag (4) | key index (1) | 0x02
// The clear header (VP8: 10 bytes on key frames, 3 otherwise; Opus: 1) stays readable so the SFU and the
// RTP (de)packetizers can still tell keyframes and sizes; it is authenticated as additional data.
// In automatic mode every sender has its own key; the key tag names it (e2ee-keys.js derives it from
// the key), so a receiver holds several keys of a sender at once and a switch loses no frame.

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = 1; // the passphrase-derived key of the meeting
const AUTO = 2; // automatic mode: a per-sender key named by the tag before it
const AUTO_TRAILER = IV_BYTES + 4 + 1 + 1;

/** @type {CryptoKey | null} the passphrase mode's key */
let key = null;
/** @type {{key: CryptoKey, tag: Uint8Array, index: number} | null} automatic mode: this page's sending key */
let sendKey = null;
/** @type {Map<number, CryptoKey>} automatic mode: receiving keys by their tag (as a u32) */
const recvKeys = new Map();
/** @type {{n: number, frames: TappedFrame[]} | null} a test's request for copies of sealed frames */
let tap = null;
const counts = { encrypted: 0, decrypted: 0, failed: 0 };
let dirty = false;

/**
 * @typedef {RTCEncodedVideoFrame | RTCEncodedAudioFrame} Frame
 * @typedef {TransformStreamDefaultController<Frame>} FrameSink
 * @typedef {'audio' | 'video'} Kind
 * @typedef {{data: ArrayBuffer, kind: Kind, keyFrame: boolean}} TappedFrame
 */

/** @param {Uint8Array} b @param {number} at */
const u32 = (b, at) => ((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]) >>> 0;

/**
 * How many leading bytes stay in clear: what the packetizer and the SFU need to read.
 * @param {Frame} frame @param {Kind} kind
 */
function clearBytes(frame, kind) {
  if (kind === 'audio') return 1;
  return /** @type {RTCEncodedVideoFrame} */ (frame).type === 'key' ? 10 : 3;
}

/** @param {Frame} frame @param {FrameSink} controller @param {Kind} kind */
async function encrypt(frame, controller, kind) {
  // Never send media in clear while E2EE is on: without a key, drop.
  const k = sendKey?.key ?? key;
  if (!k) return;
  const data = new Uint8Array(frame.data);
  if (data.length === 0) return controller.enqueue(frame);
  const n = Math.min(clearBytes(frame, kind), data.length);
  // A random IV per frame: every sender shares the key, so counters alone could collide.
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: data.subarray(0, n), tagLength: TAG_BYTES * 8 }, k, data.subarray(n)));
  const auto = sendKey !== null;
  const out = new Uint8Array(n + sealed.length + (auto ? AUTO_TRAILER : IV_BYTES + 1));
  out.set(data.subarray(0, n), 0);
  out.set(sealed, n);
  out.set(iv, n + sealed.length);
  if (sendKey) {
    out.set(sendKey.tag, n + sealed.length + IV_BYTES);
    out[out.length - 2] = sendKey.index;
    out[out.length - 1] = AUTO;
  } else {
    out[out.length - 1] = KEY_ID;
  }
  frame.data = out.buffer;
  if (tap && kind === 'video') {
    tap.frames.push({ data: out.slice().buffer, kind, keyFrame: n === 10 });
    if (tap.frames.length >= tap.n) {
      self.postMessage({ type: 'tapped', frames: tap.frames });
      tap = null;
    }
  }
  counts.encrypted++;
  dirty = true;
  controller.enqueue(frame);
}

/** @param {Frame} frame @param {FrameSink} controller @param {Kind} kind */
async function decrypt(frame, controller, kind) {
  const data = new Uint8Array(frame.data);
  if (data.length === 0) return controller.enqueue(frame);
  const plain = await open(data, clearBytes(frame, kind));
  if (!plain) return fail();
  frame.data = plain.buffer;
  counts.decrypted++;
  dirty = true;
  controller.enqueue(frame);
}

/**
 * The clear frame, or null when it is not ours: too short, an unknown format or key (a sender
 * without E2EE, another passphrase, a key we were never given), or tampered. Dropped then: the
 * decoder never sees it.
 * @param {Uint8Array<ArrayBuffer>} data @param {number} n clear header bytes
 */
async function open(data, n) {
  const mode = data[data.length - 1];
  /** @type {CryptoKey | null | undefined} */
  let k = null;
  let ivStart = 0;
  if (mode === KEY_ID && data.length >= n + TAG_BYTES + IV_BYTES + 1) {
    k = key;
    ivStart = data.length - 1 - IV_BYTES;
  } else if (mode === AUTO && data.length >= n + TAG_BYTES + AUTO_TRAILER) {
    k = recvKeys.get(u32(data, data.length - 6));
    ivStart = data.length - AUTO_TRAILER;
  }
  if (!k) return null;
  try {
    const plain = new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: data.subarray(ivStart, ivStart + IV_BYTES), additionalData: data.subarray(0, n), tagLength: TAG_BYTES * 8 },
      k, data.subarray(n, ivStart)));
    const out = new Uint8Array(n + plain.length);
    out.set(data.subarray(0, n), 0);
    out.set(plain, n);
    return out;
  } catch {
    return null;
  }
}

function fail() {
  counts.failed++;
  dirty = true;
}

/**
 * @param {ReadableStream<Frame>} readable @param {WritableStream<Frame>} writable
 * @param {{operation: 'encrypt' | 'decrypt', kind: Kind}} options
 */
function pipe(readable, writable, { operation, kind }) {
  const fn = operation === 'encrypt' ? encrypt : decrypt;
  readable
    .pipeThrough(new TransformStream({ transform: (/** @type {Frame} */ frame, /** @type {FrameSink} */ controller) => fn(frame, controller, kind) }))
    .pipeTo(writable)
    .catch(() => {}); // the connection closed
}

// RTCRtpScriptTransform (standard): the transformer comes with its options.
/** @type {any} */ (self).onrtctransform = (/** @type {any} */ ev) => {
  const t = /** @type {any} */ (ev).transformer;
  pipe(t.readable, t.writable, t.options);
};

self.onmessage = async ({ data }) => {
  if (data.type === 'key') key = data.key;
  else if (data.type === 'streams') pipe(data.readable, data.writable, data); // Chromium encoded streams
  // Automatic mode (e2ee-keys.js): CryptoKeys only, never key bytes.
  else if (data.type === 'send-key') sendKey = { key: data.key, tag: data.tag, index: data.index };
  else if (data.type === 'recv-key') recvKeys.set(u32(data.tag, 0), data.key);
  else if (data.type === 'drop-keys') for (const t of data.tags) recvKeys.delete(u32(t, 0));
  // Tests: copies of the next sealed video frames (ciphertext), and whether this page opens some.
  else if (data.type === 'tap') tap = { n: data.n, frames: [] };
  else if (data.type === 'try-open') {
    let opened = 0;
    for (const f of /** @type {TappedFrame[]} */ (data.frames)) {
      if (await open(new Uint8Array(f.data), f.kind === 'audio' ? 1 : f.keyFrame ? 10 : 3)) opened++;
    }
    self.postMessage({ type: 'opened', id: data.id, opened, tried: data.frames.length });
  }
};

// Counters only (no content), so the page and the tests can tell frames are being sealed and opened.
setInterval(() => {
  if (!dirty) return;
  dirty = false;
  self.postMessage({ type: 'counts', counts });
}, 500);
