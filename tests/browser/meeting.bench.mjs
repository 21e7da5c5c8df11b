// Benchmark (prints tables; asserts nothing): meetings through the media node with pages on
// machines of their own (netlab.mjs).
// 1. Join -> first remote frame painted for the 2nd to 8th person of a room, over
//    `EDGEMEET_BENCH_ROOMS` rooms (default 5): median and worst per position.
// 2. Loss on one viewer's link (0, 2, 5, 10 %), `EDGEMEET_BENCH_LOSS_S` seconds each (default 30):
//    video freezes (Chromium's own count and total), longest stand-still, audio concealment,
//    NACKs the viewer sent, retransmissions it received.
// Run by tests/bench/meeting.sh (release build, inside `unshare -n`).
import { joinPage, inMeeting, waitMode, uniqueRoom } from './lib.mjs';
import { NetLab } from './netlab.mjs';
import { remoteVideo, watchVideo, receivingAudio, receivingVideo, concealedPercent, sum, nodeCounters, counterDelta } from './video.mjs';

const ROOMS = Number(process.env.EDGEMEET_BENCH_ROOMS) || 5;
// `EDGEMEET_BENCH_LOSS_S=0` skips the loss table.
const LOSS_S = Number(process.env.EDGEMEET_BENCH_LOSS_S ?? 30);
const SIZE = 8;
// Eight cameras on two cores: the page's switches for small machines (joinPage adds `lowres`), as
// the room tests use above four; `EDGEMEET_BENCH_QUERY` changes them.
const QUERY = process.env.EDGEMEET_BENCH_QUERY ?? '?fps=15';

const lab = new NetLab(3);
await lab.startEdge();
for (let i = 0; i < 3; i++) await lab.browser(i);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Joins one room person by person; the join -> first remote frame of the 2nd to 8th. */
async function joinTimes() {
  const room = uniqueRoom('bench');
  const pages = [];
  const times = [];
  /** @type {Record<string, number>[]} each joiner's join steps (ms after the click) */
  const marks = [];
  for (let i = 0; i < SIZE; i++) {
    const page = await joinPage(lab.browsers[i % 3], lab.edge.url, room, { name: `P${i}`, query: QUERY });
    pages.push(page);
    await inMeeting(page);
    if (i > 0) {
      const handle = await page.waitForFunction(() => /** @type {any} */ (window).edgemeet?.timings.firstRemoteFrame, null, { timeout: 20000, polling: 50 }).catch(() => null);
      times.push(handle ? Number(await handle.jsonValue()) : Infinity);
      marks.push(await page.evaluate(() => ({ .../** @type {any} */ (window).edgemeet.timings.marks })));
    }
    // The room settles before the next person joins (their pulls, the layers' first keyframes).
    await new Promise((r) => setTimeout(r, 1500));
  }
  await Promise.all(pages.map((p) => p.context().close()));
  stepsOf.push(marks);
  return times;
}

/** @type {Record<string, number>[][]} per room, per joiner (2nd on) */
const stepsOf = [];

const rooms = [];
for (let r = 0; r < ROOMS; r++) rooms.push(await joinTimes());
console.log(`\njoin -> first remote frame (ms; the 2nd person is P2P, the 3rd and later through the node), ${ROOMS} rooms, pages at ${QUERY} on 3 machines (target < 500)`);
console.log('person | median | worst | all');
for (let k = 0; k < SIZE - 1; k++) {
  const xs = rooms.map((t) => t[k]);
  console.log(`${String(k + 2).padStart(6)} | ${String(median(xs)).padStart(6)} | ${String(Math.max(...xs)).padStart(5)} | ${xs.join(', ')}`);
}
// Where a joiner's time goes: the median ms after the click at which each step first happened.
const steps = [...new Set(stepsOf.flat().flatMap((m) => Object.keys(m)))]
  .filter((s) => s.startsWith('sfu:') || s.startsWith('msg:welcome') || s === 'remote-track')
  .sort((a, b) => median(stepsOf.map((r) => r[2]?.[a] ?? Infinity)) - median(stepsOf.map((r) => r[2]?.[b] ?? Infinity)));
console.log(`\njoin steps (median ms after the click over ${ROOMS} rooms; "-" never happened)`);
console.log(`step | ${Array.from({ length: SIZE - 2 }, (_, k) => `P${k + 3}`).join(' | ')}`);
for (const step of steps) {
  const row = Array.from({ length: SIZE - 2 }, (_, k) => {
    const v = median(stepsOf.map((r) => r[k + 1]?.[step] ?? Infinity));
    return Number.isFinite(v) ? String(v) : '-';
  });
  console.log(`${step} | ${row.join(' | ')}`);
}

if (LOSS_S > 0) await lossTable();
await lab.close();

async function lossTable() {
  // Loss: two publishers on machine 0, the viewer on machine 1 (its link drops what it receives).
  const room = uniqueRoom('benchloss');
  const pages = [];
  for (let i = 0; i < 3; i++) {
    pages.push(await joinPage(lab.browsers[i < 2 ? 0 : 1], lab.edge.url, room, { name: `P${i}` }));
    await inMeeting(pages[i]);
  }
  for (const p of pages) await waitMode(p, 'Via server');
  for (const p of pages) await remoteVideo(p, 2, Date.now() + 15000);
  const viewer = pages[2];
  const rows = [];
  for (const loss of [0, 2, 5, 10]) {
    const [a0, v0, n0] = [await receivingAudio(viewer), await receivingVideo(viewer), await nodeCounters(lab.edge.url)];
    lab.setLoss(1, loss);
    const watched = await watchVideo(viewer, 2, LOSS_S * 1000);
    lab.setLoss(1, 0);
    const [a1, v1, n1] = [await receivingAudio(viewer), await receivingVideo(viewer), await nodeCounters(lab.edge.url)];
    const node = counterDelta(n0, n1);
    rows.push({
      loss,
      freezes: sum(v1, 'freezes') - sum(v0, 'freezes'),
      freezeS: (sum(v1, 'freezeS') - sum(v0, 'freezeS')).toFixed(2),
      maxGap: Math.max(...Object.values(watched.streams).map((s) => s.maxGapMs)),
      concealed: concealedPercent(a0, a1).toFixed(2),
      nacks: sum(v1, 'nacks') - sum(v0, 'nacks'),
      rtx: sum(v1, 'rtx') - sum(v0, 'rtx'),
      resent: node.rtp_packets_retransmitted_total || 0,
      plis: sum(v1, 'plis') - sum(v0, 'plis'),
    });
    await new Promise((r) => setTimeout(r, 3000));
  }
  console.log(`\nloss on one viewer's link, ${LOSS_S} s each, room of 3 through the node (targets: no freeze over 1 s at 5 %, concealment < 2 %)`);
  console.log('loss % | freezes | frozen s | longest still ms | audio concealed % | NACKs sent | retransmissions received | node resent | PLIs sent');
  for (const r of rows) console.log(`${String(r.loss).padStart(6)} | ${String(r.freezes).padStart(7)} | ${r.freezeS.padStart(8)} | ${String(r.maxGap).padStart(16)} | ${r.concealed.padStart(17)} | ${String(r.nacks).padStart(10)} | ${String(r.rtx).padStart(24)} | ${String(r.resent).padStart(11)} | ${String(r.plis).padStart(9)}`);
  await Promise.all(pages.map((p) => p.context().close()));
}
