// End-to-end encryption: derive the meeting key from the shared passphrase and attach the frame
// transforms of e2ee-worker.js to every sender and receiver, on P2P and SFU connections alike.

const PBKDF2_ITERATIONS = 200_000;
// Both sides know the app salt and the room; the room part keeps one passphrase from giving the same
// key in two meetings.
const SALT_PREFIX = 'edgemeet-e2ee-v1/';

/** Does this browser have encoded transforms at all? */
export function e2eeSupported() {
  return 'RTCRtpScriptTransform' in window || 'createEncodedStreams' in RTCRtpSender.prototype;
}

import { Emitter } from './events.js';

/**
 * @typedef {{encrypted: number, decrypted: number, failed: number}} FrameCounts
 * @typedef {object} E2eeEvents
 * @property {FrameCounts} counts the worker's frame counters changed
 */

/** @extends {Emitter<E2eeEvents>} */
export class E2ee extends Emitter {
  /**
   * @param {CryptoKey | null} key the meeting key; without one (a connection prepared before the
   * passphrase is final) the worker drops every frame until `setKey`.
   */
  constructor(key = null) {
    super();
    // Prefer the standard transform; Chromium's older encoded streams need a flag on the connection.
    this.scriptTransform = 'RTCRtpScriptTransform' in window;
    /** automatic keys per person (e2ee-keys.js) rather than one from a passphrase */
    this.automatic = false;
    this.worker = new Worker('/assets/e2ee-worker.js', { name: 'e2ee' });
    if (key) this.setKey(key);
    /** @type {FrameCounts} frames sealed / opened / dropped, as the worker reports them */
    this.counts = { encrypted: 0, decrypted: 0, failed: 0 };
    this.worker.onmessage = ({ data }) => {
      if (data.type === 'counts') {
        this.counts = data.counts;
        this.emit('counts', data.counts);
      }
    };
    /** @type {WeakSet<RTCRtpSender | RTCRtpReceiver>} transforms attach once per sender/receiver */
    this.attached = new WeakSet();
  }

  /** @param {CryptoKey} key */
  setKey(key) {
    this.worker.postMessage({ type: 'key', key });
  }

  /** Extra RTCPeerConnection options this mode needs. */
  pcConfig() {
    return this.scriptTransform ? {} : { encodedInsertableStreams: true };
  }

  /** @param {RTCRtpSender} sender @param {string} kind */
  sender(sender, kind) {
    this.attach(sender, 'encrypt', kind);
  }

  /** @param {RTCRtpReceiver} receiver @param {string} kind */
  receiver(receiver, kind) {
    this.attach(receiver, 'decrypt', kind);
  }

  /**
   * @param {RTCRtpSender | RTCRtpReceiver} end
   * @param {'encrypt' | 'decrypt'} operation
   * @param {string} kind
   */
  attach(end, operation, kind) {
    if (this.attached.has(end)) return;
    this.attached.add(end);
    if (this.scriptTransform) {
      end.transform = new RTCRtpScriptTransform(this.worker, { operation, kind });
    } else {
      const { readable, writable } = /** @type {any} */ (end).createEncodedStreams();
      this.worker.postMessage({ type: 'streams', operation, kind, readable, writable }, [readable, writable]);
    }
  }

  close() {
    this.worker.terminate();
  }
}

/**
 * The meeting key: PBKDF2 -> AES-GCM-256, not extractable; the passphrase stays in this thread.
 * Slow on purpose (~100 ms), so guessing passphrases is slow too.
 * @param {string} passphrase @param {string} scope tenant and room, as the edge normalizes them
 */
export async function deriveKey(passphrase, scope) {
  const enc = new TextEncoder();
  const base = await crypto.subtle.importKey('raw', enc.encode(passphrase), 'PBKDF2', false, ['deriveKey']);
  return crypto.subtle.deriveKey(
    { name: 'PBKDF2', hash: 'SHA-256', salt: enc.encode(SALT_PREFIX + scope), iterations: PBKDF2_ITERATIONS },
    base, { name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt']);
}
