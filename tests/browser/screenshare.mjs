// Helpers for the screen-sharing and audio-only tests (Chromium and Firefox pages alike: every
// call is `page.evaluate(fn, arg)`).

/**
 * The inbound video of a tile, read from the receiver that carries the track its video element
 * plays: size, frames decoded, frame rate and bytes. `who` is a participant's name; `screen`
 * picks their screen's tile rather than their camera's; `peer` is the connection it came on
 * ('sfu' or the other participant's id). Null while the tile shows no video.
 * @returns {Promise<{width: number, height: number, frames: number, fps: number, bytes: number, peer: string} | null>}
 */
export function tileVideo(page, who, screen = false) {
  return page.evaluate(async ({ who, screen }) => {
    const m = /** @type {any} */ (window).edgemeet;
    const p = [...m.people.values()].find((x) => x.name === who);
    if (!p) return null;
    const tile = document.querySelector(`#grid > .tile[data-participant="${screen ? `screen:${p.id}` : p.id}"]`);
    const track = tile?.querySelector('video')?.srcObject?.getVideoTracks()[0];
    if (!track) return null;
    for (const [peer, pc] of m.peerConnections()) {
      const receiver = pc.getReceivers().find((r) => r.track === track);
      if (!receiver) continue;
      for (const s of (await receiver.getStats()).values()) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          return { width: s.frameWidth || 0, height: s.frameHeight || 0, frames: s.framesDecoded || 0, fps: s.framesPerSecond || 0, bytes: s.bytesReceived || 0, peer };
        }
      }
    }
    return null;
  }, { who, screen });
}

/**
 * Wait until `page` shows `who`'s screen decoding at least `minWidth` wide (`direct`: on the direct
 * call, not through the node); returns its figures.
 */
export async function waitScreen(page, who, minWidth, timeoutMs = 30000, direct = false) {
  const until = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < until) {
    last = await tileVideo(page, who, true);
    if (last && last.frames > 1 && last.width >= minWidth && (!direct || last.peer !== 'sfu')) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${who}'s screen not decoding at >= ${minWidth} px wide: ${JSON.stringify(last)}`);
}

/** Wait until `who`'s camera tile on `page` decodes more frames than now (it keeps playing). */
export async function cameraKeepsDecoding(page, who, timeoutMs = 15000) {
  const until = Date.now() + timeoutMs;
  let first = null;
  let last = null;
  while (Date.now() < until) {
    last = await tileVideo(page, who, false);
    if (last && first && last.frames > first.frames + 2) return last;
    if (last && !first) first = last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${who}'s camera tile does not decode: ${JSON.stringify({ first, last })}`);
}

/** The presenter view as `page` shows it: screen tiles (by whose) and the large tile. */
export function presenterView(page) {
  return page.evaluate(() => {
    const m = /** @type {any} */ (window).edgemeet;
    const name = (id) => m.people.get(id)?.name;
    const screens = [...document.querySelectorAll('#grid > .tile.screen')].map((t) => name(t.dataset.participant.slice('screen:'.length)));
    const featured = document.querySelector('#grid.stage > .tile.featured');
    const labels = [...document.querySelectorAll('#grid > .tile.screen .label')].map((l) => l.textContent);
    return { screens, labels, staged: document.getElementById('grid').classList.contains('stage'), featured: featured?.dataset.participant?.startsWith('screen:') ? 'screen' : featured ? 'camera' : null };
  });
}

/** Wait until `page` shows no shared screen and its presenter view ended. */
export async function waitNoScreen(page, timeoutMs = 10000) {
  const until = Date.now() + timeoutMs;
  let v = null;
  while (Date.now() < until) {
    v = await presenterView(page);
    if (!v.screens.length && !v.staged) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the presenter view did not end: ${JSON.stringify(v)}`);
}

/** Labels of the video tracks a page sends (every connection's senders that hold one). */
export function sentVideo(page) {
  return page.evaluate(() => {
    const m = /** @type {any} */ (window).edgemeet;
    return m.peerConnections().flatMap(([, pc]) => pc.getSenders().map((s) => s.track)).filter((t) => t?.kind === 'video').map((t) => t.label);
  });
}

/** Bytes of video and audio received, and audio samples played out, over every connection. */
export function received(page) {
  return page.evaluate(async () => {
    const m = /** @type {any} */ (window).edgemeet;
    const out = { video: 0, audio: 0, audioPackets: 0, videoFrames: 0 };
    for (const [, pc] of m.peerConnections()) {
      for (const s of (await pc.getStats()).values()) {
        if (s.type !== 'inbound-rtp') continue;
        if (s.kind === 'video') { out.video += s.bytesReceived || 0; out.videoFrames += s.framesDecoded || 0; }
        if (s.kind === 'audio') { out.audio += s.bytesReceived || 0; out.audioPackets += s.packetsReceived || 0; }
      }
    }
    return out;
  });
}
