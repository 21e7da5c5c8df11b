// Benchmark (prints a table; asserts nothing): what a viewer on a thin or lossy link receives, in
// a direct call and through the media node. The viewer's machine (netlab.mjs) gets a downlink cap
// (`tc tbf`, 200 ms queue) and random loss (nftables) for `EDGEMEET_BENCH_LINK_S` seconds (default
// 20), then the link is freed and the bench times how long until the video is back at the height
// it had before.
// `EDGEMEET_BENCH_CAPS=300,500,1000,3000,0` (kbit/s; 0: no cap), `EDGEMEET_BENCH_LOSSES=0,2,5,10`,
// `EDGEMEET_BENCH_PATHS=p2p,node` choose the cells. Run by tests/bench/links.sh.
import { writeFileSync } from 'node:fs';
import { joinPage, inMeeting, waitMode, uniqueRoom } from './lib.mjs';
import { NetLab } from './netlab.mjs';
import { remoteVideo, receivingVideo, receivingAudio, concealedPercent, sum, watchVideo } from './video.mjs';

const SECONDS = Number(process.env.EDGEMEET_BENCH_LINK_S ?? 20);
const list = (name, dflt) => (process.env[name] ?? dflt).split(',').filter(Boolean);
const CAPS = list('EDGEMEET_BENCH_CAPS', '300,500,1000,3000,0').map(Number);
const LOSSES = list('EDGEMEET_BENCH_LOSSES', '0,2,5,10').map(Number);
const PATHS = list('EDGEMEET_BENCH_PATHS', 'p2p,node');
const VIEWER_MACHINE = 1;

const lab = new NetLab(2);
await lab.startEdge();
for (let i = 0; i < 2; i++) await lab.browser(i);

/** The viewer's best remote video height now (0: none decoding). */
async function topHeight(page) {
  return Math.max(0, ...Object.values(await receivingVideo(page)).map((s) => s.height));
}

/** One path: publishers on machine 0 (one for P2P, two for the node), the viewer on machine 1. */
async function path(kind) {
  const room = uniqueRoom(`links${kind}`);
  const publishers = kind === 'p2p' ? 1 : 2;
  const pages = [];
  for (let i = 0; i < publishers; i++) {
    pages.push(await joinPage(lab.browsers[0], lab.edge.url, room, { name: `P${i}` }));
    await inMeeting(pages[i]);
  }
  const viewer = await joinPage(lab.browsers[VIEWER_MACHINE], lab.edge.url, room, { name: 'viewer' });
  await inMeeting(viewer);
  pages.push(viewer);
  await waitMode(viewer, kind === 'p2p' ? 'Direct' : 'Via server');
  await remoteVideo(viewer, publishers, Date.now() + 15000);
  // Settle at the free link's best (Chromium's encoders ramp up over a few seconds).
  await new Promise((r) => setTimeout(r, 5000));
  const rows = [];
  for (const cap of CAPS) {
    for (const loss of LOSSES) {
      const freeHeight = await topHeight(viewer);
      const [a0, v0] = [await receivingAudio(viewer), await receivingVideo(viewer)];
      lab.setDownlink(VIEWER_MACHINE, cap);
      lab.setLoss(VIEWER_MACHINE, loss);
      // The longest time each video stood still while shown (one the node paused for bandwidth
      // shows its avatar, "video paused": counted apart, in seconds paused).
      const watched = await watchVideo(viewer, publishers, SECONDS * 1000, 1000, true);
      const byStill = Object.values(watched.streams).sort((a, b) => a.maxGapMs - b.maxGapMs);
      const still = byStill.map((s) => s.maxGapMs);
      const paused = byStill.map((s) => (s.pausedMs / 1000).toFixed(1));
      const v1 = await receivingVideo(viewer);
      const a1 = await receivingAudio(viewer);
      const heights = Object.values(v1).map((s) => s.height);
      const fps = Object.values(v1).map((s) => Math.round(s.fps));
      lab.setDownlink(VIEWER_MACHINE, 0);
      lab.setLoss(VIEWER_MACHINE, 0);
      // Recovery: until the video is back at the free link's height (at most 30 s).
      const freed = Date.now();
      let recovered = null;
      while (Date.now() - freed < 30000) {
        if ((await topHeight(viewer)) >= freeHeight) { recovered = (Date.now() - freed) / 1000; break; }
        await new Promise((r) => setTimeout(r, 250));
      }
      rows.push({
        cap: cap ? `${cap}k` : 'none', loss,
        height: heights.join('/'), fps: fps.join('/'),
        freezes: sum(v1, 'freezes') - sum(v0, 'freezes'),
        frozen: (sum(v1, 'freezeS') - sum(v0, 'freezeS')).toFixed(1),
        still: still.join('/'),
        paused: paused.join('/'),
        concealed: concealedPercent(a0, a1).toFixed(2),
        recovered: recovered === null ? '> 30' : recovered.toFixed(1),
      });
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
  await Promise.all(pages.map((p) => p.context().close()));
  return rows;
}

for (const kind of PATHS) {
  const rows = await path(kind);
  console.log(`\n${kind === 'p2p' ? 'direct call (P2P)' : 'through the node (two publishers)'}: the viewer's downlink capped and lossy for ${SECONDS} s (targets: no freeze over 1 s at any cap >= 300k, audio concealment < 3 % at 5 % loss, back < 5 s after the cap lifts)`);
  console.log('cap | loss % | received height | fps | freezes | frozen s | longest still ms while shown (each video) | s paused for bandwidth | audio concealed % | s to recover');
  for (const r of rows) console.log(`${r.cap} | ${r.loss} | ${r.height} | ${r.fps} | ${r.freezes} | ${r.frozen} | ${r.still} | ${r.paused} | ${r.concealed} | ${r.recovered}`);
}
// `EDGEMEET_BENCH_EDGE_LOG=file`: the edge's log lines (with `EDGEMEET_LOG=edgemeet::bwe=debug`,
// each viewer's estimate every second).
if (process.env.EDGEMEET_BENCH_EDGE_LOG) writeFileSync(process.env.EDGEMEET_BENCH_EDGE_LOG, lab.edge.logs.join('\n'));
await lab.close();
