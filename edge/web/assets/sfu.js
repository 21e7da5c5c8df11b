// One RTCPeerConnection to the room's media node: push our microphone and camera (simulcast) and a
// shared screen (its own track, one encoding), pull every other participant's tracks (their
// screens apart from their cameras). API: docs/media-node-api.md.
//
// While the room is P2P the link is a standby: connected, tracks pushed and pulled, but its
// senders hold no track, so no media reaches the node. A third join gives them their tracks.
// (Not the encodings' `active` flags: Chromium resets those to their initial values on every
// renegotiation, and a standby's initial values would be "off".)
import { preferVp8, withoutRed } from './codecs.js';
import { Emitter } from './events.js';
import { SCREEN_ENCODING } from './screen.js';

/**
 * @typedef {import('./protocol.js').MediaKind} MediaKind
 * @typedef {import('./protocol.js').TrackInfo} TrackInfo
 * @typedef {import('./protocol.js').NodeTrackObject} NodeTrackObject
 * @typedef {import('./protocol.js').SessionDescription} SessionDescription
 * @typedef {{node_id: string, url: string, token: string}} Grant the parts of a `NodeGrant` a link uses
 * @typedef {{name: string, kind: MediaKind, source: string, mid: string | null}} Pushed a track we push
 * @typedef {{mid: string, kind: MediaKind, source: string}} PulledTrack a pulled track ('' mid: asked for)
 * @typedef {object} SfuLinkEvents
 * @property {{participant: string, stream: MediaStream}} track a pulled track arrived, in the
 *   publisher's stream
 * @property {{participant: string, stream: MediaStream}} screen a participant's shared screen arrived
 * @property {{participant: string}} screen-gone we stopped pulling a participant's screen
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
    /**
     * Pulled tracks by publisher session: their mids, and each track by name (a `tracks` message
     * that adds or drops one, a screen share, changes only that one).
     * @type {Map<string, {participant: string, mids: string[], names: Map<string, PulledTrack>}>}
     */
    this.pulled = new Map();
    /** @type {Map<string, TrackInfo[]>} what each publisher session announced last */
    this.announced = new Map();
    /** @type {Map<string, string>} pulled mid -> its source (`screen` tracks go to their own stream) */
    this.sources = new Map();
    /** @type {Map<string, MediaStream>} pulled screens, by publisher session */
    this.screens = new Map();
    /** audio-only mode: no video pulled (`setVideoReceive`) */
    this.videoOff = false;
    /** @type {Set<string>} publisher sessions whose stream lost its video to audio-only mode */
    this.videoDropped = new Set();
    /** @type {Map<string, import('./tile-views.js').TileView>} what the node was last told of each pulled video's tile, by mid */
    this.viewsSent = new Map();
    /** the node does not take `tracks/view` */
    this.viewsRefused = false;
    /** @type {{t: RTCRtpTransceiver, name: string, track: MediaStreamTrack} | null} our shared screen */
    this.screen = null;
    this.screenCount = 0;
    /** @type {RTCRtpSender | null} the camera's sender */
    this.videoSender = null;
    /** @type {string[] | null} the camera's simulcast layers the node asked us to send (dynacast); null: all */
    this.cameraLayers = null;
    /** @type {Pushed[]} the microphone and camera `prepare` pushed */
    this.pushedBase = [];
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
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve();
    this.closed = false;
    // Chromium puts the encodings' `active` back to their initial values on each renegotiation.
    this.pc.addEventListener('signalingstatechange', () => {
      if (this.pc.signalingState === 'stable') this.applyCameraLayers();
    });
    this.pc.ontrack = (ev) => {
      // Attach before the first frame arrives (the node's offer precedes the media).
      this.e2ee?.receiver(ev.receiver, ev.track.kind);
      // The node names pulled streams by the publisher's session id.
      const session = ev.streams[0]?.id || '';
      const participant = this.owners.get(session);
      if (this.sources.get(ev.transceiver.mid || '') === 'screen') {
        const screen = new MediaStream([ev.track]);
        this.screens.set(session, screen);
        if (participant) this.emit('screen', { participant, stream: screen });
        return;
      }
      let stream = this.streams.get(session);
      // Video back after audio-only mode: a new stream object, so that its tile plays it.
      if (stream && ev.track.kind === 'video' && this.videoDropped.delete(session)) stream = new MediaStream(stream.getTracks());
      if (!stream) stream = new MediaStream();
      this.streams.set(session, stream);
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
   *   | import('./protocol.js').CloseTracksRequest | import('./protocol.js').RenegotiateRequest
   *   | import('./protocol.js').ViewTracksRequest} [body]
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
      this.pushedBase = pushed.map((p) => ({ name: p.name, kind: p.kind, source: p.source, mid: p.t.mid }));
      return this.pushedBase;
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
      /** @type {{participant: string, session: string, name: string, kind: MediaKind, source: string, t: RTCRtpTransceiver}[]} */
      const inOffer = [];
      for (const [participant, t] of others) {
        if (this.pulled.has(t.session_id) || !t.tracks.length) continue;
        this.owners.set(t.session_id, participant);
        this.announced.set(t.session_id, t.tracks);
        const entry = { participant, mids: [], names: new Map() };
        this.pulled.set(t.session_id, entry);
        for (const tr of t.tracks) {
          if (this.videoOff && tr.kind === 'video') continue;
          entry.names.set(tr.name, { mid: '', kind: tr.kind, source: tr.source });
          // The first free receive-only m-line of the kind (the node's track lands there), or a
          // new one (then the offer is made again).
          const i = this.freeReceivers.findIndex((x) => x.receiver.track.kind === tr.kind);
          const transceiver = i >= 0 ? this.freeReceivers.splice(i, 1)[0] : this.addReceiver(tr.kind, true);
          inOffer.push({ participant, session: t.session_id, name: tr.name, kind: tr.kind, source: tr.source, t: transceiver });
          if (transceiver.mid) this.sources.set(transceiver.mid, tr.source);
        }
        if (!entry.names.size) this.pulled.delete(t.session_id);
      }
      // A screen shared before the session opened (the link was built while sharing): pushed now.
      const screen = this.screen;
      if (this.offerStale) {
        await this.pc.setLocalDescription();
        this.offerStale = false;
      }
      for (const p of inOffer) if (p.t.mid) this.sources.set(p.t.mid, p.source);
      /** @type {NodeTrackObject[]} */
      const local = [...pushed, ...(screen ? [{ mid: screen.t.mid, name: screen.name }] : [])].map((p) => ({ location: 'local', mid: p.mid, trackName: p.name }));
      /** @type {NodeTrackObject[]} */
      const remote = inOffer.map((p) => ({ location: 'remote', mid: p.t.mid, trackName: p.name, sessionId: p.session, ...pullLayer(p) }));
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
        else if (entry) {
          entry.mids.push(p.t.mid);
          entry.names.set(p.name, { mid: p.t.mid, kind: p.kind, source: p.source });
        }
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
      return this.published();
    });
    this.enqueue(async () => {
      if (answer) await this.pc.setRemoteDescription(answer);
      this.mark('sfu:answer-set');
    });
    return announced;
  }

  /** @returns {TrackInfo[]} what this link publishes now, for the room's `tracks` message */
  published() {
    /** @type {TrackInfo[]} */
    const out = this.pushedBase.map(({ name, kind, source }) => ({ name, kind, source }));
    if (this.screen) out.push({ name: this.screen.name, kind: 'video', source: 'screen' });
    return out;
  }

  /**
   * Share a screen: pushed as a track of its own beside the camera (one encoding at full size and
   * a low frame rate, see screen.js), in the opening offer if the session is not open yet, else
   * with an offer of its own. Another screen while one is shared replaces its track. Resolves to
   * the tracks to announce once the node took it (undefined: nothing to announce yet).
   * @param {MediaStreamTrack} track
   * @returns {Promise<TrackInfo[] | undefined>}
   */
  shareScreen(track) {
    return this.enqueue(async () => {
      await this.prepared;
      if (this.screen) {
        this.screen.track = track;
        this.senders.set(this.screen.t.sender, track);
        if (this.sending) await this.screen.t.sender.replaceTrack(track);
        return undefined;
      }
      const t = this.pc.addTransceiver(track, { direction: 'sendonly', streams: [new MediaStream([track])], sendEncodings: [SCREEN_ENCODING] });
      // The encrypting transform before the offer and while the sender has its track (see prepare).
      if (this.e2ee) {
        this.e2ee.sender(t.sender, 'video');
        preferVp8(t);
      }
      this.senders.set(t.sender, track);
      if (!this.sending) await t.sender.replaceTrack(null);
      this.screen = { t, name: `screen-${++this.screenCount}`, track };
      if (!this.sessionId) {
        // `start` pushes it in the opening offer.
        this.offerStale = true;
        return undefined;
      }
      await this.pc.setLocalDescription();
      /** @type {import('./protocol.js').TracksResponse} */
      const res = await this.api('POST', `/sessions/${this.sessionId}/tracks/new`, {
        sessionDescription: this.offer(), tracks: [{ location: 'local', mid: t.mid, trackName: this.screen.name }],
      });
      if (res.sessionDescription) await this.pc.setRemoteDescription(res.sessionDescription);
      return this.published();
    });
  }

  /**
   * Stop sharing: the screen's publication closes on the node (the node ends every pull of it),
   * its m-line stays, inactive. Resolves to the tracks to announce (undefined: nothing to say).
   * @returns {Promise<TrackInfo[] | undefined>}
   */
  stopScreen() {
    return this.enqueue(async () => {
      const s = this.screen;
      if (!s) return undefined;
      this.screen = null;
      this.senders.delete(s.t.sender);
      await s.t.sender.replaceTrack(null);
      s.t.direction = 'inactive';
      if (!this.sessionId || !s.t.mid) {
        this.offerStale = true;
        return undefined;
      }
      /** @type {import('./protocol.js').TracksResponse | null} */
      const res = await this.api('PUT', `/sessions/${this.sessionId}/tracks/close`, { tracks: [{ mid: s.t.mid }], force: false })
        // A session the node no longer has (closed or reaped) took the publication with it: the
        // screen is not sent any more either way, nothing to report.
        .catch((err) => { console.info('media node: closing the screen:', err); return null; });
      if (res?.requiresImmediateRenegotiation && res.sessionDescription) await this.answerNodeOffer(res.sessionDescription);
      return this.published();
    });
  }

  /**
   * Audio-only mode (off: `on` false): every video pull closes, so the node sends this page no
   * video; back on, the video tracks are pulled again (a new pull starts on a keyframe).
   * @param {boolean} on
   */
  setVideoReceive(on) {
    if (this.videoOff === !on) return;
    this.videoOff = !on;
    if (on) {
      for (const [session, tracks] of this.announced) {
        const participant = this.owners.get(session);
        if (participant) this.pull(participant, session, tracks);
      }
      return;
    }
    /** @type {string[]} */
    const mids = [];
    for (const [session, entry] of this.pulled) {
      for (const [name, t] of entry.names) {
        if (t.kind !== 'video') continue;
        entry.names.delete(name);
        if (t.mid) mids.push(t.mid);
      }
      entry.mids = entry.mids.filter((m) => !mids.includes(m));
      // The tile shows no frozen frame: the video leaves the stream it plays.
      const stream = this.streams.get(session);
      for (const v of stream?.getVideoTracks() || []) {
        stream?.removeTrack(v);
        this.videoDropped.add(session);
      }
      this.dropScreen(session);
      if (!entry.names.size) this.pulled.delete(session);
    }
    if (mids.length) this.closeMids(mids);
  }

  /** @param {string} session a publisher session whose screen we no longer pull */
  dropScreen(session) {
    if (!this.screens.delete(session)) return;
    const participant = this.owners.get(session);
    if (participant) this.emit('screen-gone', { participant });
  }

  /**
   * Pull the tracks a participant announced. Pulls asked for while a negotiation runs go to the
   * node together, in one request and one renegotiation; a refused pull is retried a few times.
   * @param {string} participant
   * @param {string} sessionId the publisher's session on the node
   * @param {TrackInfo[]} tracks
   */
  pull(participant, sessionId, tracks, attempt = 0) {
    this.owners.set(sessionId, participant);
    this.announced.set(sessionId, tracks);
    let entry = this.pulled.get(sessionId);
    if (entry) {
      // Announced again: a track the publisher no longer has (a screen share ended) is let go.
      const names = new Set(tracks.map((t) => t.name));
      /** @type {string[]} */
      const gone = [];
      for (const [name, t] of entry.names) {
        if (names.has(name)) continue;
        entry.names.delete(name);
        if (t.mid) gone.push(t.mid);
        if (t.source === 'screen') this.dropScreen(sessionId);
      }
      entry.mids = entry.mids.filter((m) => !gone.includes(m));
      if (gone.length) this.closeMids(gone);
    }
    const fresh = tracks.filter((t) => !entry?.names.has(t.name) && !(this.videoOff && t.kind === 'video'));
    if (!fresh.length) return;
    if (!entry) {
      entry = { participant, mids: [], names: new Map() };
      this.pulled.set(sessionId, entry);
    }
    for (const t of fresh) entry.names.set(t.name, { mid: '', kind: t.kind, source: t.source });
    const before = this.wanted.get(sessionId)?.tracks || [];
    this.wanted.set(sessionId, { participant, tracks: [...before, ...fresh], attempt });
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
          tracks: batch.flatMap(([session, w]) => w.tracks.map((t) => ({ location: 'remote', sessionId: session, trackName: t.name, ...pullLayer(t) }))),
        });
      } catch (err) {
        res = null;
        this.emit('error', err);
      }
      /** @type {string[]} */
      const unwanted = [];
      for (const [session, w] of batch) {
        const ok = (res?.tracks || []).filter((t) => t.sessionId === session && !t.error);
        const entry = this.pulled.get(session);
        let failed = 0;
        for (const t of w.tracks) {
          const r = ok.find((x) => x.trackName === t.name) || (w.tracks.length === 1 ? ok[0] : undefined);
          const asked = entry?.names.get(t.name);
          if (r?.mid && asked && !asked.mid) {
            asked.mid = r.mid;
            entry?.mids.push(r.mid);
            this.sources.set(r.mid, t.source);
          } else if (r?.mid) {
            // Left, stopped or turned off while the request was on its way: stop pulling it.
            unwanted.push(r.mid);
          } else if (asked && !asked.mid) {
            entry?.names.delete(t.name);
            failed++;
          }
        }
        if (entry && !entry.names.size) this.pulled.delete(session);
        if (failed && w.attempt < 3) {
          // E.g. the publisher's push is not through yet on a busy node: try again shortly.
          setTimeout(() => {
            const latest = this.announced.get(session);
            if (!this.closed && latest) this.pull(w.participant, session, latest, w.attempt + 1);
          }, 500 * (w.attempt + 1));
        }
      }
      if (unwanted.length) this.closeMids(unwanted);
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

  /** @returns {{participant: string, mid: string, source: string}[]} every video pulled (its mid known) */
  pulledVideos() {
    /** @type {{participant: string, mid: string, source: string}[]} */
    const out = [];
    for (const entry of this.pulled.values()) {
      for (const t of entry.names.values()) if (t.kind === 'video' && t.mid) out.push({ participant: entry.participant, mid: t.mid, source: t.source });
    }
    return out;
  }

  /**
   * Tell the node how this page shows the videos it pulls (`tracks/view`), by mid: only what
   * changed since the last call goes, in one request.
   * @param {Map<string, import('./tile-views.js').TileView>} views
   */
  setViews(views) {
    if (!this.sessionId || this.closed || this.viewsRefused) return;
    /** @type {({mid: string} & import('./tile-views.js').TileView)[]} */
    const changed = [];
    for (const [mid, v] of views) {
      const last = this.viewsSent.get(mid);
      if (last && last.shown === v.shown && last.height === v.height && last.pinned === v.pinned) continue;
      changed.push({ mid, ...v });
      this.viewsSent.set(mid, v);
    }
    if (!changed.length) return;
    this.api('PUT', `/sessions/${this.sessionId}/tracks/view`, { tracks: changed }).catch((err) => {
      // Said again on the next change or check (a node before tracks/view answers 404).
      for (const c of changed) this.viewsSent.delete(c.mid);
      // A node without tracks/view (or without our session): no use asking again.
      if (/: 404 /.test(String(err))) this.viewsRefused = true;
      console.info('media node: tile views:', err);
    });
  }

  /** @returns {[string, MediaStream][]} pulled screens by participant */
  pulledScreens() {
    /** @type {[string, MediaStream][]} */
    const out = [];
    for (const [session, stream] of this.screens) {
      const participant = this.owners.get(session);
      if (participant) out.push([participant, stream]);
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
      this.dropScreen(session);
      if (entry.mids.length) this.closeMids(entry.mids);
    }
    for (const [session, owner] of this.owners) if (owner === participant) this.announced.delete(session);
  }

  /** @param {string[]} mids pulled tracks to stop */
  closeMids(mids) {
    // A later pull on the same m-line starts afresh at the node: its view is told again.
    for (const mid of mids) this.viewsSent.delete(mid);
    this.enqueue(async () => {
      /** @type {import('./protocol.js').TracksResponse} */
      const res = await this.api('PUT', `/sessions/${this.sessionId}/tracks/close`, { tracks: mids.map((mid) => ({ mid })), force: false });
      if (res.requiresImmediateRenegotiation && res.sessionDescription) await this.answerNodeOffer(res.sessionDescription);
    });
  }

  /**
   * The node says which of a pushed track's simulcast layers some viewer needs (dynacast): the
   * others are not encoded until it asks for them again. Only the camera has layers.
   * @param {string} track @param {string[]} rids
   */
  sendLayers(track, rids) {
    if (track !== 'video') return;
    this.cameraLayers = rids;
    this.applyCameraLayers();
  }

  applyCameraLayers() {
    const sender = this.videoSender;
    if (!sender || !this.cameraLayers || this.closed) return;
    const params = sender.getParameters();
    let changed = false;
    for (const e of params.encodings || []) {
      const active = !e.rid || this.cameraLayers.includes(e.rid);
      if (e.active !== active) {
        e.active = active;
        changed = true;
      }
    }
    // Refused mid-negotiation: applied again once it is stable.
    if (changed) sender.setParameters(params).catch(() => {});
  }

  /** A fresh grant for the same node: later calls use the new token. @param {Grant} grant */
  refresh(grant) {
    this.grant = grant;
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
      if (!this.senders.has(t.sender) || t.receiver.track.kind !== kind || t.sender === this.screen?.t.sender) continue;
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
 * The layer a video pull asks for: the camera's middle layer; a screen has one encoding.
 * @param {{kind: MediaKind, source: string}} t
 */
function pullLayer(t) {
  return t.kind === 'video' && t.source !== 'screen' ? { simulcast: { preferredRid: PULL_RID } } : {};
}
