// Automatic end-to-end encryption (docs/e2ee.md): no passphrase, a key per sender exchanged through
// the edge sealed for each recipient, new keys on joins and leaves, and a string per pair to compare.
// Frames are captured as ciphertext from a sender's worker (`keys.tapSealed`) and handed to another
// page's keys (`keys.tryOpen`): that is how "cannot decode" is shown for frames a page never got.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startEdge, launchBrowser, inMeeting, waitMode, waitForVideo, uniqueRoom, artifacts } from './lib.mjs';

let edge;
let browser;
before(async () => {
  // The room stays on the node for 20 s after going back to two, so a kick's rekey is measured on
  // the node path alone (not across the switch back to a direct call).
  edge = await startEdge({}, (text) => text.replace(/p2p_return_delay_ms = \d+/, 'p2p_return_delay_ms = 20000'));
  browser = await launchBrowser();
});
after(async () => { await browser?.close(); edge?.stop(); });

const closeAll = (pages) => Promise.all(pages.map((p) => p.context().close()));

/**
 * A page in `room` with automatic E2EE (the box ticked, no passphrase). `route` may intercept the
 * page's room socket (playwright `routeWebSocket`), as a malicious edge would.
 */
async function joinAuto(room, name, route = null) {
  const context = await browser.newContext({ permissions: ['camera', 'microphone'], viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[page ${name}]`, err));
  if (route) await page.routeWebSocket(/\/api\/rooms\//, route);
  await page.goto(`${edge.url}/${room}?lowres`);
  await page.waitForSelector('#prejoin:not([hidden])');
  await page.fill('#display-name', name);
  await page.check('#e2ee-toggle');
  await page.waitForFunction(() => /** @type {HTMLVideoElement} */ (document.getElementById('preview')).srcObject);
  await page.click('#join');
  await inMeeting(page);
  return page;
}

const me = (page) => page.evaluate(() => /** @type {any} */ (window).edgemeet.me);
const counts = (page) => page.evaluate(() => /** @type {any} */ (window).edgemeet.e2ee.counts);
const sas = (page, id) => page.evaluate((i) => /** @type {any} */ (window).edgemeet.keys.sas(i), id);
/** The next `n` video frames `page` seals (ciphertext), kept in the test. */
const tap = (page, n = 20) => page.evaluate((k) => /** @type {any} */ (window).edgemeet.keys.tapSealed(k).then(
  (/** @type {any[]} */ fs) => fs.map((f) => ({ ...f, data: Array.from(new Uint8Array(f.data)) }))), n);
/** How many of `frames` `page`'s keys open. */
const tryOpen = (page, frames) => page.evaluate((fs) => /** @type {any} */ (window).edgemeet.keys.tryOpen(
  fs.map((/** @type {any} */ f) => ({ ...f, data: new Uint8Array(f.data).buffer }))), frames);

/** Wait until the page's keys know `n` peers (their public keys and strings). */
async function knowsPeers(page, n) {
  await page.waitForFunction((k) => /** @type {any} */ (window).edgemeet.keys.peers.size === k, n, { timeout: 15000 });
}

test('automatic E2EE, direct then via the node: everyone decodes everyone; a newcomer cannot open earlier frames', async () => {
  const room = uniqueRoom('auto-e2ee');
  const ada = await joinAuto(room, 'Ada');
  const bob = await joinAuto(room, 'Bob');
  for (const page of [ada, bob]) {
    await waitMode(page, 'Direct');
    await waitForVideo(page, 1, 30000);
  }
  const [aid, bid] = [await me(ada), await me(bob)];
  // The pair's string is the same on both pages, and shown.
  const pairAB = await sas(ada, bid);
  assert.match(pairAB, /^(\S+ ){6}\S+$/, `seven emoji: ${pairAB}`);
  assert.equal(await sas(bob, aid), pairAB, 'Ada and Bob see the same string');
  await ada.click('#toggle-people');
  assert.equal(await ada.textContent(`#e2ee-peers li[data-id="${bid}"] .sas`), pairAB);

  // Frames Ada seals while Cy is not yet in the meeting.
  const earlier = await tap(ada, 20);
  assert.equal((await tryOpen(bob, earlier)).opened, 20, 'Bob opens what Ada sent him');

  // Cy's name is the scan's marker below: it lives in the edge's room state.
  const marker = `Cy ${randomBytes(12).toString('hex')}`;
  const cy = await joinAuto(room, marker);
  for (const page of [ada, bob, cy]) await waitMode(page, 'Via server');
  for (const page of [ada, bob, cy]) await waitForVideo(page, 2, 30000);
  for (const page of [ada, bob, cy]) {
    const c = await counts(page);
    assert.ok(c.encrypted > 0 && c.decrypted > 0, `frames sealed and opened: ${JSON.stringify(c)}`);
    assert.equal(await page.isVisible('#e2ee-badge'), true);
  }
  const cid = await me(cy);
  assert.equal(await sas(cy, aid), await sas(ada, cid));
  assert.equal(await sas(cy, bid), await sas(bob, cid));

  // Cy holds Ada's key of now, ratcheted forward at Cy's join: it opens Ada's frames from now on,
  // and none of those sealed before it joined.
  const later = await tap(ada, 20);
  assert.equal((await tryOpen(cy, later)).opened, 20, 'Cy opens what Ada sends now');
  const old = await tryOpen(cy, earlier);
  assert.deepEqual(old, { opened: 0, tried: 20 }, 'Cy cannot open what Ada sent before it joined');
  assert.equal((await tryOpen(bob, later)).opened, 20, 'Bob follows the ratchet by himself');
  await cy.click('#toggle-people');
  await cy.screenshot({ path: join(artifacts, 'e2ee-keys-meeting.png') });

  // Planted-key scan: every media key any page holds (its own, past and pending, and those it got)
  // is nowhere in the edge's logs nor in the memory of the edge process, which also runs the media
  // node here (the all-in-one). The scan finds a marker we know is there (a display name).
  const keys = [];
  for (const page of [ada, bob, cy]) {
    keys.push(...await page.evaluate(() => {
      const k = /** @type {any} */ (window).edgemeet.keys;
      const all = [k.current, k.pending?.key, ...[...k.peers.values()].flatMap((p) => p.keys)].filter(Boolean);
      return all.map((x) => Array.from(x.material));
    }));
  }
  assert.ok(keys.length >= 9, `keys to look for: ${keys.length}`);
  const found = scanEdge(keys.map((k) => Buffer.from(k)), Buffer.from(marker));
  console.log(`planted-key scan: ${keys.length} keys x 4 forms, ${Math.round(found.scanned / 1e6)} MB of the edge's memory and ${edge.logs.length} log lines`);
  assert.deepEqual(found.keys, [], `media keys found in the edge: ${JSON.stringify(found)}`);
  await closeAll([ada, bob, cy]);
});

test('kick: the kicked page opens nothing sent after the rekey, the others keep decoding without a gap', async () => {
  const room = uniqueRoom('auto-kick');
  const ada = await joinAuto(room, 'Ada');
  const bob = await joinAuto(room, 'Bob');
  const cy = await joinAuto(room, 'Cy');
  for (const page of [ada, bob, cy]) await waitMode(page, 'Via server');
  for (const page of [ada, bob, cy]) await waitForVideo(page, 2, 30000);
  for (const page of [ada, bob, cy]) await knowsPeers(page, 2);
  const cid = await me(cy);
  // Before: Cy opens what Ada and Bob send.
  const beforeKick = [...await tap(ada, 10), ...await tap(bob, 10)];
  assert.equal((await tryOpen(cy, beforeKick)).opened, 20);

  // Watch Ada's and Bob's decoders every 50 ms across the kick.
  const watch = (page) => page.evaluate(() => {
    const w = { frames: /** @type {Record<string, number>} */ ({}), at: /** @type {Record<string, number>} */ ({}), gaps: /** @type {Record<string, number>} */ ({}), timer: 0 };
    w.timer = setInterval(async () => {
      const pc = /** @type {any} */ (window).edgemeet.sfu?.pc;
      if (!pc) return;
      const now = performance.now();
      for (const s of (await pc.getStats()).values()) {
        if (s.type !== 'inbound-rtp' || s.kind !== 'video') continue;
        const id = s.trackIdentifier;
        if ((s.framesDecoded || 0) > (w.frames[id] ?? -1)) {
          if (w.at[id] !== undefined) w.gaps[id] = Math.max(w.gaps[id] || 0, now - w.at[id]);
          w.frames[id] = s.framesDecoded || 0;
          w.at[id] = now;
        }
      }
    }, 50);
    /** @type {any} */ (window).__watch = w;
  });
  await watch(ada);
  await watch(bob);
  const failedBefore = [(await counts(ada)).failed, (await counts(bob)).failed];
  await ada.waitForTimeout(1000);
  const oldTag = await ada.evaluate(() => Array.from(/** @type {any} */ (window).edgemeet.keys.current.tag));
  await ada.evaluate((id) => /** @type {any} */ (window).edgemeet.signaling.send({ type: 'kick', target: id }), cid);
  await cy.waitForSelector('#ended:not([hidden])', { timeout: 10000 });
  // Both remaining senders switch to new keys (after each other's ack).
  for (const page of [ada, bob]) {
    await page.waitForFunction(() => /** @type {any} */ (window).edgemeet.keys.pending === null
      && /** @type {any} */ (window).edgemeet.keys.present.size === 1, null, { timeout: 5000 });
  }
  const newTag = await ada.evaluate(() => Array.from(/** @type {any} */ (window).edgemeet.keys.current.tag));
  assert.notDeepEqual(newTag, oldTag, 'Ada seals with a new key');
  await ada.waitForTimeout(3000);

  const report = async (page) => page.evaluate(async () => {
    const w = /** @type {any} */ (window).__watch;
    clearInterval(w.timer);
    // Streams that still decode at the end: the remaining peer's (the kicked one's stopped).
    const pc = /** @type {any} */ (window).edgemeet.sfu.pc;
    await new Promise((r) => setTimeout(r, 600));
    const live = [];
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && (s.framesDecoded || 0) > (w.frames[s.trackIdentifier] ?? 0)) live.push(s.trackIdentifier);
    }
    return { live, gaps: w.gaps };
  });
  for (const [name, page, failed] of [['Ada', ada, failedBefore[0]], ['Bob', bob, failedBefore[1]]]) {
    const { live, gaps } = await report(page);
    assert.equal(live.length, 1, `${name} still decodes the other: ${JSON.stringify({ live, gaps })}`);
    const gap = gaps[live[0]];
    console.log(`${name}: longest gap in the other's video across the kick: ${Math.round(gap)} ms; frames that failed to open: ${(await counts(page)).failed - failed}`);
    assert.ok(gap < 500, `${name}'s longest gap ${Math.round(gap)} ms`);
  }

  // After the rekey: Cy (still holding every key it was given) opens nothing Ada or Bob send,
  // while they open each other's.
  const afterAda = await tap(ada, 15);
  const afterBob = await tap(bob, 15);
  assert.deepEqual(await tryOpen(cy, [...afterAda, ...afterBob]), { opened: 0, tried: 30 }, 'the kicked page opens nothing');
  assert.equal((await tryOpen(bob, afterAda)).opened, 15);
  assert.equal((await tryOpen(ada, afterBob)).opened, 15);
  await closeAll([ada, bob, cy]);
});

test('the pair string matches on both pages, differs when a key is swapped on the way, and shows who is verified', async () => {
  const room = uniqueRoom('auto-sas');
  const ada = await joinAuto(room, 'Ada');
  const adaId = await me(ada);
  // Bob's socket goes through a "malicious edge" that swaps Ada's public key for its own.
  const { publicKey } = generateKeyPairSync('x25519');
  const fake = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  let swapped = 0;
  const bob = await joinAuto(room, 'Bob', (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => server.send(m));
    server.onMessage((m) => {
      const msg = JSON.parse(String(m));
      if (msg.type === 'e2ee_key' && msg.from === adaId) {
        const blob = Buffer.from(msg.blob, 'base64url');
        if (blob[0] === 1) {
          msg.blob = Buffer.concat([blob.subarray(0, 2), fake]).toString('base64url');
          swapped++;
          return ws.send(JSON.stringify(msg));
        }
      }
      ws.send(m);
    });
  });
  const bobId = await me(bob);
  const carol = await joinAuto(room, 'Carol');
  const carolId = await me(carol);
  for (const page of [ada, bob, carol]) await knowsPeers(page, 2);
  assert.ok(swapped > 0, 'the test swapped a key');
  const [atAda, atBob] = [await sas(ada, bobId), await sas(bob, adaId)];
  assert.notEqual(atAda, atBob, 'a swapped key shows as different strings');
  // Pairs nobody tampered with still match.
  assert.equal(await sas(ada, carolId), await sas(carol, adaId));
  assert.equal(await sas(bob, carolId), await sas(carol, bobId));

  // The page shows the strings; marking one verified says so.
  await carol.click('#toggle-people');
  const row = `#e2ee-peers li[data-id="${adaId}"]`;
  assert.equal(await carol.textContent(`${row} .sas`), await sas(carol, adaId));
  await carol.click(`${row} button.verify`);
  await carol.waitForSelector(`${row}.verified`);
  assert.equal(await carol.textContent(`${row} button.verify`), 'Verified ✓');
  await carol.screenshot({ path: join(artifacts, 'e2ee-keys-verify.png') });
  await closeAll([ada, bob, carol]);
});

/**
 * Look for each key, raw, hex and base64(url), in the edge's logs and in its process memory
 * (/proc/PID/mem, readable regions). `marker` must be found: the scan sees the process.
 * @param {Buffer[]} keys @param {Buffer} marker
 */
function scanEdge(keys, marker) {
  const forms = keys.flatMap((k) => [k, Buffer.from(k.toString('hex')), Buffer.from(k.toString('base64').replace(/=+$/, '')), Buffer.from(k.toString('base64url'))]);
  const logs = Buffer.from(edge.logs.join('\n'));
  const hits = new Set(forms.filter((f) => logs.includes(f)).map((f) => f.toString('hex').slice(0, 16)));
  let markerSeen = false;
  let scanned = 0;
  const maps = readFileSync(`/proc/${edge.pid}/maps`, 'utf8').split('\n');
  const fd = openSync(`/proc/${edge.pid}/mem`, 'r');
  try {
    for (const line of maps) {
      // Anonymous memory (heap, stacks, allocator arenas) and writable mappings: where data made at
      // run time lives; the binary's code and read-only data cannot hold a key made by a page.
      const m = line.match(/^([0-9a-f]+)-([0-9a-f]+) r(.)\S*\s+\S+\s+\S+\s+\S+\s*(.*)$/);
      if (!m || (m[4] && !m[4].startsWith('[heap') && !m[4].startsWith('[stack') && m[3] !== 'w')) continue;
      if (m[4].startsWith('[v')) continue;
      const [start, end] = [Number.parseInt(m[1], 16), Number.parseInt(m[2], 16)];
      // Chunks overlap by 128 bytes: a key across a chunk's end is still seen.
      for (let at = start; at < end; at += (1 << 24) - 128) {
        const len = Math.min(1 << 24, end - at);
        const buf = Buffer.alloc(len);
        let n = 0;
        try { n = readSync(fd, buf, 0, len, at); } catch { continue; }
        const chunk = buf.subarray(0, n);
        scanned += n;
        if (!markerSeen && chunk.includes(marker)) markerSeen = true;
        for (const f of forms) if (chunk.includes(f)) hits.add(f.toString('hex').slice(0, 16));
      }
    }
  } finally { closeSync(fd); }
  assert.ok(markerSeen && scanned > 1e6, `the scan reads the edge's memory (${scanned} bytes, marker ${markerSeen})`);
  return { keys: [...hits], scanned };
}
