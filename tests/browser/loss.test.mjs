// A viewer on a lossy link (random drops on its machine's side, nftables): its videos keep
// decoding (NACKs answered on RTX from the node's buffer, keyframes when needed) and its audio
// stays whole (RED from the node); a link that drops everything shows "Waiting for video" tiles,
// not frozen frames, and video comes back when it recovers.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { NetLab } from './netlab.mjs';
import { roomViaNode } from './rooms.mjs';
import { remoteVideo, watchVideo, receivingAudio, receivingVideo, concealedPercent, sum, nodeCounters, counterDelta } from './video.mjs';

/** @type {NetLab} */
let lab;
before(async () => {
  lab = new NetLab(2);
  await lab.startEdge();
  await lab.browser(0);
  await lab.browser(1);
});
after(async () => { await lab?.close(); });

/** Two publishers on machine 0, the viewer on machine 1 (its link is the lossy one). */
const room = () => roomViaNode(lab, 'loss', 3, (i) => (i < 2 ? 0 : 1));

test('5 % loss on a viewer\'s link: no video freeze over 1 s, audio concealment under 2 %, back at once after', async () => {
  const pages = await room();
  const viewer = pages[2];
  const audio0 = await receivingAudio(viewer);
  const video0 = await receivingVideo(viewer);
  const node0 = await nodeCounters(lab.edge.url);
  lab.setLoss(1, 5);
  let watched;
  try {
    watched = await watchVideo(viewer, 2, 30000);
  } finally {
    lab.setLoss(1, 0);
  }
  const audio1 = await receivingAudio(viewer);
  const video1 = await receivingVideo(viewer);
  const concealed = concealedPercent(audio0, audio1);
  console.log(`node during the loss: ${JSON.stringify(counterDelta(node0, await nodeCounters(lab.edge.url)))}`);
  const figures = {
    concealedPercent: Number(concealed.toFixed(2)),
    audioLost: audio1.lost - audio0.lost,
    videoLost: sum(video1, 'lost') - sum(video0, 'lost'),
    nacks: sum(video1, 'nacks') - sum(video0, 'nacks'),
    rtx: sum(video1, 'rtx') - sum(video0, 'rtx'),
    plis: sum(video1, 'plis') - sum(video0, 'plis'),
    maxGapMs: Math.max(...Object.values(watched.streams).map((s) => s.maxGapMs)),
  };
  console.log(`5 % loss, 30 s: ${JSON.stringify(figures)}`);
  assert.deepEqual(watched.stalls, [], `no video freeze over 1 s (${JSON.stringify(figures)})`);
  assert.ok(concealed < 2, `audio concealment ${concealed.toFixed(2)} % (${JSON.stringify(figures)})`);
  // Loss over: video goes on at once.
  const after = await remoteVideo(viewer, 2, Date.now() + 1000);
  assert.ok(after.ok, `video within 1 s after the loss stops: ${JSON.stringify(after.streams)}`);
  await Promise.all(pages.map((p) => p.context().close()));
});

test('a viewer whose link drops everything sees "Waiting for video", then video again', async () => {
  const pages = await room();
  const viewer = pages[2];
  const waiting = () => viewer.evaluate(() => [...document.querySelectorAll('.tile.waiting .status')].filter((e) => !(/** @type {HTMLElement} */ (e)).hidden).length);
  assert.equal(await waiting(), 0, 'no tile waits while video flows');
  lab.setLoss(1, 100);
  try {
    await viewer.waitForFunction(() => document.querySelectorAll('.tile.waiting').length === 2, null, { timeout: 5000 });
    const text = await viewer.textContent('.tile.waiting .status');
    assert.equal(text, 'Waiting for video…');
  } finally {
    lab.setLoss(1, 0);
  }
  const started = Date.now();
  await viewer.waitForFunction(() => document.querySelectorAll('.tile.waiting').length === 0, null, { timeout: 10000 });
  console.log(`video back ${Date.now() - started} ms after a 100 % loss ended`);
  await Promise.all(pages.map((p) => p.context().close()));
});
