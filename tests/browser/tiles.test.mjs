// Viewer-driven video through the media node (issue 18): the page tells the node how it shows each
// pulled video (tile-views.js -> `PUT /v1/sessions/{id}/tracks/view`). A hidden tab's tiles
// get no video packets (the node's count of what it sent stands still, the viewer's inbound-rtp
// too) and, shown again, decode again from a keyframe; a pinned, large tile gets a higher layer
// than a small one; the operator's `last_n` leaves the cameras beyond it as avatars, sent nothing.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, uniqueRoom } from './lib.mjs';

let browser;
before(async () => { browser = await launchBrowser(); });
after(async () => { await browser?.close(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const RANK = { q: 0, h: 1, f: 2 };

/** `size` pages join a room; resolves with the pages once each is "Via server", and their ids. */
async function room(edge, size, viewerScale = 1) {
  const name = uniqueRoom('tiles');
  const pages = [];
  for (let i = 0; i < size; i++) {
    pages.push(await joinPage(browser, edge.url, name, { name: `P${i}`, scale: i === size - 1 ? viewerScale : 1 }));
    await inMeeting(pages[i]);
  }
  for (const p of pages) await waitMode(p, 'Via server', 30000);
  const ids = await Promise.all(pages.map((p) => p.evaluate(() => /** @type {any} */ (window).edgemeet.me)));
  return { pages, ids };
}

/**
 * What `viewer` pulls of `from`'s camera: the node's side (packets sent, shown, forwarded layer)
 * and the browser's inbound-rtp of that track.
 */
function pullOf(viewer, from) {
  return viewer.evaluate(async (who) => {
    const m = /** @type {any} */ (window).edgemeet;
    const v = m.sfu.pulledVideos().find((x) => x.participant === who && x.source !== 'screen');
    if (!v) return null;
    const state = await m.sfu.api('GET', `/sessions/${m.sfu.sessionId}`);
    const t = state.tracks.find((x) => x.location === 'remote' && x.mid === v.mid) || {};
    const tr = m.sfu.pc.getTransceivers().find((x) => x.mid === v.mid);
    let inbound = { packets: 0, frames: 0, keyframes: 0, height: 0 };
    for (const s of (await tr.receiver.getStats()).values()) {
      if (s.type === 'inbound-rtp') inbound = { packets: s.packetsReceived || 0, frames: s.framesDecoded || 0, keyframes: s.keyFramesDecoded || 0, height: s.frameHeight || 0 };
    }
    return { mid: v.mid, sent: t.packetsSent ?? -1, shown: t.shown, rid: t.forwarding?.rid ?? null, ...inbound };
  }, from);
}

/** Polls `f` every 100 ms until it returns something truthy or `ms` pass; its last value. */
async function until(ms, f) {
  const end = Date.now() + ms;
  let v;
  while (Date.now() < end) {
    v = await f();
    if (v) return v;
    await sleep(100);
  }
  return v;
}

test('a hidden tab gets no video and comes back from a keyframe; a pinned tile gets a higher layer than a small one', async () => {
  const edge = await startEdge();
  try {
    // Cameras at 640x360: two layers flow (q 90 and h 180 pixels high). The viewer's page is
    // zoomed out to 50 % (half a device pixel per CSS pixel), so a small tile needs q.
    const { pages, ids } = await room(edge, 3, 0.5);
    const viewer = pages[2];
    for (const id of ids.slice(0, 2)) {
      assert.ok(await until(20000, async () => (await pullOf(viewer, id))?.frames > 30), `the viewer decodes ${id}'s video first`);
    }

    // Speaker view with P0 pinned: P0 large (it needs more than its 180-pixel h: h, the best
    // that flows), P1 a small tile in the strip (about 80 device pixels: q).
    await viewer.click(`#grid > .tile[data-participant="${ids[0]}"] button.pin`);
    /** @type {any} */
    let seen = null;
    const layers = await until(15000, async () => {
      const [big, small] = [await pullOf(viewer, ids[0]), await pullOf(viewer, ids[1])];
      seen = { big, small };
      return big?.rid && small?.rid && RANK[big.rid] > RANK[small.rid] ? { big: big.rid, small: small.rid } : null;
    });
    if (!layers) console.log(`last seen: ${JSON.stringify(seen)}; views sent: ${await viewer.evaluate(() => JSON.stringify([.../** @type {any} */ (window).edgemeet.sfu.viewsSent]))}`);
    const sizes = await viewer.evaluate(() => [...document.querySelectorAll('#grid > .tile')].map((t) => Math.round(t.getBoundingClientRect().height)));
    console.log(`pinned tile: ${JSON.stringify(layers)}; tile heights ${JSON.stringify(sizes)} px`);
    assert.ok(layers, 'the pinned (large) tile gets a higher layer than the small one');
    await sleep(1500);
    const [big, small] = [await pullOf(viewer, ids[0]), await pullOf(viewer, ids[1])];
    assert.ok(RANK[big.rid] > RANK[small.rid], `and keeps it: ${big.rid} over ${small.rid}`);
    assert.ok(big.height > small.height, `the large tile decodes the taller picture (${big.height} > ${small.height} px)`);
    // Unpinned: back to the grid.
    await viewer.click(`#grid > .tile[data-participant="${ids[0]}"] button.pin`);
    await viewer.waitForFunction(() => !document.getElementById('grid').classList.contains('stage'));

    // The tab hidden. Headless Chromium keeps every tab visible (a tab brought in front of it
    // leaves it `visible`), and the page's grid squeezes its rows rather than scroll, so the
    // browser's signal is played here: `visibilityState` reads `hidden` and `visibilitychange`
    // fires, as when a person switches tabs; from there on it is the page's own path.
    const off = ids[0];
    await viewer.evaluate(() => {
      Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    const hidden = await until(5000, async () => {
      const p = await pullOf(viewer, off);
      return p?.shown === false ? p : null;
    });
    assert.ok(hidden, 'the node hears that the tile is not shown');
    assert.equal((await pullOf(viewer, ids[1]))?.shown, false, 'nor the other: the whole tab is hidden');
    await sleep(500);
    const before = await pullOf(viewer, off);
    await sleep(2000);
    const still = await pullOf(viewer, off);
    console.log(`hidden tab, over 2 s: node sent ${still.sent - before.sent} packets, viewer received ${still.packets - before.packets}, decoded ${still.frames - before.frames} frames`);
    assert.equal(still.sent, before.sent, 'the node sends a hidden tile no video packet');
    assert.equal(still.packets, before.packets, "the viewer's inbound-rtp for it stands still");

    // The tab shown again: frames decoded rise again, from a keyframe.
    await viewer.evaluate(() => {
      delete /** @type {any} */ (document).visibilityState;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    const t0 = Date.now();
    const back = await until(5000, async () => {
      const p = await pullOf(viewer, off);
      return p && p.frames > still.frames ? p : null;
    });
    const took = Date.now() - t0;
    assert.ok(back, 'the tile decodes again once shown');
    console.log(`shown again: frames decoded rise after ${took} ms (target ~1 s), keyframes decoded +${back.keyframes - still.keyframes}`);
    assert.ok(back.keyframes > still.keyframes, 'it comes back from a keyframe');
    assert.ok(took < 3000, `back within 3 s (${took} ms)`);
    for (const p of pages) await p.context().close();
  } finally {
    edge.stop();
  }
});

test('last_n = 1: the viewer gets one camera, the other shows its avatar and is sent no video', async () => {
  const edge = await startEdge({}, (text) => text.replace('[edge]\n', '[edge]\nlast_n = 1\n'));
  try {
    const { pages, ids } = await room(edge, 3);
    const viewer = pages[2];
    // Nobody speaks (microphones off): which camera is kept does not change while measured.
    for (const p of pages.slice(0, 2)) {
      await p.locator('#grid').click({ position: { x: 3, y: 3 } });
      await p.keyboard.press('m');
    }
    // (An empty list is truthy: wait for a tile to be left out.)
    const capped = await until(20000, async () => {
      const list = await viewer.evaluate(() => [...document.querySelectorAll('#grid > .tile.last-n-paused')].map((t) => /** @type {HTMLElement} */ (t).dataset.participant));
      return list.length ? list : null;
    });
    assert.equal(capped?.length, 1, 'one of the two remote cameras is left out');
    const [out] = capped;
    const kept = ids.slice(0, 2).find((id) => id !== out);
    const label = await viewer.textContent(`#grid > .tile[data-participant="${out}"] .label`);
    assert.match(label || '', /video paused/);
    assert.ok(await until(5000, async () => (await pullOf(viewer, out))?.shown === false), 'the node hears it is not shown');
    await sleep(500);
    const [a, b] = [await pullOf(viewer, out), await pullOf(viewer, kept)];
    await sleep(2000);
    const [a2, b2] = [await pullOf(viewer, out), await pullOf(viewer, kept)];
    console.log(`last_n = 1 over 2 s: left out: node sent ${a2.sent - a.sent}, decoded ${a2.frames - a.frames}; kept: decoded ${b2.frames - b.frames}`);
    assert.equal(a2.sent, a.sent, 'no video packet for the camera beyond last_n');
    assert.ok(b2.frames - b.frames > 10, 'the camera within last_n keeps decoding');
    for (const p of pages) await p.context().close();
  } finally {
    edge.stop();
  }
});

test('dynacast: a camera layer no viewer needs is not encoded, and is again once a pinned tile needs it', async () => {
  const edge = await startEdge();
  try {
    const name = uniqueRoom('dynacast');
    // The publisher's camera at 1280x720: three layers (q 180, h 360, f 720 pixels high). The
    // viewers' tiles in a grid of three need h at most.
    const pub = await joinPage(browser, edge.url, name, { name: 'P0', lowres: false });
    await inMeeting(pub);
    const pages = [pub];
    for (let i = 1; i < 3; i++) {
      pages.push(await joinPage(browser, edge.url, name, { name: `P${i}` }));
      await inMeeting(pages[i]);
    }
    for (const p of pages) await waitMode(p, 'Via server', 30000);
    const joined = Date.now();
    const id = await pub.evaluate(() => /** @type {any} */ (window).edgemeet.me);
    const viewer = pages[2];
    /** The camera's encodings as the publisher's page set them, and what each encoded. */
    const camera = () => pub.evaluate(async () => {
      const s = /** @type {any} */ (window).edgemeet.sfu.videoSender;
      /** @type {Record<string, {active: boolean, frames: number, height: number}>} */
      const out = {};
      for (const e of s.getParameters().encodings) out[e.rid] = { active: e.active, frames: 0, height: 0 };
      for (const r of (await s.getStats()).values()) {
        if (r.type === 'outbound-rtp' && out[r.rid]) Object.assign(out[r.rid], { frames: r.framesEncoded || 0, height: r.frameHeight || 0 });
      }
      return out;
    });

    const off = await until(25000, async () => {
      const c = await camera();
      return c.f && !c.f.active ? c : null;
    });
    assert.ok(off, `f is turned off: ${JSON.stringify(await camera())}`);
    const offAfter = Date.now() - joined;
    await sleep(500);
    const a = await camera();
    const [va, vb] = [await pullOf(viewer, id), await pullOf(pages[1], id)];
    await sleep(2000);
    const b = await camera();
    const [va2, vb2] = [await pullOf(viewer, id), await pullOf(pages[1], id)];
    console.log(`f off ${(offAfter / 1000).toFixed(1)} s after all were in; over 2 s encoded q ${b.q.frames - a.q.frames}, h ${b.h.frames - a.h.frames}, f ${b.f.frames - a.f.frames} frames; viewers decoded ${va2.frames - va.frames} and ${vb2.frames - vb.frames}`);
    assert.equal(b.f.frames, a.f.frames, 'the publisher encodes no f frame');
    assert.ok(b.h.frames - a.h.frames > 10 && b.q.frames - a.q.frames > 10, 'q and h go on');
    assert.ok(va2.frames - va.frames > 10 && vb2.frames - vb.frames > 10, 'both viewers keep decoding');

    // One viewer pins the publisher: its tile, about 600 pixels high, needs f.
    await viewer.click(`#grid > .tile[data-participant="${id}"] button.pin`);
    const pinned = Date.now();
    const on = await until(10000, async () => {
      const c = await camera();
      return c.f.active && c.f.frames > b.f.frames ? c : null;
    });
    const onAfter = Date.now() - pinned;
    assert.ok(on, 'f is encoded again');
    const sharp = await until(10000, async () => {
      const p = await pullOf(viewer, id);
      return p?.rid === 'f' && p.height >= 700 ? p : null;
    });
    const sharpAfter = Date.now() - pinned;
    console.log(`pinned: f encoded again after ${onAfter} ms; the viewer decodes ${sharp?.height ?? '?'} pixels high after ${sharpAfter} ms`);
    assert.ok(sharp, `the pinned tile gets f: ${JSON.stringify(await pullOf(viewer, id))}`);

    // Unpinned: nobody needs f, it goes off again.
    await viewer.click(`#grid > .tile[data-participant="${id}"] button.pin`);
    const unpinned = Date.now();
    assert.ok(await until(10000, async () => !(await camera()).f.active), 'f off again once unpinned');
    console.log(`unpinned: f off again after ${Date.now() - unpinned} ms`);

    // A fourth joins: the publisher's link renegotiates (it pulls the newcomer), which puts
    // Chromium's encodings back to active; the page turns f off again at once.
    await pub.evaluate(() => {
      const m = /** @type {any} */ (window).edgemeet;
      m.renegotiated = 0;
      m.sfu.pc.addEventListener('signalingstatechange', () => { if (m.sfu.pc.signalingState === 'stable') m.renegotiated++; });
    });
    pages.push(await joinPage(browser, edge.url, name, { name: 'P3' }));
    await inMeeting(pages[3]);
    const id3 = await pages[3].evaluate(() => /** @type {any} */ (window).edgemeet.me);
    assert.ok(await until(20000, async () => (await pullOf(pub, id3))?.frames > 0), 'the publisher decodes the newcomer');
    assert.ok(await pub.evaluate(() => /** @type {any} */ (window).edgemeet.renegotiated) > 0, 'its link renegotiated');
    const c = await camera();
    await sleep(2000);
    const c2 = await camera();
    console.log(`after a renegotiation: f active ${c2.f.active}, ${c2.f.frames - c.f.frames} f frames in 2 s`);
    assert.ok(!c2.f.active && c2.f.frames - c.f.frames <= 1, 'f stays off across a renegotiation');
    for (const p of pages) await p.context().close();
  } finally {
    edge.stop();
  }
});
