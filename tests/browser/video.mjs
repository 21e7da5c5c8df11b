// What a person sees of the others' video, read from the page's receivers: which remote videos are
// decoding (frames advancing), and whether any stood still.
//
// A receiver counts when its transceiver currently receives (an m-line the node answered inactive,
// or one whose pull was closed, does not).

/**
 * Frames decoded per receiving video transceiver of every connection of the page, by `peer:mid`.
 * @param {import('playwright-core').Page} page
 * @returns {Promise<Record<string, {frames: number, packets: number, freezes: number, freezeS: number, lost: number, nacks: number, plis: number, rtx: number}>>}
 */
export async function receivingVideo(page) {
  return page.evaluate(async () => {
    const m = /** @type {any} */ (window).edgemeet;
    /** @type {Record<string, any>} */
    const out = {};
    for (const [peer, pc] of m.peerConnections()) {
      for (const t of pc.getTransceivers()) {
        if (t.receiver.track.kind !== 'video' || !/recv/.test(t.currentDirection || '')) continue;
        for (const s of (await t.receiver.getStats()).values()) {
          if (s.type !== 'inbound-rtp') continue;
          out[`${peer}:${t.mid}`] = {
            frames: s.framesDecoded || 0,
            packets: s.packetsReceived || 0,
            freezes: s.freezeCount || 0,
            freezeS: s.totalFreezesDuration || 0,
            lost: s.packetsLost || 0,
            nacks: s.nackCount || 0,
            plis: s.pliCount || 0,
            rtx: s.retransmittedPacketsReceived || 0,
            height: s.frameHeight || 0,
            fps: s.framesPerSecond || 0,
          };
        }
      }
    }
    return out;
  });
}

/**
 * Wait until `count` remote videos decode (frames rising between two readings), until `deadline`
 * (ms since the epoch).
 * @returns {Promise<{ok: boolean, rising: number, ms: number, streams: Record<string, any>}>}
 */
export async function remoteVideo(page, count, deadline) {
  const start = Date.now();
  let prev = await receivingVideo(page);
  let streams = prev;
  let rising = 0;
  do {
    await new Promise((r) => setTimeout(r, 250));
    streams = await receivingVideo(page);
    rising = Object.entries(streams).filter(([k, v]) => v.frames > (prev[k]?.frames ?? 0)).length;
    if (rising >= count) return { ok: true, rising, ms: Date.now() - start, streams };
    prev = streams;
  } while (Date.now() < deadline);
  return { ok: false, rising, ms: Date.now() - start, streams };
}

/**
 * Watch the page's remote videos for `durationMs`: the page samples its own stats every 100 ms, and
 * a video whose decoded frames stand still for more than `stallMs` is a stall. Also fails when
 * fewer than `count` videos were received. `exceptPaused`: a video the node paused for bandwidth
 * (its tile shows the avatar, "video paused") does not stand still meanwhile; its time paused is
 * counted (`pausedMs`).
 * @returns {Promise<{stalls: string[], streams: Record<string, {frames: number, maxGapMs: number, pausedMs: number}>, totals: Record<string, any>}>}
 */
export async function watchVideo(page, count, durationMs, stallMs = 1000, exceptPaused = false) {
  const streams = await page.evaluate(async ([duration, skipPaused]) => {
    const m = /** @type {any} */ (window).edgemeet;
    /** @type {Record<string, {frames: number, changedAt: number, maxGapMs: number, gapEndedAtMs: number, from: string, pausedMs: number}>} */
    const seen = {};
    const start = performance.now();
    let last = start;
    const end = start + duration;
    while (performance.now() < end) {
      const now = performance.now();
      for (const [peer, pc] of m.peerConnections()) {
        for (const t of pc.getTransceivers()) {
          if (t.receiver.track.kind !== 'video' || !/recv/.test(t.currentDirection || '')) continue;
          for (const s of (await t.receiver.getStats()).values()) {
            if (s.type !== 'inbound-rtp') continue;
            const key = `${peer}:${t.mid}`;
            const frames = s.framesDecoded || 0;
            // Whose video it is: the participant whose stream the receiver's track is in.
            const from = m.sfu?.pulledStreams().find(([, st]) => st.getTracks().includes(t.receiver.track))?.[0] ?? '';
            const e = seen[key] ??= { frames, changedAt: now, maxGapMs: 0, gapEndedAtMs: 0, from, pausedMs: 0 };
            const paused = skipPaused && m.grid?.pausedForBandwidth?.has(from);
            if (paused) e.pausedMs += Math.round(now - last);
            if (frames !== e.frames || paused) { e.frames = frames; e.changedAt = now; }
            if (now - e.changedAt > e.maxGapMs) {
              e.maxGapMs = Math.round(now - e.changedAt);
              e.gapEndedAtMs = Math.round(now - start);
            }
          }
        }
      }
      last = now;
      await new Promise((r) => setTimeout(r, 100));
    }
    return seen;
  }, [durationMs, exceptPaused]);
  const stalls = Object.entries(streams).filter(([, s]) => s.maxGapMs > stallMs)
    .map(([k, s]) => `${k} (from ${s.from.slice(0, 8)}) stood still ${s.maxGapMs} ms until ${s.gapEndedAtMs} ms into the watch`);
  if (Object.keys(streams).length < count) stalls.push(`only ${Object.keys(streams).length}/${count} videos received`);
  return { stalls, streams, totals: await receivingVideo(page) };
}

/**
 * Audio received on the page's connections, summed: samples played and concealed (Chromium's
 * NetEq), packets received and lost.
 * @param {import('playwright-core').Page} page
 */
export async function receivingAudio(page) {
  return page.evaluate(async () => {
    const m = /** @type {any} */ (window).edgemeet;
    const out = { samples: 0, concealed: 0, packets: 0, lost: 0 };
    for (const [, pc] of m.peerConnections()) {
      for (const t of pc.getTransceivers()) {
        if (t.receiver.track.kind !== 'audio' || !/recv/.test(t.currentDirection || '')) continue;
        for (const s of (await t.receiver.getStats()).values()) {
          if (s.type !== 'inbound-rtp') continue;
          out.samples += s.totalSamplesReceived || 0;
          out.concealed += s.concealedSamples || 0;
          out.packets += s.packetsReceived || 0;
          out.lost += s.packetsLost || 0;
        }
      }
    }
    return out;
  });
}

/** Share of audio samples concealed between two `receivingAudio` readings, in %. */
export function concealedPercent(before, after) {
  const samples = after.samples - before.samples;
  return samples > 0 ? (100 * (after.concealed - before.concealed)) / samples : NaN;
}

/** Sum of one field over the streams of a `receivingVideo` reading. */
export function sum(streams, field) {
  return Object.values(streams).reduce((n, s) => n + (s[field] || 0), 0);
}

/** The bearer token the lab's edge serves `/metrics` with (`EDGEMEET_METRICS_TOKEN`). */
export const METRICS_TOKEN = 'lab-metrics-token-0123456789';

/** The edge's metrics text (the embedded node's included). */
export async function metricsText(edgeUrl) {
  const res = await fetch(`${edgeUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  return res.text();
}

/** The node's counters (from the edge's `/metrics`), by name. */
export async function nodeCounters(edgeUrl) {
  const text = await metricsText(edgeUrl);
  /** @type {Record<string, number>} */
  const out = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^(edgemeet_node_[a-z_]+) (\d+)$/);
    if (m) out[m[1]] = Number(m[2]);
  }
  return out;
}

/** What changed between two `nodeCounters` readings (counters that moved only). */
export function counterDelta(before, after) {
  /** @type {Record<string, number>} */
  const out = {};
  for (const [k, v] of Object.entries(after)) if (v !== (before[k] ?? 0)) out[k.replace('edgemeet_node_', '')] = v - (before[k] ?? 0);
  return out;
}
