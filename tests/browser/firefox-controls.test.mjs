// Firefox beside Chromium, the everyday controls: chat both ways (with the unread badge), screen
// sharing both ways (Firefox with a window on a virtual screen, Xvfb, which it shares without a
// picker) directly and through the node with a third page, each screen a track of its own beside
// the camera (Firefox receives Chromium's 1920x1080 screen at that size), and what Firefox lacks
// said on its page: it lists no speakers, so its Devices panel says why there is no speaker
// choice. (Headless Firefox has no screen at all: firefox.test.mjs checks its Share button says so.)
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, waitForVideo, uniqueRoom } from './lib.mjs';
import { launchFirefox, joinFirefoxPage, firefoxMode, startScreen } from './firefox.mjs';
import { waitScreen, cameraKeepsDecoding, presenterView, waitNoScreen, sentVideo } from './screenshare.mjs';

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

/** Wait until the page sends exactly these video tracks (by label, sorted). */
async function sends(page, labels) {
  const until = Date.now() + 10000;
  let got = [];
  while (Date.now() < until) {
    got = (await sentVideo(page)).sort();
    if (JSON.stringify(got) === JSON.stringify(labels)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(got, labels);
}

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

  // Firefox shares its screen (the 1280x720 virtual one) beside its camera: Cleo hears of it,
  // shows it large and decodes it, and Firefox's camera beside it.
  await fox.click('#toggle-screen');
  await fox.waitForFunction(() => document.getElementById('toggle-screen').getAttribute('aria-pressed') === 'true', { timeout: 10000 });
  await sends(fox, ['Default Video Device', 'Primary Monitor']);
  await cleo.waitForFunction(() => [.../** @type {any} */ (window).edgemeet.people.values()].some((p) => p.name === 'Fox' && p.media?.screen));
  const foxScreen = await waitScreen(cleo, 'Fox', 1280);
  await cameraKeepsDecoding(cleo, 'Fox');
  assert.deepEqual((await presenterView(cleo)).screens, ['Fox']);
  // Cleo shares hers (1920x1080) beside her camera: Firefox decodes it at that size, her camera too.
  await cleo.click('#toggle-screen');
  await cleo.waitForFunction(() => document.getElementById('toggle-screen').getAttribute('aria-pressed') === 'true');
  await sends(cleo, ['fake_device_0', 'screen:-3:0']);
  await fox.waitForFunction(() => [.../** @type {any} */ (window).edgemeet.people.values()].some((p) => p.name === 'Cleo' && p.media?.screen), { timeout: 10000 });
  const cleoScreen = await waitScreen(fox, 'Cleo', 1920);
  await cameraKeepsDecoding(fox, 'Cleo');
  // Figures 2 s on (the first frames' rate says little).
  await new Promise((r) => setTimeout(r, 2000));
  console.log('screens received directly:', JSON.stringify({ 'Fox at Cleo': await waitScreen(cleo, 'Fox', 1280), 'Cleo at Firefox': await waitScreen(fox, 'Cleo', 1920), first: { foxScreen, cleoScreen } }));

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
  await sends(fox, ['Default Video Device', 'Primary Monitor']);
  assert.ok(await sharing(dora, 'Fox') && await sharing(dora, 'Cleo'), 'Dora hears of both shares');
  await waitScreen(dora, 'Fox', 1280, 30000);
  await waitScreen(dora, 'Cleo', 1920, 30000);
  await waitScreen(fox, 'Cleo', 1920, 30000);
  await cameraKeepsDecoding(fox, 'Cleo');
  const viaNode = await waitScreen(fox, 'Cleo', 1920);
  console.log('Cleo\'s screen at Firefox via the node:', JSON.stringify(viaNode));
  // Firefox stops sharing: its camera goes on alone, and its screen's tile ends at the others.
  await fox.click('#toggle-screen');
  await fox.waitForFunction(() => document.getElementById('toggle-screen').getAttribute('aria-pressed') === 'false', { timeout: 10000 });
  await sends(fox, ['Default Video Device']);
  await dora.waitForFunction(() => ![.../** @type {any} */ (window).edgemeet.people.values()].some((p) => p.name === 'Fox' && p.media?.screen));
  for (const page of [cleo, dora]) {
    await page.waitForFunction(() => !document.querySelector('#grid > .tile.screen[data-participant^="screen:"]') || [...document.querySelectorAll('#grid > .tile.screen .label')].every((l) => !/^Fox/.test(l.textContent)), null, { timeout: 10000 });
    await cameraKeepsDecoding(page, 'Fox');
  }
  // Cleo stops too: every presenter view ends.
  await cleo.click('#toggle-screen');
  for (const page of [dora, fox]) await waitNoScreen(page);
  for (const page of [cleo, dora]) await waitForVideo(page, 2, 20000);
  await fox.browserContext().close();
  for (const page of [cleo, dora]) await page.context().close();
});
