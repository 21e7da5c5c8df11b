// The lobby on Cloudflare: the names people typed while they knock are in the room's Durable
// Object snapshot (it must survive hibernation), and gone, with the rest of it, when the meeting
// ends. Run by tests/suites/worker.sh with the other Worker tests.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, test } from "node:test";

import { Client, closeAll, probe, roomState, uniqueRoom, waitFor } from "./lib.mjs";

after(closeAll);

test("a knocker's name is in the room's storage while they wait, and gone when the meeting ends", async () => {
  const room = uniqueRoom("lobby-wipe");
  const ada = await Client.join(room, { name: "Ada" });
  ada.send({ type: "set_lobby", enabled: true });
  await ada.next((m) => m.type === "lobby" && m.enabled);
  const name = `Knocker ${randomBytes(8).toString("hex")}`;
  const knocker = await Client.open(`/api/rooms/${room}`);
  knocker.send({ type: "join", profile: { name } });
  assert.equal((await knocker.next("waiting")).reason, "lobby");
  const shown = await ada.next((m) => m.type === "lobby" && m.knocking.length === 1);
  assert.equal(shown.knocking[0].name, name);

  // The control: while they knock, the stored snapshot holds the name they typed.
  const { snapshot } = await probe(`room/-/${room}/dump`, {});
  assert.ok(snapshot && snapshot.includes(name), "the stored room holds the knocker's name while they wait");

  // The last participant leaves: the knocker is told the meeting ended, and nothing is left.
  ada.send({ type: "leave" });
  ada.close();
  assert.equal((await knocker.next("refused")).reason, "meeting_ended");
  await knocker.next("_closed");
  const wiped = await waitFor(async () => {
    const s = await roomState(room);
    return s.sockets === 0 && s.storage_keys.length === 0 && s.alarm === null && s;
  });
  assert.equal(wiped.in_memory, false);
  const after = await probe(`room/-/${room}/dump`, {});
  assert.ok(!after.snapshot?.includes(name), "the knocker's name outlived the meeting in storage");
});
