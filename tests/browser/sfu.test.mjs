// Three pages move to the media node and each decodes the two others; when one leaves, the other
// two return to P2P and keep decoding.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEdge, launchBrowser, joinPage, waitForVideo, uniqueRoom, artifacts, senderReportsViaNode } from './lib.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

test('three participants go through the media node, then back to P2P', async () => {
  const room = uniqueRoom('sfu');
  const pages = [];
  for (const name of ['Ada', 'Bob', 'Cy']) pages.push(await joinPage(browser, edge.url, room, { name }));
  for (const page of pages) {
    await page.waitForFunction(() => document.getElementById('mode-badge').textContent === 'Via server', null, { timeout: 15000 });
  }
  for (const page of pages) {
    const stats = await waitForVideo(page, 2, 30000);
    assert.ok(Object.keys(stats).some((k) => k.startsWith('sfu:')), `decoding via the node: ${JSON.stringify(stats)}`);
    // Only the node's link is left: the direct one closed when the room moved to the node.
    assert.deepEqual(await page.evaluate(() => /** @type {any} */ (window).edgemeet.peerConnections().map(([peer]) => peer)), ['sfu']);
  }
  await pages[0].screenshot({ path: join(artifacts, 'sfu-meeting.png') });
  // The node answers the publishers' transport-wide congestion control (the extension and
  // feedback negotiated, transport-cc feedback sent), so Chromium's own send-side estimate runs
  // on the node's link: availableOutgoingBitrate is there and grows past its 300 kbps start.
  const sendSide = (page) => page.evaluate(async () => {
    const pc = /** @type {any} */ (window).edgemeet.sfu.pc;
    const sdp = pc.remoteDescription?.sdp ?? '';
    const video = sdp.split('\r\nm=').find((m) => m.startsWith('video')) ?? '';
    let bitrate;
    (await pc.getStats()).forEach((/** @type {any} */ s) => {
      if (s.type === 'candidate-pair' && s.nominated && s.availableOutgoingBitrate !== undefined) bitrate = s.availableOutgoingBitrate;
    });
    return {
      extension: /a=extmap:\d+ http:\/\/www\.ietf\.org\/id\/draft-holmer-rmcat-transport-wide-cc-extensions-01/.test(video),
      feedback: /a=rtcp-fb:\d+ transport-cc/.test(video),
      bitrate,
    };
  });
  for (const page of pages) {
    let s = await sendSide(page);
    const first = s.bitrate;
    for (let i = 0; i < 50 && !(s.bitrate > 300000); i++) {
      await new Promise((done) => setTimeout(done, 200));
      s = await sendSide(page);
    }
    assert.ok(s.extension && s.feedback, `transport-cc negotiated with the node: ${JSON.stringify(s)}`);
    assert.ok(s.bitrate > 300000, `send-side estimate towards the node grows (first ${first}): ${JSON.stringify(s)}`);
    console.log(`availableOutgoingBitrate towards the node: first ${first}, then ${s.bitrate}`);
  }
  // The node's sender reports reach each page for every stream it forwards (lip sync needs them;
  // the node sends them itself, one per stream and second).
  for (const page of pages) {
    let r = await senderReportsViaNode(page);
    for (let i = 0; i < 30 && (r.missing.length || r.reported.length < 4); i++) {
      await new Promise((done) => setTimeout(done, 200));
      r = await senderReportsViaNode(page);
    }
    assert.deepEqual(r.missing, [], `streams without sender reports: ${JSON.stringify(r)}`);
    assert.ok(r.reported.filter((k) => k === 'video').length >= 2 && r.reported.filter((k) => k === 'audio').length >= 2, JSON.stringify(r));
  }

  await pages[2].click('#leave');
  for (const page of pages.slice(0, 2)) {
    await page.waitForFunction(() => document.getElementById('mode-badge').textContent === 'Direct', null, { timeout: 20000 });
    await waitForVideo(page, 1, 20000);
  }
  for (const page of pages) await page.context().close();
});

test('a call of two that outlasts the node\'s idle timeout still moves to the node at once', async () => {
  // The pair's standby sessions send no media: the node keeps them while they are connected.
  const quick = await startEdge({}, '[media_node]\nidle_timeout_secs = 2');
  try {
    const room = uniqueRoom('long-p2p');
    const pages = [];
    for (const name of ['Ada', 'Bob']) pages.push(await joinPage(browser, quick.url, room, { name }));
    for (const page of pages) {
      await page.waitForFunction(() => /** @type {any} */ (window).edgemeet?.sfu?.pc.connectionState === 'connected', null, { timeout: 20000 });
    }
    await pages[0].waitForTimeout(6000);
    assert.ok(!quick.logs.some((l) => /session closed.*idle/.test(l)), 'no standby session reaped');
    pages.push(await joinPage(browser, quick.url, room, { name: 'Cy' }));
    for (const page of pages) await waitForVideo(page, 2, 30000);
    await Promise.all(pages.map((p) => p.context().close()));
  } finally {
    quick.stop();
  }
});
