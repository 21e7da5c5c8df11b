// One participant of the TURN test (tests/suites/turn.sh): run inside its own network namespace, it
// joins ROOM at BASE in headless Chromium, waits for the direct (P2P) call to decode the other
// side's video, and prints what the connection went through as one JSON line.
//
//   node tests/browser/turn-peer.mjs BASE ROOM NAME
import { launchBrowser, joinPage, waitMode, waitForVideo } from './lib.mjs';

const [base, room, name] = process.argv.slice(2);
// The page is plain http on a non-loopback address: let Chromium treat it as a secure context
// (cameras), as HTTPS would in production.
const browser = await launchBrowser([`--unsafely-treat-insecure-origin-as-secure=${base}`]);
try {
  const page = await joinPage(browser, base, room, { name });
  await waitMode(page, 'Direct', 30000);
  const frames = await waitForVideo(page, 1, 45000);
  const path = await page.evaluate(async () => {
    const m = /** @type {any} */ (window).edgemeet;
    const [[, pc]] = [...m.peerConnections()];
    const stats = [...(await pc.getStats()).values()];
    const byId = new Map(stats.map((s) => [s.id, s]));
    const transport = stats.find((s) => s.type === 'transport');
    const pair = byId.get(transport?.selectedCandidatePairId);
    const audio = stats.find((s) => s.type === 'inbound-rtp' && s.kind === 'audio');
    return {
      local: byId.get(pair?.localCandidateId)?.candidateType,
      remote: byId.get(pair?.remoteCandidateId)?.candidateType,
      relayProtocol: byId.get(pair?.localCandidateId)?.relayProtocol,
      bytesReceived: pair?.bytesReceived,
      audioPackets: audio?.packetsReceived || 0,
      iceServers: m.iceServers.map((s) => ({ urls: s.urls, username: s.username ? 'set' : undefined })),
    };
  });
  console.log(JSON.stringify({ name, frames, ...path }));
  // Stay a while: the other side may still be measuring this call.
  await page.waitForTimeout(8000);
} finally {
  await browser.close();
}
