// Livestreaming from the page (issue 21): in a meeting of two (the stream moves it to the media
// node), a moderator clicks "Go live", types an RTMP server's URL and stream key and starts; both
// pages show LIVE; the composed meeting arrives at the RTMP server (ffmpeg listening, as an ingest
// would) and plays: H.264 + AAC, as long as it was live. "Stop live" ends it everywhere. The key
// is in no line the server logged and left on no page.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, uniqueRoom, tempDir } from './lib.mjs';
import { freePort } from './nodes.mjs';
import { probe, pictureAt } from './media-files.mjs';

const KEY = 'live-key-from-the-page-7f3e';
let edge;
let browser;
let dir;

before(async () => {
  dir = tempDir();
  edge = await startEdge();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  edge?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const badge = (page) => page.isVisible('#live-badge');

test('a moderator streams the meeting to an RTMP server; everyone sees LIVE; stop ends it', async () => {
  const port = await freePort();
  const received = join(dir, 'received.flv');
  const server = spawn('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-listen', '1', '-i', `rtmp://127.0.0.1:${port}/live/${KEY}`, '-c', 'copy', '-y', received], { stdio: ['ignore', 'ignore', 'pipe'] });
  let serverErr = '';
  server.stderr.on('data', (b) => { serverErr += b; });
  const ended = new Promise((resolve) => server.on('exit', resolve));

  const room = uniqueRoom('live');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  assert.equal(await badge(ada), false);
  assert.equal(await ada.isVisible('#live-form'), false);

  await ada.click('#live');
  await ada.fill('#live-url', `rtmp://127.0.0.1:${port}/live`);
  await ada.fill('#live-key', KEY);
  await ada.click('#live-start');
  const t0 = Date.now();
  // Both see LIVE; the pair moved to the node (a stream is composed there).
  await ada.waitForSelector('#live-badge', { state: 'visible', timeout: 10000 });
  await bob.waitForSelector('#live-badge', { state: 'visible', timeout: 10000 });
  await waitMode(bob, 'Via server');
  assert.equal(await ada.inputValue('#live-key'), '', 'the form forgot the key');
  assert.equal(await ada.textContent('#live'), 'Stop live');

  await new Promise((r) => setTimeout(r, 8000));
  await ada.click('#live');
  const live = (Date.now() - t0) / 1000;
  await ada.waitForSelector('#live-badge', { state: 'hidden', timeout: 10000 });
  await bob.waitForSelector('#live-badge', { state: 'hidden', timeout: 10000 });
  const code = await Promise.race([ended, new Promise((r) => setTimeout(() => r('timeout'), 20000))]);
  assert.notEqual(code, 'timeout', 'the RTMP server saw the stream end');

  const { codecs, duration } = probe(received);
  console.log(`livestream: ${duration.toFixed(1)} s received of ${live.toFixed(1)} s live; ${codecs.join(' + ')}`);
  assert.deepEqual(codecs, ['aac', 'h264'], `the stream plays (server: ${serverErr})`);
  // From the node's start (after the click, the edge and the RTMP handshake) to the stop.
  assert.ok(duration > live - 4 && duration < live + 1.5, `${duration} s received of ${live} s live`);
  // The cameras are in it: the fake camera's picture moves (tiles still waiting would not).
  const [a, b] = [pictureAt(received, duration - 3), pictureAt(received, duration - 1)];
  assert.equal(a.length, 160 * 90);
  const moved = a.reduce((n, v, i) => n + Math.abs(v - b[i]), 0) / a.length;
  console.log(`livestream: the picture moved ${moved.toFixed(2)} grey levels on average in 2 s`);
  if (moved <= 0.5) console.log(edge.logs.filter((l) => /composition/.test(l)).join('\n'));
  assert.ok(moved > 0.5, `the picture moved by ${moved.toFixed(2)} grey levels on average`);
  for (const page of [ada, bob]) {
    assert.ok(!(await page.content()).includes(KEY), 'no page holds the key');
  }
  assert.ok(!edge.logs.join('\n').includes(KEY), 'the stream key is in a server log line');
  await ada.close();
  await bob.close();
});
