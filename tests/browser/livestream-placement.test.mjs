// Compositions are placed (issue 21): a node runs at most `max_compositions` livestreams and
// composite recordings. The native edge (no embedded node) with node `eu-a` allowed one: a room
// of one streams there. A second room on `eu-a` goes live; `eu-a` refuses (429) and the edge
// moves that room to `eu-b`, which has a composer free: its pages say "Moved to another server",
// keep decoding each other through `eu-b`, show LIVE, and its RTMP server receives the stream;
// the edge closes the pair's meeting on `eu-a` once the pages have left it.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { startEdge, launchBrowser, joinPage, inMeeting, waitForVideo, uniqueRoom, tempDir } from './lib.mjs';
import { freePort, startMediaNode } from './nodes.mjs';
import { probe } from './media-files.mjs';

const KEY = 'placement-key-5d1c';
let edge;
let browser;
let dir;
let euA;
/** @type {{kill: (signal?: NodeJS.Signals) => void}[]} */
const procs = [];

before(async () => {
  dir = tempDir();
  edge = await startEdge({}, (text) => `embed_media_node = false\nregion = "eu-west"\n${text}`);
  euA = await startMediaNode(edge.url, 'eu-a', { more: ['max_compositions = 1'] });
  procs.push(euA);
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  for (const p of procs) p.kill('SIGKILL');
  edge?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const nodeOf = (page) => page.evaluate(() => /** @type {any} */ (window).edgemeet.sfu?.grant?.node_id || null);

/** An RTMP server (ffmpeg listening, as an ingest would) writing what it receives to `file`. */
async function rtmpServer(file) {
  const port = await freePort();
  const child = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-listen', '1', '-i', `rtmp://127.0.0.1:${port}/live/${KEY}`, '-c', 'copy', '-y', file], { stdio: 'ignore' });
  procs.push(child);
  const ended = new Promise((resolve) => child.on('exit', resolve));
  return { url: `rtmp://127.0.0.1:${port}/live`, ended };
}

/** Until node `url`'s gauge `name` reads `n` (a first ffmpeg may start slowly; a close comes late). */
async function untilGauge(url, name, n) {
  const deadline = Date.now() + 20000;
  for (;;) {
    const text = await (await fetch(`${url}/metrics`)).text();
    if (new RegExp(`^${name} ${n}$`, 'm').test(text)) return;
    assert.ok(Date.now() < deadline, `node ${url}: ${text.split('\n').filter((l) => l.startsWith(name)).join(', ')}, not ${n}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function goLive(page, url) {
  await page.click('#live');
  await page.fill('#live-url', url);
  await page.fill('#live-key', KEY);
  await page.click('#live-start');
}

test('a node with no composer free hands a room going live to one that has one', async () => {
  // Both rooms on eu-a (the only node yet).
  const solo = await joinPage(browser, edge.url, uniqueRoom('solo-live'), { name: 'Solo' });
  await inMeeting(solo);
  const room = uniqueRoom('moved-live');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);

  // The room of one takes eu-a's only composer.
  const first = await rtmpServer(join(dir, 'solo.flv'));
  await goLive(solo, first.url);
  await solo.waitForSelector('#live-badge', { state: 'visible', timeout: 10000 });
  assert.equal(await nodeOf(solo), 'eu-a');
  await untilGauge(euA.url, 'edgemeet_node_compositions', 1);

  // eu-b comes up; the pair goes live: eu-a is full, the room moves to eu-b and streams there.
  procs.push(await startMediaNode(edge.url, 'eu-b', { more: ['max_compositions = 1'] }));
  const received = join(dir, 'moved.flv');
  const second = await rtmpServer(received);
  const t0 = Date.now();
  await goLive(ada, second.url);
  await ada.waitForSelector('#live-badge', { state: 'visible', timeout: 10000 });
  await bob.waitForSelector('#live-badge', { state: 'visible', timeout: 10000 });
  for (const p of [ada, bob]) {
    await p.waitForFunction(() => /** @type {any} */ (window).edgemeet.sfu?.grant?.node_id === 'eu-b', null, { timeout: 15000 })
      .catch((e) => {
        console.log(edge.logs.filter((l) => /node call|media node|composition|livestream/.test(l)).join('\n'));
        throw e;
      });
  }
  const moved = (Date.now() - t0) / 1000;
  for (const p of [ada, bob]) await waitForVideo(p, 1, 15000);
  const decoding = (Date.now() - t0) / 1000;
  console.log(`placement: the pair on eu-b ${moved.toFixed(1)} s after Go live, decoding each other there after ${decoding.toFixed(1)} s`);
  assert.equal(await nodeOf(solo), 'eu-a', 'the other room stays');

  await new Promise((r) => setTimeout(r, 6000));
  // The pages left eu-a; the edge closed the pair's meeting there: only the room of one is left.
  await untilGauge(euA.url, 'edgemeet_node_rooms', 1);
  await ada.click('#live');
  await ada.waitForSelector('#live-badge', { state: 'hidden', timeout: 10000 });
  const code = await Promise.race([second.ended, new Promise((r) => setTimeout(() => r('timeout'), 20000))]);
  assert.notEqual(code, 'timeout', 'the RTMP server saw the stream end');
  const { codecs, duration } = probe(received);
  console.log(`placement: ${duration.toFixed(1)} s received from eu-b; ${codecs.join(' + ')}`);
  assert.deepEqual(codecs, ['aac', 'h264']);
  assert.ok(duration > 3, `${duration} s received`);
  // The banner said it, and no error did.
  for (const p of [ada, bob]) {
    assert.ok(!(await p.content()).includes(KEY), 'no page holds the key');
  }
  assert.ok(!edge.logs.join('\n').includes(KEY), 'the stream key is in a server log line');
  await solo.click('#live');
  for (const p of [solo, ada, bob]) await p.close();
});
