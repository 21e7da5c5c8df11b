// Firefox beside Chromium, the everyday controls: chat both ways (with the unread badge), screen
// sharing both ways (Firefox with a window on a virtual screen, Xvfb, which it shares without a
// picker) directly and through the node with a third page, and what Firefox lacks said on its
// page: it lists no speakers, so its Devices panel says why there is no speaker choice. (Headless
// Firefox has no screen at all: firefox.test.mjs checks its Share button says so.)
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, waitForVideo, uniqueRoom } from './lib.mjs';
import { launchFirefox, joinFirefoxPage, firefoxMode, startScreen } from './firefox.mjs';

let edge;
let chromium;
let firefox;
let screen;
before(async () => {
  edge = await startEdge();
  chromium = await launchBrowser();
  screen = await startScreen();
  firefox = await launchFirefox({ display: screen.display });
});
after(async () => { await firefox?.close(); screen?.stop(); await chromium?.close(); edge?.stop(); });

/** The labels of the video tracks a page sends (every connection's senders that hold one). */
const sentVideo = (page) => page.evaluate(() => {
  const m = /** @type {any} */ (window).edgemeet;
  return m.peerConnections().flatMap(([, pc]) => pc.getSenders().map((s) => s.track)).filter((t) => t?.kind === 'video').map((t) => t.label);
});

/** Whether `page` knows `name` shares their screen (their media state). */
const sharing = (page, name) => page.evaluate((n) => [.../** @type {any} */ (window).edgemeet.people.values()].some((p) => p.name === n && p.media?.screen), name);

test('Chromium and Firefox: chat both ways, screen shares both ways (direct and via the node), no speaker choice said', async () => {
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

  // Firefox shares its screen: Cleo hears of it and decodes it.
  await fox.click('#toggle-screen');
  await fox.waitForFunction(() => document.getElementById('toggle-screen').getAttribute('aria-pressed') === 'true', { timeout: 10000 });
  assert.deepEqual(await sentVideo(fox), ['Primary Monitor'], 'Firefox sends its screen');
  await cleo.waitForFunction(() => [.../** @type {any} */ (window).edgemeet.people.values()].some((p) => p.name === 'Fox' && p.media?.screen));
  await waitForVideo(cleo, 1);
  // Cleo shares hers: Firefox hears of it and decodes it.
  await cleo.click('#toggle-screen');
  await cleo.waitForFunction(() => document.getElementById('toggle-screen').getAttribute('aria-pressed') === 'true');
  assert.ok((await sentVideo(cleo)).every((l) => l.startsWith('screen')), `Cleo sends her screen: ${await sentVideo(cleo)}`);
  await fox.waitForFunction(() => [.../** @type {any} */ (window).edgemeet.people.values()].some((p) => p.name === 'Cleo' && p.media?.screen), { timeout: 10000 });
  await waitForVideo(fox, 1);

  // Firefox's Devices panel: its camera and microphone to choose from; no speakers listed, said.
  await fox.click('#toggle-devices');
  await fox.waitForSelector('#devices-panel:not([hidden])');
  await fox.waitForFunction(() => !document.getElementById('speaker-note').hidden, { timeout: 10000 });
  assert.match(await fox.evaluate(() => document.getElementById('speaker-note').textContent), /no speakers to choose from/);
  assert.equal(await fox.evaluate(() => document.getElementById('speaker-choice').hidden), true);
  assert.ok(await fox.evaluate(() => document.getElementById('switch-camera').options.length) >= 1);
  await fox.click('#close-devices');

  // A third page: through the node, both screens reach everyone; every page decodes every other.
  const dora = await joinPage(chromium, edge.url, room, { name: 'Dora' });
  await inMeeting(dora);
  for (const page of [cleo, dora]) await waitMode(page, 'Via server', 30000);
  await firefoxMode(fox, 'Via server', 30000);
  for (const page of [cleo, dora, fox]) await waitForVideo(page, 2, 30000);
  assert.deepEqual(await sentVideo(fox), ['Primary Monitor'], 'Firefox sends its screen via the node');
  assert.ok(await sharing(dora, 'Fox') && await sharing(dora, 'Cleo'), 'Dora hears of both shares');
  // Firefox stops sharing: its camera goes out again, and the others keep decoding it.
  await fox.click('#toggle-screen');
  await fox.waitForFunction(() => document.getElementById('toggle-screen').getAttribute('aria-pressed') === 'false', { timeout: 10000 });
  assert.deepEqual(await sentVideo(fox), ['Default Video Device'], 'Firefox sends its camera again');
  await dora.waitForFunction(() => ![.../** @type {any} */ (window).edgemeet.people.values()].some((p) => p.name === 'Fox' && p.media?.screen));
  for (const page of [cleo, dora]) await waitForVideo(page, 2, 20000);
  await fox.browserContext().close();
  for (const page of [cleo, dora]) await page.context().close();
});
