// Publishers whose simulcast layers stop: the node falls back to a layer that arrives, and every
// viewer keeps a picture. Pages on machines of their own (see netlab.mjs).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { joinPage, inMeeting, waitMode, uniqueRoom } from './lib.mjs';
import { NetLab, burnCpu } from './netlab.mjs';
import { remoteVideo, watchVideo } from './video.mjs';

/** @type {NetLab} */
let lab;
before(async () => {
  lab = new NetLab(2);
  await lab.startEdge();
  await lab.browser(0);
  await lab.browser(1);
});
after(async () => { await lab?.close(); });

async function room(size) {
  const room = uniqueRoom('layers');
  const pages = [];
  for (let i = 0; i < size; i++) {
    pages.push(await joinPage(lab.browsers[i % 2], lab.edge.url, room, { name: `P${i}` }));
    await inMeeting(pages[i]);
  }
  for (const p of pages) await waitMode(p, 'Via server');
  const deadline = Date.now() + 15000;
  for (const p of pages) assert.ok((await remoteVideo(p, size - 1, deadline)).ok, 'everyone decodes everyone first');
  return pages;
}

/** Turns the page's simulcast layers `rids` of its camera on the node link on or off. */
async function setLayers(page, rids, active) {
  await page.evaluate(async ([r, on]) => {
    const sender = /** @type {any} */ (window).edgemeet.sfu.videoSender;
    const params = sender.getParameters();
    for (const e of params.encodings) if (r.includes(e.rid)) e.active = on;
    await sender.setParameters(params);
  }, [rids, active]);
}

test('a publisher whose upper layers stop is still seen, on the layer left, without a stall over 1 s', async () => {
  const pages = await room(3);
  const viewers = pages.slice(1);
  const watching = viewers.map((p) => watchVideo(p, 2, 8000));
  await new Promise((r) => setTimeout(r, 1000));
  await setLayers(pages[0], ['h', 'f'], false);
  const watched = await Promise.all(watching);
  assert.deepEqual(watched.flatMap((w) => w.stalls), [], 'viewers keep decoding when h and f stop');
  // ...and when they come back, viewers go on (the node climbs back to h on its keyframe).
  const again = viewers.map((p) => watchVideo(p, 2, 6000));
  await setLayers(pages[0], ['h', 'f'], true);
  assert.deepEqual((await Promise.all(again)).flatMap((w) => w.stalls), [], 'viewers keep decoding when h and f resume');
  await Promise.all(pages.map((p) => p.context().close()));
});

test('four pages with their publishers short of CPU: every viewer keeps a picture', async () => {
  const pages = await room(4);
  // Two busy loops on two cores: Chromium's encoders and decoders get what is left, pause and
  // thin layers, and come back.
  const burn = burnCpu(2);
  try {
    const watched = await Promise.all(pages.map((p) => watchVideo(p, 3, 30000)));
    console.log(`worst gaps (ms): ${watched.map((w) => Math.max(...Object.values(w.streams).map((s) => s.maxGapMs))).join(", ")}`);
    const stalls = watched.map((w, i) => [i, w]).filter(([, w]) => w.stalls.length);
    assert.deepEqual(stalls.map(([i, w]) => `P${i}: ${w.stalls.join('; ')}`), [], 'every viewer keeps a picture while CPU is short');
  } finally {
    burn.stop();
  }
  await Promise.all(pages.map((p) => p.context().close()));
});
