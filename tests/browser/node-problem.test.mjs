// A media-node link that fails is shown to the person, not only logged: a node that refuses the
// page's session (as the node once refused Firefox's bundle-only offer with `400 bad_request`)
// puts an alert on the page.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, uniqueRoom } from './lib.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

test('a node that refuses the session is shown as an alert', async () => {
  const room = uniqueRoom('refused-node');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  // The third page's node calls are refused as the node refused Firefox's offer.
  await context.route('**/v1/sessions/**', (route) => route.fulfill({
    status: 400, contentType: 'application/json', body: JSON.stringify({ error: { code: 'bad_request', message: 'mid 1 does not send' } }),
  }));
  const cy = await context.newPage();
  await cy.goto(`${edge.url}/${room}?lowres`);
  await cy.waitForSelector('#prejoin:not([hidden])');
  await cy.fill('#display-name', 'Cy');
  await cy.waitForFunction(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).srcObject);
  await cy.click('#join');
  await inMeeting(cy);
  await waitMode(cy, 'Via server');
  await cy.waitForSelector('#media-problem:not([hidden])', { timeout: 20000 });
  assert.equal(await cy.getAttribute('#media-problem', 'role'), 'alert');
  assert.match(await cy.textContent('#media-problem'), /media server/);
  assert.equal(await ada.isVisible('#media-problem'), false, 'pages whose link works show nothing');
  for (const page of [ada, bob, cy]) await page.context().close();
});
