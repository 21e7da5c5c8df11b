// End-to-end encryption of media frames, off the main thread. One worker per page; every encoded
// transform (RTCRtpScriptTransform, or Chromium's encoded streams posted here) runs in it.
//
// Frame on the wire (docs/browser.md):  clear header | AES-GCM(ciphertext + 16-byte tag) | IV (12) | key id (1)
// The clear header (VP8: 10 bytes on key frames, 3 otherwise; Opus: 1) stays readable so the SFU and the
// RTP (de)packetizers can still tell keyframes and sizes; it is authenticated as additional data.

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_ID = 1; // one passphrase-derived key per meeting for now; the byte leaves room for rotation

/** @type {CryptoKey | null} */
let key = null;
const counts = { encrypted: 0, decrypted: 0, failed: 0 };
let dirty = false;

/**
 * @typedef {RTCEncodedVideoFrame | RTCEncodedAudioFrame} Frame
 * @typedef {TransformStreamDefaultController<Frame>} FrameSink
 * @typedef {'audio' | 'video'} Kind
 */

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
  if (!key) return;
  const data = new Uint8Array(frame.data);
  if (data.length === 0) return controller.enqueue(frame);
  const n = Math.min(clearBytes(frame, kind), data.length);
  // A random IV per frame: every sender shares the key, so counters alone could collide.
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const sealed = new Uint8Array(await crypto.subtle.encrypt(
    { name: 'AES-GCM', iv, additionalData: data.subarray(0, n), tagLength: TAG_BYTES * 8 }, key, data.subarray(n)));
  const out = new Uint8Array(n + sealed.length + IV_BYTES + 1);
  out.set(data.subarray(0, n), 0);
  out.set(sealed, n);
  out.set(iv, n + sealed.length);
  out[out.length - 1] = KEY_ID;
  frame.data = out.buffer;
  counts.encrypted++;
  dirty = true;
  controller.enqueue(frame);
}

/** @param {Frame} frame @param {FrameSink} controller @param {Kind} kind */
async function decrypt(frame, controller, kind) {
  const data = new Uint8Array(frame.data);
  if (data.length === 0) return controller.enqueue(frame);
  const n = clearBytes(frame, kind);
  // Too short or another key id: not ours (a sender without E2EE, or a newer format). Drop it.
  if (!key || data.length < n + TAG_BYTES + IV_BYTES + 1 || data[data.length - 1] !== KEY_ID) return fail();
  const ivStart = data.length - 1 - IV_BYTES;
  try {
    const plain = new Uint8Array(await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: data.subarray(ivStart, ivStart + IV_BYTES), additionalData: data.subarray(0, n), tagLength: TAG_BYTES * 8 },
      key, data.subarray(n, ivStart)));
    const out = new Uint8Array(n + plain.length);
    out.set(data.subarray(0, n), 0);
    out.set(plain, n);
    frame.data = out.buffer;
    counts.decrypted++;
    dirty = true;
    controller.enqueue(frame);
  } catch {
    // Wrong passphrase or tampered: the frame is dropped, the decoder never sees it.
    fail();
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

self.onmessage = ({ data }) => {
  if (data.type === 'key') key = data.key;
  else if (data.type === 'streams') pipe(data.readable, data.writable, data); // Chromium encoded streams
};

// Counters only (no content), so the page and the tests can tell frames are being sealed and opened.
setInterval(() => {
  if (!dirty) return;
  dirty = false;
  self.postMessage({ type: 'counts', counts });
}, 500);
