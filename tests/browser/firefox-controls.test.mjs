// Firefox beside Chromium, the everyday controls: chat both ways (with the unread badge), a
// Chromium page's screen share decoded in Firefox directly and through the node, and what Firefox
// lacks said on its page: headless Firefox has no screen to share (`getDisplayMedia` ->
// NotFoundError) and lists no speakers, so its Share button says why nothing happens and its
// Devices panel says why there is no speaker choice; its camera keeps going to the others.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, waitForVideo, uniqueRoom } from './lib.mjs';
import { launchFirefox, joinFirefoxPage, firefoxMode } from './firefox.mjs';

let edge;
let chromium;
let firefox;
before(async () => { edge = await startEdge(); chromium = await launchBrowser(); firefox = await launchFirefox(); });
after(async () => { await firefox?.close(); await chromium?.close(); edge?.stop(); });

/** The labels of the video tracks a page sends (every connection's senders). */
const sentVideo = (page) => page.evaluate(() => {
  const m = /** @type {any} */ (window).edgemeet;
  return m.peerConnections().flatMap(([, pc]) => pc.getSenders().map((s) => s.track)).filter((t) => t?.kind === 'video').map((t) => t.label);
});

test('Chromium and Firefox: chat both ways, a screen share seen in Firefox, what Firefox cannot do said', async () => {
  const room = uniqueRoom('fox-controls');
  const cleo = await joinPage(chromium, edge.url, room, { name: 'Cleo' });
  await inMeeting(cleo);
  const fox = await joinFirefoxPage(firefox, edge.url, room, { name: 'Fox' });
  await fox.waitForSelector('#meeting:not([hidden])', { timeout: 15000 });
  await waitMode(cleo, 'Direct');
  await firefoxMode(fox, 'Direct');
  await waitForVideo(fox, 1);

  // Chat: Firefox's unread badge counts Cleo's message; Firefox answers from its chat form.
  await cleo.click('#toggle-chat');
  await cleo.fill('#chat-input', 'hello from Chromium');
  await cleo.press('#chat-input', 'Enter');
  await fox.waitForFunction(() => document.getElementById('chat-unread').textContent === '1', { timeout: 10000 });
  assert.equal(await fox.evaluate(() => document.getElementById('toggle-chat').getAttribute('aria-label')), 'Chat, 1 unread');
  await fox.click('#toggle-chat');
  await fox.waitForFunction(() => /hello from Chromium/.test(document.getElementById('chat-log').textContent), { timeout: 10000 });
  await fox.type('#chat-input', 'hello from Firefox');
  await fox.keyboard.press('Enter');
  await cleo.waitForFunction(() => [...document.querySelectorAll('#chat-log li')].some((li) => /^Fox/.test(li.textContent) && /hello from Firefox/.test(li.textContent)));

  // Cleo shares her screen: Firefox sees it (Cleo's media state says so) and keeps decoding.
  await cleo.click('#toggle-screen');
  await cleo.waitForFunction(() => document.getElementById('toggle-screen').getAttribute('aria-pressed') === 'true');
  assert.ok((await sentVideo(cleo)).every((l) => l.startsWith('screen')), `Cleo sends her screen: ${await sentVideo(cleo)}`);
  await fox.waitForFunction(() => [.../** @type {any} */ (window).edgemeet.people.values()].some((p) => p.name === 'Cleo' && p.media?.screen), { timeout: 10000 });
  await waitForVideo(fox, 1);

  // Firefox's Share: no screen here. The page says so; nothing else changes.
  await fox.click('#toggle-screen');
  await fox.waitForFunction(() => /no screen or window this browser can share/.test(document.getElementById('toast').textContent), { timeout: 10000 });
  assert.equal(await fox.evaluate(() => document.getElementById('toggle-screen').getAttribute('aria-pressed')), 'false');
  await waitForVideo(cleo, 1);
  // Firefox's Devices panel: its camera and microphone to choose from; no speakers listed, said.
  await fox.click('#toggle-devices');
  await fox.waitForSelector('#devices-panel:not([hidden])');
  await fox.waitForFunction(() => !document.getElementById('speaker-note').hidden, { timeout: 10000 });
  assert.match(await fox.evaluate(() => document.getElementById('speaker-note').textContent), /no speakers to choose from/);
  assert.equal(await fox.evaluate(() => document.getElementById('speaker-choice').hidden), true);
  assert.ok(await fox.evaluate(() => document.getElementById('switch-camera').options.length) >= 1);

  // A third page: through the node, Firefox decodes Cleo's screen and Dora's camera; both decode Firefox.
  const dora = await joinPage(chromium, edge.url, room, { name: 'Dora' });
  await inMeeting(dora);
  for (const page of [cleo, dora]) await waitMode(page, 'Via server', 30000);
  await firefoxMode(fox, 'Via server', 30000);
  for (const page of [cleo, dora, fox]) await waitForVideo(page, 2, 30000);
  assert.ok((await sentVideo(cleo)).every((l) => l.startsWith('screen')), `Cleo still sends her screen via the node: ${await sentVideo(cleo)}`);
  await fox.browserContext().close();
  for (const page of [cleo, dora]) await page.context().close();
});
