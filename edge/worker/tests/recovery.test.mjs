// Resume on the Worker: a page comes back as the same participant while the room's Durable Object
// hibernated (memory gone, sockets kept) and after workerd itself restarted (memory and sockets
// gone, storage kept). Run by tests/suites/worker.sh with the other Worker tests.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, test } from "node:test";

import { BASE, Client, closeAll, probe, roomState, sleep, uniqueRoom, waitFor } from "./lib.mjs";

after(closeAll);

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

/** A socket on `base` that sends `resume` for `who` (a joined Client); resolves with it and its answer. */
async function resume(base, room, who) {
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/api/rooms/${room}`);
  const c = new Client(ws);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("socket did not open"));
  });
  c.send({ type: "resume", id: who.id, secret: who.welcome.resume.secret });
  return [c, await c.next(() => true)];
}

/** `Client.join` against another edge than EDGEMEET_URL. */
async function joinAt(base, room, profile) {
  const ws = new WebSocket(`${base.replace(/^http/, "ws")}/api/rooms/${room}`);
  const c = new Client(ws);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("socket did not open"));
  });
  c.send({ type: "join", profile });
  c.welcome = await c.next("welcome");
  c.id = c.welcome.you;
  return c;
}

const leavesOrJoins = (msgs) => msgs.filter((m) => m.type === "participant_left" || m.type === "participant_joined");

test("a page resumes as the same participant while the room's Durable Object hibernated", async () => {
  const room = uniqueRoom("hibresume");
  const a = await Client.join(room, { name: "Ada" });
  const b = await Client.join(room, { name: "Bob" });
  await a.next("participant_joined");
  await waitFor(async () => (await roomState(room)).storage_keys.length > 0);
  await probe(`room/-/${room}/forget`, {});
  assert.equal((await roomState(room)).in_memory, false);

  const [a2, w] = await resume(BASE, room, a);
  assert.equal(w.type, "welcome", JSON.stringify(w));
  assert.equal(w.you, a.id, "the same participant");
  assert.equal(w.meeting_id, a.welcome.meeting_id, "the same meeting");
  assert.equal((await a.next("_closed")).code, 4003, "the old socket is let go");
  b.send({ type: "chat", text: "still there?" });
  assert.equal((await a2.next("chat")).text, "still there?");
  assert.deepEqual(leavesOrJoins(await b.silence(300)), [], "Bob saw no leave or join");
  a2.close();
  b.close();
});

test("after workerd restarts, pages resume into the same meeting from the room's storage", async () => {
  const state = mkdtempSync(join(tmpdir(), "edgemeet-restart-"));
  const port = 20000 + Math.floor(Math.random() * 20000);
  const start = () => {
    const r = spawnSync(join(ROOT, "edge/worker/dev.sh"), [join(ROOT, "tests/fixtures/edge.toml"), String(port), state, join(state, "wrangler.log"), "--probes"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim().split("\n").pop();
  };
  const stop = () => {
    const pid = Number(spawnSync("cat", [join(state, "wrangler.pid")], { encoding: "utf8" }).stdout);
    try { process.kill(-pid, "SIGKILL"); } catch { /* gone */ }
  };
  try {
    const base = start();
    const room = uniqueRoom("restart");
    const a = await joinAt(base, room, { name: "Ada" });
    const b = await joinAt(base, room, { name: "Bob" });
    await a.next("participant_joined");
    a.send({ type: "set_password", password: "pw-restart" });
    await b.next("room_locked");
    await sleep(500); // the snapshot is written 100 ms after a change

    // workerd dies: every socket drops, only the Durable Objects' storage stays.
    const killedAt = Date.now();
    stop();
    await a.next("_closed");
    await sleep(300);
    const base2 = start();
    const restartMs = Date.now() - killedAt;

    const [a2, wa] = await resume(base2, room, a);
    assert.equal(wa.type, "welcome", JSON.stringify(wa));
    assert.equal(wa.you, a.id);
    assert.equal(wa.meeting_id, a.welcome.meeting_id, "the meeting survived the restart");
    assert.equal(wa.locked, true, "its password too; Ada is not asked for it");
    const [b2, wb] = await resume(base2, room, b);
    assert.equal(wb.you, b.id);
    assert.equal(wb.participants.length, 2);
    a2.send({ type: "chat", text: "after the restart" });
    assert.equal((await b2.next("chat")).text, "after the restart");
    assert.deepEqual(leavesOrJoins([...(await a2.silence(300)), ...(await b2.silence(0))]), [], "no leave or join");
    console.log(`workerd restart: killed -> both pages resumed in ${Date.now() - killedAt} ms (restart ${restartMs} ms)`);
    a2.close();
    b2.close();
  } finally {
    stop();
    rmSync(state, { recursive: true, force: true });
  }
});
