// Local media: camera and microphone, device choice, screen sharing.
import { SCREEN_CAPTURE } from './screen.js';

const LOWRES = new URLSearchParams(location.search).has('lowres');
/** `?fps=N` (tests on small machines): the camera at most N frames per second. */
const FPS = Number(new URLSearchParams(location.search).get('fps')) || 0;

export class LocalMedia {
  constructor() {
    /** @type {MediaStream} */
    this.stream = new MediaStream();
    this.audioEnabled = true;
    this.videoEnabled = true;
    /** @type {MediaStreamTrack | null} */
    this.screenTrack = null;
  }

  /**
   * Open the camera and microphone (the chosen devices, else the defaults).
   * @param {string} [cameraId] @param {string} [micId]
   * @returns {Promise<MediaStream>}
   */
  async open(cameraId, micId) {
    const constraints = {
      audio: micId ? { deviceId: { exact: micId } } : true,
      // `?lowres` (tests on small machines): encoding three simulcast layers of 720p per page is heavy.
      video: { ...(cameraId ? { deviceId: { exact: cameraId } } : {}), ...(LOWRES ? { width: 640, height: 360 } : { width: 1280, height: 720 }), ...(FPS ? { frameRate: { max: FPS } } : {}) },
    };
    for (const t of this.stream.getTracks()) t.stop();
    try {
      this.stream = await navigator.mediaDevices.getUserMedia(constraints);
    } catch (err) {
      // Without a camera (or permission), still join with whatever works.
      try {
        this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      } catch {
        this.stream = new MediaStream();
      }
    }
    this.apply();
    return this.stream;
  }

  async devices() {
    const all = await navigator.mediaDevices.enumerateDevices();
    return {
      cameras: all.filter((d) => d.kind === 'videoinput'),
      mics: all.filter((d) => d.kind === 'audioinput'),
    };
  }

  get audioTrack() { return this.stream.getAudioTracks()[0] || null; }
  get videoTrack() { return this.stream.getVideoTracks()[0] || null; }

  apply() {
    if (this.audioTrack) this.audioTrack.enabled = this.audioEnabled;
    if (this.videoTrack) this.videoTrack.enabled = this.videoEnabled;
  }

  /** @param {boolean} on */
  setAudio(on) { this.audioEnabled = on; this.apply(); }
  /** @param {boolean} on */
  setVideo(on) { this.videoEnabled = on; this.apply(); }

  /**
   * Start sharing the screen; resolves to the track, or null if the user cancelled. Throws when
   * the browser cannot share (no `getDisplayMedia`, nothing to share): the page says so.
   */
  async startScreen() {
    try {
      const s = await navigator.mediaDevices.getDisplayMedia({ video: SCREEN_CAPTURE });
      this.screenTrack = s.getVideoTracks()[0];
      // Text and lines: the encoder keeps the size and gives up frames rather than sharpness.
      if ('contentHint' in this.screenTrack) this.screenTrack.contentHint = 'detail';
      return this.screenTrack;
    } catch (err) {
      if (/** @type {any} */ (err)?.name === 'NotAllowedError' || /** @type {any} */ (err)?.name === 'AbortError') return null;
      throw err;
    }
  }

  stopScreen() {
    this.screenTrack?.stop();
    this.screenTrack = null;
  }

  /**
   * What we send, for `media_state`.
   * @param {boolean} e2ee
   * @returns {import('./protocol.js').MediaState}
   */
  state(e2ee) {
    return { audio: this.audioEnabled && !!this.audioTrack, video: this.videoEnabled && !!this.videoTrack, screen: !!this.screenTrack, e2ee };
  }
}
