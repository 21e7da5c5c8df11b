// Real processes beside workerd for the Worker's tests: media nodes, the uploader, s3s-fs.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

import { sleep } from "./lib.mjs";

export const NODE_SECRET = process.env.EDGEMEET_NODE_SECRET || "conformance-node-secret-0123456789abcdef";
const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const BIN_DIR =
  process.env.EDGEMEET_BIN_DIR || join(process.env.CARGO_TARGET_DIR || join(ROOT, "target"), "debug");
export const S3S_FS =
  process.env.EDGEMEET_S3S_FS ||
  join(process.env.EDGEMEET_CACHE || join(homedir(), ".cache", "edgemeet"), "tools", "bin", "s3s-fs");

/** A free loopback port (released before use: the process started on it binds it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = /** @type {import("node:net").AddressInfo} */ (srv.address());
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Start `bin` and wait until `ready()` holds. Resolves with the child and `stop()` (SIGTERM, then
 * waits for the exit); a test that kills it otherwise (SIGKILL) uses the child.
 */
export async function startProcess(bin, args, env, ready) {
  assert.ok(existsSync(bin), `${bin} is missing (tests/suites/worker.sh builds it)`);
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const exited = new Promise((resolve) => child.once("exit", resolve));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) throw new Error(`${bin} exited: ${stderr}`);
    if (await ready().catch(() => false)) return { child, stop };
    await sleep(50);
  }
  child.kill("SIGKILL");
  await exited;
  throw new Error(`${bin} did not become ready: ${stderr}`);
}

/** s3s-fs serving the folders under `root` as buckets, with the given static credentials. */
export async function startS3(root, ak, sk) {
  const port = await freePort();
  const s3 = await startProcess(
    S3S_FS,
    ["--host", "127.0.0.1", "--port", String(port), "--access-key", ak, "--secret-key", sk, root],
    {},
    async () => (await fetch(`http://127.0.0.1:${port}/`)).status > 0,
  );
  return { ...s3, port };
}
