// One direct RTCPeerConnection to the other participant, signaled through the edge. After the
// first offer and answer either side may renegotiate (a screen shared or stopped, audio-only mode
// on or off), as in the W3C's "perfect negotiation": on a collision of offers the initiator's wins
// and the other side answers it, then offers again.
import { preferRed, preferVp8 } from './codecs.js';
import { Emitter } from './events.js';
import { cleanDescription } from './sdp.js';
import { SCREEN_ENCODING } from './screen.js';

/**
 * @typedef {import('./protocol.js').SignalPayload} SignalPayload
 * @typedef {object} P2PLinkEvents
 * @property {{stream: MediaStream, track: MediaStreamTrack}} track the peer's media arrived
 * @property {{stream: MediaStream}} screen the peer's shared screen arrived
 * @property {undefined} screen-gone the peer's screen stopped arriving
 * @property {RTCPeerConnectionState} state the connection's state changed
 * @property {undefined} restart an ICE restart began (the path failed or the network changed)
 * @property {undefined} stuck not connected 5 s after an offer and answer went through (the
 *   signaling works, the direct path does not): the room should move the pair to its node
 */

/** How long a negotiated connection may take to connect before the pair gives up on direct. */
const STUCK_MS = 5000;
/** An offer unanswered this long is sent again. */
const RESEND_OFFER_MS = 4000;

/** @extends {Emitter<P2PLinkEvents>} */
export class P2PLink extends Emitter {
  /**
   * @param {{peer: string, initiator: boolean, iceServers: RTCIceServer[], send: (payload: SignalPayload) => void, e2ee?: import('./e2ee.js').E2ee | null}} opts
   */
  constructor({ peer, initiator, iceServers, send, e2ee = null }) {
    super();
    this.peer = peer;
    this.initiator = initiator;
    this.send = send;
    this.e2ee = e2ee;
    this.pc = new RTCPeerConnection({ iceServers, ...e2ee?.pcConfig() });
    /** @type {RTCRtpSender[]} */
    this.senders = [];
    /** @type {RTCIceCandidateInit[]} candidates that arrived before the remote description */
    this.pendingCandidates = [];
    this.pc.onicecandidate = (ev) => { if (ev.candidate) this.send({ candidate: ev.candidate.toJSON() }); };
    /** @type {string | null} the id of the peer's first stream: its camera and microphone */
    this.mainStream = null;
    /** @type {RTCRtpTransceiver | null} our screen's transceiver (kept, inactive, once stopped) */
    this.screenT = null;
    /** whether our screen is being sent */
    this.sharing = false;
    /** audio-only mode: no video received (`setVideoReceive`) */
    this.videoOff = false;
    /** audio-only mode just ended: the camera's video comes back in the stream it left */
    this.videoResumed = false;
    /** an offer is being made (perfect negotiation) */
    this.makingOffer = false;
    /** @type {Promise<void>} the offer being made */
    this.offering = Promise.resolve();
    /** a local change waits for the signaling to be stable to offer */
    this.offerPending = false;
    /**
     * The peer's offer is being applied and answered: an offer of ours now would be queued behind
     * its setRemoteDescription and turn into an answer (a parameterless setLocalDescription).
     */
    this.answering = false;
    /** @type {Promise<void>} the peer's payloads, handled in order */
    this.inbox = Promise.resolve();
    this.pc.ontrack = (ev) => {
      // Attach before the first frame arrives: the transform must see every frame.
      this.e2ee?.receiver(ev.receiver, ev.track.kind);
      const stream = ev.streams[0] || new MediaStream([ev.track]);
      this.mainStream ??= stream.id;
      // Video in another stream than the camera's: the peer's shared screen.
      if (ev.track.kind === 'video' && stream.id !== this.mainStream) {
        const screen = new MediaStream([ev.track]);
        stream.onremovetrack = () => { if (!stream.getVideoTracks().length) this.emit('screen-gone', undefined); };
        this.emit('screen', { stream: screen });
        return;
      }
      // Video back after audio-only mode, in the same stream: a new stream object, so that the
      // tile plays it.
      if (ev.track.kind === 'video' && this.videoResumed) {
        this.videoResumed = false;
        this.emit('track', { stream: new MediaStream(stream.getTracks()), track: ev.track });
        return;
      }
      this.emit('track', { stream, track: ev.track });
    };
    this.pc.onconnectionstatechange = () => {
      this.emit('state', this.pc.connectionState);
    };
    this.restartTimer = 0;
    this.stuckTimer = 0;
    this.pc.oniceconnectionstatechange = () => this.watchIce();
    // A new network (Wi-Fi to cable, a VPN): the old candidate pair may be dead already.
    this.onNetworkChange = () => { if (this.pc.iceConnectionState !== 'new') this.restartIce(); };
    /** @type {any} */ (navigator).connection?.addEventListener?.('change', this.onNetworkChange);
    window.addEventListener('online', this.onNetworkChange);
  }

  /**
   * A path that stays disconnected for 2 s, or fails: restart ICE (the initiator offers with new
   * credentials; candidates are gathered again), and again every 2.5 s while it does not recover
   * (an offer sent while the room socket was down is lost).
   */
  watchIce() {
    const state = this.pc.iceConnectionState;
    if (state === 'connected' || state === 'completed' || state === 'closed') {
      clearTimeout(this.restartTimer);
      this.restartTimer = 0;
      clearTimeout(this.stuckTimer);
      this.stuckTimer = 0;
      return;
    }
    if ((state === 'disconnected' || state === 'failed') && !this.restartTimer) {
      this.restartTimer = window.setTimeout(() => this.retryIce(), state === 'failed' ? 0 : 2000);
    }
  }

  retryIce() {
    const state = this.pc.iceConnectionState;
    if (state !== 'disconnected' && state !== 'failed' && state !== 'checking') {
      this.restartTimer = 0;
      return;
    }
    this.restartIce();
    this.restartTimer = window.setTimeout(() => this.retryIce(), 2500);
  }

  /**
   * An offer and its answer went through (the first, or an ICE restart's): both pages reach the
   * edge, so a path still not up 5 s later will not come up directly (e.g. UDP between the two is
   * blocked). Timed from the first such exchange while not connected; later restarts do not
   * push it back.
   */
  armStuck() {
    const up = () => ['connected', 'completed', 'closed'].includes(this.pc.iceConnectionState);
    if (up() || this.stuckTimer) return;
    this.stuckTimer = window.setTimeout(() => {
      if (!up()) this.emit('stuck', undefined);
    }, STUCK_MS);
  }

  restartIce() {
    if (this.pc.signalingState === 'closed') return;
    this.pc.restartIce();
    this.emit('restart', undefined);
    // The initiator offers; the other side asks it to (its own restartIce makes its next answer
    // carry new credentials). Offers from one side only: no glare.
    if (this.initiator) this.offer(true).catch((e) => console.warn('ICE restart:', e));
    else this.send({ restart: true });
  }

  /**
   * Resolves once the connection is up, or after `ms` (whichever is first).
   * @param {number} ms
   * @returns {Promise<void>}
   */
  connected(ms) {
    if (this.pc.connectionState === 'connected') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => { clearTimeout(timer); this.pc.removeEventListener('connectionstatechange', check); resolve(); };
      const check = () => { if (this.pc.connectionState === 'connected' || this.pc.connectionState === 'closed') done(); };
      const timer = setTimeout(done, ms);
      this.pc.addEventListener('connectionstatechange', check);
    });
  }

  /**
   * Add local tracks (a screen shared already after the camera's: the peer takes the first
   * stream it receives for the camera's); the initiator then offers, the other side offers its
   * screen once it answered the first offer.
   * @param {MediaStream} stream @param {MediaStreamTrack | null} [screen]
   */
  async start(stream, screen = null) {
    for (const track of stream.getTracks()) {
      const sender = this.pc.addTrack(track, stream);
      if (this.e2ee) {
        this.e2ee.sender(sender, track.kind);
        const t = this.pc.getTransceivers().find((x) => x.sender === sender);
        // The peer's media arrives on this same (sendrecv) transceiver: transform it from the start.
        if (t) this.e2ee.receiver(t.receiver, track.kind);
        if (t && track.kind === 'video') preferVp8(t);
      } else if (track.kind === 'audio') {
        const t = this.pc.getTransceivers().find((x) => x.sender === sender);
        if (t) preferRed(t);
      }
      this.senders.push(sender);
    }
    if (screen) {
      this.addScreen(screen);
      this.offerPending = !this.initiator;
    }
    this.applyDirections();
    if (this.initiator) await this.offer();
  }

  /**
   * Offer our changes, now or (an offer being made or awaiting its answer, the peer's offer being
   * answered, or the answering side before the first offer came) once the signaling is stable
   * again. An ICE restart (`restart`) makes an offer still unanswered again: it may have been lost
   * with the room socket.
   */
  async offer(restart = false) {
    const state = this.pc.signalingState;
    if (state === 'closed') return;
    const waiting = state === 'have-local-offer' && !restart;
    if (this.makingOffer || this.answering || waiting || (state !== 'stable' && state !== 'have-local-offer') || (!this.initiator && !this.pc.remoteDescription)) {
      this.offerPending = true;
      return;
    }
    this.offerPending = false;
    this.makingOffer = true;
    this.offering = (async () => {
      try {
        this.applyDirections();
        await this.pc.setLocalDescription();
        this.sendLocalDescription();
        this.resendUnanswered(this.pc.localDescription?.sdp);
      } finally {
        this.makingOffer = false;
      }
    })();
    await this.offering;
  }

  /**
   * An offer still unanswered after a while is sent again, as it was (it, or its answer, may
   * have been lost while a room socket was down; a change made meanwhile waits for its answer).
   * @param {string | undefined} sdp the offer sent
   */
  resendUnanswered(sdp) {
    setTimeout(() => {
      if (this.pc.signalingState !== 'have-local-offer' || this.pc.localDescription?.sdp !== sdp) return;
      this.sendLocalDescription();
      this.resendUnanswered(sdp);
    }, RESEND_OFFER_MS);
  }

  /**
   * Each video transceiver's direction from what we send (the camera, our screen while shared)
   * and whether we receive video (not in audio-only mode); applied before every offer and answer.
   */
  applyDirections() {
    for (const t of this.pc.getTransceivers()) {
      if (t.receiver.track.kind !== 'video' || t.direction === 'stopped') continue;
      const send = t === this.screenT ? this.sharing : this.senders.includes(t.sender);
      const recv = t !== this.screenT && !this.videoOff;
      /** @type {RTCRtpTransceiverDirection} */
      const want = send && recv ? 'sendrecv' : send ? 'sendonly' : recv ? 'recvonly' : 'inactive';
      if (t.direction !== want) t.direction = want;
    }
  }

  /**
   * Share a screen: a transceiver of its own (one encoding, see screen.js), negotiated with the
   * peer. Another screen while one is shared replaces its track.
   * @param {MediaStreamTrack} track
   */
  async shareScreen(track) {
    if (this.screenT) {
      await this.screenT.sender.replaceTrack(track);
      if (this.sharing) return;
    } else {
      this.addScreen(track);
    }
    this.sharing = true;
    await this.offer();
  }

  /** Our screen's transceiver, with its encrypting transform before the offer that carries it. @param {MediaStreamTrack} track */
  addScreen(track) {
    this.screenT = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [new MediaStream([track])], sendEncodings: [SCREEN_ENCODING] });
    this.sharing = true;
    if (this.e2ee) {
      this.e2ee.sender(this.screenT.sender, 'video');
      preferVp8(this.screenT);
    }
  }

  /** Stop sharing: the screen's m-line goes inactive (the peer's screen tile ends). */
  async stopScreen() {
    if (!this.screenT || !this.sharing) return;
    this.sharing = false;
    await this.screenT.sender.replaceTrack(null);
    await this.offer();
  }

  /**
   * Audio-only mode (off: `on` false): our video transceivers stop receiving, renegotiated, so the
   * peer sends us no video; ours still goes out.
   * @param {boolean} on
   */
  async setVideoReceive(on) {
    if (this.videoOff === !on) return;
    this.videoOff = !on;
    this.videoResumed = on;
    await this.offer();
  }

  sendLocalDescription() {
    const sdp = this.pc.localDescription;
    if (sdp) this.send({ sdp: cleanDescription(sdp.toJSON()) });
  }

  /**
   * A payload from the peer: an SDP or an ICE candidate. One at a time, in order: an answer is
   * applied before the offer that follows it is looked at.
   * @param {SignalPayload} payload
   */
  receive(payload) {
    const run = this.inbox.then(() => this.handle(payload));
    this.inbox = run.catch(() => {});
    return run;
  }

  /** @param {SignalPayload} payload */
  async handle(payload) {
    if (payload.restart) {
      if (this.initiator) this.restartIce();
    } else if (payload.sdp) {
      const offer = payload.sdp.type === 'offer';
      const collision = offer && (this.makingOffer || this.pc.signalingState !== 'stable');
      // Both offered at once: the initiator's offer wins; the other side answers it, then offers
      // its own change again.
      if (collision && this.initiator) return;
      this.answering = offer;
      try {
        if (collision) {
          await this.offering.catch(() => {});
          if (this.pc.signalingState === 'have-local-offer') await this.pc.setLocalDescription({ type: 'rollback' });
          this.offerPending = true;
        }
        await this.pc.setRemoteDescription(cleanDescription(payload.sdp));
        this.armStuck();
        for (const c of this.pendingCandidates.splice(0)) await this.pc.addIceCandidate(c).catch(() => {});
        if (offer) {
          this.applyDirections();
          await this.pc.setLocalDescription(await this.pc.createAnswer());
          this.sendLocalDescription();
        }
      } finally {
        this.answering = false;
      }
      if (this.offerPending && this.pc.signalingState === 'stable') await this.offer();
    } else if (payload.candidate) {
      if (this.pc.remoteDescription) await this.pc.addIceCandidate(payload.candidate).catch(() => {});
      else this.pendingCandidates.push(payload.candidate);
    }
  }

  /**
   * Send `track` as our microphone or camera from now on (another device), without renegotiating;
   * the sender keeps its E2EE transform.
   * @param {'audio' | 'video'} kind @param {MediaStreamTrack} track
   */
  async replaceTrack(kind, track) {
    for (const t of this.pc.getTransceivers()) {
      if (this.senders.includes(t.sender) && t.receiver.track.kind === kind) await t.sender.replaceTrack(track);
    }
  }

  close() {
    clearTimeout(this.restartTimer);
    clearTimeout(this.stuckTimer);
    /** @type {any} */ (navigator).connection?.removeEventListener?.('change', this.onNetworkChange);
    window.removeEventListener('online', this.onNetworkChange);
    this.pc.close();
  }
}
