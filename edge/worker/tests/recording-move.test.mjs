// A Worker room's recording survives a node move after its Durable Object hibernated (issue 17):
// two real media nodes recording to a real S3-compatible server (s3s-fs), both refusing a start
// without the recorder's Dropbox grant. A moderator records; the room object forgets its memory
// (hibernation: the grant, held in memory only, is gone); the recording node is killed. The room
// moves to the other node, which carries the recording on from the old one's id (its sealed grant
// read back from storage) as a further file: the recorder gets a second status link, nobody hears
// that the recording failed, and the new recording's storage holds the grant, sealed.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { BASE, Client, closeAll, probe, roomState, sleep, uniqueRoom } from "./lib.mjs";
import { BIN_DIR, NODE_SECRET, freePort, startProcess, startS3 } from "./processes.mjs";

after(closeAll);

/** Every file under `dir`. */
function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

test("a recording goes on on the next node after the room's object hibernated and its node died", async () => {
  const cf = (await probe("cf")).location;
  const dir = mkdtempSync(join(tmpdir(), "edgemeet-worker-recmove-"));
  mkdirSync(join(dir, "s3", "recordings"), { recursive: true });
  const [ak, sk, key] = [`AK${randomBytes(8).toString("hex")}`, randomBytes(20).toString("hex"), randomBytes(32).toString("base64")];
  const children = [];
  const tag = randomBytes(4).toString("hex");
  // A region of their own, at the caller's place: the room lands on one of these two.
  const continent = String(cf?.continent ?? "").toLowerCase();
  const region = `${["af", "an", "as", "eu", "na", "oc", "sa"].includes(continent) ? continent : "eu"}-recmove${tag}`;
  try {
    const store = await startS3(join(dir, "s3"), ak, sk);
    children.push(store.child);
    /** @type {Map<string, import("node:child_process").ChildProcess>} */
    const nodes = new Map();
    for (const id of [`0-recmove-a-${tag}`, `0-recmove-b-${tag}`]) {
      const port = await freePort();
      const env = {
        EDGEMEET_NODE_ID: id, EDGEMEET_NODE_REGION: region, EDGEMEET_NODE_LAT: String(cf.lat), EDGEMEET_NODE_LON: String(cf.lon),
        EDGEMEET_NODE_LISTEN: `127.0.0.1:${port}`, EDGEMEET_NODE_SECRET: NODE_SECRET, EDGEMEET_NODE_EDGE_URL: BASE,
        EDGEMEET_NODE_RECORDING_KEY: key, EDGEMEET_NODE_RECORDING_S3_ENDPOINT: `http://127.0.0.1:${store.port}`,
        EDGEMEET_NODE_RECORDING_S3_BUCKET: "recordings", EDGEMEET_NODE_RECORDING_S3_ACCESS_KEY_ID: ak,
        EDGEMEET_NODE_RECORDING_S3_SECRET_ACCESS_KEY: sk,
      };
      const { child } = await startProcess(join(BIN_DIR, "edgemeet-media-node"), [], env, async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok);
      children.push(child);
      nodes.set(id, child);
    }
    await sleep(1500); // both heartbeats reached the Worker

    const room = uniqueRoom("recmove");
    const ada = await Client.join(room, { name: "Ada" });
    const bob = await Client.join(room, { name: "Bob" });
    const grant = { access_token: `sl.recmove-${tag}`, refresh_token: `refresh-${tag}`, app_key: "recmove-app" };
    ada.send({ type: "start_recording", dropbox: grant });
    await bob.next((m) => m.type === "recording" && m.active, 10000);
    await ada.next("recording_status_link", 15000);
    // The node the room records on (recording moves the pair to it).
    const mode = await ada.next((m) => m.type === "media_mode" && m.media?.node, 10000);
    const first = mode.media.node.node_id;
    assert.ok(nodes.has(first), `one of the test's nodes: ${first}`);

    // Hibernation: the object keeps its storage and sockets, nothing of its memory.
    await sleep(1500); // the snapshot is written shortly after a change
    await probe(`room/-/${room}/forget`, {});
    assert.equal((await roomState(room)).in_memory, false);
    const stored = JSON.stringify(await roomState(room));
    assert.ok(!stored.includes(grant.access_token) && !stored.includes(grant.refresh_token), "no grant at rest");

    nodes.get(first).kill("SIGKILL");
    // No heartbeat for 3 s: the Worker moves the room; the other node carries the recording on.
    const moved = await ada.next((m) => m.type === "media_mode" && m.media?.node && m.media.node.node_id !== first, 20000);
    const second = moved.media.node.node_id;
    assert.ok(nodes.has(second) && second !== first, second);
    const link = await ada.next("recording_status_link", 15000);
    assert.match(link.token, /^[0-9a-f]{32}$/);
    const heard = [...(await ada.silence(500)), ...(await bob.silence(0))];
    assert.deepEqual(heard.filter((m) => (m.type === "error" && m.code === "recording_failed") || (m.type === "recording" && !m.active)), [],
      "nobody hears the recording failed");
    // The further recording holds the recorder's grant, sealed (never in clear).
    const pendings = walk(join(dir, "s3")).filter((f) => f.endsWith("pending.json"));
    const sealed = pendings.map((f) => JSON.parse(readFileSync(f, "utf8"))).filter((p) => p.dropbox);
    assert.ok(sealed.length >= 2, `both recordings hold a sealed grant: ${pendings.length} pending.json`);
    for (const f of walk(join(dir, "s3"))) {
      assert.ok(!readFileSync(f).includes(grant.access_token), `no grant in clear in ${f}`);
    }
    ada.send({ type: "stop_recording" });
    await bob.next((m) => m.type === "recording" && !m.active, 10000);
    ada.close();
    bob.close();
  } finally {
    for (const c of children.reverse()) c.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});
