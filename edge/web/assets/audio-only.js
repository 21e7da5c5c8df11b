// Audio-only (low-bandwidth) mode for the viewer: this page receives no video (through the node
// its video pulls close, so the node sends it none; on a direct call its video transceivers stop
// receiving, renegotiated); the tiles show each person's avatar or initials and say "video off
// (audio-only mode)". Its own microphone and camera still go out to the others. Off again, video
// is pulled and received again (a new pull, or a resumed receiver, starts on a keyframe).
import { $ } from './ui.js';

/**
 * @typedef {import('./controller.js').MediaController} MediaController
 * @typedef {import('./ui.js').Grid} Grid
 */

export class AudioOnly {
  /**
   * @param {MediaController} calls
   * @param {Grid} grid
   * @param {() => void} redraw the tiles' labels and pictures again (app.js knows the people)
   */
  constructor(calls, grid, redraw) {
    this.calls = calls;
    this.grid = grid;
    this.redraw = redraw;
    this.on = false;
  }

  bind() {
    $('toggle-audio-only').addEventListener('click', () => this.toggle());
    document.addEventListener('keydown', (ev) => {
      const target = /** @type {HTMLElement} */ (ev.target);
      if ($('meeting').hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
      if (ev.key.toLowerCase() === 'a') this.toggle();
    });
  }

  toggle() {
    this.set(!this.on);
  }

  /** @param {boolean} on */
  set(on) {
    this.on = on;
    $('toggle-audio-only').setAttribute('aria-pressed', String(on));
    this.grid.audioOnly = on;
    this.redraw();
    this.calls.setVideoReceive(!on).catch((e) => console.warn('audio-only:', e));
    $('layout-live').textContent = on ? 'Audio-only mode: video from others is off' : 'Video from others is on again';
  }
}
