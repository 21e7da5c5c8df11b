// The everyday controls, each asserted by what the other side (or the person) sees: joining with
// the microphone and camera off, the unread badge on Chat, the invite link, the shortcuts panel.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, uniqueRoom } from './lib.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

test('join with microphone and camera off; unread chat badge; invite link; shortcuts panel', async () => {
  const room = uniqueRoom('controls');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);

  // Pre-join: Bob ticks both "off" boxes; Ada sees him muted and without video.
  const context = await browser.newContext({ permissions: ['camera', 'microphone'] });
  const bob = await context.newPage();
  await bob.goto(`${edge.url}/${room}?lowres`);
  await bob.waitForSelector('#prejoin:not([hidden])');
  await bob.fill('#display-name', 'Bob');
  await bob.check('#join-mic-off');
  await bob.check('#join-cam-off');
  await bob.waitForFunction(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).srcObject);
  await bob.click('#join');
  await inMeeting(bob);
  assert.equal(await bob.getAttribute('#toggle-mic', 'aria-pressed'), 'false');
  assert.equal(await bob.getAttribute('#toggle-cam', 'aria-pressed'), 'false');
  await ada.waitForFunction(() => [...document.querySelectorAll('#grid .label')].some((l) => /Bob.*mic off/.test(l.textContent)));
  await ada.waitForFunction(() => {
    const tile = [...document.querySelectorAll('#grid .tile')].find((t) => /Bob/.test(t.textContent));
    return tile?.querySelector('.initials')?.textContent === 'B';
  });
  // Turning the camera on from the toolbar (keyboard: V) shows it to Ada.
  await bob.keyboard.press('v');
  await ada.waitForFunction(() => {
    const tile = [...document.querySelectorAll('#grid .tile')].find((t) => /Bob/.test(t.textContent));
    return tile && !tile.querySelector('.initials');
  });

  // Chat while Bob's panel is closed: the Chat button counts, and says so to screen readers.
  await ada.click('#toggle-chat');
  for (const text of ['one', 'two']) {
    await ada.fill('#chat-input', text);
    await ada.press('#chat-input', 'Enter');
  }
  await bob.waitForFunction(() => document.getElementById('chat-unread').textContent === '2');
  assert.equal(await bob.getAttribute('#toggle-chat', 'aria-label'), 'Chat, 2 unread');
  assert.equal(await ada.isVisible('#chat-unread'), false, 'your own messages are read');
  await bob.keyboard.press('c');
  await bob.waitForSelector('#chat-unread', { state: 'hidden' });
  assert.equal(await bob.getAttribute('#toggle-chat', 'aria-label'), 'Chat');

  // The invite link: the room's address, without anything else; it opens this meeting's pre-join.
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: edge.url });
  await bob.click('#copy-invite');
  const link = await bob.evaluate(() => navigator.clipboard.readText());
  assert.equal(link, `${edge.url}/${room}`);
  const guest = await (await browser.newContext({ permissions: ['camera', 'microphone'] })).newPage();
  await guest.goto(link);
  await guest.waitForSelector('#prejoin:not([hidden])');
  assert.equal(await guest.textContent('#prejoin-title'), `Join ${room}`);

  // The shortcuts panel: "?" opens it, Escape closes it and the toolbar still works.
  await bob.locator('body').click({ position: { x: 5, y: 300 } });
  await bob.keyboard.press('?');
  await bob.waitForSelector('#shortcuts-panel:not([hidden])');
  assert.match(await bob.textContent('#shortcuts-list'), /Microphone on or off/);
  assert.equal(await bob.getAttribute('#show-shortcuts', 'aria-expanded'), 'true');
  await bob.keyboard.press('Escape');
  await bob.waitForSelector('#shortcuts-panel', { state: 'hidden' });
  for (const page of [ada, bob, guest]) await page.context().close();
});

test('raise hand: others see it on the tile and in the people list, in order', async () => {
  const room = uniqueRoom('hands');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  const handOn = (page, who) => page.evaluate((w) => {
    const tile = [...document.querySelectorAll('#grid .tile')].find((t) => t.querySelector('.label')?.textContent.startsWith(w));
    return tile?.querySelector('.hand')?.textContent ?? null;
  }, who);
  // Keyboard first: H raises Bob's hand.
  await bob.locator('body').click({ position: { x: 5, y: 300 } });
  await bob.keyboard.press('h');
  await ada.waitForFunction(() => document.querySelector('#grid .hand') !== null);
  assert.equal(await handOn(ada, 'Bob'), 'Hand raised, 1st in line');
  assert.equal(await bob.getAttribute('#raise-hand', 'aria-pressed'), 'true');
  await ada.click('#raise-hand');
  await bob.waitForFunction(() => document.querySelectorAll('#grid .hand').length === 2);
  assert.equal(await handOn(bob, 'Ada'), 'Hand raised, 2nd in line');
  await bob.click('#toggle-people');
  assert.match(await bob.textContent('#people'), /Ada · moderator · Hand raised, 2nd in line/);
  // Bob lowers his: Ada is first now, on every page.
  await bob.click('#raise-hand');
  await ada.waitForFunction(() => document.querySelectorAll('#grid .hand').length === 1);
  assert.equal(await handOn(ada, 'Ada'), 'Hand raised, 1st in line');
  assert.equal(await handOn(ada, 'Bob'), null);
  for (const page of [ada, bob]) await page.context().close();
});

test("reactions: others see them on the sender's tile for a moment", async () => {
  const room = uniqueRoom('react');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  await bob.focus('button[aria-label="React: Applause"]');
  await bob.keyboard.press('Enter');
  await ada.waitForFunction(() => [...document.querySelectorAll('#grid .tile')].some((t) => /Bob/.test(t.querySelector('.label')?.textContent || '') && /Applause/.test(t.querySelector('.reaction')?.textContent || '')));
  assert.equal(await ada.textContent('#reactions-live'), 'Bob: Applause');
  // Short-lived: gone from the tile a few seconds later.
  await ada.waitForFunction(() => document.querySelector('#grid .reaction') === null, null, { timeout: 8000 });
  for (const page of [ada, bob]) await page.context().close();
});

test('rename yourself: others see the new name', async () => {
  const room = uniqueRoom('rename');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  await bob.click('#toggle-people');
  await bob.fill('#rename-input', 'Robert');
  await bob.press('#rename-input', 'Enter');
  await ada.waitForFunction(() => [...document.querySelectorAll('#grid .label')].some((l) => l.textContent.startsWith('Robert')));
  await bob.waitForFunction(() => /Robert \(you\)/.test(document.getElementById('people').textContent));
  for (const page of [ada, bob]) await page.context().close();
});
