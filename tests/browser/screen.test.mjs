// Screen sharing as a track of its own (issue 18): a 1920x1080 screen (Chromium's fake screen at
// 5 fps; cameras at `?lowres`) arrives at the viewers at the size it was sent, directly and through
// the node, with and without E2EE, while the sharer's camera keeps decoding in its own tile; the
// viewers show it large (the presenter view) and stop showing it when the share stops. A share
// begun in a call of two moves with the room to the node; one begun on the node reaches everyone.
// With E2EE from a passphrase and with automatic keys.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, waitForVideo, uniqueRoom, artifacts } from './lib.mjs';
import { waitScreen, cameraKeepsDecoding, presenterView, waitNoScreen, sentVideo } from './screenshare.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

/** The screen's width as sent: what Chromium's fake screen gives for the page's constraints. */
const SENT_WIDTH = 1920;

/** The page's console errors and warnings, on stderr (a failed negotiation says why there). */
function echoConsole(page, name) {
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') console.error(`[${name}] ${m.type()}: ${m.text()}`); });
  return page;
}

/** Click Share on `page` and wait until it says it shares. */
async function share(page, on) {
  await page.click('#toggle-screen');
  await page.waitForFunction((v) => document.getElementById('toggle-screen').getAttribute('aria-pressed') === v, String(on), { timeout: 10000 });
}

/**
 * `page` sends its camera and, while sharing, its screen: two tracks, neither in the other's
 * place (a stop takes a moment to reach every link: waited for).
 */
async function sendsBoth(page, sharing) {
  const until = Date.now() + 5000;
  let labels = await sentVideo(page);
  const ok = () => labels.some((l) => !l.startsWith('screen')) && labels.some((l) => l.startsWith('screen')) === sharing;
  while (!ok() && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 200));
    labels = await sentVideo(page);
  }
  assert.ok(ok(), `the camera${sharing ? ' and the screen go' : ' goes'} out, and nothing else: ${labels}`);
}

/** E2EE frames opened by `page` keep rising (with a passphrase). */
async function keepsDecrypting(page) {
  const count = () => page.evaluate(() => /** @type {any} */ (window).edgemeet.e2ee?.counts?.decrypted ?? 0);
  const first = await count();
  await page.waitForFunction((n) => (/** @type {any} */ (window).edgemeet.e2ee?.counts?.decrypted ?? 0) > n + 10, first, { timeout: 10000 });
}

/** @type {Record<string, object>} figures printed at the end */
const figures = {};

for (const e2ee of ['', 'a shared screen under one passphrase']) {
  test(`a shared screen arrives at full size beside the camera: direct, moved to the node, shared on the node${e2ee ? ', with E2EE' : ''}`, async () => {
    const room = uniqueRoom(e2ee ? 'screen-e2ee' : 'screen');
    const ada = echoConsole(await joinPage(browser, edge.url, room, { name: 'Ada', e2ee }), 'Ada');
    await inMeeting(ada);
    const bob = echoConsole(await joinPage(browser, edge.url, room, { name: 'Bob', e2ee }), 'Bob');
    await inMeeting(bob);
    for (const page of [ada, bob]) await waitMode(page, 'Direct');
    await waitForVideo(bob, 1);

    // Direct: Ada shares; Bob sees it large at the size it was sent, and her camera beside it.
    await share(ada, true);
    await sendsBoth(ada, true);
    const direct = await waitScreen(bob, 'Ada', SENT_WIDTH);
    assert.equal(direct.height, 1080, `direct: ${JSON.stringify(direct)}`);
    await cameraKeepsDecoding(bob, 'Ada');
    assert.deepEqual(await presenterView(bob), { screens: ['Ada'], labels: ["Ada's screen"], staged: true, featured: 'screen' });
    if (e2ee) await keepsDecrypting(bob);
    await bob.waitForTimeout(2000);
    figures[`direct${e2ee ? ' e2ee' : ''}`] = await waitScreen(bob, 'Ada', SENT_WIDTH);
    await bob.screenshot({ path: join(artifacts, `screen-presenter${e2ee ? '-e2ee' : ''}.png`) });

    // Stop: Bob's presenter view ends; Ada's camera keeps going out and decoding.
    await share(ada, false);
    await sendsBoth(ada, false);
    await waitNoScreen(bob);
    await cameraKeepsDecoding(bob, 'Ada');

    // Both share at once (either side offers; on a collision the initiator's offer wins and
    // the other offers again): each sees the other's screen, and both stops end both views.
    await Promise.all([share(ada, true), share(bob, true)]);
    await waitScreen(ada, 'Bob', SENT_WIDTH);
    await waitScreen(bob, 'Ada', SENT_WIDTH);
    await Promise.all([share(ada, false), share(bob, false)]);
    for (const page of [ada, bob]) await waitNoScreen(page);

    // Shared again in the call of two, then a third joins: the room moves to the node with it
    // (the standby pushed it already), and both viewers see it through the node.
    await share(ada, true);
    await waitScreen(bob, 'Ada', SENT_WIDTH);
    const cy = await joinPage(browser, edge.url, room, { name: 'Cy', e2ee });
    await inMeeting(cy);
    for (const page of [ada, bob, cy]) await waitMode(page, 'Via server', 30000);
    for (const page of [bob, cy]) {
      const viaNode = await waitScreen(page, 'Ada', SENT_WIDTH, 40000);
      assert.equal(viaNode.height, 1080, `via the node: ${JSON.stringify(viaNode)}`);
      await cameraKeepsDecoding(page, 'Ada');
      assert.deepEqual(await presenterView(page), { screens: ['Ada'], labels: ["Ada's screen"], staged: true, featured: 'screen' });
      // Only the node's link: the screen came through it.
      assert.deepEqual(await page.evaluate(() => /** @type {any} */ (window).edgemeet.peerConnections().map(([peer]) => peer)), ['sfu']);
    }
    if (e2ee) await keepsDecrypting(cy);
    await cy.waitForTimeout(2000);
    figures[`via node${e2ee ? ' e2ee' : ''}`] = await waitScreen(cy, 'Ada', SENT_WIDTH);

    // Stop through the node: every viewer's presenter view ends.
    await share(ada, false);
    for (const page of [bob, cy]) await waitNoScreen(page);
    await sendsBoth(ada, false);

    // Shared on the node: Cy shares; Ada and Bob see it, and stop ends it for both.
    await share(cy, true);
    for (const page of [ada, bob]) {
      await waitScreen(page, 'Cy', SENT_WIDTH, 30000);
      await cameraKeepsDecoding(page, 'Cy');
    }
    await share(cy, false);
    for (const page of [ada, bob]) await waitNoScreen(page);
    // Everyone still decodes both other cameras.
    for (const page of [ada, bob, cy]) await waitForVideo(page, 2, 20000);

    // Ada and Bob share on the node, then Cy leaves: the pair's new direct call carries both
    // screens from its first offer (whichever of them offers), their cameras beside them.
    await Promise.all([share(ada, true), share(bob, true)]);
    await waitScreen(ada, 'Bob', SENT_WIDTH);
    await waitScreen(bob, 'Ada', SENT_WIDTH);
    await cy.click('#leave');
    for (const page of [ada, bob]) await waitMode(page, 'Direct', 20000);
    await waitScreen(ada, 'Bob', SENT_WIDTH, 20000, true);
    await waitScreen(bob, 'Ada', SENT_WIDTH, 20000, true);
    await cameraKeepsDecoding(ada, 'Bob');
    await cameraKeepsDecoding(bob, 'Ada');
    await Promise.all([share(ada, false), share(bob, false)]);
    for (const page of [ada, bob]) await waitNoScreen(page);
    for (const page of [ada, bob, cy]) await page.context().close();
  });
}

/** A page with automatic E2EE (the box ticked, no passphrase: keys per person, e2ee-keys.js). */
async function joinAuto(room, name) {
  const context = await browser.newContext({ permissions: ['camera', 'microphone'], viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[page ${name}]`, err));
  await page.goto(`${edge.url}/${room}?lowres`);
  await page.waitForSelector('#prejoin:not([hidden])');
  await page.fill('#display-name', name);
  await page.check('#e2ee-toggle');
  await page.waitForFunction(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).srcObject);
  await page.click('#join');
  await inMeeting(page);
  return page;
}

test('a shared screen with automatic E2EE keys: directly, then through the node', async () => {
  const room = uniqueRoom('screen-auto');
  const ada = await joinAuto(room, 'Ada');
  const bob = await joinAuto(room, 'Bob');
  for (const page of [ada, bob]) await waitMode(page, 'Direct');
  await waitForVideo(bob, 1);
  await share(ada, true);
  await waitScreen(bob, 'Ada', SENT_WIDTH);
  await cameraKeepsDecoding(bob, 'Ada');
  const cy = await joinAuto(room, 'Cy');
  for (const page of [ada, bob, cy]) await waitMode(page, 'Via server', 30000);
  for (const page of [bob, cy]) {
    await waitScreen(page, 'Ada', SENT_WIDTH, 40000);
    await cameraKeepsDecoding(page, 'Ada');
  }
  await keepsDecrypting(cy);
  await share(ada, false);
  for (const page of [bob, cy]) await waitNoScreen(page);
  for (const page of [ada, bob, cy]) await page.context().close();
});

after(() => { console.log('received screen (width x height, fps):', JSON.stringify(figures)); });
