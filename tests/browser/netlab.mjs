// A small lab of "machines" for browser tests: the edge (with its media node) in the test's own
// network namespace, and each group of pages in a namespace of its own behind a veth pair, as on
// real machines. No loopback candidates and no `--allow-loopback-in-peer-connection`: Chromium
// gathers on its veth address, and media crosses a link the test can shape (loss, bandwidth) or cut.
//
// Needs root (network namespaces). The test process itself must run in a private namespace
// (`tests/suites/browser.sh` runs the suite under `unshare -n`): the lab adds links to it.
import { execFileSync, spawn } from 'node:child_process';
import { writeFileSync, chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startEdge } from './lib.mjs';
import { METRICS_TOKEN } from './video.mjs';

const sh = (cmd, args) => execFileSync(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const ip = (...args) => sh('ip', args);

let labCount = 0;

/**
 * A `tc tbf` rate cap on the egress of `dev` (in namespace `ns`, or the test's own when null);
 * `kbit` 0 removes it. The bucket holds at least one full-size packet.
 * @param {string} dev @param {string | null} ns @param {number} kbit @param {number} queueMs
 */
function shape(dev, ns, kbit, queueMs) {
  const tc = (...args) => (ns ? sh('ip', ['netns', 'exec', ns, 'tc', ...args]) : sh('tc', args));
  try { tc('qdisc', 'del', 'dev', dev, 'root'); } catch { /* no cap yet */ }
  if (!kbit) return;
  const burst = Math.max(1600, Math.round((kbit * 1000) / 8 / 50)); // 20 ms of the rate
  tc('qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', `${kbit}kbit`, 'burst', String(burst), 'latency', `${queueMs}ms`);
}

/** The edge's address in the lab: every machine reaches it by its first link's address. */
export const EDGE_IP = '10.77.1.1';

export class NetLab {
  /**
   * @param {number} machines how many page machines (namespaces)
   */
  constructor(machines) {
    this.id = `eml${process.pid % 10000}${labCount++}`;
    /** @type {{ns: string, host: string, addr: string, dev: string}[]} */
    this.machines = [];
    this.dir = mkdtempSync(join(tmpdir(), 'edgemeet-lab-'));
    /** @type {import('playwright-core').Browser[]} */
    this.browsers = [];
    for (let i = 0; i < machines; i++) this.addMachine(i);
  }

  addMachine(i) {
    const ns = `${this.id}m${i}`;
    const host = `${this.id}h${i}`;
    const net = i + 1;
    ip('netns', 'add', ns);
    ip('-n', ns, 'link', 'set', 'lo', 'up');
    ip('link', 'add', host, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns);
    ip('addr', 'add', `10.77.${net}.1/24`, 'dev', host);
    ip('-n', ns, 'addr', 'add', `10.77.${net}.2/24`, 'dev', 'eth0');
    ip('link', 'set', host, 'up');
    ip('-n', ns, 'link', 'set', 'eth0', 'up');
    ip('-n', ns, 'route', 'add', 'default', 'via', `10.77.${net}.1`);
    // Machines reach each other through the edge's namespace (P2P between pages).
    sh('sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    this.machines.push({ ns, host, addr: `10.77.${net}.2`, dev: 'eth0' });
  }

  /**
   * The edge with its embedded node, media on the lab address; `nodeToml`: more lines of its
   * `[media_node]` table (e.g. `udp_mux_port = 3478`).
   */
  async startEdge(env = {}, toml = '', nodeToml = '') {
    this.edge = await startEdge({ EDGEMEET_LISTEN: `${EDGE_IP}:0`, EDGEMEET_METRICS_TOKEN: METRICS_TOKEN, ...env }, `${toml}\n[media_node]\nmedia_ip = "${EDGE_IP}"\n${nodeToml}`);
    return this.edge;
  }

  /** A headless Chromium on machine `i` (no loopback flag: it gathers on its veth). */
  async browser(i, extraArgs = []) {
    const m = this.machines[i];
    const wrapper = join(this.dir, `chromium-${m.ns}`);
    writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${m.ns} ${process.env.CHROMIUM || '/usr/bin/chromium'} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const b = await chromium.launch({
      executablePath: wrapper,
      headless: true,
      args: [
        '--no-sandbox', '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
        '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
        '--disable-gpu', '--disable-quic', '--autoplay-policy=no-user-gesture-required',
        // Plain http off loopback is no secure context: no camera without this.
        `--unsafely-treat-insecure-origin-as-secure=${this.edge?.url || `http://${EDGE_IP}`}`,
        ...extraArgs,
      ],
    });
    this.browsers.push(b);
    return b;
  }

  /** Drop `percent` % of the packets machine `i` receives (nftables random drop on its side). */
  setLoss(i, percent) {
    const { ns } = this.machines[i];
    try { sh('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'lab']); } catch { /* none yet */ }
    if (!percent) return;
    // UDP only (media): signaling over TCP stays up, as a person's page would see on a lossy link.
    const match = percent >= 100 ? 'meta l4proto udp' : `meta l4proto udp numgen random mod 100 < ${percent}`;
    const rules = `table inet lab {\n chain in { type filter hook input priority 0; ${match} drop\n }\n}\n`;
    const file = join(this.dir, `nft-${ns}`);
    writeFileSync(file, rules);
    sh('ip', ['netns', 'exec', ns, 'nft', '-f', file]);
  }

  /**
   * Cap what machine `i` receives (its downlink) at `kbit` kbit/s; 0 lifts the cap. A token bucket
   * on the edge's side of the link (`tc tbf`; this kernel has no netem): what exceeds the rate waits
   * in a queue of `queueMs`, then is dropped, as in a thin link's buffer.
   */
  setDownlink(i, kbit, queueMs = 200) {
    shape(this.machines[i].host, null, kbit, queueMs);
  }

  /** Cap what machine `i` sends (its uplink), as `setDownlink`; 0 lifts the cap. */
  setUplink(i, kbit, queueMs = 200) {
    shape('eth0', this.machines[i].ns, kbit, queueMs);
  }

  /**
   * Drop UDP between machine `i` and the address `peer` (another machine), both ways, or stop
   * dropping it: the two pages still reach the edge and its node, but not each other directly.
   */
  blockPeer(i, peer, on) {
    const { ns } = this.machines[i];
    try { sh('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'labpeer']); } catch { /* none yet */ }
    if (!on) return;
    const rules = `table inet labpeer {\n chain in { type filter hook input priority 0; ip saddr ${peer} meta l4proto udp drop\n }\n chain out { type filter hook output priority 0; ip daddr ${peer} meta l4proto udp drop\n }\n}\n`;
    const file = join(this.dir, `nft-peer-${ns}`);
    writeFileSync(file, rules);
    sh('ip', ['netns', 'exec', ns, 'nft', '-f', file]);
  }

  /** Bring machine `i`'s link down or up. */
  setLink(i, up) {
    ip('link', 'set', this.machines[i].host, up ? 'up' : 'down');
  }

  async close() {
    for (const b of this.browsers) await b.close().catch(() => {});
    this.edge?.stop();
    for (const m of this.machines) {
      try { sh('ip', ['netns', 'pids', m.ns]).split('\n').filter(Boolean).forEach((p) => { try { process.kill(Number(p)); } catch { /* gone */ } }); } catch { /* gone */ }
      try { ip('link', 'del', m.host); } catch { /* gone with its namespace */ }
      try { ip('netns', 'del', m.ns); } catch { /* gone */ }
    }
  }
}

/** A busy loop on one core beside the browsers (a publisher short of CPU), until `stop()`. */
export function burnCpu(processes = 1) {
  const kids = [];
  for (let i = 0; i < processes; i++) kids.push(spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
  return { stop: () => kids.forEach((k) => k.kill('SIGKILL')) };
}
