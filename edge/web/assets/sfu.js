// One RTCPeerConnection to the room's media node: push our microphone and camera (simulcast),
// pull every other participant's tracks. API: docs/media-node-api.md.
import { preferVp8 } from './e2ee.js';

/**
 * Layer asked for when pulling video. The node forwards it while it arrives and falls back by
 * itself to the best layer that does (a publisher short of CPU or bandwidth pauses or thins its
 * upper layers), going back up when it resumes: no watching needed here.
 */
const PULL_RID = 'h';

const SIMULCAST = [
  { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: 'f', maxBitrate: 1_500_000 },
];

export class SfuLink extends EventTarget {
  /**
   * A link is built (and its offer made, see `prepare`) before the room has a node; `start`
   * opens it on the node the edge names.
   * @param {{iceServers: RTCIceServer[], e2ee?: import('./e2ee.js').E2ee | null, mark?: (step: string) => void}} opts
   */
  constructor({ iceServers, e2ee = null, mark = () => {} }) {
    super();
    /** @type {{node_id: string, url: string, token: string} | null} set by `start` */
    this.grant = null;
    this.e2ee = e2ee;
    this.mark = mark;
    // A candidate pool: gathering starts with the connection (built before the room has a node),
    // so the offer may list candidates already. The node takes no trickle: it checks what the offer
    // lists as soon as it answers, and otherwise waits for the browser's checks.
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', iceCandidatePoolSize: 1, ...e2ee?.pcConfig() });
    this.sessionId = null;
    /** @type {Promise<{name: string, kind: string, source: string, mid: string | null}[]> | null} */
    this.prepared = null;
    /** @type {Map<string, {participant: string, mids: string[]}>} pulled tracks by publisher session */
    this.pulled = new Map();
    /** @type {Map<string, {participant: string, tracks: any[], attempt: number}>} pulls not yet asked for, by publisher session */
    this.wanted = new Map();
    this.flushQueued = false;
    /** @type {Map<string, string>} publisher session id -> participant id */
    this.owners = new Map();
    /** @type {Map<string, MediaStream>} one stream per publisher session */
    this.streams = new Map();
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
      if (participant) this.dispatchEvent(new CustomEvent('track', { detail: { participant, stream } }));
    };
    this.pc.onconnectionstatechange = () => this.dispatchEvent(new CustomEvent('state', { detail: this.pc.connectionState }));
    // ICE and DTLS apart, for the join timings.
    this.pc.oniceconnectionstatechange = () => this.dispatchEvent(new CustomEvent('ice', { detail: this.pc.iceConnectionState }));
  }

  /**
   * Serialize negotiations: one offer/answer at a time on one connection.
   * @template T
   * @param {() => Promise<T>} fn
   * @returns {Promise<T | undefined>} its result (undefined when closed or failed)
   */
  enqueue(fn) {
    const run = this.queue.then(() => (this.closed ? undefined : fn())).catch((err) => {
      this.dispatchEvent(new CustomEvent('error', { detail: err }));
      return undefined;
    });
    this.queue = run;
    return run;
  }

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
      /** @type {{t: RTCRtpTransceiver, name: string, kind: string, source: string}[]} */
      const pushed = [];
      if (audio) pushed.push({ t: this.pc.addTransceiver(audio, { direction: 'sendonly', streams: [stream] }), name: 'audio', kind: 'audio', source: 'microphone' });
      if (video) pushed.push({ t: this.pc.addTransceiver(video, { direction: 'sendonly', streams: [stream], sendEncodings: SIMULCAST }), name: 'video', kind: 'video', source: 'camera' });
      if (this.e2ee) {
        for (const p of pushed) {
          this.e2ee.sender(p.t.sender, p.kind);
          if (p.kind === 'video') preferVp8(p.t);
        }
      }
      this.videoSender = pushed.find((p) => p.kind === 'video')?.t.sender || null;
      if (pushed.length) {
        await this.pc.setLocalDescription();
        this.mark('sfu:offer');
      }
      return pushed.map((p) => ({ name: p.name, kind: p.kind, source: p.source, mid: p.t.mid }));
    })();
    // Failures surface in `start`; a link closed before it started has nothing to report.
    this.prepared.catch(() => {});
    return this.prepared;
  }

  /**
   * Open the session on the node and push our tracks, in one call. Resolves to the track list to
   * announce to the room as soon as the node answered (others may pull at once); applying the
   * answer, and every pull after it, follow in the queue.
   * @param {{node_id: string, url: string, token: string}} grant
   * @param {MediaStream} stream
   */
  start(grant, stream) {
    this.grant = grant;
    const prepared = this.prepare(stream);
    /** @type {RTCSessionDescriptionInit | null} */
    let answer = null;
    const announced = this.enqueue(async () => {
      const pushed = await prepared;
      if (this.closed) return undefined;
      if (!pushed.length) {
        this.sessionId = (await this.api('POST', '/sessions/new')).sessionId;
        return [];
      }
      const offer = { type: 'offer', sdp: this.pc.localDescription.sdp };
      const tracks = pushed.map((p) => ({ location: 'local', mid: p.mid, trackName: p.name }));
      const res = await this.api('POST', '/sessions/new', { sessionDescription: offer, tracks });
      this.sessionId = res.sessionId;
      answer = res.sessionDescription;
      if (!res.tracks) {
        // A node older than the push in `sessions/new` answered the transport only: push with a
        // second offer, as `tracks/new`.
        await this.pc.setRemoteDescription(answer);
        await this.pc.setLocalDescription();
        const again = await this.api('POST', `/sessions/${this.sessionId}/tracks/new`, { sessionDescription: { type: 'offer', sdp: this.pc.localDescription.sdp }, tracks });
        answer = again.sessionDescription;
      }
      return pushed.map(({ name, kind, source }) => ({ name, kind, source }));
    });
    this.enqueue(async () => {
      if (answer) await this.pc.setRemoteDescription(answer);
    });
    return announced;
  }

  /**
   * Pull the tracks a participant announced. Pulls asked for while a negotiation runs go to the
   * node together, in one request and one renegotiation; a refused pull is retried a few times.
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
      let res;
      try {
        res = await this.api('POST', `/sessions/${this.sessionId}/tracks/new`, {
          tracks: batch.flatMap(([session, w]) => w.tracks.map((t) => ({ location: 'remote', sessionId: session, trackName: t.name, ...(t.kind === 'video' ? { simulcast: { preferredRid: PULL_RID } } : {}) }))),
        });
      } catch (err) {
        res = null;
        this.dispatchEvent(new CustomEvent('error', { detail: err }));
      }
      for (const [session, w] of batch) {
        const ok = (res?.tracks || []).filter((t) => t.sessionId === session && !t.error);
        const entry = this.pulled.get(session);
        if (!entry) {
          // Left while the request was on its way: stop pulling what the node added.
          if (ok.length) this.closeMids(ok.map((t) => t.mid));
          continue;
        }
        entry.mids = ok.map((t) => t.mid);
        if (!ok.length) {
          // E.g. the publisher's push is not through yet on a busy node: try again shortly.
          this.pulled.delete(session);
          if (w.attempt < 3) setTimeout(() => { if (!this.closed) this.pull(w.participant, session, w.tracks, w.attempt + 1); }, 500 * (w.attempt + 1));
        }
      }
      if (res?.requiresImmediateRenegotiation) await this.answerNodeOffer(res.sessionDescription);
    });
  }

  async answerNodeOffer(offer) {
    await this.pc.setRemoteDescription(offer);
    await this.pc.setLocalDescription();
    await this.api('PUT', `/sessions/${this.sessionId}/renegotiate`, { sessionDescription: { type: 'answer', sdp: this.pc.localDescription.sdp } });
  }

  /** Stop pulling a participant who left. */
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
      const res = await this.api('PUT', `/sessions/${this.sessionId}/tracks/close`, { tracks: mids.map((mid) => ({ mid })), force: false });
      if (res.requiresImmediateRenegotiation) await this.answerNodeOffer(res.sessionDescription);
    });
  }

  /** A fresh grant for the same node: later calls use the new token. */
  refresh(grant) {
    this.grant = grant;
  }

  async replaceVideo(track) {
    await this.videoSender?.replaceTrack(track);
  }

  close() {
    this.closed = true;
    if (this.sessionId) this.api('DELETE', `/sessions/${this.sessionId}`).catch(() => {});
    this.pc.close();
  }
}
