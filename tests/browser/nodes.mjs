// Standalone processes beside the native edge for the browser tests: media nodes of a region
// reporting to the edge, and the other binaries a test starts (uploader, s3s-fs, emulators).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, tempDir } from './lib.mjs';

/** The fixture's `edge.node_secret` (tests/fixtures/edge.toml). */
export const NODE_SECRET = 'conformance-node-secret-0123456789abcdef';
export const BIN_DIR = process.env.EDGEMEET_BIN_DIR || join(process.env.CARGO_TARGET_DIR || join(root, 'target'), 'debug');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free loopback port (released before use: the process started on it binds it). */
export async function freePort() {
  const srv = createServer();
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', () => resolve(undefined)));
  const address = srv.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise((resolve) => srv.close(() => resolve(undefined)));
  return port;
}

/**
 * @typedef {{pid: number, logs: string[], kill: (signal?: NodeJS.Signals) => void}} Proc
 * Spawn `bin`; resolves once `ready()` holds (polled every 100 ms for up to 20 s), with the
 * process and its output so far.
 * @returns {Promise<Proc>}
 */
export async function startProcess(bin, args, env, ready) {
  assert.ok(existsSync(bin), `${bin} is missing`);
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  /** @type {string[]} */
  const logs = [];
  for (const s of [child.stdout, child.stderr]) s.on('data', (d) => logs.push(String(d)));
  const p = { pid: /** @type {number} */ (child.pid), logs, kill: (signal = 'SIGTERM') => { child.kill(signal); } };
  for (let i = 0; ; i++) {
    if (await ready().catch(() => false)) return p;
    if (child.exitCode !== null || i > 200) {
      child.kill('SIGKILL');
      throw new Error(`${bin} did not start:\n${logs.join('')}`);
    }
    await sleep(100);
  }
}

/**
 * A media node of `region` reporting to the edge at `edgeUrl` every second, with `more` lines
 * appended to its configuration file; resolves once the edge has heard its first heartbeat.
 * @returns {Promise<Proc & {id: string, url: string}>}
 */
export async function startMediaNode(edgeUrl, id, { region = 'eu-west', more = [], dir = tempDir() } = {}) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const file = join(dir, `${id}.toml`);
  writeFileSync(file, [
    `id = "${id}"`, `region = "${region}"`, `listen = "127.0.0.1:${port}"`, `public_url = "${url}"`,
    `edge_url = "${edgeUrl}"`, 'heartbeat_secs = 1', '', ...more, '',
  ].join('\n'));
  const node = await startProcess(join(BIN_DIR, 'edgemeet-media-node'), [file],
    { EDGEMEET_NODE_SECRET: NODE_SECRET, RUST_LOG: 'warn' }, async () => (await fetch(`${url}/healthz`)).ok);
  await sleep(1500); // its first heartbeat (sent at once) reached the edge
  return { ...node, id, url };
}
