// The meeting's media, without the DOM: which connections exist (the direct call, the media node
// link, its standby while the room is P2P, the pre-join connection) and when they change. It
// follows `welcome`, `media_mode`, `tracks`, `signal` and `participant_left`, sends what the
// connections need through the room socket, and says what the page should show through typed
// events (below). app.js wires those to the UI; nothing here touches `document`.
import { Emitter } from './events.js';
import { P2PLink } from './p2p.js';
import { SfuLink } from './sfu.js';
import { retire, firstFrame } from './failover.js';

/** How long after the direct call connects a pair opens its standby link to the room's node. */
const STANDBY_DELAY_MS = 1000;

/**
 * @typedef {import('./protocol.js').ClientMessage} ClientMessage
 * @typedef {import('./protocol.js').MediaMode} MediaMode
 * @typedef {import('./protocol.js').NodeGrant} NodeGrant
 * @typedef {import('./protocol.js').ParticipantId} ParticipantId
 * @typedef {import('./protocol.js').ParticipantTracks} ParticipantTracks
 * @typedef {import('./protocol.js').SignalPayload} SignalPayload
 * @typedef {import('./protocol.js').TrackInfo} TrackInfo
 * @typedef {import('./e2ee.js').E2ee} E2ee
 * @typedef {import('./media.js').LocalMedia} LocalMedia
 */

/**
 * The controller's events: name -> `detail`.
 * @typedef {object} MediaControllerEvents
 * @property {{mode: MediaMode['mode']}} mode a `media_mode` is being applied (none, p2p, sfu)
 * @property {{participant: ParticipantId, stream: MediaStream}} remote-stream show this stream
 *   for the participant (a P2P peer's, or one pulled from the node while the room is on it)
 * @property {{participant: ParticipantId}} remote-gone the participant's stream stopped (the
 *   direct call closed)
 * @property {{participant: ParticipantId, stream: MediaStream}} remote-screen show the
 *   participant's shared screen (large: the presenter view)
 * @property {{participant: ParticipantId}} remote-screen-gone their screen stopped arriving
 * @property {undefined} remotes-gone the node link closed: the page detaches every remote tile
 *   (a direct call's too; its stream comes back with the next `remote-stream`) and ends every
 *   shared screen's tile
 * @property {{state: RTCPeerConnectionState}} connection the state of the connection the media
 *   goes through (the direct call's, or the node's while the room is on it; never a standby's)
 * @property {{step: string}} mark a step of joining happened (for `timings.marks`)
 * @property {{text: string | null}} problem the media node link failed in a way the person must
 *   hear of (a refused call, a connection that never came up), or (`null`) it is up again
 */

/** A node connection not up this long after its session opened is reported to the person. */
const NODE_CONNECT_PATIENCE_MS = 10000;

/** @extends {Emitter<MediaControllerEvents>} */
export class MediaController extends Emitter {
  /** @param {LocalMedia} media the camera and microphone every connection sends */
  constructor(media) {
    super();
    this.media = media;
    /** @type {(msg: ClientMessage) => void} the room socket; set by `begin` */
    this.send = () => {};
    /** @type {E2ee | null} */
    this.e2ee = null;
    /** @type {RTCIceServer[]} the meeting's, from `welcome` */
    this.iceServers = [];
    /** @type {P2PLink | null} the direct call, while the room is P2P */
    this.link = null;
    /** @type {SfuLink | null} the link to the room's node (a standby while the room is P2P) */
    this.sfu = null;
    /** @type {SfuLink | null} a link the pre-join page built and prepared, not yet used */
    this.warm = null;
    /** @type {Map<ParticipantId, {session_id: string, tracks: TrackInfo[]}>} what others publish on the node */
    this.remoteTracks = new Map();
    this.refreshTimer = 0;
    /** @type {MediaMode['mode']} */
    this.mode = 'none';
    /**
     * The last media_mode: a slow step gives up when a newer one came, a failed node connection
     * is rebuilt for it.
     * @type {MediaMode | null}
     */
    this.lastMedia = null;
    /** @type {MediaStreamTrack | null} our shared screen, sent beside the camera on every link */
    this.sharedVideo = null;
    /** audio-only mode: no link receives video */
    this.videoOff = false;
    /** The room moves to another node (`node_moved`): open the new link before closing the old. */
    this.handover = false;
    /** @type {SfuLink | null} the old node's link while a handover runs (failover.js) */
    this.retiring = null;
  }

  /**
   * Pre-join: build the media-node connection with its offer while the user looks at the
   * preview (the first RTCPeerConnection of a page costs 50-200 ms, which a join into a room of
   * three or more would otherwise wait for). It sends nothing and talks to no one until the
   * meeting uses it. With E2EE it gets its frame transforms now (Chromium ignores them once an
   * offer was made); building again replaces the previous one (and ends its E2EE worker).
   * @param {E2ee | null} e2ee
   */
  prepare(e2ee) {
    this.warm?.e2ee?.close();
    this.warm?.close();
    this.warm = new SfuLink({ iceServers: [], e2ee });
    this.warm.prepare(this.media.stream);
  }

  /**
   * Joining: how to reach the room, and the E2EE every connection uses from now on.
   * @param {{send: (msg: ClientMessage) => void, e2ee: E2ee | null}} opts
   */
  begin({ send, e2ee }) {
    this.send = send;
    this.e2ee = e2ee;
  }

  /**
   * `welcome`: the meeting's ICE servers and the tracks others publish, then its media mode.
   * @param {import('./protocol.js').WelcomeMessage} msg
   */
  welcome(msg) {
    this.iceServers = msg.ice_servers;
    this.remoteTracks = new Map(msg.tracks.map((t) => [t.participant, { session_id: t.session_id, tracks: t.tracks }]));
    return this.apply(msg.media);
  }

  /**
   * `tracks`: a participant published on the node; pull them once our session is open.
   * @param {ParticipantTracks} msg
   */
  tracks(msg) {
    this.remoteTracks.set(msg.participant, { session_id: msg.session_id, tracks: msg.tracks });
    if (this.sfu?.sessionId) this.sfu.pull(msg.participant, msg.session_id, msg.tracks);
  }

  /**
   * `signal`: an SDP or ICE payload from the P2P peer.
   * @param {{from: ParticipantId, payload: SignalPayload}} msg
   */
  signal(msg) {
    if (this.link?.peer === msg.from) return this.link.receive(msg.payload);
    return undefined;
  }

  /** @param {ParticipantId} id a participant who left: stop pulling them */
  left(id) {
    this.remoteTracks.delete(id);
    this.sfu?.drop(id);
  }

  /**
   * The room socket closed. While the page may resume (not `final`), every connection stays:
   * media goes on through the node or the direct call. Otherwise they all go.
   * @param {boolean} final
   */
  disconnected(final) {
    if (!final) return;
    this.closeSfu();
    this.warm?.close();
    this.warm = null;
    this.link?.close();
    this.link = null;
  }

  /** Leaving: every connection closes. */
  close() {
    this.link?.close();
    this.closeSfu();
  }

  /**
   * `media_mode` (and `welcome`'s): open, keep, switch or close connections for it.
   * @param {MediaMode} media
   */
  async apply(media) {
    this.mode = media.mode;
    this.lastMedia = media;
    this.emit('mode', { mode: media.mode });
    const keepP2p = media.mode === 'p2p' && this.link?.peer === media.peer;
    if (!keepP2p && this.link) {
      this.emit('remote-gone', { participant: this.link.peer });
      this.emit('remote-screen-gone', { participant: this.link.peer });
      this.link.close();
      this.link = null;
    }
    // In P2P the room's node is a standby: connected, tracks pushed and pulled, nothing sent, so
    // that a third join only turns senders on.
    const node = media.mode === 'sfu' ? media.node : media.mode === 'p2p' ? media.standby ?? null : null;
    const sending = media.mode === 'sfu';
    if (this.sfu?.grant && node && this.sfu.grant.node_id === node.node_id) {
      this.sfu.refresh(node);
      this.scheduleRefresh(node);
    } else if (this.sfu && this.handover && this.sfu.grant && node && sending) {
      // Moved to another node: the old link plays on until the new one shows everyone.
      const old = this.sfu;
      this.sfu = null;
      retire(this, old);
    } else if (this.sfu && (this.sfu.grant || (media.mode !== 'sfu' && !node))) {
      // Keep a link that is built but not yet on a node while the room still wants one.
      this.closeSfu();
    }
    if (node) this.handover = false;
    if (media.mode === 'p2p' && !keepP2p) await this.startP2p(media);
    if (!sending && !node) return;
    if (!sending && !this.sfu) {
      // The standby waits until the direct call is up and its first frames are shown (it would
      // compete with them for the main thread and the CPU).
      await this.link?.connected(3000);
      await new Promise((resolve) => setTimeout(resolve, STANDBY_DELAY_MS));
      if (this.lastMedia !== media) return; // a newer media_mode came meanwhile
    }
    // The room moves to a node the edge may still be assigning (it follows in another
    // media_mode): build the connection and its offer meanwhile.
    this.sfu ??= this.buildSfu(sending);
    const sfu = this.sfu;
    const applied = sfu.setSending(sending);
    // On the node, the remote tiles switch from the P2P streams to those pulled from it.
    if (sending) {
      for (const [participant, stream] of sfu.pulledStreams()) this.emit('remote-stream', { participant, stream });
      for (const [participant, stream] of sfu.pulledScreens()) this.emit('remote-screen', { participant, stream });
      if (sfu.grant) this.emit('connection', { state: sfu.pc.connectionState });
    }
    if (node && !sfu.grant) await this.startSfu(sfu, node);
    await applied;
  }

  /** @param {{peer: ParticipantId, initiator: boolean}} media */
  async startP2p(media) {
    const link = new P2PLink({
      e2ee: this.e2ee,
      peer: media.peer,
      initiator: media.initiator,
      iceServers: this.iceServers,
      send: (payload) => this.send({ type: 'signal', to: media.peer, payload }),
    });
    link.on('track', ({ stream }) => this.emit('remote-stream', { participant: media.peer, stream }));
    link.on('screen', ({ stream }) => { if (this.link === link) this.emit('remote-screen', { participant: media.peer, stream }); });
    link.on('screen-gone', () => { if (this.link === link) this.emit('remote-screen-gone', { participant: media.peer }); });
    link.videoOff = this.videoOff;
    link.on('state', (state) => this.emit('mark', { step: `p2p:${state}` }));
    link.on('state', (state) => this.emit('connection', { state }));
    // Both pages reach the edge but not each other: the room moves the pair to its node.
    link.on('stuck', () => { if (this.link === link) this.send({ type: 'direct_failed' }); });
    this.link = link;
    await link.start(this.media.stream, this.sharedVideo);
  }

  /**
   * A link to the media node, its offer in the making; `startSfu` opens it on a node.
   * @param {boolean} sending false: a standby link next to a P2P call
   */
  buildSfu(sending) {
    /** @param {string} step */
    const mark = (step) => this.emit('mark', { step });
    // The link the pre-join page built (the first connection of a page is the slow one), if it can
    // take on this meeting's ICE servers and E2EE.
    let sfu = this.warm;
    this.warm = null;
    if (sfu && !sfu.adopt({ iceServers: this.iceServers, e2ee: this.e2ee, mark })) {
      sfu.close();
      sfu = null;
    }
    sfu ??= new SfuLink({ iceServers: this.iceServers, e2ee: this.e2ee, mark, sending });
    const link = sfu;
    link.on('track', ({ participant, stream }) => {
      // A standby's pulls stay off screen until the room moves to the node.
      if (this.mode !== 'sfu') return;
      if (!this.retiring) return this.emit('remote-stream', { participant, stream });
      // Handing over from another node: switch the tile once the new stream decodes.
      firstFrame(link.pc, stream).then(() => {
        if (this.sfu === link && this.mode === 'sfu') this.emit('remote-stream', { participant, stream });
      });
      return undefined;
    });
    // The connection indicator follows the link media goes through (not a standby's).
    link.on('state', (state) => { if (this.mode === 'sfu' && this.sfu === link) this.emit('connection', { state }); });
    link.on('error', (err) => {
      console.warn('media node:', err);
      const why = err instanceof Error ? err.message : String(err);
      this.emit('problem', { text: `The media server refused this browser's connection (${why}). Others may not see or hear you once the meeting has three people.` });
    });
    link.on('state', (state) => { if (state === 'connected') this.emit('problem', { text: null }); });
    link.on('state', (state) => mark(`sfu:${state}`));
    link.on('state', (state) => {
      // The node lost this connection (it restarted, or the network changed for good): open a
      // new one for the current mode (a new session; the others pull its tracks again).
      if (state !== 'failed' || this.sfu !== link || !this.lastMedia) return;
      this.closeSfu();
      this.apply(this.lastMedia).catch((e) => console.error(e));
    });
    link.on('screen', ({ participant, stream }) => { if (this.mode === 'sfu' && this.sfu === link) this.emit('remote-screen', { participant, stream }); });
    link.on('screen-gone', ({ participant }) => { if (this.mode === 'sfu' && this.sfu === link) this.emit('remote-screen-gone', { participant }); });
    link.on('ice', (state) => mark(`sfu:ice-${state}`));
    link.videoOff = this.videoOff;
    link.prepare(this.media.stream);
    // Built while the screen is shared (e.g. the standby, a second after the direct call): the
    // screen goes in its opening offer.
    if (this.sharedVideo) link.shareScreen(this.sharedVideo);
    return link;
  }

  /** @param {SfuLink} sfu @param {NodeGrant} node */
  async startSfu(sfu, node) {
    this.scheduleRefresh(node);
    const tracks = await sfu.start(node, this.media.stream, [...this.remoteTracks]);
    if (this.sfu !== sfu || !sfu.sessionId) return;
    setTimeout(() => {
      if (this.sfu === sfu && sfu.pc.connectionState !== 'connected') {
        this.emit('problem', { text: 'The connection to the media server did not come up: with three or more people, others may not see or hear you.' });
      }
    }, NODE_CONNECT_PATIENCE_MS);
    this.emit('mark', { step: 'sfu:pushed' });
    this.send({ type: 'tracks', session_id: sfu.sessionId, tracks: tracks || [] });
    for (const [participant, t] of this.remoteTracks) sfu.pull(participant, t.session_id, t.tracks);
  }

  /** Ask for a fresh node grant before this one expires. @param {NodeGrant} node */
  scheduleRefresh(node) {
    clearTimeout(this.refreshTimer);
    const wait = Math.max(5000, (node.expires_at - Date.now()) * 0.8);
    this.refreshTimer = setTimeout(() => this.send({ type: 'refresh_node_grant' }), wait);
  }

  closeSfu() {
    clearTimeout(this.refreshTimer);
    this.retiring?.close();
    this.retiring = null;
    if (!this.sfu) return;
    this.emit('remotes-gone', undefined);
    this.sfu.close();
    this.sfu = null;
  }

  /**
   * Share a screen beside the camera on every connection: the direct call (renegotiated) and the
   * node link (pushed, then announced to the room; a standby's too, so that a move to the node
   * keeps it). Links built later share it from their start.
   * @param {MediaStreamTrack} track
   */
  async shareScreen(track) {
    this.sharedVideo = track;
    const sfu = this.sfu;
    await Promise.all([this.link?.shareScreen(track), sfu && this.announce(sfu, sfu.shareScreen(track))]);
  }

  /** Stop sharing the screen on every connection; the camera goes on as it was. */
  async stopScreen() {
    this.sharedVideo = null;
    const sfu = this.sfu;
    await Promise.all([this.link?.stopScreen(), sfu && this.announce(sfu, sfu.stopScreen())]);
  }

  /**
   * Tell the room what the node link publishes once it changed (a screen pushed or closed).
   * @param {SfuLink} sfu @param {Promise<TrackInfo[] | undefined>} changed
   */
  async announce(sfu, changed) {
    const tracks = await changed;
    if (tracks && sfu === this.sfu && sfu.sessionId) this.send({ type: 'tracks', session_id: sfu.sessionId, tracks });
  }

  /**
   * Audio-only mode (`on` false): no connection receives video (the node link closes its video
   * pulls, the direct call stops receiving video); our own audio and video still go out. Back on,
   * video is pulled and received again.
   * @param {boolean} on
   */
  async setVideoReceive(on) {
    this.videoOff = !on;
    if (this.warm) this.warm.videoOff = !on;
    this.sfu?.setVideoReceive(on);
    await this.link?.setVideoReceive(on);
  }

  /**
   * Send `track` as our microphone or camera (another device) on every connection: the direct
   * call, the node link (or its standby) and a pre-join link not yet used.
   * @param {'audio' | 'video'} kind @param {MediaStreamTrack} track
   */
  async replaceTrack(kind, track) {
    await Promise.all([this.link?.replaceTrack(kind, track), this.sfu?.replaceTrack(kind, track), this.warm?.replaceTrack(kind, track)]);
  }

  /**
   * Every RTCPeerConnection of this page, by what it connects to (for tests and diagnostics).
   * @returns {[string, RTCPeerConnection][]}
   */
  peerConnections() {
    /** @type {[string, RTCPeerConnection][]} */
    const out = [];
    if (this.link) out.push([this.link.peer, this.link.pc]);
    if (this.sfu) out.push(['sfu', this.sfu.pc]);
    return out;
  }
}
