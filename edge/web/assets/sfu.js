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
  /** @param {{grant: {node_id: string, url: string, token: string}, iceServers: RTCIceServer[], e2ee?: import('./e2ee.js').E2ee | null}} opts */
  constructor({ grant, iceServers, e2ee = null }) {
    super();
    this.grant = grant;
    this.e2ee = e2ee;
    this.pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle', ...e2ee?.pcConfig() });
    this.sessionId = null;
    /** @type {Map<string, {participant: string, mids: string[]}>} pulled tracks by publisher session */
    this.pulled = new Map();
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
    const res = await fetch(`${this.grant.url.replace(/\/$/, '')}/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${this.grant.token}`, 'content-type': 'application/json' },
      body: body ? JSON.stringify(body) : undefined,
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(`media node ${path}: ${res.status} ${json.errorCode || ''} ${json.errorDescription || ''}`);
    return json;
  }

  /** Open the session and push our tracks; resolves to the track list to announce to the room. */
  start(stream) {
    return this.enqueue(async () => {
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
      // Open the session while the browser builds its offer: both take a while, neither needs the other.
      const [session] = await Promise.all([this.api('POST', '/sessions/new'), pushed.length ? this.pc.setLocalDescription() : null]);
      this.sessionId = session.sessionId;
      if (!pushed.length) return [];
      const res = await this.api('POST', `/sessions/${this.sessionId}/tracks/new`, {
        sessionDescription: { type: 'offer', sdp: this.pc.localDescription.sdp },
        tracks: pushed.map((p) => ({ location: 'local', mid: p.t.mid, trackName: p.name })),
      });
      await this.pc.setRemoteDescription(res.sessionDescription);
      this.videoSender = pushed.find((p) => p.kind === 'video')?.t.sender || null;
      return pushed.map((p) => ({ name: p.name, kind: p.kind, source: p.source }));
    });
  }

  /** Pull the tracks a participant announced; a refused pull is retried a few times. */
  pull(participant, sessionId, tracks, attempt = 0) {
    if (!tracks.length || this.pulled.has(sessionId)) return;
    this.owners.set(sessionId, participant);
    const entry = { participant, mids: /** @type {string[]} */ ([]) };
    this.pulled.set(sessionId, entry);
    return this.enqueue(async () => {
      let res;
      try {
        res = await this.api('POST', `/sessions/${this.sessionId}/tracks/new`, {
          tracks: tracks.map((t) => ({ location: 'remote', sessionId, trackName: t.name, ...(t.kind === 'video' ? { simulcast: { preferredRid: PULL_RID } } : {}) })),
        });
      } catch (err) {
        res = null;
        this.dispatchEvent(new CustomEvent('error', { detail: err }));
      }
      const ok = (res?.tracks || []).filter((t) => !t.error);
      if (!ok.length && this.pulled.get(sessionId) === entry) {
        // E.g. the publisher's push is not through yet on a busy node: try again shortly.
        this.pulled.delete(sessionId);
        if (attempt < 3) setTimeout(() => { if (!this.closed) this.pull(participant, sessionId, tracks, attempt + 1); }, 500 * (attempt + 1));
      }
      if (!res) return;
      entry.mids = ok.map((t) => t.mid);
      if (res.requiresImmediateRenegotiation) await this.answerNodeOffer(res.sessionDescription);
    });
  }

  async answerNodeOffer(offer) {
    await this.pc.setRemoteDescription(offer);
    await this.pc.setLocalDescription(await this.pc.createAnswer());
    await this.api('PUT', `/sessions/${this.sessionId}/renegotiate`, { sessionDescription: { type: 'answer', sdp: this.pc.localDescription.sdp } });
  }

  /** Stop pulling a participant who left. */
  drop(participant) {
    for (const [session, entry] of this.pulled) {
      if (entry.participant !== participant) continue;
      this.pulled.delete(session);
      this.streams.delete(session);
      if (entry.mids.length) {
        this.enqueue(async () => {
          const res = await this.api('PUT', `/sessions/${this.sessionId}/tracks/close`, { tracks: entry.mids.map((mid) => ({ mid })), force: false });
          if (res.requiresImmediateRenegotiation) await this.answerNodeOffer(res.sessionDescription);
        });
      }
    }
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
