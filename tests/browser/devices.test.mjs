// Switching camera, microphone and speaker during a call, from the Devices panel (keyboard: D).
// Chromium's fake capture gives three cameras (`device-count=3`): fake_device_0 (I420) paints its
// green background at 135, fake_device_2 (MJPEG) at 128 (fake_device_1, Y16, gives frames WebRTC
// does not encode), so the other side can tell from the pixels it decodes which camera it gets.
// Each switch is checked where a person would notice: the others keep decoding (frames
// advancing), their picture is the new camera's, and the new device's track is the one every
// sender holds (direct call, the node link, its standby); the speaker is each media element's
// sinkId, new tiles included. With E2EE the others keep decrypting after each switch.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, uniqueRoom } from './lib.mjs';
import { waitScreen } from './screenshare.mjs';

let edge;
let browser;
before(async () => {
  edge = await startEdge();
  // The last of a repeated switch wins: three fake cameras, two microphones and speakers.
  browser = await launchBrowser(['--use-fake-device-for-media-stream=device-count=3']);
});
after(async () => { await browser?.close(); edge?.stop(); });

/** The green of the background (the four corners) of what `page` shows in `name`'s tile. */
function background(page, name) {
  return page.evaluate((who) => {
    const tile = [...document.querySelectorAll('#grid .tile')].find((t) => t.querySelector('.label')?.textContent.startsWith(who));
    const video = /** @type {HTMLVideoElement | undefined} */ (tile?.querySelector('video'));
    if (!video || !video.videoWidth) return null;
    const canvas = document.createElement('canvas');
    canvas.width = 64;
    canvas.height = 36;
    const g = canvas.getContext('2d');
    g.drawImage(video, 0, 0, 64, 36);
    const px = g.getImageData(0, 0, 64, 36).data;
    const corners = [0, 63, 64 * 35, 64 * 36 - 1].map((i) => px[4 * i + 1]);
    return corners.reduce((a, b) => a + b) / 4;
  }, name);
}

/**
 * Wait until `page` shows `name`'s picture from `camera` (fake_device_0: background 135,
 * fake_device_2: 128) and painting (the tile is not waiting for video).
 */
async function waitPicture(page, name, camera, timeout = 20000) {
  const end = Date.now() + timeout;
  let last = null;
  while (Date.now() < end) {
    last = await background(page, name);
    const painting = await page.evaluate((who) => {
      const tile = [...document.querySelectorAll('#grid .tile')].find((t) => t.querySelector('.label')?.textContent.startsWith(who));
      return !!tile && !tile.classList.contains('waiting');
    }, name);
    if (painting && last !== null && last > 100 && (camera === 'fake_device_0' ? last > 131.5 : last < 131.5)) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name}'s picture is not from ${camera} (background ${last})`);
}

/** Frames decoded and audio packets received, summed per kind, over the page's connections. */
function received(page) {
  return page.evaluate(async () => {
    const out = { frames: 0, audio: 0 };
    for (const [, pc] of /** @type {any} */ (window).edgemeet.peerConnections()) {
      for (const s of (await pc.getStats()).values()) {
        if (s.type !== 'inbound-rtp') continue;
        if (s.kind === 'video') out.frames += s.framesDecoded || 0;
        else out.audio += s.packetsReceived || 0;
      }
    }
    return out;
  });
}

/** Wait until the page decodes more video frames and receives more audio than now. */
async function keepsReceiving(page, what) {
  const first = await received(page);
  const end = Date.now() + 15000;
  let last = first;
  while (Date.now() < end) {
    await new Promise((r) => setTimeout(r, 300));
    last = await received(page);
    if (last.frames > first.frames + 5 && last.audio > first.audio + 5) return last;
  }
  throw new Error(`${what}: media stopped: ${JSON.stringify(first)} -> ${JSON.stringify(last)}`);
}

/**
 * The tracks the page's senders hold, by connection and kind: the direct call's and the node
 * link's senders (a standby's senders hold none while the room is direct: what it will send then).
 */
function sent(page) {
  return page.evaluate(() => {
    const m = /** @type {any} */ (window).edgemeet;
    /** @type {Record<string, string[]>} */
    const out = {};
    const note = (key, track) => { (out[key] ??= []).push(track ? `${track.label}${track.readyState === 'live' ? '' : ' (ended)'}` : 'none'); };
    for (const s of m.link?.senders || []) note(`p2p:${s.track?.kind}`, s.track);
    if (m.sfu) {
      for (const t of m.sfu.pc.getTransceivers()) {
        if (!m.sfu.senders.has(t.sender)) continue;
        const kind = t.receiver.track.kind;
        note(`node-${m.sfu.sending ? 'sending' : 'standby'}:${kind}`, m.sfu.senders.get(t.sender));
        if (m.sfu.sending) note(`node-wire:${kind}`, t.sender.track);
      }
    }
    return out;
  });
}

/** Open the Devices panel from the keyboard and pick the option whose label matches. */
async function pick(page, select, label) {
  if (await page.isHidden('#devices-panel')) {
    await page.locator('#grid').click({ position: { x: 3, y: 3 } });
    await page.keyboard.press('d');
    await page.waitForSelector('#devices-panel:not([hidden])');
  }
  await page.waitForFunction(([id, l]) => [...document.getElementById(id).options].some((o) => o.text === l), [select, label]);
  await page.selectOption(`#${select}`, { label });
  // The panel says (to screen readers too) what is in use once the switch is done.
  await page.waitForFunction((l) => document.getElementById('devices-live').textContent.endsWith(l), label);
}

const decrypted = (page) => page.evaluate(() => /** @type {any} */ (window).edgemeet.e2ee?.counts?.decrypted ?? 0);

async function keepsDecrypting(page, what) {
  const first = await decrypted(page);
  for (let i = 0; i < 50; i++) {
    await new Promise((r) => setTimeout(r, 200));
    if (await decrypted(page) > first + 10) return;
  }
  throw new Error(`${what}: no frame decrypted after the switch (${first})`);
}

for (const e2ee of ['', 'devices switch under one passphrase']) {
  test(`switch camera and microphone during a call${e2ee ? ' with E2EE' : ', and the speaker'}: direct, standby, through the node`, async () => {
    const room = uniqueRoom(e2ee ? 'devices-e2ee' : 'devices');
    const ada = await joinPage(browser, edge.url, room, { name: 'Ada', e2ee });
    await inMeeting(ada);
    const bob = await joinPage(browser, edge.url, room, { name: 'Bob', e2ee });
    await inMeeting(bob);
    for (const page of [ada, bob]) await waitMode(page, 'Direct');
    await waitPicture(bob, 'Ada', 'fake_device_0');
    if (!e2ee) {
      // The panel lists both cameras, both microphones and the speakers, with the ones in use chosen.
      await ada.locator('#grid').click({ position: { x: 3, y: 3 } });
      await ada.keyboard.press('d');
      await ada.waitForSelector('#devices-panel:not([hidden])');
      assert.equal(await ada.getAttribute('#toggle-devices', 'aria-expanded'), 'true');
      assert.equal(await ada.evaluate(() => document.activeElement?.id), 'switch-camera', 'the panel takes the focus');
      await ada.waitForFunction(() => document.getElementById('switch-camera').options.length === 3);
      assert.equal(await ada.evaluate(() => document.getElementById('switch-camera').selectedOptions[0].text), 'fake_device_0');
      assert.equal(await ada.isVisible('#switch-speaker'), true, 'Chromium can choose a speaker');
    }

    // Direct call: Ada takes the third camera and the second microphone.
    await pick(ada, 'switch-camera', 'fake_device_2');
    await waitPicture(bob, 'Ada', 'fake_device_2');
    await pick(ada, 'switch-mic', 'Fake Audio Input 2');
    await keepsReceiving(bob, 'Bob after Ada switched (direct)');
    if (e2ee) await keepsDecrypting(bob, 'Bob (direct)');
    // Every sender holds the new devices: the direct call's, and the standby link's once built.
    await ada.waitForFunction(() => /** @type {any} */ (window).edgemeet.sfu?.prepared);
    await ada.evaluate(() => /** @type {any} */ (window).edgemeet.sfu.prepared);
    const direct = await sent(ada);
    assert.deepEqual(direct['p2p:video'], ['fake_device_2'], JSON.stringify(direct));
    assert.deepEqual(direct['p2p:audio'], ['Fake Audio Input 2'], JSON.stringify(direct));
    assert.deepEqual(direct['node-standby:video'], ['fake_device_2'], JSON.stringify(direct));
    assert.deepEqual(direct['node-standby:audio'], ['Fake Audio Input 2'], JSON.stringify(direct));

    /** @type {string} */
    let sink = '';
    if (!e2ee) {
      // Bob's speaker: every tile's media element plays on it, and a tile that comes later too.
      sink = await bob.evaluate(async () => (await navigator.mediaDevices.enumerateDevices()).find((d) => d.label === 'Fake Audio Output 1').deviceId);
      await pick(bob, 'switch-speaker', 'Fake Audio Output 1');
      await bob.waitForFunction((id) => [...document.querySelectorAll('#grid video')].every((v) => /** @type {any} */ (v).sinkId === id), sink);
      assert.equal(await bob.textContent('#devices-live'), 'Speaker: Fake Audio Output 1');
      // Escape closes the panel and gives the focus back to its button.
      await bob.keyboard.press('Escape');
      await bob.waitForSelector('#devices-panel', { state: 'hidden' });
      assert.equal(await bob.evaluate(() => document.activeElement?.id), 'toggle-devices');
    }

    // A third: the room moves to the node, which gets Ada's new devices.
    const cleo = await joinPage(browser, edge.url, room, { name: 'Cleo', e2ee });
    await inMeeting(cleo);
    for (const page of [ada, bob, cleo]) await waitMode(page, 'Via server', 30000);
    for (const page of [bob, cleo]) await waitPicture(page, 'Ada', 'fake_device_2', 30000);
    const viaNode = await sent(ada);
    assert.deepEqual(viaNode['node-wire:video'], ['fake_device_2'], JSON.stringify(viaNode));
    assert.deepEqual(viaNode['node-wire:audio'], ['Fake Audio Input 2'], JSON.stringify(viaNode));
    if (!e2ee) {
      await bob.waitForFunction(() => document.querySelectorAll('#grid video').length === 3);
      await bob.waitForFunction((id) => [...document.querySelectorAll('#grid video')].every((v) => /** @type {any} */ (v).sinkId === id), sink);
    }

    // Through the node: back to the colour camera and the first microphone.
    await pick(ada, 'switch-camera', 'fake_device_0');
    await pick(ada, 'switch-mic', 'Fake Audio Input 1');
    for (const [who, page] of [['Bob', bob], ['Cleo', cleo]]) {
      await waitPicture(page, 'Ada', 'fake_device_0');
      await keepsReceiving(page, `${who} after Ada switched (node)`);
      if (e2ee) await keepsDecrypting(page, `${who} (node)`);
    }
    const back = await sent(ada);
    assert.deepEqual(back['node-wire:video'], ['fake_device_0'], JSON.stringify(back));
    assert.deepEqual(back['node-wire:audio'], ['Fake Audio Input 1'], JSON.stringify(back));
    // Ada's own tile shows the camera she sends; the cameras she left are closed.
    assert.equal(await ada.evaluate(() => /** @type {any} */ (window).edgemeet.media.stream.getTracks().map((t) => `${t.kind}:${t.label}:${t.readyState}`).sort().join(',')),
      'audio:Fake Audio Input 1:live,video:fake_device_0:live');
    for (const page of [ada, bob, cleo]) await page.context().close();
  });
}

test('switch the camera while sharing the screen: the camera\'s sender takes it, the screen goes on beside it (direct, then via the node)', async () => {
  const room = uniqueRoom('devices-screen');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  for (const page of [ada, bob]) await waitMode(page, 'Direct');
  await waitPicture(bob, 'Ada', 'fake_device_0');
  await ada.click('#toggle-screen');
  await waitScreen(bob, 'Ada', 1280);

  // Direct: the camera switches, the screen stays in its own tile.
  await pick(ada, 'switch-camera', 'fake_device_2');
  await waitPicture(bob, 'Ada', 'fake_device_2');
  await waitScreen(bob, 'Ada', 1280);
  await ada.waitForFunction(() => /** @type {any} */ (window).edgemeet.sfu?.prepared);
  await ada.evaluate(() => /** @type {any} */ (window).edgemeet.sfu.prepared);
  await ada.waitForFunction(() => /** @type {any} */ (window).edgemeet.sfu?.screen);
  const direct = await sent(ada);
  assert.deepEqual(direct['p2p:video'], ['fake_device_2'], JSON.stringify(direct));
  assert.deepEqual(direct['node-standby:video'].sort(), ['fake_device_2', 'screen:-3:0'], JSON.stringify(direct));

  // Via the node: both arrive; back to the first camera, the screen still beside it.
  const cleo = await joinPage(browser, edge.url, room, { name: 'Cleo' });
  await inMeeting(cleo);
  for (const page of [ada, bob, cleo]) await waitMode(page, 'Via server', 30000);
  for (const page of [bob, cleo]) {
    await waitPicture(page, 'Ada', 'fake_device_2', 30000);
    await waitScreen(page, 'Ada', 1280, 30000);
  }
  await pick(ada, 'switch-camera', 'fake_device_0');
  for (const page of [bob, cleo]) {
    await waitPicture(page, 'Ada', 'fake_device_0');
    await waitScreen(page, 'Ada', 1280);
  }
  const viaNode = await sent(ada);
  assert.deepEqual(viaNode['node-wire:video'].sort(), ['fake_device_0', 'screen:-3:0'], JSON.stringify(viaNode));
  for (const page of [ada, bob, cleo]) await page.context().close();
});
