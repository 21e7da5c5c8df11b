// Worker-specific tests, run by tests/suites/worker.sh against `wrangler dev` (workerd) started with
// the test probes enabled (EDGEMEET_TEST_PROBES=1):
//   EDGEMEET_URL=http://127.0.0.1:PORT node --experimental-websocket --test edge/worker/tests/
// The protocol itself is covered by the shared conformance suite (tests/tests/conformance.rs).
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";

import { BASE, Client, closeAll, probe, roomState, sleep, uniqueRoom, waitFor } from "./lib.mjs";
import { BIN_DIR, NODE_SECRET, freePort, startProcess, startS3 } from "./processes.mjs";

after(closeAll);

// First in this file, so that no stand-in node of the tests below competes for the room: a real
// media node (edgemeet-media-node, recording to a real S3-compatible server, s3s-fs) and the
// standalone uploader serving status links on its own status_listen, as in a split deployment.
test("a real node's recording: the recorder, and only the recorder, gets the status link; the uploader's link answers", async () => {
  const cf = (await probe("cf")).location;
  const dir = mkdtempSync(join(tmpdir(), "edgemeet-worker-rec-"));
  mkdirSync(join(dir, "s3", "recordings"), { recursive: true }); // s3s-fs: a bucket is a folder
  const [nodePort, statusPort] = [await freePort(), await freePort()];
  const [ak, sk, key] = [`AK${randomBytes(8).toString("hex")}`, randomBytes(20).toString("hex"), randomBytes(32).toString("base64")];
  const stops = [];
  const nodeId = `rec-node-${randomBytes(4).toString("hex")}`;
  try {
    const store = await startS3(join(dir, "s3"), ak, sk);
    stops.push(store.stop);
    const s3 = { ENDPOINT: `http://127.0.0.1:${store.port}`, BUCKET: "recordings", ACCESS_KEY_ID: ak, SECRET_ACCESS_KEY: sk };
    const uploaderEnv = { EDGEMEET_UPLOADER_DESTINATION: "local", EDGEMEET_UPLOADER_LOCAL_FOLDER: join(dir, "delivered"),
      EDGEMEET_UPLOADER_ENCRYPTION_KEY: key, EDGEMEET_UPLOADER_LISTEN: "off", EDGEMEET_UPLOADER_POLL_INTERVAL_MS: "500",
      EDGEMEET_UPLOADER_STATUS_LISTEN: `127.0.0.1:${statusPort}` };
    const nodeEnv = { EDGEMEET_NODE_ID: nodeId, EDGEMEET_NODE_REGION: "na-south", EDGEMEET_NODE_LAT: String(cf.lat),
      EDGEMEET_NODE_LON: String(cf.lon), EDGEMEET_NODE_LISTEN: `127.0.0.1:${nodePort}`, EDGEMEET_NODE_SECRET: NODE_SECRET,
      EDGEMEET_NODE_EDGE_URL: BASE, EDGEMEET_NODE_RECORDING_KEY: key };
    for (const [k, v] of Object.entries(s3)) {
      uploaderEnv[`EDGEMEET_UPLOADER_S3_${k}`] = v;
      nodeEnv[`EDGEMEET_NODE_RECORDING_S3_${k}`] = v;
    }
    const statusBase = `http://127.0.0.1:${statusPort}/v1/recording-status/`;
    const uploader = await startProcess(join(BIN_DIR, "edgemeet-uploader"), ["run"], uploaderEnv, async () => (await fetch(`${statusBase}x`)).status === 404);
    stops.push(uploader.stop);
    const node = await startProcess(join(BIN_DIR, "edgemeet-media-node"), [], nodeEnv, async () => (await fetch(`http://127.0.0.1:${nodePort}/healthz`)).ok);
    stops.push(node.stop);
    // Its first heartbeat reached the Worker: callers from here get this node.
    const chosen = async () => (await probe("registry/select", { cf: (await probe("cf")).cf }))?.id;
    for (let i = 0; i < 100 && (await chosen()) !== nodeId; i++) await sleep(100);
    assert.equal(await chosen(), nodeId, "the Worker places rooms from here on the recording node");

    const room = uniqueRoom("rec");
    const ada = await Client.join(room, { name: "Ada" });
    const bob = await Client.join(room, { name: "Bob" });
    ada.send({ type: "start_recording" });
    const on = await bob.next("recording", 10000);
    assert.deepEqual([on.active, on.by], [true, ada.id]);
    const link = await ada.next("recording_status_link", 15000);
    assert.match(link.token, /^[0-9a-f]{32}$/);
    // The node stored the recording's status under the id the token derives (one way).
    const id = createHash("sha256").update(`edgemeet-recording-status-v1:${link.token}`).digest("hex").slice(0, 32);
    assert.ok(existsSync(join(dir, "s3", "recordings", "recordings", id, "status.json")), "status.json of the recording");
    // The uploader's link (its status_listen, behind HTTPS in a deployment) says it is recording.
    const res = await fetch(`${statusBase}${link.token}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    const status = await res.json();
    assert.equal(status.state, "recording");
    assert.ok(status.purge_at_ms > Date.now() + 86_000_000, JSON.stringify(status));

    ada.send({ type: "stop_recording" });
    await bob.next((m) => m.type === "recording" && !m.active, 10000);
    // Nothing was recorded (no media): the node drops the status, and the link stops answering.
    for (let i = 0; i < 100 && (await fetch(`${statusBase}${link.token}`)).status !== 404; i++) await sleep(100);
    assert.equal((await fetch(`${statusBase}${link.token}`)).status, 404);
    // Bob never got a link; neither did Ada a second one.
    const heard = [...(await bob.silence(300)), ...(await ada.silence(0))];
    assert.deepEqual(heard.filter((m) => m.type === "recording_status_link"), []);
    assert.ok(!JSON.stringify(bob.queue).includes(link.token));
    ada.close();
    bob.close();
  } finally {
    for (const stop of stops.reverse()) await stop();
    // The node is gone; the Worker must not hand it rooms of the tests below while it would
    // still count as live.
    await heartbeat({ ...node(nodeId, "na-south", cf.lat, cf.lon), url: `http://127.0.0.1:${nodePort}`, draining: true });
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a room keeps working after its Durable Object lost its memory (hibernation)", async () => {
  const room = uniqueRoom("hib");
  const a = await Client.join(room, { name: "Ada" });
  const b = await Client.join(room, { name: "Bob" });
  await a.next("participant_joined");
  // The snapshot is written shortly after a change (writes coalesce while a room is busy).
  let state = await waitFor(async () => {
    const s = await roomState(room);
    return s.storage_keys.length > 0 && s;
  });
  assert.deepEqual(state.storage_keys, ["room"]);
  assert.equal(state.sockets, 2);

  // Evict: what an isolate that hibernated and woke up again has: sockets and storage, no memory.
  await probe(`room/-/${room}/forget`, {});
  state = await roomState(room);
  assert.equal(state.in_memory, false);

  // A ping is answered by the runtime itself (auto-response) without waking the object.
  a.sendRaw('{"v":1,"type":"ping"}');
  await a.next("pong");
  assert.equal((await roomState(room)).in_memory, false, "ping woke the object");

  // The first real message restores the room from storage and attachments.
  a.send({ type: "chat", text: "after hibernation" });
  const got = await b.next("chat");
  assert.equal(got.text, "after hibernation");
  assert.equal(got.from, a.id);

  const c = await Client.join(room, { name: "Cy" });
  assert.deepEqual(
    c.welcome.participants.map((p) => p.name).sort(),
    ["Ada", "Bob", "Cy"],
    "roster survived hibernation",
  );
  assert.equal(c.welcome.meeting_id, a.welcome.meeting_id, "same meeting");
  for (const x of [a, b, c]) x.close();
});

test("after the last leave the room's storage is empty and no alarm is left", async () => {
  const room = uniqueRoom("wipe");
  const a = await Client.join(room);
  const b = await Client.join(room);
  const c = await Client.join(room);
  await a.next((m) => m.type === "media_mode" && m.media.mode === "sfu");
  c.send({ type: "leave" });
  // Three became two: the core sets the P2P-return alarm (1 s in the fixture).
  const armed = await waitFor(async () => {
    const s = await roomState(room);
    return s.alarm !== null && s.storage_keys.length > 0 && s;
  });
  assert.ok(armed.alarm > Date.now() - 5000);
  assert.deepEqual(armed.storage_keys, ["room"]);
  c.close();
  a.close();
  b.close();
  const wiped = await waitFor(async () => {
    const s = await roomState(room);
    return s.sockets === 0 && s.storage_keys.length === 0 && s.alarm === null && s;
  });
  assert.equal(wiped.in_memory, false);
  // A new meeting of the same name starts fresh.
  const d = await Client.join(room);
  assert.notEqual(d.welcome.meeting_id, a.welcome.meeting_id);
  assert.equal(d.welcome.participants.length, 1);
  d.close();
  await waitFor(async () => (await roomState(room)).storage_keys.length === 0);
});

async function heartbeat(body, auth = `Bearer ${NODE_SECRET}`) {
  const headers = { "content-type": "application/json" };
  if (auth) headers.authorization = auth;
  const res = await fetch(`${BASE}/api/nodes/heartbeat`, {
    method: "POST",
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.text() };
}

const node = (id, region, lat, lon, load = {}) => ({
  id,
  region,
  url: `https://${id}.nodes.test`,
  lat,
  lon,
  load: { sessions: 0, tracks: 0, bitrate_bps: 0, cpu: 0.1, ...load },
});

test("heartbeats need the node secret; malformed ones are refused", async () => {
  const hb = node("refused-1", "eu-central", 50.1, 8.7);
  assert.equal((await heartbeat(hb, null)).status, 401);
  assert.equal((await heartbeat(hb, "Bearer wrong-secret")).status, 401);
  assert.equal((await heartbeat(hb, NODE_SECRET)).status, 401, "the Bearer prefix is required");
  const bad = await heartbeat("{nope");
  assert.equal(bad.status, 400);
  assert.equal(JSON.parse(bad.body).error.code, "invalid_message");
  assert.equal((await heartbeat("x".repeat(70 * 1024))).status, 413);
  const events = await fetch(`${BASE}/api/nodes/events`, { method: "POST", body: "{}" });
  assert.equal(events.status, 401);
  // None of the refused nodes can be selected.
  const sel = await probe("registry/select", { cf: { continent: "EU", latitude: "50.1", longitude: "8.7" } });
  assert.notEqual(sel?.id, "refused-1");
});

test("registry: nearest live node by request.cf; stale nodes are not chosen; bad cf never breaks", async () => {
  const fresh = [
    node("sel-eu", "eu-central", 50.11, 8.68, { sessions: 3 }),
    node("sel-na", "na-south", 32.78, -96.8, { sessions: 3 }),
  ];
  for (const hb of fresh) assert.equal((await heartbeat(hb)).status, 204);
  // Idle and right next to both callers, but silent for 20 s (> 3 s): never chosen.
  for (const [id, region, lat, lon] of [
    ["sel-a-stale-eu", "eu-central", 50.11, 8.68],
    ["sel-a-stale-na", "na-south", 32.78, -96.8],
  ]) {
    await probe("registry/heartbeat", { heartbeat: node(id, region, lat, lon, { sessions: 0, cpu: 0 }), age_ms: 20000 });
  }
  const frankfurt = { continent: "EU", country: "DE", latitude: "50.1109", longitude: "8.6821" };
  const dallas = { continent: "NA", country: "US", latitude: "32.7767", longitude: "-96.7970" };
  assert.equal((await probe("registry/select", { cf: frankfurt })).id, "sel-eu");
  assert.equal((await probe("registry/select", { cf: dallas })).id, "sel-na");
  // Continent only (no coordinates): region prefix match.
  assert.equal((await probe("registry/select", { cf: { continent: "EU" } })).region, "eu-central");
  // Malformed values are dropped, never a crash.
  for (const cf of [
    { continent: 7, latitude: "north", longitude: {} },
    { latitude: "95", longitude: "200" },
    { latitude: "NaN", longitude: "Infinity", country: "" },
    null,
  ]) {
    const sel = await probe("registry/select", { cf });
    assert.ok(sel && !sel.id.startsWith("sel-a-stale"), JSON.stringify(sel));
  }
});

test("a room on three participants gets the node nearest to the caller's request.cf", async () => {
  // wrangler dev's request.cf places every caller in Austin, Texas (NA).
  const cf = await probe("cf");
  assert.equal(cf.location.continent, "NA");
  for (const hb of [node("room-eu", "eu-central", 50.11, 8.68), node("room-na", "na-south", 30.27, -97.74)]) {
    assert.equal((await heartbeat(hb)).status, 204);
  }
  const room = uniqueRoom("sfu");
  const a = await Client.join(room);
  const b = await Client.join(room);
  const c = await Client.join(room);
  const sfu = await c.next((m) => m.type === "media_mode" && m.media.mode === "sfu" && m.media.node, 5000).catch(
    () => ({ media: c.welcome.media }),
  );
  const grant = sfu.media.node;
  assert.ok(grant, JSON.stringify(sfu));
  assert.equal(grant.node_id, "room-na");
  assert.equal(grant.url, "https://room-na.nodes.test");
  assert.ok(grant.token.split(".").length === 3, "a signed node token");
  for (const x of [a, b, c]) x.close();
});

test("frames: oversized and malformed ones get an error, binary is refused, others notice nothing", async () => {
  const room = uniqueRoom("frames");
  const a = await Client.join(room);
  const b = await Client.join(room);
  await a.next("participant_joined");
  await a.silence(200);
  // Over the message limit (16 KiB) but under the frame limit (64 KiB in the fixture: above it the
  // socket is closed with 1009, see the conformance suite).
  b.sendRaw(JSON.stringify({ v: 1, type: "chat", text: "z".repeat(40_000) }));
  assert.equal((await b.next("error")).code, "too_large");
  b.sendRaw("{oops");
  assert.equal((await b.next("error")).code, "bad_json");
  b.sendRaw(new Uint8Array(2048));
  assert.equal((await b.next("error")).code, "binary_not_supported");
  assert.deepEqual(await a.silence(300), [], "the other participant noticed");
  b.send({ type: "chat", text: "fine" });
  assert.equal((await a.next("chat")).text, "fine");
  a.close();
  b.close();
});

test("pages: every room name gets the same bytes; unknown paths 404 as JSON", async () => {
  const [x, y] = await Promise.all([fetch(`${BASE}/${uniqueRoom("p")}`), fetch(`${BASE}/acme/${uniqueRoom("q")}`)]);
  assert.equal(x.status, 200);
  assert.equal(await x.text(), await y.text());
  assert.equal(x.headers.get("referrer-policy"), "no-referrer");
  assert.ok(x.headers.get("content-security-policy"));
  const nf = await fetch(`${BASE}/a/b/c`);
  assert.equal(nf.status, 404);
  assert.equal((await nf.json()).error.code, "not_found");
  const nope = await fetch(`${BASE}/api/rooms/x`);
  assert.equal(nope.status, 400, "a room URL without a WebSocket upgrade");
  // No Dropbox app configured (the fixture has none): the page offers no recording.
  const cfg = await fetch(`${BASE}/api/config`);
  assert.equal(cfg.status, 200);
  assert.deepEqual(await cfg.json(), { recording: { available: false } });
});

test("automatic E2EE: key blobs are relayed, and neither the room's storage nor the log holds one (planted-key scan)", async () => {
  const room = uniqueRoom("e2ee-keys");
  // A participant's name is stored (the scan's control); the key blobs must not be.
  const marker = `Planted ${randomBytes(8).toString("hex")}`;
  const a = await Client.join(room, { name: marker });
  const b = await Client.join(room, { name: "Bob" });
  await a.next("participant_joined");
  // The worst case: a blob that carries a media key in clear (a real page seals it first).
  const key = randomBytes(32);
  const blob = Buffer.concat([Buffer.from([2]), key]).toString("base64url");
  a.send({ type: "e2ee_key", to: b.id, blob });
  const got = await b.next("e2ee_key");
  assert.deepEqual([got.from, got.blob], [a.id, blob]);
  a.send({ type: "e2ee_key", to: b.id, blob: "not base64url!" });
  assert.equal((await a.next("error")).code, "invalid_message");

  const { snapshot } = await probe(`room/-/${room}/dump`, {});
  assert.ok(snapshot && snapshot.includes(marker), "the dump shows the room's stored state");
  const forms = [blob, key.toString("hex"), key.toString("base64"), key.toString("base64url"), key.toString("latin1")];
  for (const f of forms) assert.ok(!snapshot.includes(f), "a key blob is in the Durable Object's storage");
  const logPath = process.env.EDGEMEET_WORKER_LOG;
  if (logPath && existsSync(logPath)) {
    const log = readFileSync(logPath, "utf8");
    for (const f of forms) assert.ok(!log.includes(f), "a key blob is in the Worker's log");
  }
  a.close();
  b.close();
});
