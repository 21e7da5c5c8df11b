// Chromium and Firefox in one meeting: directly (P2P), through the media node (a third page), and
// with end-to-end encryption (passphrase); every page decodes every other. Firefox joins second,
// as in the reports: its offer to the node marks later sections `port 0` + `a=bundle-only`, and
// its codec preference under E2EE left `rtcp-fb` lines Chromium refused.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, waitForVideo, uniqueRoom } from './lib.mjs';
import { launchFirefox, joinFirefoxPage, firefoxMode } from './firefox.mjs';

let edge;
let chromium;
let firefox;
before(async () => { edge = await startEdge(); chromium = await launchBrowser(); firefox = await launchFirefox(); });
after(async () => { await firefox?.close(); await chromium?.close(); edge?.stop(); });

const inFirefoxMeeting = (page) => page.waitForSelector('#meeting:not([hidden])', { timeout: 15000 });

for (const e2ee of ['', 'a shared passphrase for both browsers']) {
  test(`Chromium and Firefox${e2ee ? ' with E2EE' : ''}: P2P, then through the node with a third page`, async () => {
    const room = uniqueRoom(e2ee ? 'mixed-e2ee' : 'mixed');
    const cleo = await joinPage(chromium, edge.url, room, { name: 'Cleo', e2ee });
    await inMeeting(cleo);
    const fox = await joinFirefoxPage(firefox, edge.url, room, { name: 'Fox', e2ee });
    await inFirefoxMeeting(fox);
    await waitMode(cleo, 'Direct');
    await firefoxMode(fox, 'Direct');
    await waitForVideo(cleo, 1);
    await waitForVideo(fox, 1);
    if (!e2ee) {
      // Headless Firefox has no screen to share: its Share button says so; nothing else changes.
      await fox.click('#toggle-screen');
      await fox.waitForFunction(() => /no screen or window this browser can share/.test(document.getElementById('toast').textContent), { timeout: 10000 });
      assert.equal(await fox.evaluate(() => document.getElementById('toggle-screen').getAttribute('aria-pressed')), 'false');
    }
    if (e2ee) {
      // The worker reports its counters every 500 ms: poll for up to 5 s.
      for (const [who, page] of [['Chromium', cleo], ['Firefox', fox]]) {
        let counts = null;
        for (let i = 0; i < 50 && !(counts?.decrypted > 0); i++) {
          if (i) await new Promise((r) => setTimeout(r, 100));
          counts = await page.evaluate(() => /** @type {any} */ (window).edgemeet.e2ee?.counts);
        }
        assert.ok(counts && counts.decrypted > 0, `${who} frames decrypted: ${JSON.stringify(counts)}`);
      }
    }

    const dora = await joinPage(chromium, edge.url, room, { name: 'Dora', e2ee });
    await inMeeting(dora);
    for (const page of [cleo, dora]) await waitMode(page, 'Via server');
    await firefoxMode(fox, 'Via server');
    for (const page of [cleo, dora, fox]) await waitForVideo(page, 2, 30000);
    await fox.browserContext().close();
    for (const page of [cleo, dora]) await page.context().close();
  });
}
