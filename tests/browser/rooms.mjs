// A room through the media node in a NetLab (pages on machines of their own), ready to measure:
// the setup the media tests share.
import assert from 'node:assert/strict';
import { joinPage, inMeeting, waitMode, uniqueRoom } from './lib.mjs';
import { remoteVideo } from './video.mjs';

/**
 * `size` pages join a new room one after another, page i on the lab's machine `machineOf(i)`;
 * resolves with the pages once every one is "Via server" and decodes every other's video (all
 * within `timeoutMs`).
 * @param {import('./netlab.mjs').NetLab} lab
 * @param {string} prefix
 * @param {number} size
 * @param {(i: number) => number} machineOf
 */
export async function roomViaNode(lab, prefix, size, machineOf, timeoutMs = 15000) {
  const room = uniqueRoom(prefix);
  const pages = [];
  for (let i = 0; i < size; i++) {
    pages.push(await joinPage(lab.browsers[machineOf(i)], lab.edge.url, room, { name: `P${i}` }));
    await inMeeting(pages[i]);
  }
  for (const p of pages) await waitMode(p, 'Via server');
  const deadline = Date.now() + timeoutMs;
  for (const p of pages) assert.ok((await remoteVideo(p, size - 1, deadline)).ok, 'everyone decodes everyone first');
  return pages;
}
