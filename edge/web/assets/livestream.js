// Livestreaming on the page: a moderator's "Go live" form (the RTMPS or RTMP URL and stream key of
// YouTube, Twitch, Facebook or any RTMP server; an rtmp:// URL is warned about: its key travels in
// clear) and "Stop live", and the LIVE badge everyone sees while the
// meeting is streamed. The rules are the edge's (edge/core/src/room/livestream.rs): moderators
// only, refused while anyone has end-to-end encryption on. The key is sent once, to the edge, and
// the form forgets it at once; it is never shown again or stored by the page.
import { $, toast } from './ui.js';

/** @typedef {import('./protocol.js').ClientMessage} ClientMessage */

export class LivestreamView {
  /** @param {(msg: ClientMessage) => void} send */
  constructor(send) {
    this.send = send;
    this.live = false;
    this.moderator = false;
    this.e2ee = false;
    const form = /** @type {HTMLFormElement} */ ($('live-form'));
    $('live').addEventListener('click', () => {
      if (this.live) {
        this.send({ type: 'stop_livestream' });
        return;
      }
      form.hidden = !form.hidden;
      if (!form.hidden) $('live-url').focus();
    });
    $('live-cancel').addEventListener('click', () => { form.hidden = true; });
    // The composed video's layout (livestream and one-video recording), at any time.
    const grid = /** @type {HTMLInputElement} */ ($('composition-grid'));
    grid.addEventListener('change', () => this.send({ type: 'set_composition_layout', grid: grid.checked }));
    const url = /** @type {HTMLInputElement} */ ($('live-url'));
    url.addEventListener('input', () => {
      $('live-clear').hidden = !url.value.trim().toLowerCase().startsWith('rtmp://');
    });
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const url = /** @type {HTMLInputElement} */ ($('live-url'));
      const key = /** @type {HTMLInputElement} */ ($('live-key'));
      this.send({ type: 'start_livestream', url: url.value.trim(), stream_key: key.value.trim() });
      key.value = '';
      form.hidden = true;
    });
  }

  /**
   * Whether the meeting is streamed now: from `welcome`, or a `livestream` message (`by` set: a
   * moderator's doing; absent: it stopped by itself).
   * @param {boolean} active
   * @param {boolean} [announce]
   * @param {boolean} [restarting] it dropped (the streaming server went away) and starts again
   */
  set(active, announce = false, restarting = false) {
    const was = this.live;
    this.live = active;
    $('live-badge').hidden = !active;
    if (restarting) toast('The livestream dropped; starting it again');
    else if (announce && was !== active) toast(active ? 'This meeting is now streamed live' : 'The livestream ended');
    this.render();
  }

  /**
   * The button: moderators only; disabled while E2EE is on and nothing is streamed.
   * @param {{moderator?: boolean, e2ee?: boolean}} [state]
   */
  render(state = {}) {
    if (state.moderator !== undefined) this.moderator = state.moderator;
    if (state.e2ee !== undefined) this.e2ee = state.e2ee;
    const button = /** @type {HTMLButtonElement} */ ($('live'));
    button.hidden = !this.moderator;
    $('composition-grid-choice').hidden = !this.moderator;
    button.textContent = this.live ? 'Stop live' : 'Go live';
    button.setAttribute('aria-pressed', String(this.live));
    const off = !this.live && this.e2ee;
    button.disabled = off;
    button.title = off
      ? 'Livestreaming is off while end-to-end encryption is on: encrypted media cannot be composed.'
      : this.live ? 'End the livestream' : 'Stream this meeting to YouTube, Twitch, Facebook or any RTMP(S) server';
    if (button.hidden || off || this.live) $('live-form').hidden = true;
  }
}
