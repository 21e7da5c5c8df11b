// The lobby and roles as people see them: a moderator turns the lobby on, newcomers wait on a
// screen that says so, the moderator sees each by the name they typed and lets in or turns away;
// with `moderation = "first"` the first to arrive grants the role; a moderator ends the meeting
// for everyone. Every control is a labelled button (the tests click them by their labels).
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, uniqueRoom } from './lib.mjs';

let edge;
let browser;
before(async () => { edge = await startEdge(); browser = await launchBrowser(); });
after(async () => { await browser?.close(); edge?.stop(); });

const names = (page) => page.evaluate(() => [...document.querySelectorAll('#knocking li span')].map((s) => s.textContent));

test('lobby: knock, admit, refuse, admit all; the refused are told', async () => {
  const room = uniqueRoom('lobby');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  await ada.click('#toggle-people');
  await ada.check('#lobby-toggle');
  await ada.waitForFunction(() => /lobby is on/.test(document.getElementById('toast').textContent));

  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await bob.waitForSelector('#waiting:not([hidden])');
  assert.match(await bob.textContent('#waiting-title'), /Waiting to be let in/);
  await ada.waitForFunction(() => /Bob/.test(document.getElementById('knocking').textContent));
  assert.deepEqual(await names(ada), ['Bob']);
  assert.match(await ada.textContent('#toggle-people'), /1 waiting/);
  await ada.click('button[aria-label="Admit Bob"]');
  await inMeeting(bob);
  await ada.waitForFunction(() => /Bob/.test(document.getElementById('grid').textContent));
  assert.equal(await ada.isVisible('#lobby-section'), false, 'nobody knocks any more');

  const eve = await joinPage(browser, edge.url, room, { name: 'Eve' });
  await ada.waitForFunction(() => /Eve/.test(document.getElementById('knocking').textContent));
  // Keyboard: the refuse button is focusable and works with Enter.
  await ada.focus('button[aria-label="Refuse Eve"]');
  await ada.keyboard.press('Enter');
  await eve.waitForSelector('#ended:not([hidden])');
  assert.match(await eve.textContent('#ended-title'), /did not let you in/);

  const late = [];
  for (const name of ['Cy', 'Di']) late.push(await joinPage(browser, edge.url, room, { name }));
  await bob.click('#toggle-people');
  await bob.waitForFunction(() => document.querySelectorAll('#knocking li').length === 2);
  assert.deepEqual(await names(bob), ['Cy', 'Di'], 'every moderator sees who knocks, in order');
  await bob.click('#admit-all');
  for (const page of late) await inMeeting(page);
  await ada.waitForFunction(() => document.querySelectorAll('#grid .tile').length === 4);
  for (const page of [ada, bob, eve, ...late]) await page.context().close();
});

test('roles with moderation = "first": grant, then a moderator ends the meeting for everyone', async () => {
  const room = uniqueRoom('roles');
  const ada = await joinPage(browser, edge.url, `first/${room}`, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, `first/${room}`, { name: 'Bob' });
  await inMeeting(bob);
  assert.equal(await ada.isVisible('#moderator-tools'), false, 'panel closed');
  assert.equal(await bob.evaluate(() => document.getElementById('moderator-tools').hidden), true);
  await ada.click('#toggle-people');
  assert.equal(await ada.isVisible('#moderator-tools'), true);
  await ada.click('button[aria-label="Make moderator Bob"]');
  await bob.waitForFunction(() => !document.getElementById('moderator-tools').hidden);
  await bob.waitForFunction(() => /You are now a moderator/.test(document.getElementById('toast').textContent));

  bob.once('dialog', (d) => d.accept());
  await bob.click('#toggle-people');
  await bob.click('#end-all');
  for (const page of [ada, bob]) await page.waitForSelector('#ended:not([hidden])');
  assert.match(await ada.textContent('#ended-title'), /Bob ended the meeting for everyone/);
  assert.match(await bob.textContent('#ended-title'), /You ended the meeting/);
  for (const page of [ada, bob]) await page.context().close();
});
