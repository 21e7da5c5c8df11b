// One RTCPeerConnection to the room's media node: push our microphone and camera (simulcast),
// pull every other participant's tracks. API: docs/media-node-api.md.
//
// While the room is P2P the link is a standby: connected, tracks pushed and pulled, but its
// senders hold no track, so no media reaches the node. A third join gives them their tracks.
// (Not the encodings' `active` flags: Chromium resets those to their initial values on every
// renegotiation, and a standby's initial values would be "off".)
import { preferVp8, withoutRed } from './e2ee.js';
import { Emitter } from './events.js';

/**
 * @typedef {import('./protocol.js').MediaKind} MediaKind
 * @typedef {import('./protocol.js').TrackInfo} TrackInfo
 * @typedef {import('./protocol.js').NodeTrackObject} NodeTrackObject
 * @typedef {import('./protocol.js').SessionDescription} SessionDescription
 * @typedef {{node_id: string, url: string, token: string}} Grant the parts of a `NodeGrant` a link uses
 * @typedef {{name: string, kind: MediaKind, source: string, mid: string | null}} Pushed a track we push
 * @typedef {object} SfuLinkEvents
 * @property {{participant: string, stream: MediaStream}} track a pulled track arrived, in the
 *   publisher's stream
 * @property {RTCPeerConnectionState} state the connection's state changed
 * @property {RTCIceConnectionState} ice its ICE state changed (join timings)
 * @property {unknown} error a negotiation or node call failed
 */

/**
 * Layer asked for when pulling video. The node forwards it while it arrives and falls back by
 * itself to the best layer that does (a publisher short of CPU or bandwidth pauses or thins its
 * upper layers), going back up when it resumes: no watching needed here.
 */
const PULL_RID = 'h';

/**
 * Receive-only m-lines the first offer carries, for pulls in the call that opens the session: a
 * microphone and a camera each of this many participants (a third joining a pair pulls two). More
 * are added, at the cost of another offer, when more are in the room.
 */
const OFFERED_PULLS = 2;

const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];

/** @extends {Emitter<SfuLinkEvents>} */
export class SfuLink extends Emitter {
  /**
   * A link is built (and its offer made, see `prepare`) before the room has a node; `start`
   * opens it on the node the edge names.
   * @param {{iceServers: RTCIceServer[], e2ee?: import('./e2ee.js').E2ee | null, mark?: (step: string) => void, sending?: boolean}} opts
   */
  constructor({ iceServers, e2ee = null, mark = () => {}, sending = true }) {
    super();
    /** whether our senders carry their tracks (false: a standby next to a P2P call) */
    this.sending = sending;
    /** @type {Map<RTCRtpSender, MediaStreamTrack | null>} each sender's track, attached while sending */
    this.senders = new Map();
    /** @type {Promise<void>} the last change of `sending` applied */
    this.sendingApplied = Promise.resolve();
    /** @type {Grant | null} set by `start` */
    this.grant = null;
    this.e2ee = e2ee;
    this.mark = mark;
    // A candidate pool: gathering starts with the connection (built before the room has a node),
    // so the offer may list candidates already. The node takes no trickle: it checks what the offer
    // lists as soon as it answers, and otherwise waits for the browser's checks.
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', iceCandidatePoolSize: 1, ...e2ee?.pcConfig() });
    /** @type {string | null} our session on the node, once `start` opened it */
    this.sessionId = null;
    /** @type {Promise<Pushed[]> | null} */
    this.prepared = null;
    /** @type {Map<string, {participant: string, mids: string[]}>} pulled tracks by publisher session */
    this.pulled = new Map();
    /** @type {Map<string, {participant: string, tracks: TrackInfo[], attempt: number}>} pulls not yet asked for, by publisher session */
    this.wanted = new Map();
    this.flushQueued = false;
    /** @type {Map<string, string>} publisher session id -> participant id */
    this.owners = new Map();
    /** @type {RTCRtpTransceiver[]} receive-only m-lines of the first offer not yet used by a pull */
    this.freeReceivers = [];
    /** a receive-only m-line was added after the first offer: make it again before sending it */
    this.offerStale = false;
    /** @type {Map<string, MediaStream>} one stream per publisher session */
    this.streams = new Map();
    /** @type {RTCRtpSender | null} the camera's sender (screen sharing replaces its track) */
    this.videoSender = null;
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
    this.closed = false;
    this.pc.ontrack = (ev) => {
      // Attach before the first frame arrives (the node's offer precedes the media).
      this.e2ee?.receiver(ev.receiver, ev.track.kind);
      // The node names pulled streams by the publisher's session id.
      const session = ev.streams[0]?.id || '';
      const participant = this.owners.get(session);
      let stream = this.streams.get(session);
      if (!stream) { stream = new MediaStream(); this.streams.set(session, stream); }
      stream.addTrack(ev.track);
      if (participant) this.emit('track', { participant, stream });
    };
    this.pc.onconnectionstatechange = () => this.emit('state', this.pc.connectionState);
    // ICE and DTLS apart, for the join timings.
    this.pc.oniceconnectionstatechange = () => this.emit('ice', this.pc.iceConnectionState);
  }

  /**
   * Serialize negotiations: one offer/answer at a time on one connection.
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T | undefined>} its result (undefined when closed or failed)
   */
  enqueue(fn) {
    const run = this.queue.then(() => (this.closed ? undefined : fn())).catch((err) => {
      this.emit('error', err);
      return undefined;
    });
    this.queue = run;
    return run;
  }

  /**
   * A call to the node's API with our grant; throws on an error answer.
   * @param {'POST' | 'PUT' | 'DELETE'} method
   * @param {string} path under `/v1`
   * @param {import('./protocol.js').NewSessionRequest | import('./protocol.js').TracksRequest
   *   | import('./protocol.js').CloseTracksRequest | import('./protocol.js').RenegotiateRequest} [body]
   * @returns {Promise<any>} the answer's JSON (its type depends on the call; see protocol.js)
   */
  async api(method, path, body) {
    if (!this.grant) throw new Error('media node: not started');
    const res = await fetch(`${this.grant.url.replace(/\/$/, '')}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.grant.token}`, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`media node ${path}: ${res.status} ${json.errorCode || ''} ${json.errorDescription || ''}`);
    return json;
  }

  /**
   * Add our microphone and camera (simulcast) and make the offer that pushes them, with its ICE
   * candidates. Needs no node: runs while the edge is still assigning one. Once per link.
   * @param {MediaStream} stream
   */
  prepare(stream) {
    this.prepared ??= (async () => {
      const audio = stream.getAudioTracks()[0];
      const video = stream.getVideoTracks()[0];
      /** @type {{t: RTCRtpTransceiver, name: string, kind: MediaKind, source: string, track: MediaStreamTrack}[]} */
      const pushed = [];
      if (audio) pushed.push({ t: this.pc.addTransceiver(audio, { direction: 'sendonly', streams: [stream] }), name: 'audio', kind: 'audio', source: 'microphone', track: audio });
      if (video) pushed.push({ t: this.pc.addTransceiver(video, { direction: 'sendonly', streams: [stream], sendEncodings: SIMULCAST }), name: 'video', kind: 'video', source: 'camera', track: video });
      this.mark('sfu:transceivers');
      // The encrypting transform first: Chromium ignores one put on a sender after its first
      // offer, or while it has no track, and the media would leave in clear.
      if (this.e2ee) {
        for (const p of pushed) {
          this.e2ee.sender(p.t.sender, p.kind);
          if (p.kind === 'video') preferVp8(p.t);
        }
      }
      for (const p of pushed) {
        this.senders.set(p.t.sender, p.track);
        if (!this.sending) await p.t.sender.replaceTrack(null);
      }
      for (let i = 0; i < OFFERED_PULLS; i++) for (const kind of /** @type {const} */ (['audio', 'video'])) this.addReceiver(kind);
      this.videoSender = pushed.find((p) => p.kind === 'video')?.t.sender || null;
      await this.pc.setLocalDescription();
      this.mark('sfu:offer');
      return pushed.map((p) => ({ name: p.name, kind: p.kind, source: p.source, mid: p.t.mid }));
    })();
    // Failures surface in `start`; a link closed before it started has nothing to report.
    this.prepared.catch(() => {});
    return this.prepared;
  }

  /**
   * A link built and prepared on the pre-join page, before the meeting's ICE servers were known,
   * takes them on (a new offer gathered with them: a relay may be needed). False when it cannot:
   * started or closed already, or built for another E2EE (Chromium ignores a frame transform put
   * on a sender after its first offer, and its media would leave unencrypted).
   * @param {{iceServers: RTCIceServer[], e2ee: import('./e2ee.js').E2ee | null, mark: (step: string) => void}} opts
   */
  adopt({ iceServers, e2ee, mark }) {
    if (this.closed || this.grant || e2ee !== this.e2ee) return false;
    this.mark = mark;
    const prepared = this.prepared;
    if (!prepared || !iceServers.length) return true;
    this.prepared = (async () => {
      const pushed = await prepared;
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
      await this.pc.setLocalDescription(await this.pc.createOffer({ iceRestart: true }));
      this.mark('sfu:offer');
      return pushed;
    })();
    this.prepared.catch(() => {});
    return true;
  }

  /**
   * Open the session on the node, push our tracks and pull those others announced, in one call:
   * the offer has a receive-only m-line for each track to pull, and the node answers with its
   * tracks on them (no node offer, no second round trip). Resolves to the track list to announce
   * to the room as soon as the node answered (others may pull at once); applying the answer, and
   * every later pull, follow in the queue.
   * @param {Grant} grant
   * @param {MediaStream} stream
   * @param {[string, {session_id: string, tracks: TrackInfo[]}][]} others tracks announced so far, by participant
   * @returns {Promise<TrackInfo[] | undefined>}
   */
  start(grant, stream, others = []) {
    this.grant = grant;
    const prepared = this.prepare(stream);
    /** @type {RTCSessionDescriptionInit | null} */
    let answer = null;
    const announced = this.enqueue(async () => {
      const pushed = await prepared;
      if (this.closed) return undefined;
      /** @type {{participant: string, session: string, name: string, kind: MediaKind, t: RTCRtpTransceiver}[]} */
      const inOffer = [];
      for (const [participant, t] of others) {
        if (this.pulled.has(t.session_id) || !t.tracks.length) continue;
        this.owners.set(t.session_id, participant);
        this.pulled.set(t.session_id, { participant, mids: [] });
        for (const tr of t.tracks) {
          // The first free receive-only m-line of the kind (the node's track lands there), or a
          // new one (then the offer is made again).
          const i = this.freeReceivers.findIndex((x) => x.receiver.track.kind === tr.kind);
          const transceiver = i >= 0 ? this.freeReceivers.splice(i, 1)[0] : this.addReceiver(tr.kind, true);
          inOffer.push({ participant, session: t.session_id, name: tr.name, kind: tr.kind, t: transceiver });
        }
      }
      if (this.offerStale) {
        await this.pc.setLocalDescription();
        this.offerStale = false;
      }
      /** @type {NodeTrackObject[]} */
      const local = pushed.map((p) => ({ location: 'local', mid: p.mid, trackName: p.name }));
      /** @type {NodeTrackObject[]} */
      const remote = inOffer.map((p) => ({ location: 'remote', mid: p.t.mid, trackName: p.name, sessionId: p.session, ...(p.kind === 'video' ? { simulcast: { preferredRid: PULL_RID } } : {}) }));
      /** @type {import('./protocol.js').NewSessionResponse} */
      let res;
      const tracks = [...local, ...remote];
      try {
        // No tracks either way (no camera or microphone, nobody else yet): the transport only.
        res = await this.api('POST', '/sessions/new', { sessionDescription: this.offer(), ...(tracks.length ? { tracks } : {}) });
      } catch (err) {
        if (!inOffer.length || !local.length) throw err;
        // A node without pulls in the opening offer: its receive-only m-lines off, pull afterwards.
        for (const t of [...inOffer.map((p) => p.t), ...this.freeReceivers]) t.direction = 'inactive';
        for (const p of inOffer) this.pulled.delete(p.session);
        inOffer.length = 0;
        await this.pc.setLocalDescription();
        res = await this.api('POST', '/sessions/new', { sessionDescription: this.offer(), tracks: local });
      }
      this.sessionId = res.sessionId;
      answer = res.sessionDescription ?? null;
      this.mark('sfu:answered');
      for (const p of inOffer) {
        const r = (res.tracks || []).find((x) => x.mid === p.t.mid);
        const entry = this.pulled.get(p.session);
        // Refused (the publisher just left or republished): pulled again with `pull`.
        if (!r || r.error || !p.t.mid) this.pulled.delete(p.session);
        else entry?.mids.push(p.t.mid);
      }
      if (!res.tracks && local.length) {
        // A node older than the push in `sessions/new` answered the transport only: push with a
        // second offer, as `tracks/new`.
        if (!answer) throw new Error('media node: no answer to our offer');
        await this.pc.setRemoteDescription(answer);
        await this.pc.setLocalDescription();
        /** @type {import('./protocol.js').TracksResponse} */
        const again = await this.api('POST', `/sessions/${this.sessionId}/tracks/new`, { sessionDescription: this.offer(), tracks: local });
        answer = again.sessionDescription ?? null;
      }
      return pushed.map(({ name, kind, source }) => ({ name, kind, source }));
    });
    this.enqueue(async () => {
      if (answer) await this.pc.setRemoteDescription(answer);
      this.mark('sfu:answer-set');
    });
    return announced;
  }

  /**
   * Pull the tracks a participant announced. Pulls asked for while a negotiation runs go to the
   * node together, in one request and one renegotiation; a refused pull is retried a few times.
   * @param {string} participant
   * @param {string} sessionId the publisher's session on the node
   * @param {TrackInfo[]} tracks
   */
  pull(participant, sessionId, tracks, attempt = 0) {
    if (!tracks.length || this.pulled.has(sessionId)) return;
    this.owners.set(sessionId, participant);
    this.pulled.set(sessionId, { participant, mids: [] });
    this.wanted.set(sessionId, { participant, tracks, attempt });
    if (this.flushQueued) return;
    this.flushQueued = true;
    this.enqueue(async () => {
      this.flushQueued = false;
      const batch = [...this.wanted].filter(([session]) => this.pulled.has(session));
      this.wanted.clear();
      if (!batch.length) return;
      /** @type {import('./protocol.js').TracksResponse | null} */
      let res;
      this.mark('sfu:pull-asked');
      try {
        res = await this.api('POST', `/sessions/${this.sessionId}/tracks/new`, {
          tracks: batch.flatMap(([session, w]) => w.tracks.map((t) => ({ location: 'remote', sessionId: session, trackName: t.name, ...(t.kind === 'video' ? { simulcast: { preferredRid: PULL_RID } } : {}) }))),
        });
      } catch (err) {
        res = null;
        this.emit('error', err);
      }
      for (const [session, w] of batch) {
        const ok = (res?.tracks || []).filter((t) => t.sessionId === session && !t.error);
        const entry = this.pulled.get(session);
        if (!entry) {
          // Left while the request was on its way: stop pulling what the node added.
          if (ok.length) this.closeMids(midsOf(ok));
          continue;
        }
        entry.mids = midsOf(ok);
        if (!ok.length) {
          // E.g. the publisher's push is not through yet on a busy node: try again shortly.
          this.pulled.delete(session);
          if (w.attempt < 3) setTimeout(() => { if (!this.closed) this.pull(w.participant, session, w.tracks, w.attempt + 1); }, 500 * (w.attempt + 1));
        }
      }
      if (res?.requiresImmediateRenegotiation && res.sessionDescription) await this.answerNodeOffer(res.sessionDescription);
      this.mark('sfu:pull-answered');
    });
  }

  /**
   * Turn our media to the node on (the room moved to it) or off (back to P2P: the link stays as a
   * standby). Changes no SDP: the senders' tracks only.
   * @param {boolean} on
   */
  setSending(on) {
    if (this.sending === on) return this.sendingApplied;
    this.sending = on;
    this.sendingApplied = (async () => {
      await this.prepared;
      if (this.sending !== on) return;
      await Promise.all([...this.senders].map(([sender, track]) => sender.replaceTrack(on ? track : null)));
      if (on) this.mark('sfu:sending');
    })().catch((err) => { this.emit('error', err); });
    return this.sendingApplied;
  }

  /**
   * A receive-only m-line for a pull in the opening offer. `late`: added after the first offer,
   * which must then be made again.
   * @param {MediaKind} kind
   */
  addReceiver(kind, late = false) {
    const t = this.pc.addTransceiver(kind, { direction: 'recvonly' });
    // The decrypting transform goes on before the receiver is negotiated.
    this.e2ee?.receiver(t.receiver, kind);
    if (this.e2ee && kind === 'audio') withoutRed(t);
    if (late) this.offerStale = true;
    else this.freeReceivers.push(t);
    return t;
  }

  /** @returns {[string, MediaStream][]} pulled streams by participant */
  pulledStreams() {
    /** @type {[string, MediaStream][]} */
    const out = [];
    for (const [session, stream] of this.streams) {
      const participant = this.owners.get(session);
      if (participant && this.pulled.has(session) && stream.getTracks().length) out.push([participant, stream]);
    }
    return out;
  }

  /** Our current offer, for the node. @returns {SessionDescription} */
  offer() {
    return { type: 'offer', sdp: this.pc.localDescription?.sdp ?? '' };
  }

  /** Answer an offer the node made (its tracks changed), through `renegotiate`. @param {SessionDescription} offer */
  async answerNodeOffer(offer) {
    this.mark('sfu:node-offer');
    await this.pc.setRemoteDescription(offer);
    if (this.e2ee) for (const t of this.pc.getTransceivers()) if (t.receiver.track.kind === 'audio' && t.direction !== 'stopped') withoutRed(t);
    await this.pc.setLocalDescription();
    this.mark('sfu:node-answer');
    await this.api('PUT', `/sessions/${this.sessionId}/renegotiate`, { sessionDescription: { type: 'answer', sdp: this.pc.localDescription?.sdp ?? '' } });
  }

  /** Stop pulling a participant who left. @param {string} participant */
  drop(participant) {
    for (const [session, entry] of this.pulled) {
      if (entry.participant !== participant) continue;
      this.pulled.delete(session);
      this.streams.delete(session);
      if (entry.mids.length) this.closeMids(entry.mids);
    }
  }

  /** @param {string[]} mids pulled tracks to stop */
  closeMids(mids) {
    this.enqueue(async () => {
      /** @type {import('./protocol.js').TracksResponse} */
      const res = await this.api('PUT', `/sessions/${this.sessionId}/tracks/close`, { tracks: mids.map((mid) => ({ mid })), force: false });
      if (res.requiresImmediateRenegotiation && res.sessionDescription) await this.answerNodeOffer(res.sessionDescription);
    });
  }

  /** A fresh grant for the same node: later calls use the new token. @param {Grant} grant */
  refresh(grant) {
    this.grant = grant;
  }

  /** @param {MediaStreamTrack | null} track our video from now on (camera or screen) */
  async replaceVideo(track) {
    // A link still making its first offer has no video sender yet.
    await this.prepared?.catch(() => {});
    if (!this.videoSender) return;
    this.senders.set(this.videoSender, track);
    if (this.sending) await this.videoSender.replaceTrack(track);
  }

  /**
   * Our microphone or camera from now on (another device), without renegotiating: sent at once
   * while sending, kept for later by a standby (and by a link still being prepared). The sender
   * keeps its E2EE transform.
   * @param {'audio' | 'video'} kind @param {MediaStreamTrack} track
   */
  async replaceTrack(kind, track) {
    await this.prepared?.catch(() => {});
    for (const t of this.pc.getTransceivers()) {
      if (!this.senders.has(t.sender) || t.receiver.track.kind !== kind) continue;
      this.senders.set(t.sender, track);
      if (this.sending) await t.sender.replaceTrack(track);
    }
  }

  close() {
    this.closed = true;
    if (this.sessionId) this.api('DELETE', `/sessions/${this.sessionId}`).catch(() => {});
    this.pc.close();
  }
}

/**
 * The mids of the tracks a node call added.
 * @param {import('./protocol.js').NodeTrackResult[]} results
 * @returns {string[]}
 */
function midsOf(results) {
  return results.flatMap((t) => (t.mid ? [t.mid] : []));
}
