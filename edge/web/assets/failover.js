// Media-node failover on the page (issue 17). Two jobs:
// - Notice a dead node early: while the room is on its node, a link that receives nothing for
//   SILENT_MS (the node sends media and a sender report each second), or whose connection fails,
//   is reported to the edge (`node_unreachable`); the edge checks the node itself and, if it is
//   dead, moves the room (its heartbeats would tell it within 3 s anyway).
// - Move without a gap: on `node_moved` the page says so for a moment and opens its session on
//   the new node (the next `media_mode`) before closing the old one: each remote tile switches to
//   the new node's stream only once that stream decodes, and the old link closes LINGER_MS after
//   every tile has switched (others may still show what it publishes), or after HANDOVER_MAX_MS.
//   With a dead node the old link shows nothing anyway.
import { banner } from './ui.js';

/**
 * @typedef {import('./controller.js').MediaController} MediaController
 * @typedef {import('./sfu.js').SfuLink} SfuLink
 */

/** How often the node link's counters are read. */
const WATCH_MS = 250;
/** A node link that received nothing this long is reported. */
const SILENT_MS = 1200;
/** The same node is reported at most this often. */
const REPORT_EVERY_MS = 3000;
/** How long "Moved to another server" stays. */
const MOVED_SHOWN_MS = 4000;
/** The old link closes this long after a move at the latest. */
const HANDOVER_MAX_MS = 5000;
/**
 * The old link stays this long after every tile switched: it still publishes to the others,
 * some of whom may not have switched to this page's new stream yet.
 */
const LINGER_MS = 1500;
/** A new stream that shows no decoded frame this long is shown all the same. */
const FIRST_FRAME_MAX_MS = 3000;
const MOVED_TEXT = 'Moved to another server';
/** Shown while the edge finds no media server for the room (it keeps asking by itself). */
const WAITING_TEXT = 'Waiting for a media server…';

export class NodeFailover {
  /**
   * @param {MediaController} calls
   * @param {(msg: import('./protocol.js').ClientMessage) => void} send the room socket
   */
  constructor(calls, send) {
    this.calls = calls;
    this.send = send;
    /** @type {{link: SfuLink | null, bytes: number, since: number}} what the node link last received */
    this.seen = { link: null, bytes: -1, since: 0 };
    /** @type {Map<string, number>} node id -> when it was last reported */
    this.reported = new Map();
    this.movedTimer = 0;
    /** When the last move was announced (for the page's timings and tests). */
    this.movedAt = 0;
    this.timer = setInterval(() => { this.watch().catch(() => {}); }, WATCH_MS);
  }

  stop() {
    clearInterval(this.timer);
  }

  /** Read the node link's received bytes; report the node if they stopped. */
  async watch() {
    const link = this.calls.sfu;
    if (!link?.grant || !link.sessionId || this.calls.mode !== 'sfu' || link.closed) {
      this.seen = { link: null, bytes: -1, since: 0 };
      return;
    }
    const state = link.pc.connectionState;
    if (state === 'failed' || state === 'disconnected') return this.report(link);
    let bytes = 0;
    for (const s of (await link.pc.getStats()).values()) {
      if (s.type === 'transport') bytes += s.bytesReceived || 0;
    }
    const now = Date.now();
    if (this.seen.link !== link || bytes !== this.seen.bytes) {
      this.seen = { link, bytes, since: now };
      return;
    }
    // Connected once and silent since: the node (or the way to it) is gone.
    if (bytes > 0 && now - this.seen.since >= SILENT_MS) this.report(link);
  }

  /** @param {SfuLink} link */
  report(link) {
    const node = link.grant?.node_id;
    if (!node) return;
    const last = this.reported.get(node) || 0;
    if (Date.now() - last < REPORT_EVERY_MS) return;
    this.reported.set(node, Date.now());
    this.send({ type: 'node_unreachable', node_id: node });
  }

  /** `no_media_node`: the edge keeps looking; say so until a node takes the room. */
  waitingForNode() {
    banner(WAITING_TEXT);
  }

  /** A `media_mode` (a node took the room, or a mode change): the wait, if any, is over. */
  nodeFound() {
    if (document.getElementById('conn-banner')?.textContent === WAITING_TEXT) banner('');
  }

  /**
   * `node_moved`: say so for a moment; what was published on the old node is gone (new `tracks`
   * follow); the next `media_mode` opens the session on the new node, before the old one closes.
   * @param {'node_lost' | 'drain' | 'composer'} reason
   */
  moved(reason) {
    this.movedAt = Date.now();
    this.calls.remoteTracks.clear();
    this.calls.handover = true;
    banner(MOVED_TEXT);
    clearTimeout(this.movedTimer);
    this.movedTimer = setTimeout(() => {
      if (document.getElementById('conn-banner')?.textContent === MOVED_TEXT) banner('');
    }, MOVED_SHOWN_MS);
    console.info(`media moved to another server (${reason})`);
  }
}

/**
 * Hand the room's media over from `old` to the controller's new node link: `old` stays open (its
 * tiles keep playing) until every participant it showed has a decoding stream from the new link,
 * or HANDOVER_MAX_MS passed.
 * @param {MediaController} calls
 * @param {SfuLink} old
 */
export function retire(calls, old) {
  const waiting = new Set([...old.pulled.values()].map((p) => p.participant));
  calls.retiring = old;
  /** @type {() => void} */
  let unlisten = () => {};
  const done = () => {
    clearTimeout(timer);
    unlisten();
    if (calls.retiring === old) calls.retiring = null;
    old.close();
  };
  let timer = setTimeout(done, HANDOVER_MAX_MS);
  if (!waiting.size) return done();
  unlisten = calls.on('remote-stream', ({ participant }) => {
    waiting.delete(participant);
    if (waiting.size) return;
    unlisten();
    clearTimeout(timer);
    timer = setTimeout(done, LINGER_MS);
  });
  return undefined;
}

/**
 * Resolve once `stream`'s video decodes on `pc` (or it has no video, or FIRST_FRAME_MAX_MS
 * passed): a tile switched then shows no gap.
 * @param {RTCPeerConnection} pc @param {MediaStream} stream
 */
export async function firstFrame(pc, stream) {
  const until = Date.now() + FIRST_FRAME_MAX_MS;
  while (Date.now() < until && pc.connectionState !== 'closed') {
    // The stream's video track may come a moment after its audio.
    const video = stream.getVideoTracks()[0];
    const receiver = video && pc.getReceivers().find((r) => r.track === video);
    if (receiver) {
      for (const s of (await receiver.getStats()).values()) {
        if (s.type === 'inbound-rtp' && (s.framesDecoded || 0) > 0) return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
}
