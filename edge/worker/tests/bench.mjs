// Benchmark of one edge by URL (EDGEMEET_URL): join latency and broadcast fan-out in a room of N.
//   node --experimental-websocket edge/worker/tests/bench.mjs LABEL
// Prints one line of figures per measurement. Bounded: every wait has a timeout.
import { Client, percentile, sleep, uniqueRoom } from "./lib.mjs";

const label = process.argv[2] || "edge";
const N = Number(process.env.BENCH_PARTICIPANTS || 50);
const ROOMS = Number(process.env.BENCH_ROOMS || 3);
const MSGS = Number(process.env.BENCH_MESSAGES || 200);
const SENDERS = Number(process.env.BENCH_SENDERS || 10);

async function joinTimed(room) {
  const t0 = performance.now();
  const c = await Client.open(`/api/rooms/${room}`);
  const t1 = performance.now();
  c.send({ type: "join", profile: { name: "bench" } });
  const w = await c.next("welcome", 10000);
  const t2 = performance.now();
  c.id = w.you;
  return { c, open: t1 - t0, join: t2 - t1, roster: w.participants.length };
}

// Join latency: N participants join a room one after another; WS open -> welcome (roster).
const joins = [];
const rooms = [];
for (let r = 0; r < ROOMS; r++) {
  const room = uniqueRoom("bench");
  const clients = [];
  for (let i = 0; i < N; i++) {
    const j = await joinTimed(room);
    joins.push(j.join);
    clients.push(j.c);
  }
  rooms.push({ room, clients });
}
joins.sort((a, b) => a - b);
console.log(
  `${label}: join latency (open -> roster, ${joins.length} joins into rooms of up to ${N}): ` +
    `p50 ${percentile(joins, 50).toFixed(1)} ms, p99 ${percentile(joins, 99).toFixed(1)} ms`,
);

// Fan-out: SENDERS participants each send MSGS chats into the N-room; every participant receives
// every chat. At most WINDOW rounds are in flight, so no socket's backlog nears the native host's
// per-socket queue (512 frames) and both hosts are measured at a rate they sustain. Counted by
// substring, so the client's JSON parsing is not what is measured.
const WINDOW = Number(process.env.BENCH_WINDOW || 10);
const { clients } = rooms[0];
for (const r of rooms.slice(1)) for (const c of r.clients) c.close();
await sleep(300);
let delivered = 0;
const senders = clients.slice(0, SENDERS);
const perRound = SENDERS * clients.length;
const expected = MSGS * perRound;
let sentRounds = 0;
let done;
const finished = new Promise((r) => (done = r));
function pump() {
  while (sentRounds < MSGS && sentRounds - Math.floor(delivered / perRound) < WINDOW) {
    for (const s of senders) s.ws.send(`{"v":1,"type":"chat","text":"m${sentRounds}"}`);
    sentRounds++;
  }
}
for (const c of clients) {
  c.ws.onmessage = (e) => {
    if (typeof e.data === "string" && e.data.includes('"type":"chat"')) {
      if (++delivered === expected) done();
      else if (delivered % perRound === 0) pump();
    }
  };
}
const t0 = performance.now();
pump();
const timeout = sleep(60000).then(() => "timeout");
const outcome = await Promise.race([finished, timeout]);
const secs = (performance.now() - t0) / 1000;
const inbound = (delivered / clients.length) / secs;
console.log(
  `${label}: fan-out in a room of ${clients.length}: ${SENDERS * MSGS} chats from ${SENDERS} senders, ` +
    `${delivered}/${expected} deliveries in ${secs.toFixed(2)} s${outcome === "timeout" ? " (TIMEOUT)" : ""}: ` +
    `${Math.round(inbound)} messages/s in, ${Math.round(delivered / secs)} deliveries/s out`,
);
for (const c of clients) c.close();
await sleep(200);
process.exit(0);
