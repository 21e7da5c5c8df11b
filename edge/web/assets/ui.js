// DOM helpers: screens, video tiles, chat log, participant list. Text always goes in as text.

import { screenTileId } from './screen.js';

/** @typedef {import('./protocol.js').Participant} Participant */

/** The element with this id (the page has every id this code asks for). @param {string} id */
export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

/** Show one screen (landing, prejoin, waiting, meeting, ended), hide the others. @param {string} screen */
export function show(screen) {
  for (const el of document.querySelectorAll('.screen')) /** @type {HTMLElement} */ (el).hidden = el.id !== screen;
}

let toastTimer = 0;

/**
 * The one line that says how the connection to the meeting is ("Reconnecting…"); '' hides it.
 * @param {string} text
 */
export function banner(text) {
  const el = $('conn-banner');
  el.textContent = text;
  el.hidden = !text;
}

/** @param {string} text */
export function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

/** @param {{id?: string, name?: string} | undefined} p a participant (undefined: not known here) */
export function displayName(p) {
  return p?.name || `Guest ${String(p?.id || '').slice(0, 4)}`;
}

/** Up to two initials of a display name ("Ada Lovelace" -> "AL"). @param {string} name */
export function initialsOf(name) {
  return name.split(/\s+/).filter(Boolean).slice(0, 2).map((w) => [...w][0].toUpperCase()).join('');
}

/** A remote tile whose video painted nothing for this long shows "Waiting for video". */
const VIDEO_STALL_MS = 1500;

/** A video tile per participant. */
export class Grid {
  constructor() {
    /** @type {Map<string, HTMLElement>} */
    this.tiles = new Map();
    /** @type {Map<string, number>} when each remote tile last painted a frame (performance.now()) */
    this.lastFrame = new Map();
    /** @type {Set<string>} remote participants whose camera is on: their tile expects frames */
    this.expectVideo = new Set();
    /** audio-only mode (audio-only.js): remote tiles show the avatar or initials, no video */
    this.audioOnly = false;
    /** @type {Set<string>} participants whose video the node paused for us: our downlink does not carry it now */
    this.pausedForBandwidth = new Set();
    /** @type {Set<string>} participants whose camera the room's `last_n` leaves without video here (tile-views.js) */
    this.lastNPaused = new Set();
    // One check for all tiles: a frozen or black frame is never shown as if it were live.
    setInterval(() => this.checkVideo(), 500);
  }

  /** @param {string} id */
  tile(id) {
    let tile = this.tiles.get(id);
    if (!tile) {
      tile = document.createElement('div');
      tile.className = 'tile';
      tile.dataset.participant = id;
      const video = document.createElement('video');
      video.autoplay = true;
      video.playsInline = true;
      const label = document.createElement('span');
      label.className = 'label';
      // Over the video, not instead of it: the element keeps painting (and reporting) frames.
      const status = document.createElement('div');
      status.className = 'status';
      status.setAttribute('role', 'status');
      status.hidden = true;
      tile.append(video, status, label);
      $('grid').append(tile);
      this.tiles.set(id, tile);
    }
    return tile;
  }

  /** @param {Participant} p @param {boolean} isMe @param {boolean} [myE2ee] whether this page encrypts */
  update(p, isMe, myE2ee = false) {
    const tile = this.tile(p.id);
    const label = /** @type {HTMLElement} */ (tile.querySelector('.label'));
    // Media only flows between pages on the same side of E2EE: say why a tile stays dark.
    const theirs = !!p.media?.e2ee;
    const mismatch = !isMe && p.media && theirs !== myE2ee
      ? (theirs ? ' (encrypted: join with the passphrase to see them)' : ' (not encrypted: hidden while you use E2EE)') : '';
    // Words, not emoji: systems without an emoji font show empty boxes.
    const audioOnly = this.audioOnly && !isMe;
    // The node stopped forwarding their video to us (our link does not carry it): the avatar,
    // not a frozen frame.
    const bandwidth = !isMe && !audioOnly && !!p.media?.video && this.pausedForBandwidth.has(p.id);
    // Beyond the room's `last_n`: the node sends it no video; the avatar, not a frozen frame.
    const capped = !isMe && !audioOnly && !bandwidth && !!p.media?.video && this.lastNPaused.has(p.id);
    const videoOff = audioOnly || bandwidth || capped;
    label.textContent = `${displayName(p)}${isMe ? ' (you)' : ''}${p.moderator ? ' ★' : ''}${p.media?.audio === false ? ' · mic off' : ''}${theirs ? ' · E2EE' : ''}${p.away ? ' · reconnecting…' : ''}${audioOnly ? ' · video off (audio-only mode)' : ''}${bandwidth ? ' · video paused (bandwidth)' : ''}${capped ? ' · video paused' : ''}${mismatch}`;
    tile.classList.toggle('video-off', videoOff);
    tile.classList.toggle('bandwidth-paused', bandwidth);
    tile.classList.toggle('last-n-paused', capped);
    tile.setAttribute('aria-label', `${displayName(p)}${isMe ? ', you' : ''}${theirs ? ', end-to-end encrypted' : ''}`);
    // A decoder fed ciphertext paints and plays noise: hide and mute instead.
    tile.classList.toggle('undecodable', !!mismatch);
    if (!isMe && p.media?.video && !mismatch && !videoOff) this.expectVideo.add(p.id); else this.expectVideo.delete(p.id);
    if (!isMe) /** @type {HTMLVideoElement} */ (tile.querySelector('video')).muted = !!mismatch;
    let img = /** @type {HTMLImageElement | null} */ (tile.querySelector('img.avatar'));
    const noPicture = videoOff || (p.media && !p.media.video && !p.media.screen);
    const wantAvatar = p.avatar && noPicture;
    if (wantAvatar && !img) {
      img = document.createElement('img');
      img.className = 'avatar';
      img.alt = '';
      img.referrerPolicy = 'no-referrer';
      tile.append(img);
    }
    if (img) {
      if (wantAvatar && p.avatar) img.src = p.avatar; else img.remove();
    }
    // No picture (avatars are shown only from hosts the operator allows): initials instead.
    let initials = /** @type {HTMLElement | null} */ (tile.querySelector('.initials'));
    const wantInitials = !wantAvatar && noPicture;
    if (wantInitials && !initials) {
      initials = document.createElement('span');
      initials.className = 'initials';
      initials.setAttribute('aria-hidden', 'true');
      tile.append(initials);
    }
    if (initials) {
      if (wantInitials) initials.textContent = initialsOf(displayName(p)); else initials.remove();
    }
  }

  /** @param {string} id @param {MediaStream} stream @param {boolean} muted @returns {HTMLVideoElement} */
  attach(id, stream, muted) {
    const video = /** @type {HTMLVideoElement} */ (this.tile(id).querySelector('video'));
    if (video.srcObject !== stream) {
      video.srcObject = stream;
      if (!muted) this.watchFrames(id, video);
    }
    video.muted = !!muted || this.tile(id).classList.contains('undecodable');
    video.play().catch(() => {});
    return video;
  }

  /**
   * Note each frame `video` paints for participant `id`, while it shows the same stream.
   * @param {string} id
   * @param {HTMLVideoElement} video
   */
  watchFrames(id, video) {
    if (!video.requestVideoFrameCallback) return;
    const stream = video.srcObject;
    const onFrame = () => {
      if (video.srcObject !== stream || !this.tiles.has(id)) return;
      this.lastFrame.set(id, performance.now());
      video.requestVideoFrameCallback(onFrame);
    };
    video.requestVideoFrameCallback(onFrame);
  }

  /** Marks remote tiles whose camera is on but whose video paints nothing as waiting for it. */
  checkVideo() {
    // A hidden page paints nothing: no verdict until it is shown again.
    if (document.hidden) return;
    const now = performance.now();
    for (const [id, tile] of this.tiles) {
      const last = this.lastFrame.get(id);
      const waiting = this.expectVideo.has(id) && (last === undefined || now - last > VIDEO_STALL_MS);
      if (tile.classList.contains('waiting') === waiting) continue;
      tile.classList.toggle('waiting', waiting);
      const status = /** @type {HTMLElement} */ (tile.querySelector('.status'));
      status.hidden = !waiting;
      status.textContent = waiting ? 'Waiting for video…' : '';
    }
  }

  /**
   * Show a participant's shared screen in a tile of its own (layout.js makes it the large one).
   * @param {string} id the participant @param {MediaStream} stream @param {string} name theirs
   */
  attachScreen(id, stream, name) {
    const key = screenTileId(id);
    const tile = this.tile(key);
    tile.classList.add('screen');
    /** @type {HTMLElement} */ (tile.querySelector('.label')).textContent = `${name}'s screen`;
    tile.setAttribute('aria-label', `${name}'s shared screen`);
    this.attach(key, stream, true);
  }

  /** @param {string} id the participant whose screen tile ends (they stopped sharing, or left) */
  removeScreen(id) {
    this.remove(screenTileId(id));
  }

  /** @param {string} id */
  detach(id) {
    const video = this.tiles.get(id)?.querySelector('video');
    if (video) /** @type {HTMLVideoElement} */ (video).srcObject = null;
  }

  /** @param {string} id */
  remove(id) {
    this.tiles.get(id)?.remove();
    this.tiles.delete(id);
    this.lastFrame.delete(id);
    this.expectVideo.delete(id);
    this.pausedForBandwidth.delete(id);
    this.lastNPaused.delete(id);
  }

  /** @param {string} id */
  speaking(id) {
    for (const [pid, tile] of this.tiles) tile.classList.toggle('speaking', pid === id);
  }
}

/** @param {string} fromName @param {string} text @param {boolean} isPrivate @param {number} at ms */
export function addChat(fromName, text, isPrivate, at) {
  const li = document.createElement('li');
  const from = document.createElement('div');
  from.className = 'from';
  from.textContent = `${fromName}${isPrivate ? ' (private)' : ''} · ${new Date(at).toLocaleTimeString()}`;
  const body = document.createElement('div');
  body.textContent = text;
  li.append(from, body);
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'end' });
}

/**
 * A recording's entry under "Your recordings": its status in words, its link (selectable, opens
 * the status page) and a copy button. Returns a setter for the status.
 * @param {string} url @param {number} startedAt ms
 */
export function deliveryItem(url, startedAt) {
  const li = document.createElement('li');
  li.className = 'delivery';
  const title = document.createElement('div');
  title.textContent = `Recording started ${new Date(startedAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })}`;
  const status = document.createElement('p');
  status.className = 'delivery-status';
  status.setAttribute('role', 'status');
  status.textContent = 'Checking delivery...';
  const row = document.createElement('div');
  row.className = 'row';
  const field = document.createElement('input');
  field.className = 'delivery-url';
  field.readOnly = true;
  field.value = url;
  field.setAttribute('aria-label', 'Delivery status link');
  field.addEventListener('focus', () => field.select());
  const copy = document.createElement('button');
  copy.type = 'button';
  copy.className = 'delivery-copy';
  copy.textContent = 'Copy link';
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(url);
      copy.textContent = 'Copied';
    } catch {
      field.focus();
      copy.textContent = 'Press Ctrl+C';
    }
    setTimeout(() => { copy.textContent = 'Copy link'; }, 2000);
  });
  const open = document.createElement('a');
  open.className = 'delivery-link';
  open.href = url;
  open.target = '_blank';
  open.rel = 'noopener noreferrer';
  open.textContent = 'Open';
  row.append(field, copy, open);
  li.append(title, status, row);
  $('recording-links').append(li);
  $('recordings').hidden = false;
  /** @param {string} text @param {string} state */
  return (text, state) => {
    status.textContent = text;
    li.dataset.state = state;
  };
}
