// Meetings survive their media node (issue 17): the native edge (no embedded node) and two
// standalone media nodes in one region, heartbeating every second. Three pages meet through one
// node; that node is killed (`kill -9`): every page decodes the others again through the other
// node, by itself, and says "Moved to another server". Then a node drained with `migrate`: the
// pages move with no visible gap (each remote tile's longest pause between painted frames). Last,
// the native edge itself is killed and started again: the pages come back by themselves into a new
// meeting and say so in one line.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { startEdge, launchBrowser, joinPage, inMeeting, waitMode, waitForVideo, uniqueRoom } from './lib.mjs';
import { NODE_SECRET, freePort, startMediaNode } from './nodes.mjs';

let edge;
let browser;
/** @type {Map<string, {id: string, url: string, pid: number, logs: string[], kill: (signal?: NodeJS.Signals) => void}>} */
const nodes = new Map();

before(async () => {
  // No embedded node: the rooms use the standalone ones; the edge is in their region.
  edge = await startEdge({}, (text) => `embed_media_node = false\nregion = "eu-west"\n${text}`);
  await startNode('eu-a');
  await startNode('eu-b');
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  for (const n of nodes.values()) n.kill('SIGKILL');
  edge?.stop();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Start a media node of region eu-west reporting to the edge. */
async function startNode(id) {
  const node = await startMediaNode(edge.url, id);
  nodes.set(id, node);
  return node;
}

/** The node the page's media goes through. */
const nodeOf = (page) => page.evaluate(() => /** @type {any} */ (window).edgemeet.sfu?.grant?.node_id || null);

/** Keep every text the page's connection banner shows, from now on, in `window.__banners`. */
async function watchBanner(page) {
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__banners = [];
    const el = /** @type {HTMLElement} */ (document.getElementById('conn-banner'));
    new MutationObserver(() => { if (!el.hidden && el.textContent) w.__banners.push(el.textContent); })
      .observe(el, { childList: true, characterData: true, subtree: true, attributes: true });
  });
}

/** Three pages in a new room, all decoding both others through one node; returns them and it. */
async function meetingOfThree(prefix) {
  const room = uniqueRoom(prefix);
  const pages = [];
  for (let i = 0; i < 3; i++) {
    pages.push(await joinPage(browser, edge.url, room, { name: `P${i}` }));
    await inMeeting(pages[i]);
  }
  for (const p of pages) await waitMode(p, 'Via server');
  for (const p of pages) await waitForVideo(p, 2, 30000);
  const used = new Set(await Promise.all(pages.map(nodeOf)));
  assert.equal(used.size, 1, 'all three on one node');
  const node = [...used][0];
  for (const p of pages) await watchBanner(p);
  return { pages, node };
}

test('a media node killed under a meeting of three: every page decodes again through the other node', async () => {
  const { pages, node } = await meetingOfThree('node-killed');
  const dead = /** @type {NonNullable<ReturnType<typeof nodes.get>>} */ (nodes.get(node));
  const killedAt = Date.now();
  process.kill(dead.pid, 'SIGKILL');
  // Each page, by itself: a grant for another node, then both others decoding through it.
  const back = await Promise.all(pages.map(async (p) => {
    await p.waitForFunction((d) => {
      const g = /** @type {any} */ (window).edgemeet.sfu?.grant;
      return g && g.node_id !== d;
    }, node, { timeout: 15000, polling: 50 });
    await waitForVideo(p, 2, 20000);
    return Date.now() - killedAt;
  }));
  console.log(`node ${node} killed: pages decode both others again after ${back.join(', ')} ms (last ${Math.max(...back)} ms; target < 3000)`);
  for (const p of pages) {
    assert.notEqual(await nodeOf(p), node);
    const banners = await p.evaluate(() => /** @type {any} */ (window).__banners);
    assert.ok(banners.includes('Moved to another server'), `the page says it moved: ${JSON.stringify(banners)}`);
    const moved = await p.evaluate(() => /** @type {any} */ (window).edgemeet.timings.marks['msg:node_moved']);
    assert.ok(moved !== undefined, 'the edge told the page');
  }
  const logs = edge.logs.join('\n');
  assert.match(logs, /moving rooms off a media node/);
  for (const p of pages) await p.context().close();
  nodes.delete(node);
});

test('a node drained with migrate: the pages move with no visible gap', async () => {
  // Two live nodes again.
  if (nodes.size < 2) await startNode('eu-c');
  const { pages, node } = await meetingOfThree('node-drained');
  // Each remote tile's painted frames, from now on.
  for (const p of pages) {
    await p.evaluate(() => {
      const w = /** @type {any} */ (window);
      const m = w.edgemeet;
      /** @type {Record<string, {last: number, gap: number, frames: number}>} */
      const tiles = {};
      w.__tiles = tiles;
      for (const [id, tile] of m.grid.tiles) {
        if (id === m.me) continue;
        const video = /** @type {HTMLVideoElement} */ (tile.querySelector('video'));
        const t = { last: 0, gap: 0, frames: 0 };
        tiles[id] = t;
        /** @param {number} now */
        const onFrame = (now) => {
          if (t.last) t.gap = Math.max(t.gap, now - t.last);
          t.last = now;
          t.frames++;
          video.requestVideoFrameCallback(onFrame);
        };
        video.requestVideoFrameCallback(onFrame);
      }
    });
  }
  await sleep(1000);
  const drainedAt = Date.now();
  const res = await fetch(`${nodes.get(node)?.url}/v1/drain`, {
    method: 'POST',
    headers: { authorization: `Bearer ${NODE_SECRET}`, 'content-type': 'application/json' },
    body: JSON.stringify({ draining: true, migrate: true }),
  });
  assert.equal(res.status, 200);
  // Every page on the other node, decoding both others there.
  const moved = await Promise.all(pages.map(async (p) => {
    await p.waitForFunction((d) => {
      const m = /** @type {any} */ (window).edgemeet;
      return m.sfu?.grant && m.sfu.grant.node_id !== d && !m.calls.retiring;
    }, node, { timeout: 15000, polling: 50 });
    await waitForVideo(p, 2, 20000);
    return Date.now() - drainedAt;
  }));
  await sleep(1500);
  const gaps = await Promise.all(pages.map((p) => p.evaluate(() => /** @type {any} */ (window).__tiles)));
  const worst = gaps.map((tiles) => Math.max(...Object.values(tiles).map((t) => Math.round(/** @type {any} */ (t).gap))));
  console.log(`node ${node} drained with migrate: pages on the other node after ${moved.join(', ')} ms; longest pause of a remote tile per page: ${worst.join(', ')} ms (target < 1000)`);
  for (const tiles of gaps) {
    assert.equal(Object.keys(tiles).length, 2, 'two remote tiles');
    for (const t of Object.values(tiles)) assert.ok(/** @type {any} */ (t).frames > 30, 'the tile kept painting');
  }
  for (const w of worst) assert.ok(w < 1000, `media gap ${w} ms < 1 s`);
  for (const p of pages) {
    const banners = await p.evaluate(() => /** @type {any} */ (window).__banners);
    assert.ok(banners.includes('Moved to another server'), `the page says it moved: ${JSON.stringify(banners)}`);
  }
  for (const p of pages) await p.context().close();
});

test('the native edge restarts: pages reconnect by themselves into a new meeting and say so in one line', async () => {
  // An edge of its own (with its embedded node), on a port it gets back after the restart.
  const port = await freePort();
  const withPort = (text) => text.replace(/^listen = .*$/m, `listen = "127.0.0.1:${port}"`);
  let own = await startEdge({}, withPort);
  try {
    const room = uniqueRoom('edge-restart');
    const pages = [];
    for (let i = 0; i < 2; i++) {
      pages.push(await joinPage(browser, own.url, room, { name: `R${i}` }));
      await inMeeting(pages[i]);
    }
    for (const p of pages) await waitForVideo(p, 1, 20000);
    const before = await pages[0].evaluate(() => /** @type {any} */ (window).edgemeet.meetingId);
    for (const p of pages) await watchBanner(p);
    process.kill(own.pid, 'SIGKILL');
    await sleep(1000);
    const restartedAt = Date.now();
    own = await startEdge({}, withPort);
    // Both pages, with nobody touching them: in the new meeting together, the line shown.
    for (const p of pages) {
      await p.waitForFunction((old) => {
        const m = /** @type {any} */ (window).edgemeet;
        return m.me && m.meetingId && m.meetingId !== old && m.people.size === 2;
      }, before, { timeout: 20000, polling: 100 });
    }
    const back = Date.now() - restartedAt;
    for (const p of pages) await waitForVideo(p, 1, 20000);
    console.log(`native edge restarted: both pages in the new meeting ${back} ms after it listened again, decoding each other at ${Date.now() - restartedAt} ms`);
    for (const p of pages) {
      const banners = await p.evaluate(() => /** @type {any} */ (window).__banners);
      assert.ok(banners.includes('The server restarted: this is a new meeting.'), `the page says so: ${JSON.stringify(banners)}`);
      assert.equal(await p.textContent('#conn-banner'), 'The server restarted: this is a new meeting.', 'one line, still shown');
    }
    for (const p of pages) await p.context().close();
  } finally {
    own.stop();
  }
});
