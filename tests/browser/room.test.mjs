// What people do in a room besides seeing each other: chat (to all, private), moderation (mute,
// kick, lock with a password), the jwt-host waiting room (early guests knock), and a clean slate
// after everyone leaves. The lobby itself: lobby.test.mjs.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, mintToken, uniqueRoom } from './lib.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

const chatText = (page) => page.evaluate(() => document.getElementById('chat-log').textContent);

test('chat, mute, kick, lock with a password; after everyone leaves the room starts clean', async () => {
  const room = uniqueRoom('room');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  const cy = await joinPage(browser, edge.url, room, { name: 'Cy' });
  for (const page of [bob, cy]) await inMeeting(page);

  // Chat to everyone, then privately to Bob: Cy never sees the private one.
  await ada.click('#toggle-chat');
  await ada.fill('#chat-input', 'hello everyone');
  await ada.press('#chat-input', 'Enter');
  for (const page of [ada, bob, cy]) await page.waitForFunction(() => document.getElementById('chat-log').textContent.includes('hello everyone'));
  await ada.selectOption('#chat-to', { label: 'Bob' });
  await ada.fill('#chat-input', 'just for you');
  await ada.press('#chat-input', 'Enter');
  await bob.waitForFunction(() => document.getElementById('chat-log').textContent.includes('just for you'));
  assert.match(await chatText(bob), /Ada \(private\)/);
  await ada.waitForTimeout(500);
  assert.doesNotMatch(await chatText(cy), /just for you/);

  // A moderator (everyone, in an open tenant) mutes Bob: his microphone turns off.
  assert.equal(await bob.getAttribute('#toggle-mic', 'aria-pressed'), 'true');
  await ada.click('#toggle-people');
  await ada.click('button[aria-label="Mute Bob"]');
  await bob.waitForSelector('#toggle-mic[aria-pressed="false"]');
  assert.equal(await bob.evaluate(() => /** @type {any} */ (window).edgemeet.media.audioTrack.enabled), false);
  await ada.waitForFunction(() => [...document.querySelectorAll('#grid .label')].some((l) => /Bob.*mic off/.test(l.textContent)));

  // ...and removes Cy, who sees why.
  await ada.click('button[aria-label="Kick Cy"]');
  await cy.waitForSelector('#ended:not([hidden])');
  assert.match(await cy.textContent('#ended-title'), /removed you/);
  await ada.waitForFunction(() => !document.getElementById('grid').textContent.includes('Cy'));

  // Lock: a newcomer is asked for the password, a wrong one is refused, the right one lets in.
  await ada.fill('#lock-password', 'open sesame');
  await ada.click('#lock');
  for (const page of [ada, bob]) await page.waitForSelector('#lock-badge:not([hidden])');
  const dan = await joinPage(browser, edge.url, room, { name: 'Dan' });
  await dan.waitForSelector('#password-box:not([hidden])');
  assert.match(await dan.textContent('#prejoin-error'), /locked/);
  await dan.fill('#room-password', 'open says me');
  await dan.click('#join');
  await dan.waitForFunction(() => /Wrong password/.test(document.getElementById('prejoin-error').textContent));
  assert.equal(await dan.isVisible('#meeting'), false);
  await dan.fill('#room-password', 'open sesame');
  await dan.click('#join');
  await inMeeting(dan);
  assert.equal(await dan.isVisible('#lock-badge'), true);
  // The retried join left one set of controls behind: one click toggles the microphone once.
  await dan.click('#toggle-mic');
  assert.equal(await dan.getAttribute('#toggle-mic', 'aria-pressed'), 'false');
  await dan.keyboard.press('m');
  assert.equal(await dan.getAttribute('#toggle-mic', 'aria-pressed'), 'true');

  // Everyone leaves; Ada comes back: a new meeting with no password, no chat.
  for (const page of [bob, dan, ada]) {
    await page.click('#leave');
    await page.waitForSelector('#ended:not([hidden])');
  }
  await ada.waitForTimeout(500);
  await ada.click('#rejoin');
  await ada.waitForSelector('#prejoin:not([hidden])');
  await ada.click('#join');
  await inMeeting(ada);
  assert.equal(await ada.isVisible('#lock-badge'), false);
  assert.equal(await chatText(ada), '');
  assert.equal(await ada.textContent('#mode-badge'), 'Alone');
  for (const page of [ada, bob, cy, dan]) await page.context().close();
});

test('jwt-host: a guest waits until a host with a token joins, then knocks and is let in', async () => {
  const room = uniqueRoom('hosted');
  const guest = await joinPage(browser, edge.url, `host/${room}`, { name: 'Guest' });
  await guest.waitForSelector('#waiting:not([hidden])');
  await guest.waitForTimeout(500);
  assert.equal(await guest.isVisible('#meeting'), false);

  const token = mintToken('host-hs256-secret-for-tests-0123456789abcdef', {
    iss: 'acme-backend', sub: 'host', room, context: { user: { name: 'Host', moderator: true } },
  });
  const host = await joinPage(browser, edge.url, `host/${room}`, { query: `?jwt=${token}` });
  await inMeeting(host);
  // The early guest is not let in because the host came: the host sees them knock, by name.
  await guest.waitForFunction(() => /let in/.test(document.getElementById('waiting-title').textContent));
  assert.equal(await guest.isVisible('#meeting'), false);
  await host.click('#toggle-people');
  await host.click('button[aria-label="Admit Guest"]');
  await inMeeting(guest);
  assert.equal(await host.evaluate(() => document.getElementById('moderator-tools').hidden), false);
  assert.equal(await guest.evaluate(() => document.getElementById('moderator-tools').hidden), true);
  assert.equal(await host.evaluate(() => /** @type {any} */ (window).edgemeet.moderator), true);
  assert.equal(await guest.evaluate(() => /** @type {any} */ (window).edgemeet.moderator), false);
  await guest.waitForFunction(() => /Host/.test(document.getElementById('grid').textContent));
  for (const page of [guest, host]) await page.context().close();
});
