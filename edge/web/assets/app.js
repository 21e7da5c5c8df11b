// edgemeet in the browser: landing page, pre-join, and the meeting's UI. Plain ES modules, no build
// step. The media connections are the MediaController's (controller.js, no DOM); this file wires
// its events and the room's messages to the page.
import { Signaling } from './signaling.js';
import { LocalMedia } from './media.js';
import { MediaController } from './controller.js';
import { E2ee, deriveKey, e2eeSupported } from './e2ee.js';
import { SenderKeys, renderVerification } from './e2ee-keys.js';
import { $, show, toast, banner, displayName, Grid, addChat, deliveryItem } from './ui.js';
import { LobbyView, showWaiting } from './lobby.js';
import { LivestreamView } from './livestream.js';
import { NodeFailover } from './failover.js';
import {
  applyJoinChoices, copyInviteLink, ChatBadge, bindShortcutsHelp, handOrder, handText, renderHands, bindReactions, showReaction,
  screenShareProblem,
} from './controls.js';
import { DevicePicker } from './devices.js';
import { Layout } from './layout.js';
import { TileViews } from './tile-views.js';
import { AudioOnly } from './audio-only.js';
import {
  recordingConfig, finishOAuthRedirect, connectDropbox, statusLink, readDeliveryStatus, describeDelivery, deliverySettled,
} from './recording.js';

/**
 * @typedef {import('./protocol.js').ServerMessage} ServerMessage
 * @typedef {import('./protocol.js').ClientMessage} ClientMessage
 * @typedef {import('./protocol.js').Join} Join
 * @typedef {import('./protocol.js').Participant} Participant
 * @typedef {import('./protocol.js').ParticipantId} ParticipantId
 * @typedef {import('./protocol.js').ErrorMessage} ErrorMessage
 */

const path = location.pathname.split('/').filter(Boolean).map(decodeURIComponent);
const params = new URLSearchParams(location.search);

if (finishOAuthRedirect()) { /* this window was Dropbox's redirect back: it closes */ }
else if (path.length === 0) landing();
else prejoin(path.length >= 2 ? path[0] : null, path[path.length - 1]);

// ---- Landing: a random name, a live warning for guessable ones -------------------------------

async function landing() {
  show('landing');
  const input = /** @type {HTMLInputElement} */ ($('room-name'));
  const randomName = async () => {
    const res = await fetch('/api/names/random');
    input.value = (await res.json()).name;
    check();
  };
  let timer = 0;
  const check = () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const name = input.value.trim();
      const warn = $('name-warning');
      if (!name) { warn.hidden = true; return; }
      const res = await fetch('/api/names/check', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name }) });
      const verdict = await res.json();
      warn.textContent = verdict.warning || '';
      warn.hidden = verdict.strong;
    }, 150);
  };
  input.addEventListener('input', check);
  $('regenerate').addEventListener('click', randomName);
  $('landing-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const name = input.value.trim();
    if (name) location.assign(`/${encodeURIComponent(name)}`);
  });
  await randomName();
}

// ---- Pre-join: preview, devices, profile -----------------------------------------------------

/** @param {string | null} tenant @param {string} room */
async function prejoin(tenant, room) {
  show('prejoin');
  $('prejoin-title').textContent = `Join ${room}`;
  document.title = `${room} · edgemeet`;
  const media = new LocalMedia();
  const preview = /** @type {HTMLVideoElement} */ ($('preview'));
  const fields = ['display-name', 'email', 'avatar'].map((id) => /** @type {HTMLInputElement} */ ($(id)));
  const remember = /** @type {HTMLInputElement} */ ($('remember'));
  const saved = JSON.parse(localStorage.getItem('edgemeet.profile') || 'null');
  if (saved) {
    [fields[0].value, fields[1].value, fields[2].value] = [saved.name || '', saved.email || '', saved.avatar || ''];
    remember.checked = true;
  }
  const e2eeToggle = /** @type {HTMLInputElement} */ ($('e2ee-toggle'));
  const passphrase = /** @type {HTMLInputElement} */ ($('e2ee-passphrase'));
  e2eeToggle.addEventListener('change', () => {
    passphrase.hidden = !e2eeToggle.checked;
    if (e2eeToggle.checked) passphrase.focus();
  });
  // Derive the key while the user is still on this page, so joining does not wait for PBKDF2.
  const scope = `${tenant || ''}/${room.trim().toLowerCase()}`; // as the edge normalizes the room
  /** @type {{secret: string, key: Promise<CryptoKey>} | null} */
  let derived = null;
  let deriveTimer = 0;
  /** @param {string} secret */
  const keyFor = (secret) => {
    if (derived?.secret !== secret) derived = { secret, key: deriveKey(secret, scope) };
    return derived.key;
  };
  passphrase.addEventListener('input', () => {
    clearTimeout(deriveTimer);
    deriveTimer = setTimeout(() => { if (passphrase.value) keyFor(passphrase.value).catch(() => {}); }, 300);
  });
  if (!e2eeSupported()) {
    e2eeToggle.disabled = true;
    if (e2eeToggle.parentElement) e2eeToggle.parentElement.title = 'This browser cannot encrypt media frames';
  }

  const fillDevices = async () => {
    const { cameras, mics } = await media.devices();
    for (const [id, list] of /** @type {[string, MediaDeviceInfo[]][]} */ ([['camera-select', cameras], ['mic-select', mics]])) {
      $(id).replaceChildren(...list.map((d, i) => new Option(d.label || `Device ${i + 1}`, d.deviceId)));
    }
  };
  // No await before the form's handler is bound: a quick "Join" must not submit the bare form
  // (a reload); joining waits for the camera instead.
  const ready = (async () => {
    preview.srcObject = await media.open();
    await fillDevices();
  })();
  // The media-node connection is built here, with its offer, while the user looks at the preview
  // (MediaController.prepare). With E2EE ticked it gets its frame transforms now, from a worker
  // that drops every frame until the passphrase's key arrives at the click. Once the meeting
  // started, it is the meeting's.
  /** @type {Meeting | null} one per page: a password retry reuses it */
  let meeting = null;
  const calls = new MediaController(media);
  const warmUp = () => {
    if (!meeting) calls.prepare(e2eeToggle.checked ? new E2ee() : null);
  };
  ready.then(warmUp, () => {});
  e2eeToggle.addEventListener('change', () => { if (calls.warm) warmUp(); });
  const reopen = async () => {
    preview.srcObject = await media.open(/** @type {HTMLSelectElement} */ ($('camera-select')).value, /** @type {HTMLSelectElement} */ ($('mic-select')).value);
    if (calls.warm) warmUp();
  };
  $('camera-select').addEventListener('change', reopen);
  $('mic-select').addEventListener('change', reopen);

  /** @type {E2ee | null} */
  let e2ee = null;
  let e2eeSecret = '';
  /** @param {string} text */
  const prejoinError = (text) => {
    const el = $('prejoin-error');
    el.textContent = text;
    el.hidden = !text;
  };
  const start = async () => {
    const clickedAt = performance.now();
    prejoinError('');
    await ready;
    const secret = e2eeToggle.checked ? passphrase.value : '';
    if (!meeting && secret) {
      e2ee = calls.warm?.e2ee ?? new E2ee();
      e2ee.setKey(await keyFor(secret));
      e2eeSecret = secret;
    } else if (!meeting && e2eeToggle.checked) {
      // No passphrase: automatic keys per person (e2ee-keys.js), made once the edge welcomes us.
      e2ee = calls.warm?.e2ee ?? new E2ee();
      e2ee.automatic = true;
    } else if (meeting && (secret !== e2eeSecret || e2eeToggle.checked !== !!e2ee)) {
      // After a refused join (password), E2EE stays as it was when the meeting object was built.
      e2eeToggle.checked = !!e2ee;
      passphrase.value = e2eeSecret;
    }
    applyJoinChoices(media);
    const profile = { name: fields[0].value.trim(), email: fields[1].value.trim(), avatar: fields[2].value.trim() };
    if (remember.checked) localStorage.setItem('edgemeet.profile', JSON.stringify(profile));
    else localStorage.removeItem('edgemeet.profile');
    /** @type {Join} */
    const join = { profile };
    const token = params.get('jwt');
    if (token) join.token = token;
    const password = /** @type {HTMLInputElement} */ ($('room-password')).value;
    if (password) join.password = password;
    if (meeting) return meeting.retry(join, clickedAt);
    meeting = new Meeting(tenant, room, media, join, e2ee, calls);
    meeting.timings.join = clickedAt;
    meeting.start();
  };
  let starting = false; // a double click must not build two meetings
  $('prejoin-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (starting) return;
    starting = true;
    start().catch((e) => prejoinError(String(e?.message || e))).finally(() => { starting = false; });
  });
  if (params.has('autojoin')) start();
}

// ---- The meeting -----------------------------------------------------------------------------

/**
 * @typedef {object} Timings diagnostics, read by the tests
 * @property {number} join performance.now() at the click on "Join"
 * @property {number | null} firstRemoteFrame ms from it to the first remote video frame painted
 * @property {Record<string, number>} marks ms from it to the first time each step of joining happened
 */

/**
 * The meeting's UI: roster, chat, moderation, recording, and the tiles the MediaController's
 * streams go into. `window.edgemeet` is the current one (tests, console).
 */
class Meeting {
  /**
   * @param {string | null} tenant
   * @param {string} room
   * @param {LocalMedia} media
   * @param {Join} join
   * @param {E2ee | null} e2ee
   * @param {MediaController} calls the media connections (with the pre-join page's link, if built)
   */
  constructor(tenant, room, media, join, e2ee, calls) {
    this.room = room;
    /** @type {Timings} */
    this.timings = { join: performance.now(), firstRemoteFrame: null, marks: {} };
    this.media = media;
    this.join = join;
    this.signaling = new Signaling(`/api/rooms/${tenant ? `${encodeURIComponent(tenant)}/` : ''}${encodeURIComponent(room)}`);
    this.grid = new Grid();
    /** @type {Map<ParticipantId, Participant>} */
    this.people = new Map();
    /** @type {ParticipantId | null} */
    this.me = null;
    /** @type {string | null} the meeting this page is in (a resume keeps it) */
    this.meetingId = null;
    this.moderator = false;
    this.e2ee = e2ee;
    /** @type {SenderKeys | null} automatic E2EE's keys (no passphrase) */
    this.keys = e2ee?.automatic ? new SenderKeys(e2ee, (msg) => this.signaling.send(msg)) : null;
    this.keys?.on('peers', () => this.renderPeople());
    this.calls = calls;
    calls.begin({ send: (msg) => this.signaling.send(msg), e2ee });
    this.bindCalls();
    /** A dead media node reported early; a move to another node made without a gap. */
    this.failover = new NodeFailover(calls, (msg) => this.signaling.send(msg));
    /** @type {ParticipantId | null} the moderator who removed us */
    this.kickedBy = null;
    this.lobby = new LobbyView((msg) => this.signaling.send(msg));
    this.live = new LivestreamView((msg) => this.signaling.send(msg));
    this.chatBadge = new ChatBadge();
    this.devices = new DevicePicker(media, calls);
    this.layout = new Layout(() => this.me, (id) => displayName(this.people.get(id)));
    this.audioOnly = new AudioOnly(calls, this.grid, () => {
      for (const p of this.people.values()) this.grid.update(p, p.id === this.me, !!this.e2ee);
    });
    /** What this page shows of each pulled video, told to the node (and the room's `last_n`). */
    this.tileViews = new TileViews(() => (this.calls.mode === 'sfu' ? this.calls.sfu : null), this.layout, (capped) => {
      this.grid.lastNPaused = capped;
      for (const p of this.people.values()) this.grid.update(p, p.id === this.me, !!this.e2ee);
    });
    /** @type {string} why the edge ended our stay (`refused`, `meeting_ended`), shown at the close */
    this.endedWhy = '';
    this.recording = false;
    this.recordingBusy = false;
    /** @type {import('./recording.js').RecordingConfig} */
    this.recordingConfig = { available: false };
    /** @type {import('./recording.js').DropboxGrant | null} the recorder's grant, in memory only */
    this.dropbox = null;
    this.recordingConfigLoaded = recordingConfig().then((c) => { this.recordingConfig = c; this.renderRecord(); });
    /**
     * The recordings this page started: their status links (page memory only), read while open.
     * @type {{url: string, set: (text: string, state: string) => void, state: string | null, timer: number, round: number}[]}
     */
    this.deliveries = [];
    /** @type {any} */ (window).edgemeet = this; // for tests and debugging in the console
  }

  // The media connections, as the tests and the console knew them.
  get sfu() { return this.calls.sfu; }
  get link() { return this.calls.link; }
  get iceServers() { return this.calls.iceServers; }
  get mode() { return this.calls.mode; }

  /** Every RTCPeerConnection of this page, by what it connects to (for tests and diagnostics). */
  peerConnections() {
    return this.calls.peerConnections();
  }

  /** The controller's events, on the page. */
  bindCalls() {
    const calls = this.calls;
    calls.on('mode', ({ mode }) => {
      $('mode-badge').textContent = mode === 'p2p' ? 'Direct' : mode === 'sfu' ? 'Via server' : 'Alone';
      this.tileViews?.schedule();
    });
    calls.on('remote-stream', ({ participant, stream }) => this.attachRemote(participant, stream));
    calls.on('remote-gone', ({ participant }) => this.grid.detach(participant));
    calls.on('remotes-gone', () => {
      for (const id of this.people.keys()) if (id !== this.me) { this.grid.detach(id); this.grid.removeScreen(id); }
      // Pauses were the old node's (or connection's): a new one decides afresh.
      const paused = [...this.grid.pausedForBandwidth];
      this.grid.pausedForBandwidth.clear();
      for (const id of paused) { const p = this.people.get(id); if (p) this.grid.update(p, false, !!this.e2ee); }
    });
    calls.on('remote-screen', ({ participant, stream }) => this.grid.attachScreen(participant, stream, displayName(this.people.get(participant))));
    calls.on('remote-screen-gone', ({ participant }) => this.grid.removeScreen(participant));
    calls.on('connection', ({ state }) => { $('quality').textContent = state; });
    calls.on('mark', ({ step }) => this.mark(step));
    calls.on('problem', ({ text }) => {
      const el = $('media-problem');
      el.textContent = text || '';
      el.hidden = !text;
    });
  }

  /**
   * Join again after the edge refused (e.g. a password was needed).
   * @param {Join} join @param {number} clickedAt
   */
  retry(join, clickedAt) {
    this.join = join;
    this.timings = { join: clickedAt, firstRemoteFrame: null, marks: {} };
    this.signaling.connect(join);
  }

  start() {
    this.signaling.on('message', (msg) => this.onMessage(msg).catch((e) => console.error(e)));
    this.signaling.on('closed', (detail) => this.onClosed(detail));
    this.signaling.on('reconnecting', () => banner('Reconnecting…'));
    this.signaling.on('resume-failed', ({ inWindow }) => this.onResumeFailed(inWindow));
    this.signaling.connect(this.join);
    this.bindControls();
  }

  /** @param {ServerMessage} msg */
  async onMessage(msg) {
    this.mark(`msg:${msg.type}`);
    this.keys?.onMessage(msg);
    switch (msg.type) {
      case 'welcome': return this.onWelcome(msg);
      case 'waiting': showWaiting(msg.reason); show('waiting'); return;
      case 'lobby': return this.lobby.update(msg, this.moderator);
      case 'reaction': return showReaction(msg.from, msg.from === this.me ? 'You' : displayName(this.people.get(msg.from)), msg.reaction);
      case 'refused':
        this.endedWhy = msg.reason === 'moderator' ? 'A moderator did not let you in' : 'The meeting ended while you waited';
        return;
      case 'meeting_ended':
        this.endedWhy = `${msg.by === this.me ? 'You' : displayName(this.people.get(msg.by))} ended the meeting for everyone`;
        return;
      case 'error': return this.onError(msg);
      case 'participant_joined': case 'participant_updated':
        this.people.set(msg.participant.id, msg.participant);
        if (msg.participant.id === this.me && msg.participant.moderator !== this.moderator) this.setModerator(msg.participant.moderator);
        if (msg.type === 'participant_updated' && msg.participant.hand && msg.participant.id !== this.me) toast(`${displayName(msg.participant)} raised their hand`);
        this.grid.update(msg.participant, msg.participant.id === this.me, !!this.e2ee);
        // Stopped sharing: the presenter view ends even before their media says so.
        if (msg.participant.media && !msg.participant.media.screen) this.grid.removeScreen(msg.participant.id);
        if (msg.type === 'participant_joined') toast(`${displayName(msg.participant)} joined`);
        this.renderRecord();
        return this.renderPeople();
      case 'participant_left':
        this.calls.left(msg.id);
        toast(`${displayName(this.people.get(msg.id))} ${msg.reason === 'kicked' ? 'was removed' : 'left'}`);
        this.people.delete(msg.id);
        this.grid.remove(msg.id);
        this.grid.removeScreen(msg.id);
        this.renderRecord();
        return this.renderPeople();
      case 'chat':
        this.chatBadge.message(msg.from === this.me);
        return addChat(msg.from === this.me ? 'You' : displayName(this.people.get(msg.from)), msg.text, !!msg.to, msg.at);
      case 'muted':
        if (msg.kind === 'audio') this.setMic(false); else this.setCam(false);
        return toast(`${displayName(this.people.get(msg.by))} muted your ${msg.kind === 'audio' ? 'microphone' : 'camera'}`);
      case 'kicked':
        this.kickedBy = msg.by;
        return;
      case 'room_locked':
        $('lock-badge').hidden = !msg.locked;
        return toast(msg.locked ? 'The meeting is now locked' : 'The meeting is unlocked');
      case 'recording':
        if (msg.restarting) return toast("The meeting's video stopped for a moment; it goes on in a further file");
        this.recording = msg.active;
        $('rec-badge').hidden = !msg.active;
        this.renderRecord();
        // Stopped: delivery starts in a moment; read the links soon rather than at the next round.
        if (!msg.active) for (const d of this.deliveries) if (d.state === 'recording') this.readDelivery(d, 1000);
        return toast(msg.active ? 'This meeting is being recorded' : 'Recording stopped');
      case 'recording_status_link': return this.onStatusLink(msg);
      case 'livestream': return this.live.set(msg.active, true, !!msg.restarting);
      case 'password_guessing':
        // Sent to moderators only: someone is trying passwords on this meeting.
        return toast(`Someone is guessing this meeting's password: ${msg.wrong_guesses} wrong tries from ${msg.addresses} address${msg.addresses === 1 ? '' : 'es'} in the last hour${msg.limited ? '; newcomers may have to wait' : ''}.`);
      case 'node_moved': return this.failover.moved(msg.reason);
      case 'media_mode': this.failover.nodeFound(); return this.calls.apply(msg.media);
      case 'tracks': return this.calls.tracks(msg);
      case 'signal': return this.calls.signal(msg);
      case 'dominant_speaker': this.layout.speakerChanged(msg.id); this.tileViews.spoken(msg.id); return this.grid.speaking(msg.id);
      case 'video_paused': {
        // The node paused (or resumed) this participant's camera for us: our downlink is short.
        if (msg.track !== 'video') return;
        if (msg.paused) this.grid.pausedForBandwidth.add(msg.id); else this.grid.pausedForBandwidth.delete(msg.id);
        const p = this.people.get(msg.id);
        if (p) this.grid.update(p, p.id === this.me, !!this.e2ee);
        return;
      }
      // No viewer needs our camera's other layers now: stop encoding them (saves uplink and CPU).
      case 'send_layers': return this.calls.sfu?.sendLayers(msg.track, msg.rids);
      case 'speaker_stats':
        $('stats').replaceChildren(...msg.stats.map((s) => {
          const li = document.createElement('li');
          li.textContent = `${displayName(this.people.get(s.id))}: ${Math.round(s.speaking_ms / 1000)} s`;
          return li;
        }));
        return;
      default: return;
    }
  }

  /** @param {import('./protocol.js').WelcomeMessage} msg */
  onWelcome(msg) {
    // Back on a new socket as the same participant (resume): the connections and tiles stay.
    const resumed = this.me === msg.you && this.meetingId === msg.meeting_id;
    if (resumed || !$('conn-banner').textContent.startsWith('The server')) banner('');
    this.meetingId = msg.meeting_id;
    this.me = msg.you;
    this.moderator = msg.moderator;
    this.recording = msg.recording;
    this.people = new Map(msg.participants.map((p) => [p.id, p]));
    // Media first: the browser sets up connections in the background while this renders the
    // meeting (remote tiles attach later, when tracks arrive).
    const media = this.calls.welcome(msg);
    show('meeting');
    $('meeting-name').textContent = this.room;
    $('lock-badge').hidden = !msg.locked;
    $('rec-badge').hidden = !msg.recording;
    this.live.set(!!msg.livestream);
    $('e2ee-badge').hidden = !this.e2ee;
    $('moderator-tools').hidden = !this.moderator;
    this.lobby.enabled = !!msg.lobby;
    this.tileViews.setLastN(msg.last_n);
    this.lobby.render(this.moderator);
    const present = new Set(msg.participants.map((p) => p.id));
    for (const id of [...this.grid.tiles.keys()]) if (!resumed || !present.has(id)) this.grid.remove(id);
    for (const p of msg.participants) this.grid.update(p, p.id === this.me, !!this.e2ee);
    if (!resumed) this.grid.attach(msg.you, this.media.stream, true);
    // What the pre-join page chose (microphone or camera off) shows on the toolbar.
    $('toggle-mic').setAttribute('aria-pressed', String(this.media.audioEnabled));
    $('toggle-cam').setAttribute('aria-pressed', String(this.media.videoEnabled));
    this.renderPeople();
    this.renderRecord();
    this.sendState();
    return media;
  }

  /** Our role changed (granted, taken back, handed over). @param {boolean} on */
  setModerator(on) {
    this.moderator = on;
    $('moderator-tools').hidden = !on;
    this.lobby.render(on);
    this.renderRecord();
    toast(on ? 'You are now a moderator' : 'You are no longer a moderator');
  }

  /** The Record button: moderators only, where the server records; disabled while E2EE is on. */
  renderRecord() {
    const button = /** @type {HTMLButtonElement} */ ($('record'));
    const note = $('record-note');
    const cfg = this.recordingConfig;
    button.hidden = !(this.moderator && cfg.available && this.me);
    // Which files (a file per person, one composed video, both) is chosen before a recording
    // starts; the operator's default (`recording.files`) is chosen at first.
    const files = /** @type {HTMLSelectElement} */ ($('record-files'));
    if (cfg.files && !files.dataset.touched) files.value = cfg.files;
    $('record-files-choice').hidden = button.hidden || this.recording;
    button.textContent = this.recording ? 'Stop recording' : 'Record';
    button.setAttribute('aria-pressed', String(this.recording));
    const e2ee = !!this.e2ee || [...this.people.values()].some((p) => p.media?.e2ee);
    let why = '';
    if (!this.recording && e2ee) why = 'Recording is off while end-to-end encryption is on: encrypted media cannot be recorded.';
    this.live.render({ moderator: !!(this.moderator && this.me), e2ee });
    button.disabled = !!why || !!this.recordingBusy;
    button.title = why || (this.recording ? 'Stop the recording' : cfg.destination === 'dropbox'
      ? 'Record this meeting to your Dropbox' : 'Record this meeting');
    note.textContent = why;
    note.hidden = button.hidden || !why;
  }

  /**
   * The edge tells the recorder (and no one else) where its recording's delivery status is: show
   * the link and keep reading it while the page is open.
   * @param {import('./recording.js').RecordingStatusLinkMessage} msg
   */
  async onStatusLink(msg) {
    await this.recordingConfigLoaded;
    const url = statusLink(this.recordingConfig, msg.token);
    if (!url) return;
    const d = { url, set: deliveryItem(url, Date.now()), state: null, timer: 0, round: 0 };
    this.deliveries.push(d);
    this.readDelivery(d, 0);
  }

  /**
   * Reads a delivery's status after `delay` ms, shows it, and reads again until it settles: every
   * 5 s while it records or uploads, every 30 s while it waits for a retry. A newer call replaces
   * a pending one.
   * @param {{url: string, set: (text: string, state: string) => void, state: string | null, timer: number, round: number}} d
   * @param {number} delay
   */
  readDelivery(d, delay) {
    clearTimeout(d.timer);
    const round = ++d.round;
    d.timer = setTimeout(async () => {
      const s = await readDeliveryStatus(d.url);
      if (round !== d.round) return;
      if (s === 'gone') {
        d.state = 'gone';
        return d.set('No longer known here: recordings and their status are deleted within 24 hours.', 'gone');
      }
      if (s) {
        const text = describeDelivery(s, this.recordingConfig.destination);
        d.set(text, s.state);
        // The recorder hears of a delivery in trouble even with the list folded away.
        if (s.state !== d.state && (s.state === 'failed' || s.state === 'retrying')) toast(text);
        d.state = s.state;
        if (deliverySettled(s)) return;
      }
      const busy = !s || ['recording', 'queued', 'uploading'].includes(s.state);
      this.readDelivery(d, busy ? 5000 : 30000);
    }, delay);
  }

  async toggleRecording() {
    if (this.recording) {
      this.signaling.send({ type: 'stop_recording' });
      return;
    }
    const cfg = this.recordingConfig;
    /** @type {any} */
    const msg = { type: 'start_recording' };
    msg.files = /** @type {HTMLSelectElement} */ ($('record-files')).value;
    if (cfg.destination === 'dropbox' && cfg.dropbox) {
      if (!this.dropbox) {
        this.recordingBusy = true;
        this.renderRecord();
        toast('Connecting your Dropbox...');
        try {
          this.dropbox = await connectDropbox(cfg.dropbox);
        } catch (e) {
          toast(e instanceof Error ? e.message : String(e));
          return;
        } finally {
          this.recordingBusy = false;
          this.renderRecord();
        }
      }
      msg.dropbox = this.dropbox;
    }
    this.signaling.send(msg);
  }

  /** @param {ErrorMessage} msg */
  onError(msg) {
    /** @type {Partial<Record<import('./protocol.js').ErrorCode, string>>} */
    const prejoinErrors = { password_required: 'This meeting is locked: enter the password.', password_wrong: 'Wrong password.', password_rate_limited: 'Too many wrong passwords. Wait a minute.' };
    if (msg.request === 'join' || msg.code in prejoinErrors || msg.code.startsWith('token_') || msg.code === 'room_full') {
      show('prejoin');
      this.signaling.closedOnPurpose = true;
      this.signaling.ws?.close(1000);
      $('password-box').hidden = !msg.code.startsWith('password');
      const el = $('prejoin-error');
      el.textContent = prejoinErrors[msg.code] || msg.message;
      el.hidden = false;
      return;
    }
    if (msg.code === 'no_media_node') return this.failover.waitingForNode();
    toast(msg.message);
  }

  /**
   * The edge no longer knows this participant. Within the resume window the meeting itself is
   * gone (the edge restarted: rooms in its memory start over): join the new one, and say so.
   * After the window we were away too long: offer to rejoin.
   * @param {boolean} inWindow
   */
  onResumeFailed(inWindow) {
    this.calls.disconnected(true);
    this.me = null;
    if (inWindow) {
      banner('The server restarted: this is a new meeting.');
      this.signaling.send({ type: 'join', ...this.join });
      return;
    }
    banner('');
    this.signaling.stop();
    $('ended-title').textContent = 'Could not reconnect';
    /** @type {HTMLAnchorElement} */ ($('rejoin')).href = location.pathname + location.search;
    show('ended');
    for (const t of this.media.stream.getTracks()) t.stop();
  }

  /** @param {{code: number, final: boolean}} closed */
  onClosed({ code, final }) {
    this.calls.disconnected(final);
    if (!final) return;
    if (this.endedWhy && (code === 4004 || code === 4005)) {
      $('ended-title').textContent = this.endedWhy;
    } else if (code === 4001) {
      $('ended-title').textContent = 'A moderator removed you from the meeting';
    } else if (code === 1008) {
      $('ended-title').textContent = 'The connection was closed';
    }
    if (!$('prejoin').hidden) return;
    /** @type {HTMLAnchorElement} */ ($('rejoin')).href = location.pathname + location.search;
    show('ended');
    for (const t of this.media.stream.getTracks()) t.stop();
  }

  /** Note when a step of joining first happened (ms after the click), to see where join time goes. */
  /** @param {string} step */
  mark(step) {
    this.timings.marks[step] ??= Math.round(performance.now() - this.timings.join);
  }

  /**
   * Show a remote stream; the first frame painted after joining is timed.
   * @param {ParticipantId} id @param {MediaStream} stream
   */
  attachRemote(id, stream) {
    this.mark('remote-track');
    const video = this.grid.attach(id, stream, false);
    if (this.timings.firstRemoteFrame !== null || !video.requestVideoFrameCallback) return;
    const t = this.timings;
    video.requestVideoFrameCallback(() => {
      if (t === this.timings && t.firstRemoteFrame === null) t.firstRemoteFrame = Math.round(performance.now() - t.join);
    });
  }

  renderPeople() {
    this.layout.names();
    const hands = handOrder(this.people.values());
    renderHands(hands);
    $('raise-hand').setAttribute('aria-pressed', String(!!(this.me && hands.has(this.me))));
    const list = $('people');
    const to = /** @type {HTMLSelectElement} */ ($('chat-to'));
    const chosen = to.value;
    list.replaceChildren();
    to.replaceChildren(new Option('Everyone', ''));
    const everyone = [...this.people.values()].every((p) => p.moderator);
    for (const p of this.people.values()) {
      const li = document.createElement('li');
      li.dataset.participant = p.id;
      const name = document.createElement('span');
      const place = hands.get(p.id);
      name.textContent = `${displayName(p)}${p.id === this.me ? ' (you)' : ''}${p.moderator ? ' · moderator' : ''}${p.media?.e2ee ? ' · E2EE' : ''}${place ? ` · ${handText(place)}` : ''}`;
      li.append(name);
      if (this.moderator && p.id !== this.me) {
        /** @type {[string, ClientMessage][]} */
        const actions = [['Mute', { type: 'mute', target: p.id, kind: 'audio' }], ['Kick', { type: 'kick', target: p.id }]];
        // Roles can change where not everyone moderates.
        if (!everyone) actions.push(p.moderator ? ['Remove moderator', { type: 'set_moderator', target: p.id, moderator: false }] : ['Make moderator', { type: 'set_moderator', target: p.id, moderator: true }]);
        for (const [label, msg] of actions) {
          const b = document.createElement('button');
          b.type = 'button';
          b.textContent = label;
          b.setAttribute('aria-label', `${label} ${displayName(p)}`);
          b.addEventListener('click', () => this.signaling.send(msg));
          li.append(b);
        }
      }
      list.append(li);
      if (p.id !== this.me) to.append(new Option(displayName(p), p.id));
    }
    to.value = [...to.options].some((o) => o.value === chosen) ? chosen : '';
    $('e2ee-verify').hidden = !this.keys;
    if (this.keys) renderVerification(this.keys, $('e2ee-peers'), (id) => displayName(this.people.get(id)));
  }

  sendState() {
    this.signaling.send({ type: 'media_state', ...this.media.state(!!this.e2ee) });
  }

  /** @param {boolean} on */
  setMic(on) {
    this.media.setAudio(on);
    $('toggle-mic').setAttribute('aria-pressed', String(on));
    this.sendState();
  }

  /** @param {boolean} on */
  setCam(on) {
    this.media.setVideo(on);
    $('toggle-cam').setAttribute('aria-pressed', String(on));
    this.sendState();
  }

  /** @param {string} id the panel @param {string} button its toolbar button */
  togglePanel(id, button) {
    const panel = $(id);
    panel.hidden = !panel.hidden;
    $(button).setAttribute('aria-pressed', String(!panel.hidden));
    if (!panel.hidden && id === 'chat-panel') {
      this.chatBadge.opened();
      $('chat-input').focus();
    }
  }

  bindControls() {
    $('toggle-mic').addEventListener('click', () => this.setMic(!this.media.audioEnabled));
    $('toggle-cam').addEventListener('click', () => this.setCam(!this.media.videoEnabled));
    $('toggle-chat').addEventListener('click', () => this.togglePanel('chat-panel', 'toggle-chat'));
    $('toggle-people').addEventListener('click', () => this.togglePanel('people-panel', 'toggle-people'));
    // The room hears of a share (media_state) before its media, and of its end before the
    // media stops: a viewer's presenter view follows either.
    const shareShown = () => {
      $('toggle-screen').setAttribute('aria-pressed', String(!!this.media.screenTrack));
      this.sendState();
    };
    $('toggle-screen').addEventListener('click', async () => {
      if (this.media.screenTrack) {
        this.media.stopScreen();
        shareShown();
        await this.calls.stopScreen();
        return;
      }
      /** @type {MediaStreamTrack | null} */
      let track = null;
      try {
        track = await this.media.startScreen();
      } catch (err) {
        toast(screenShareProblem(err));
      }
      if (!track) return;
      track.addEventListener('ended', async () => {
        // The browser's own "Stop sharing".
        if (this.media.screenTrack !== track) return;
        this.media.stopScreen();
        shareShown();
        await this.calls.stopScreen();
      });
      shareShown();
      await this.calls.shareScreen(track);
    });
    $('leave').addEventListener('click', () => {
      this.signaling.leave();
      this.calls.close();
      /** @type {HTMLAnchorElement} */ ($('rejoin')).href = location.pathname + location.search;
      show('ended');
      for (const t of this.media.stream.getTracks()) t.stop();
    });
    $('chat-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = /** @type {HTMLInputElement} */ ($('chat-input'));
      const text = input.value.trim();
      if (!text) return;
      const to = /** @type {HTMLSelectElement} */ ($('chat-to')).value;
      this.signaling.send(to ? { type: 'chat', text, to } : { type: 'chat', text });
      input.value = '';
    });
    $('mute-all').addEventListener('click', () => this.signaling.send({ type: 'mute_all', kind: 'audio' }));
    $('record').addEventListener('click', () => this.toggleRecording().catch((e) => console.error(e)));
    // A choice made by the person stays (the operator's default no longer overrides it).
    $('record-files').addEventListener('change', (e) => { /** @type {HTMLElement} */ (e.target).dataset.touched = '1'; });
    $('lock-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const pw = /** @type {HTMLInputElement} */ ($('lock-password'));
      if (pw.value) this.signaling.send({ type: 'set_password', password: pw.value });
      pw.value = '';
    });
    $('unlock').addEventListener('click', () => this.signaling.send({ type: 'set_password', password: null }));
    $('end-all').addEventListener('click', () => {
      if (confirm('End the meeting for everyone?')) this.signaling.send({ type: 'end_meeting' });
    });
    $('stats-button').addEventListener('click', () => this.signaling.send({ type: 'speaker_stats' }));
    $('copy-invite').addEventListener('click', () => { copyInviteLink(); });
    const raiseHand = () => this.signaling.send({ type: 'raise_hand', raised: $('raise-hand').getAttribute('aria-pressed') !== 'true' });
    $('raise-hand').addEventListener('click', raiseHand);
    bindReactions((reaction) => this.signaling.send({ type: 'react', reaction }));
    $('rename-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = /** @type {HTMLInputElement} */ ($('rename-input')).value.trim();
      // The other profile fields stay as they were (update_profile replaces the whole profile).
      const me = this.me ? this.people.get(this.me) : undefined;
      /** @type {import('./protocol.js').Profile} */
      const profile = { ...this.join.profile, ...(me?.email ? { email: me.email } : {}), ...(me?.avatar ? { avatar: me.avatar } : {}), name };
      this.join.profile = profile; // a reconnect joins with the new name
      this.signaling.send({ type: 'update_profile', profile });
    });
    bindShortcutsHelp();
    this.devices.bind();
    this.layout.bind();
    this.audioOnly.bind();
    this.tileViews.bind();
    document.addEventListener('keydown', (ev) => {
      const target = /** @type {HTMLElement} */ (ev.target);
      if (ev.ctrlKey || ev.metaKey || ev.altKey || ['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
      if ($('meeting').hidden) return;
      const key = ev.key.toLowerCase();
      if (key === 'm') this.setMic(!this.media.audioEnabled);
      else if (key === 'v') this.setCam(!this.media.videoEnabled);
      else if (key === 'c') { ev.preventDefault(); this.togglePanel('chat-panel', 'toggle-chat'); }
      else if (key === 'h') raiseHand();
    });
  }
}
