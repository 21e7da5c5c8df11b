// Audio-only mode for the viewer (issue 18): from its button (or "A"), a page receives no video
// (video bytes stop rising within 2 s) while audio keeps arriving and its own camera still reaches
// the others; tiles show initials and say "video off (audio-only mode)"; off again, video decodes
// within 3 s. Directly (renegotiated: the peer stops sending video) and through the node (video
// pulls closed: the node sends none).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, waitForVideo, uniqueRoom } from './lib.mjs';
import { received, cameraKeepsDecoding } from './screenshare.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Turn audio-only mode on or off on `page` (by keyboard or button) and wait for the button. */
async function audioOnly(page, on, how) {
  if (how === 'key') await page.keyboard.press('a');
  else await page.click('#toggle-audio-only');
  await page.waitForFunction((v) => document.getElementById('toggle-audio-only').getAttribute('aria-pressed') === v, String(on));
}

/**
 * Audio-only on `viewer`: within 2 s its video bytes stop rising (then stay still for 3 s) while
 * its audio keeps arriving; its tiles say so; `others` still decode the viewer's camera. Off:
 * video decodes again within 3 s. Returns the figures.
 */
async function roundTrip(viewer, viewerName, others, how) {
  await audioOnly(viewer, true, how);
  await sleep(2000);
  const a = await received(viewer);
  await sleep(3000);
  const b = await received(viewer);
  assert.equal(b.video, a.video, `no video arrives in audio-only mode: ${JSON.stringify({ a, b })}`);
  assert.ok(b.audioPackets > a.audioPackets + 50, `audio keeps arriving: ${JSON.stringify({ a, b })}`);
  const tiles = await viewer.evaluate(() => [...document.querySelectorAll('#grid > .tile')]
    .filter((t) => !/\(you\)/.test(t.querySelector('.label').textContent))
    .map((t) => ({ label: t.querySelector('.label').textContent, initials: !!t.querySelector('.initials, img.avatar'), hidden: getComputedStyle(t.querySelector('video')).visibility === 'hidden' })));
  assert.ok(tiles.length >= 1 && tiles.every((t) => /video off \(audio-only mode\)/.test(t.label) && t.initials && t.hidden), JSON.stringify(tiles));
  // Its own camera still goes out.
  for (const page of others) await cameraKeepsDecoding(page, viewerName);
  const off = Date.now();
  await audioOnly(viewer, false, how);
  await waitForVideo(viewer, others.length, 3000);
  const back = Date.now() - off;
  const tilesAfter = await viewer.evaluate(() => [...document.querySelectorAll('#grid > .tile')].map((t) => t.querySelector('.label').textContent));
  assert.ok(tilesAfter.every((l) => !/audio-only/.test(l)), JSON.stringify(tilesAfter));
  return { videoBytesWhileOff: b.video - a.video, audioPacketsIn3s: b.audioPackets - a.audioPackets, videoBackMs: back };
}

test('audio-only mode: no video received, audio on, own video out; video back on a keyframe (direct, then via the node)', async () => {
  const room = uniqueRoom('audio-only');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  for (const page of [ada, bob]) await waitMode(page, 'Direct');
  await waitForVideo(bob, 1);
  // The help panel lists the shortcut; the button has a name.
  assert.match(await bob.evaluate(() => document.getElementById('shortcuts-list').textContent), /Audio-only mode/);
  assert.equal(await bob.evaluate(() => document.getElementById('toggle-audio-only').textContent.trim()), 'Audio only');
  const direct = await roundTrip(bob, 'Bob', [ada], 'button');

  // A third joins while Bob is in audio-only mode: through the node he pulls no video at all.
  await audioOnly(bob, true, 'key');
  const cy = await joinPage(browser, edge.url, room, { name: 'Cy' });
  await inMeeting(cy);
  for (const page of [ada, bob, cy]) await waitMode(page, 'Via server', 30000);
  await waitForVideo(ada, 2, 30000);
  await sleep(3000);
  const x = await received(bob);
  await sleep(2000);
  assert.equal((await received(bob)).video, x.video, 'joined the node in audio-only mode: no video arrives');
  await audioOnly(bob, false, 'key');
  await waitForVideo(bob, 2, 3000);
  const viaNode = await roundTrip(bob, 'Bob', [ada, cy], 'button');
  console.log('audio-only figures:', JSON.stringify({ direct, viaNode }));
  for (const page of [ada, bob, cy]) await page.context().close();
});
