// A page whose network goes away comes back as the same participant: its link (a veth in its own
// network namespace) is cut and restored. Short gaps: the others see no leave or join, the same
// participant id, and its tiles come back; past the resume window it is a leave, and the page says
// "Could not reconnect" and offers Rejoin.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { joinPage, inMeeting, waitMode, waitForVideo, uniqueRoom } from './lib.mjs';
import { execFileSync } from 'node:child_process';
import { NetLab } from './netlab.mjs';

/** @type {NetLab} */
let lab;
before(async () => {
  lab = new NetLab(2);
  // The fixture's limits are the defaults: silent sockets dropped at 15 s, resume within 30 s.
  await lab.startEdge();
  await lab.browser(0);
  await lab.browser(1);
});
after(async () => { await lab?.close(); });

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Keep every message the page's room socket delivers, from now on, in `window.__seen`. */
async function record(page) {
  await page.evaluate(() => {
    const w = /** @type {any} */ (window);
    w.__seen = [];
    w.edgemeet.signaling.on('message', (/** @type {any} */ m) => w.__seen.push(m));
  });
}

/** Leaves and joins the page saw since `record`. */
const leavesAndJoins = (page) => page.evaluate(() => /** @type {any} */ (window).__seen
  .filter((/** @type {any} */ m) => m.type === 'participant_left' || m.type === 'participant_joined'));

/** Participant ids in the page's roster. */
const roster = (page) => page.evaluate(() => [.../** @type {any} */ (window).edgemeet.people.keys()].sort());

/** Two pages on machine 0, the one whose link is cut on machine 1; all three on the node. */
async function meeting() {
  const room = uniqueRoom('recover');
  const pages = [];
  for (let i = 0; i < 3; i++) {
    pages.push(await joinPage(lab.browsers[i < 2 ? 0 : 1], lab.edge.url, room, { name: `P${i}` }));
    await inMeeting(pages[i]);
  }
  for (const p of pages) await waitMode(p, 'Via server');
  for (const p of pages) await waitForVideo(p, 2, 20000);
  for (const p of pages) await record(p);
  const id = await pages[2].evaluate(() => /** @type {any} */ (window).edgemeet.me);
  return { pages, id };
}

/** Cut machine 1's link for `ms`, then restore it. */
async function cut(ms) {
  lab.setLink(1, false);
  try { await sleep(ms); } finally { lab.setLink(1, true); }
}

for (const gap of [5000, 20000]) {
  test(`a page's link down ${gap / 1000} s then up: the same participant, no leave or join, its tiles back`, async () => {
    const { pages, id } = await meeting();
    const before = await roster(pages[0]);
    await cut(gap);
    const back = Date.now();
    // The page comes back by itself: no banner left, in the meeting, decoding both others.
    await pages[2].waitForFunction(() => document.getElementById('conn-banner').hidden, null, { timeout: 15000 });
    await waitForVideo(pages[2], 2, 20000);
    // The others decode it again.
    for (const p of pages.slice(0, 2)) await waitForVideo(p, 2, 20000);
    console.log(`link down ${gap} ms: every page decodes again ${Date.now() - back} ms after the link came back`);
    assert.equal(await pages[2].evaluate(() => /** @type {any} */ (window).edgemeet.me), id, 'the same participant');
    for (const p of pages.slice(0, 2)) {
      assert.deepEqual(await roster(p), before, 'the same roster');
      assert.deepEqual(await leavesAndJoins(p), [], 'no leave or join at the others');
    }
    if (gap > 15000) {
      // Long enough for the edge to drop the silent socket: the others saw it away, then back.
      const away = await pages[0].evaluate((pid) => /** @type {any} */ (window).__seen
        .filter((/** @type {any} */ m) => m.type === 'participant_updated' && m.participant.id === pid)
        .map((/** @type {any} */ m) => !!m.participant.away), id);
      // (The resumed page also sends its media state again: more updates, not away.)
      assert.deepEqual(away.filter((x, i) => i === 0 || x !== away[i - 1]), [true, false], 'away, then back');
    }
    // The resume secret never left page memory.
    const stored = await pages[2].evaluate(() => [localStorage.length, sessionStorage.length, location.href]);
    assert.deepEqual(stored.slice(0, 2), [0, 0]);
    const secret = await pages[2].evaluate(() => /** @type {any} */ (window).edgemeet.signaling.resumeWith?.secret);
    assert.ok(secret && !stored[2].includes(secret));
    await Promise.all(pages.map((p) => p.context().close()));
  });
}

test('a page\'s link down 40 s: a leave at the others, and the page offers to rejoin', async () => {
  const { pages, id } = await meeting();
  await cut(40000);
  for (const p of pages.slice(0, 2)) {
    const left = await leavesAndJoins(p);
    assert.deepEqual(left.map((m) => [m.type, m.id, m.reason]), [['participant_left', id, 'disconnected']]);
  }
  await pages[2].waitForSelector('#ended:not([hidden])', { timeout: 15000 });
  assert.equal(await pages[2].textContent('#ended-title'), 'Could not reconnect');
  assert.ok(await pages[2].isVisible('#rejoin'), 'Rejoin is offered');
  await Promise.all(pages.map((p) => p.context().close()));
});

test('a direct call whose path is cut and comes back on a new address recovers by ICE restart', async () => {
  const room = uniqueRoom('icerestart');
  const a = await joinPage(lab.browsers[0], lab.edge.url, room, { name: 'A' });
  await inMeeting(a);
  const b = await joinPage(lab.browsers[1], lab.edge.url, room, { name: 'B' });
  await inMeeting(b);
  for (const p of [a, b]) await waitMode(p, 'Direct');
  for (const p of [a, b]) await waitForVideo(p, 1, 20000);
  const restarts = (p) => p.evaluate(() => {
    const w = /** @type {any} */ (window);
    return w.__restarts ?? 0;
  });
  for (const p of [a, b]) {
    await p.evaluate(() => {
      const w = /** @type {any} */ (window);
      w.__restarts = 0;
      w.edgemeet.calls.link.on('restart', () => { w.__restarts++; });
    });
  }
  // B's machine loses its link and comes back with another address (a new network): the old
  // candidate pair is dead for good; only an ICE restart finds the new one.
  const m = lab.machines[1];
  lab.setLink(1, false);
  await sleep(3000);
  execFileSync('ip', ['-n', m.ns, 'addr', 'del', `${m.addr}/24`, 'dev', m.dev]);
  const moved = m.addr.replace(/\.2$/, '.3');
  execFileSync('ip', ['-n', m.ns, 'addr', 'add', `${moved}/24`, 'dev', m.dev]);
  execFileSync('ip', ['-n', m.ns, 'route', 'replace', 'default', 'via', m.addr.replace(/\.2$/, '.1')]);
  lab.setLink(1, true);
  const back = Date.now();
  try {
    for (const p of [a, b]) await waitForVideo(p, 1, 30000);
    console.log(`direct call on a new address: both decode again ${Date.now() - back} ms after the link came back`);
    assert.equal(await a.textContent('#mode-badge'), 'Direct', 'still a direct call');
    assert.ok((await restarts(a)) + (await restarts(b)) > 0, 'by an ICE restart');
  } finally {
    execFileSync('ip', ['-n', m.ns, 'addr', 'del', `${moved}/24`, 'dev', m.dev]);
    execFileSync('ip', ['-n', m.ns, 'addr', 'add', `${m.addr}/24`, 'dev', m.dev]);
    execFileSync('ip', ['-n', m.ns, 'route', 'replace', 'default', 'via', m.addr.replace(/\.2$/, '.1')]);
  }
  await Promise.all([a, b].map((p) => p.context().close()));
});

test('a direct call whose peers cannot reach each other any more moves to the node 5 s after its ICE restart', async () => {
  const room = uniqueRoom('directfail');
  const a = await joinPage(lab.browsers[0], lab.edge.url, room, { name: 'A' });
  await inMeeting(a);
  const b = await joinPage(lab.browsers[1], lab.edge.url, room, { name: 'B' });
  await inMeeting(b);
  for (const p of [a, b]) await waitMode(p, 'Direct');
  for (const p of [a, b]) await waitForVideo(p, 1, 20000);
  // UDP between the two machines is dropped from now on (a firewall, a NAT that lost its
  // mapping); both still reach the edge and its node. ICE restarts go through but cannot connect.
  lab.blockPeer(1, lab.machines[0].addr, true);
  const cut = Date.now();
  try {
    for (const p of [a, b]) await waitMode(p, 'Via server', 30000);
    const moved = Date.now() - cut;
    for (const p of [a, b]) await waitForVideo(p, 1, 20000);
    console.log(`direct path blocked: on the node ${moved} ms after the cut, both decode again ${Date.now() - cut} ms after it`);
    // Detection (ICE disconnected, then a restart's offer and answer) plus 5 s, plus the move.
    assert.ok(moved < 15000, `moved after ${moved} ms`);
  } finally {
    lab.blockPeer(1, lab.machines[0].addr, false);
  }
  await Promise.all([a, b].map((p) => p.context().close()));
});

