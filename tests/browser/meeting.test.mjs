// Meetings of four to six through the media node, pages on machines of their own (network
// namespaces with veth links, no loopback candidates): within 5 s of the last join every page
// decodes every other page's video, and keeps doing so for 30 s.
//
// `EDGEMEET_MEETING_RUNS=N` repeats each case N times (`tests/run --long` sets 3 and adds the
// room of six).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { joinPage, inMeeting, uniqueRoom } from './lib.mjs';
import { NetLab } from './netlab.mjs';
import { remoteVideo, watchVideo } from './video.mjs';

const RUNS = Number(process.env.EDGEMEET_MEETING_RUNS) || 1;
/** `EDGEMEET_MEETING_SIZES=4,5,6`: these room sizes (default: four and five; see tests/run). */
const SIZES = (process.env.EDGEMEET_MEETING_SIZES || '4,5').split(',').map(Number);
/** `EDGEMEET_MEETING_QUERY=?fps=10`: every page's query (default: `?fps=15` above four). */
const QUERY = process.env.EDGEMEET_MEETING_QUERY;

/** @type {NetLab | null} */
let lab = null;
after(async () => { await lab?.close(); });

/**
 * `size` pages join one room `gapMs` apart, spread over the lab's machines (the first three on one
 * machine, the rest on others, as in the reported failure); asserts every page decodes every other.
 */
async function meeting(size, gapMs) {
  const room = uniqueRoom(`meet${size}`);
  const pages = [];
  try {
    await meetingIn(room, pages, size, gapMs);
  } finally {
    // Also when it failed: pages left open keep encoding and starve every later room.
    await Promise.all(pages.map((p) => p.context().close().catch(() => {})));
  }
}

/** The body of `meeting`: `pages` are the caller's, closed by it whatever happens here. */
async function meetingIn(room, pages, size, gapMs) {
  let lastJoin = 0;
  for (let i = 0; i < size; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    const machine = i < 3 ? 0 : 1 + ((i - 3) % (lab.browsers.length - 1));
    // Every test page runs at `?lowres` (lib.mjs); two cores cannot also encode five or six
    // 30 fps simulcast cameras and decode the rest: those rooms run at a lower frame rate (as the
    // issue allows), four at full rate.
    pages.push(await joinPage(lab.browsers[machine], lab.edge.url, room, { name: `P${i}`, query: QUERY ?? (size > 4 ? '?fps=15' : '') }));
    // A person joins when they click Join (joinPage returns right after the click), not when
    // their browser starts loading the page: on a busy machine loading alone can take seconds.
    lastJoin = Date.now();
  }
  for (const p of pages) await inMeeting(p);
  // Within 5 s of the last join, everyone sees everyone.
  const deadline = lastJoin + 5000;
  const seen = await Promise.all(pages.map((p) => remoteVideo(p, size - 1, deadline)));
  const late = seen.map((s, i) => [i, s]).filter(([, s]) => !s.ok);
  // Where a late page's join went (ms after its click at which each step first happened).
  const steps = await Promise.all(late.map(([i]) => pages[i].evaluate(() => JSON.stringify(/** @type {any} */ (window).edgemeet.timings.marks))));
  assert.deepEqual(late.map(([i, s], k) => `P${i} decodes ${s.rising}/${size - 1}: ${JSON.stringify(s.streams)}; its join steps: ${steps[k]}`), [], 'every page decodes every other page within 5 s of the last join');
  // ...and keeps doing so: no remote video stands still for more than a second over 30 s.
  const watchStart = new Date().toISOString();
  const watched = await Promise.all(pages.map((p) => watchVideo(p, size - 1, 30000)));
  const stalls = watched.map((w, i) => [i, w]).filter(([, w]) => w.stalls.length);
  if (stalls.length && process.env.EDGEMEET_MEETING_LOG) {
    const who = await Promise.all(pages.map((p) => p.evaluate(() => `${/** @type {any} */ (window).edgemeet.me.slice(0, 8)}=${/** @type {any} */ (window).edgemeet.sfu?.sessionId}`)));
    (await import('node:fs')).writeFileSync(process.env.EDGEMEET_MEETING_LOG, [`watch from ${watchStart}`, ...who, ...lab.edge.logs].join('\n'));
  }
  assert.deepEqual(stalls.map(([i, w]) => `P${i}: ${w.stalls.join('; ')}`), [], 'no remote video stalls');
}

for (let run = 0; run < RUNS; run++) {
  const suffix = RUNS > 1 ? ` (run ${run + 1})` : '';
  test(`rooms of ${SIZES.join(", ")} pages on separate machines, joined 1 s apart${suffix}`, async () => {
    lab ??= await makeLab();
    for (const size of SIZES) await meeting(size, 1000);
  });
  test(`rooms of ${SIZES.join(", ")} pages on separate machines, joined 5 s apart${suffix}`, async () => {
    lab ??= await makeLab();
    for (const size of SIZES) await meeting(size, 5000);
  });
}

async function makeLab() {
  const l = new NetLab(3);
  await l.startEdge();
  for (let i = 0; i < 3; i++) await l.browser(i);
  return l;
}
