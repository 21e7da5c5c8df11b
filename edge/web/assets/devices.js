// Switching camera, microphone and speaker during the call (the Devices panel). A new camera or
// microphone is opened, put into the page's stream in place of the old one, and sent on every
// connection with `replaceTrack` (no renegotiation; E2EE transforms sit on the senders and stay).
// The speaker is each media element's `setSinkId`; where the browser has none, or lists no
// speakers, the panel says so and hides the choice.
import { $, toast } from './ui.js';

/**
 * @typedef {import('./media.js').LocalMedia} LocalMedia
 * @typedef {import('./controller.js').MediaController} MediaController
 * @typedef {'audio' | 'video'} Kind
 */

/** Can this browser route a media element's sound to a chosen output? */
export function sinkSupported() {
  return 'setSinkId' in HTMLMediaElement.prototype;
}

/** The select and the device kind for each choice of the panel. */
const CHOICES = /** @type {const} */ ([
  ['switch-camera', 'videoinput', 'Camera'],
  ['switch-mic', 'audioinput', 'Microphone'],
  ['switch-speaker', 'audiooutput', 'Speaker'],
]);

export class DevicePicker {
  /** @param {LocalMedia} media @param {MediaController} calls */
  constructor(media, calls) {
    this.media = media;
    this.calls = calls;
    /** @type {string} the chosen speaker ('' : the system's default) */
    this.sinkId = '';
    /** a switch in progress: the next waits for it */
    this.busy = Promise.resolve();
  }

  bind() {
    const panel = $('devices-panel');
    const button = $('toggle-devices');
    const toggle = (/** @type {boolean} */ open) => {
      panel.hidden = !open;
      button.setAttribute('aria-expanded', String(open));
      if (open) {
        this.fill().catch((e) => console.warn('devices:', e));
        $('switch-camera').focus();
      }
    };
    button.addEventListener('click', () => toggle(panel.hidden));
    $('close-devices').addEventListener('click', () => { toggle(false); button.focus(); });
    document.addEventListener('keydown', (ev) => {
      const target = /** @type {HTMLElement} */ (ev.target);
      if ($('meeting').hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (ev.key === 'Escape' && !panel.hidden) { toggle(false); button.focus(); return; }
      if (ev.key.toLowerCase() === 'd' && !['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) toggle(panel.hidden);
    });
    for (const [id, , label] of CHOICES) {
      const select = /** @type {HTMLSelectElement} */ ($(id));
      select.addEventListener('change', () => {
        const run = id === 'switch-speaker' ? () => this.setSpeaker(select.value)
          : () => this.switchTo(id === 'switch-camera' ? 'video' : 'audio', select.value);
        this.busy = this.busy.then(run).catch((e) => {
          console.warn('devices:', e);
          toast(`${label}: could not switch (${e?.name || e})`);
          this.fill().catch(() => {});
        });
      });
    }
    // Tiles come and go: each new media element plays on the chosen speaker.
    new MutationObserver(() => { if (this.sinkId) this.applySink(); }).observe($('grid'), { childList: true, subtree: true });
    navigator.mediaDevices?.addEventListener?.('devicechange', () => { if (!panel.hidden) this.fill().catch(() => {}); });
  }

  /** The lists, with what is in use selected. */
  async fill() {
    const all = await navigator.mediaDevices.enumerateDevices();
    const inUse = {
      videoinput: this.media.videoTrack?.getSettings().deviceId,
      audioinput: this.media.audioTrack?.getSettings().deviceId,
      audiooutput: this.sinkId || 'default',
    };
    for (const [id, kind, label] of CHOICES) {
      const select = /** @type {HTMLSelectElement} */ ($(id));
      const list = all.filter((d) => d.kind === kind && d.deviceId);
      select.replaceChildren(...list.map((d, i) => new Option(d.label || `${label} ${i + 1}`, d.deviceId)));
      if (list.some((d) => d.deviceId === inUse[kind])) select.value = inUse[kind] || '';
    }
    // The speaker: said, not silently missing, where the browser cannot choose one.
    const speakers = all.filter((d) => d.kind === 'audiooutput' && d.deviceId);
    const why = !sinkSupported()
      ? 'This browser cannot send the meeting’s sound to a chosen speaker: it plays on the system’s default output.'
      : !speakers.length ? 'This browser lists no speakers to choose from: the meeting’s sound plays on the system’s default output.' : '';
    $('speaker-choice').hidden = !!why;
    const note = $('speaker-note');
    note.textContent = why;
    note.hidden = !why;
  }

  /**
   * Use another camera or microphone from now on, on every connection.
   * @param {Kind} kind @param {string} deviceId
   */
  async switchTo(kind, deviceId) {
    const media = this.media;
    const old = kind === 'audio' ? media.audioTrack : media.videoTrack;
    if (old && old.readyState === 'live' && old.getSettings().deviceId === deviceId) return;
    // Same size and rate as before (the page's `?lowres`, `?fps`), from the other device.
    /** @type {MediaTrackConstraints} */
    const wanted = { ...(old?.getConstraints() || {}), deviceId: { exact: deviceId } };
    const constraints = kind === 'audio' ? { audio: wanted } : { video: wanted };
    /** @type {MediaStreamTrack} */
    let track;
    try {
      track = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
    } catch (err) {
      // Some cameras open in one place at a time: let the old one go, then try again.
      if (!old || /** @type {any} */ (err)?.name !== 'NotReadableError') throw err;
      old.stop();
      track = (await navigator.mediaDevices.getUserMedia(constraints)).getTracks()[0];
    }
    track.enabled = kind === 'audio' ? media.audioEnabled : media.videoEnabled;
    // In place, so that everything holding the page's stream (a node link built later, the
    // direct call of a later pair, leaving) finds the new track.
    if (old) media.stream.removeTrack(old);
    media.stream.addTrack(track);
    // A shared screen has its own sender: the camera's is switched while sharing too.
    await this.calls.replaceTrack(kind, track);
    old?.stop();
    // Our own tile shows the new camera.
    for (const v of /** @type {NodeListOf<HTMLVideoElement>} */ (document.querySelectorAll('video'))) {
      if (v.srcObject !== media.stream) continue;
      v.srcObject = null;
      v.srcObject = media.stream;
      v.play().catch(() => {});
    }
    $('devices-live').textContent = `${kind === 'audio' ? 'Microphone' : 'Camera'}: ${track.label || 'switched'}`;
  }

  /** Play every tile's sound on `sinkId` ('' or 'default': the system's default). @param {string} sinkId */
  async setSpeaker(sinkId) {
    if (!sinkSupported()) return;
    this.sinkId = sinkId === 'default' ? '' : sinkId;
    await this.applySink();
    const select = /** @type {HTMLSelectElement} */ ($('switch-speaker'));
    $('devices-live').textContent = `Speaker: ${select.selectedOptions[0]?.text || 'default'}`;
  }

  async applySink() {
    const videos = /** @type {NodeListOf<HTMLVideoElement>} */ (document.querySelectorAll('#grid video'));
    await Promise.all([...videos].map((v) => {
      const el = /** @type {HTMLVideoElement & {sinkId: string, setSinkId: (id: string) => Promise<void>}} */ (v);
      return el.sinkId === this.sinkId ? undefined : el.setSinkId(this.sinkId);
    }));
  }
}
