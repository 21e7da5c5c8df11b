// Worker-specific tests, run by tests/suites/worker.sh against `wrangler dev` (workerd) started with
// the test probes enabled (EDGEMEET_TEST_PROBES=1):
//   EDGEMEET_URL=http://127.0.0.1:PORT node --experimental-websocket --test edge/worker/tests/
// The protocol itself is covered by the shared conformance suite (tests/tests/conformance.rs).
import assert from "node:assert/strict";
import { after, test } from "node:test";

import { BASE, Client, closeAll, probe, roomState, sleep, uniqueRoom } from "./lib.mjs";

after(closeAll);

const NODE_SECRET = process.env.EDGEMEET_NODE_SECRET || "conformance-node-secret-0123456789abcdef";

async function waitFor(pred, timeoutMs = 4000) {
  const start = Date.now();
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() - start > timeoutMs) throw new Error("condition not reached");
    await sleep(50);
  }
}

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
  // Idle and right next to both callers, but silent for 20 s (> 15 s): never chosen.
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
