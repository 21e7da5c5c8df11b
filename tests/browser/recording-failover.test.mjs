// A recording outlives its media node (issue 17): the native edge (no embedded node), two media
// nodes of one region recording to a real S3-compatible server (s3s-fs), the standalone uploader
// delivering to the strict Dropbox emulator (which keeps the committed bytes for this test). Two
// pages record; the recording node is killed (`kill -9`); the pages move to the other node and the
// recording goes on there as a further file. The dead node's files are rebuilt by the uploader
// from the recording's journal; every file reaches the Dropbox, each one decodes in ffmpeg, and
// together they cover the meeting but for a bounded gap around the kill.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdirSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startEdge, launchBrowser, joinPage, inMeeting, waitForVideo, uniqueRoom, tempDir } from './lib.mjs';
import { BIN_DIR, freePort, startMediaNode, startProcess as spawnProcess } from './nodes.mjs';

const APP_KEY = 'failoverappkey';
const S3S_FS = process.env.EDGEMEET_S3S_FS
  || join(process.env.EDGEMEET_CACHE || join(homedir(), '.cache', 'edgemeet'), 'tools', 'bin', 's3s-fs');
/** The uploader salvages a recording nothing was written to for this long. */
const SALVAGE_AFTER_S = 10;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let dir;
let emuUrl;
let edge;
let browser;
/** @type {Map<string, {pid: number, kill: (s?: NodeJS.Signals) => void, logs: string[]}>} */
const nodes = new Map();
/** @type {Array<{kill: (s?: NodeJS.Signals) => void}>} */
const procs = [];
let s3;
let key;

/** Spawn `bin` (killed when the file's tests end); resolves once `ready()` holds. */
async function startProcess(bin, args, env, ready) {
  const p = await spawnProcess(bin, args, env, ready);
  procs.push(p);
  return p;
}

async function startEmulator() {
  const child = spawn(join(BIN_DIR, 'dropbox-emulator'), [], {
    env: { ...process.env, EDGEMEET_EMULATOR_KEEP_DIR: join(dir, 'dropbox') },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  procs.push({ kill: (s = 'SIGTERM') => { child.kill(s); } });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('dropbox emulator did not start')), 10000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      const m = line.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    });
  });
}

/** A media node of region eu-west recording into the test's S3; resolves once the edge knows it. */
async function startNode(id) {
  const node = await startMediaNode(edge.url, id, {
    dir,
    more: [
      '[recording]', `encryption_key = "${key}"`, 'require_dropbox = true', '',
      '[recording.s3]', `endpoint = "${s3.endpoint}"`, 'bucket = "recordings"',
      `access_key_id = "${s3.ak}"`, `secret_access_key = "${s3.sk}"`,
    ],
  });
  procs.push(node);
  nodes.set(id, node);
  return node;
}

before(async () => {
  dir = tempDir();
  mkdirSync(join(dir, 's3', 'recordings'), { recursive: true }); // s3s-fs: a bucket is a folder
  mkdirSync(join(dir, 'dropbox'));
  key = randomBytes(32).toString('base64');
  const s3Port = await freePort();
  s3 = { endpoint: `http://127.0.0.1:${s3Port}`, ak: `AK${randomBytes(8).toString('hex')}`, sk: randomBytes(20).toString('hex') };
  await startProcess(S3S_FS, ['--host', '127.0.0.1', '--port', String(s3Port), '--access-key', s3.ak, '--secret-key', s3.sk, join(dir, 's3')],
    {}, async () => (await fetch(`${s3.endpoint}/`)).status > 0);
  emuUrl = await startEmulator();
  await startProcess(join(BIN_DIR, 'edgemeet-uploader'), ['run'], {
    EDGEMEET_UPLOADER_DESTINATION: 'dropbox', EDGEMEET_UPLOADER_ENCRYPTION_KEY: key,
    EDGEMEET_UPLOADER_DROPBOX_API_URL: emuUrl, EDGEMEET_UPLOADER_DROPBOX_CONTENT_URL: emuUrl,
    EDGEMEET_UPLOADER_LISTEN: 'off', EDGEMEET_UPLOADER_POLL_INTERVAL_MS: '500',
    EDGEMEET_UPLOADER_RETRY_INITIAL_MS: '500', EDGEMEET_UPLOADER_SALVAGE_AFTER_SECS: String(SALVAGE_AFTER_S),
    EDGEMEET_UPLOADER_S3_ENDPOINT: s3.endpoint, EDGEMEET_UPLOADER_S3_BUCKET: 'recordings',
    EDGEMEET_UPLOADER_S3_ACCESS_KEY_ID: s3.ak, EDGEMEET_UPLOADER_S3_SECRET_ACCESS_KEY: s3.sk,
    RUST_LOG: 'info',
  }, async () => true);
  edge = await startEdge({
    EDGEMEET_DROPBOX_APP_KEY: APP_KEY,
    EDGEMEET_DROPBOX_AUTHORIZE_URL: `${emuUrl}/oauth2/authorize`,
    EDGEMEET_DROPBOX_API_URL: emuUrl,
    EDGEMEET_DROPBOX_CONTENT_URL: emuUrl,
  }, (text) => `embed_media_node = false\nregion = "eu-west"\n${text}`);
  const res = await fetch(`${emuUrl}/_emulator/apps`, {
    method: 'POST',
    body: JSON.stringify({ app_key: APP_KEY, redirect_uris: [`${edge.url}/`] }),
  });
  assert.equal(res.status, 200);
  await startNode('rec-a');
  await startNode('rec-b');
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  edge?.stop();
  for (const p of procs.reverse()) p.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const nodeOf = (page) => page.evaluate(() => /** @type {any} */ (window).edgemeet.sfu?.grant?.node_id || null);

/** ffprobe's duration of a file and ffmpeg's count of decoded video frames (errors fail). */
function play(file) {
  const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-of', 'json', '-show_entries',
    'format=duration:stream=codec_name:packet=pts_time', file], { maxBuffer: 64 << 20 }).toString());
  const codecs = probe.streams.map((s) => s.codec_name).sort();
  const times = probe.packets.map((p) => Number(p.pts_time)).filter((t) => Number.isFinite(t));
  const span = Math.max(...times) - Math.min(...times);
  // Decode every frame; a corrupt file makes ffmpeg print errors (and -xerror stop with one).
  const out = execFileSync('ffmpeg', ['-v', 'error', '-xerror', '-i', file, '-map', '0:v:0', '-f', 'null', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const frames = Number(execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0',
    '-show_entries', 'stream=nb_read_frames', '-of', 'csv=p=0', file]).toString().trim());
  // A finished file has its exact Duration in its head; one rebuilt from the journal has none.
  const finished = Number.isFinite(Number(probe.format?.duration));
  return { codecs, span, frames, finished, errors: out.toString() };
}

test('a recording across a killed node: the file recorded before the kill and the further one both reach Dropbox, and play', async () => {
  const room = uniqueRoom('rec-kill');
  const ada = await joinPage(browser, edge.url, room, { name: 'Ada' });
  await inMeeting(ada);
  const bob = await joinPage(browser, edge.url, room, { name: 'Bob' });
  await inMeeting(bob);
  await ada.waitForFunction(() => !document.getElementById('record').hidden);
  const popupPromise = ada.context().waitForEvent('page');
  await ada.click('#record');
  const popup = await popupPromise;
  await popup.waitForEvent('close', { timeout: 15000 });
  for (const p of [ada, bob]) await p.waitForSelector('#rec-badge:not([hidden])', { timeout: 15000 });
  // Recording moves the pair to a node; both decode each other through it.
  for (const p of [ada, bob]) await waitForVideo(p, 1, 30000);
  const node = await nodeOf(ada);
  assert.ok(node && nodes.has(node), `on a node: ${node}`);
  assert.equal(await nodeOf(bob), node);
  const recordingFrom = Date.now();
  await sleep(8000);

  const killedAt = Date.now();
  process.kill(/** @type {any} */ (nodes.get(node)).pid, 'SIGKILL');
  nodes.delete(node);
  for (const p of [ada, bob]) {
    await p.waitForFunction((d) => {
      const g = /** @type {any} */ (window).edgemeet.sfu?.grant;
      return g && g.node_id !== d;
    }, node, { timeout: 15000, polling: 100 });
  }
  for (const p of [ada, bob]) await waitForVideo(p, 1, 30000);
  const movedAt = Date.now();
  // Still recording (nothing said it failed), on the new node.
  assert.equal(await ada.isVisible('#rec-badge'), true);
  await sleep(8000);
  await ada.click('#record');
  for (const p of [ada, bob]) await p.waitForSelector('#rec-badge', { state: 'hidden', timeout: 15000 });
  const stoppedAt = Date.now();

  // Two recordings of two files each (a file per participant): the one from the killed node
  // arrives once the uploader salvaged it (SALVAGE_AFTER_S after its last write).
  let files = [];
  for (let i = 0; i < 300 && files.length < 4; i++) {
    files = await (await fetch(`${emuUrl}/_emulator/files`)).json();
    if (files.length < 4) await sleep(200);
  }
  const arrivedAt = Date.now();
  assert.equal(files.length, 4, JSON.stringify(files));
  const byRecording = new Map();
  for (const f of files) {
    const m = f.path_display.match(/\/([0-9a-f]{8})-p\d\.webm$/);
    assert.ok(m, f.path_display);
    const kept = join(dir, 'dropbox', f.path_display.replaceAll('/', '_'));
    assert.ok(existsSync(kept), `the emulator kept ${f.path_display}: ${readdirSync(join(dir, 'dropbox'))}`);
    const played = play(kept);
    console.log(`${f.path_display}: ${f.size} bytes, ${played.codecs.join('+')}, ${played.span.toFixed(2)} s, ${played.frames} video frames decoded`);
    assert.deepEqual(played.codecs, ['opus', 'vp8']);
    assert.equal(played.errors, '', 'decodes without errors');
    assert.ok(played.frames > 10, `${played.frames} frames`);
    byRecording.set(m[1], [...(byRecording.get(m[1]) || []), played]);
  }
  assert.equal(byRecording.size, 2, 'two recordings: before and after the kill');
  // Which is which: the files rebuilt from the dead node's journal have no Duration.
  const recs = [...byRecording.values()];
  const salvaged = recs.filter((fs) => fs.every((f) => !f.finished));
  const finished = recs.filter((fs) => fs.every((f) => f.finished));
  assert.deepEqual([salvaged.length, finished.length], [1, 1], 'one recording salvaged, one finished');
  const before = Math.max(...salvaged[0].map((f) => f.span));
  const after = Math.max(...finished[0].map((f) => f.span));
  const beforeWanted = (killedAt - recordingFrom) / 1000;
  const afterWanted = (stoppedAt - movedAt) / 1000;
  const total = (stoppedAt - recordingFrom) / 1000;
  const gap = total - before - after;
  console.log(`recorded ${total.toFixed(1)} s across a kill: before the kill ${before.toFixed(2)} s of ${beforeWanted.toFixed(1)} s ` +
    `(lost ${(beforeWanted - before).toFixed(2)} s at the kill), after it ${after.toFixed(2)} s; ` +
    `uncovered in all ${gap.toFixed(1)} s (kill to decoding on the new node ${((movedAt - killedAt) / 1000).toFixed(1)} s); ` +
    `all four files in Dropbox ${((arrivedAt - stoppedAt) / 1000).toFixed(1)} s after the stop`);
  // The part before the kill: all of it but the last journal interval (2 s) and the keyframe wait at start.
  assert.ok(before >= beforeWanted - 4, `before the kill: ${before} s of ${beforeWanted} s`);
  assert.ok(after >= afterWanted - 2, `after the move: ${after} s of ${afterWanted} s`);
  assert.ok(gap < 12, `uncovered ${gap} s`);
  // Our storage: nothing but the delivery statuses once delivered.
  const left = [];
  const walk = (d) => { for (const e of readdirSync(d, { withFileTypes: true })) e.isDirectory() ? walk(join(d, e.name)) : left.push(join(d, e.name)); };
  for (let i = 0; i < 50; i++) {
    left.length = 0;
    walk(join(dir, 's3', 'recordings'));
    if (left.every((f) => f.endsWith('status.json') || f.includes('.s3s'))) break;
    await sleep(200);
  }
  assert.deepEqual(left.filter((f) => !f.endsWith('status.json') && !f.includes('.s3s')), [], 'only delivery statuses left');
  for (const p of [ada, bob]) await p.context().close();
});

test('no node free: the pages wait, saying so, and move by themselves to a node that registers later', async () => {
  // One node left (the first test killed the other): a meeting of three through it.
  assert.equal(nodes.size, 1);
  const [only] = [...nodes.keys()];
  const room = uniqueRoom('no-node');
  const pages = [];
  for (let i = 0; i < 3; i++) {
    pages.push(await joinPage(browser, edge.url, room, { name: `P${i}` }));
    await inMeeting(pages[i]);
  }
  for (const p of pages) await waitForVideo(p, 2, 30000);
  for (const p of pages) assert.equal(await nodeOf(p), only);
  for (const p of pages) {
    await p.evaluate(() => {
      const w = /** @type {any} */ (window);
      w.__banners = [];
      const el = /** @type {HTMLElement} */ (document.getElementById('conn-banner'));
      new MutationObserver(() => { if (!el.hidden && el.textContent) w.__banners.push(el.textContent); })
        .observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
    });
  }
  process.kill(/** @type {any} */ (nodes.get(only)).pid, 'SIGKILL');
  nodes.delete(only);
  // Nothing to move to: every page says it waits, and keeps saying it.
  for (const p of pages) {
    await p.waitForFunction(() => document.getElementById('conn-banner')?.textContent === 'Waiting for a media server…', null, { timeout: 15000 });
  }
  await sleep(5000);
  for (const p of pages) {
    assert.equal(await p.textContent('#conn-banner'), 'Waiting for a media server…');
  }
  // A node registers: nobody acts, the pages move there and decode each other again.
  const startedAt = Date.now();
  await startNode('rec-c');
  const back = await Promise.all(pages.map(async (p) => {
    await p.waitForFunction(() => /** @type {any} */ (window).edgemeet.sfu?.grant?.node_id === 'rec-c', null, { timeout: 20000, polling: 100 });
    await waitForVideo(p, 2, 30000);
    return Date.now() - startedAt;
  }));
  console.log(`no node free: the pages decode again ${back.join(', ')} ms after a new node was started (its first heartbeat goes out once it listens)`);
  for (const p of pages) {
    const banners = await p.evaluate(() => /** @type {any} */ (window).__banners);
    assert.ok(banners.includes('Waiting for a media server…'), JSON.stringify(banners));
    assert.ok(banners.includes('Moved to another server'), JSON.stringify(banners));
    assert.notEqual(await p.textContent('#conn-banner'), 'Waiting for a media server…');
  }
  assert.match(edge.logs.join('\n'), /moving rooms off a media node/);
  for (const p of pages) await p.context().close();
});
