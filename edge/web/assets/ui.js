// DOM helpers: screens, video tiles, chat log, participant list. Text always goes in as text.

export const $ = (id) => /** @type {HTMLElement} */ (document.getElementById(id));

export function show(screen) {
  for (const el of document.querySelectorAll('.screen')) el.hidden = el.id !== screen;
}

let toastTimer = 0;
export function toast(text) {
  const el = $('toast');
  el.textContent = text;
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.hidden = true; }, 4000);
}

export function displayName(p) {
  return p?.name || `Guest ${String(p?.id || '').slice(0, 4)}`;
}

/** A video tile per participant. */
export class Grid {
  constructor() {
    /** @type {Map<string, HTMLElement>} */
    this.tiles = new Map();
  }

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
      tile.append(video, label);
      $('grid').append(tile);
      this.tiles.set(id, tile);
    }
    return tile;
  }

  update(p, isMe) {
    const tile = this.tile(p.id);
    const label = /** @type {HTMLElement} */ (tile.querySelector('.label'));
    label.textContent = `${displayName(p)}${isMe ? ' (you)' : ''}${p.moderator ? ' ★' : ''}${p.media?.audio === false ? ' 🔇' : ''}${p.media?.e2ee ? ' 🔒' : ''}`;
    tile.setAttribute('aria-label', `${displayName(p)}${isMe ? ', you' : ''}`);
    let img = tile.querySelector('img.avatar');
    const wantAvatar = p.avatar && p.media && !p.media.video && !p.media.screen;
    if (wantAvatar && !img) {
      img = document.createElement('img');
      img.className = 'avatar';
      img.alt = '';
      img.referrerPolicy = 'no-referrer';
      tile.append(img);
    }
    if (img) {
      if (wantAvatar) /** @type {HTMLImageElement} */ (img).src = p.avatar; else img.remove();
    }
  }

  attach(id, stream, muted) {
    const video = /** @type {HTMLVideoElement} */ (this.tile(id).querySelector('video'));
    if (video.srcObject !== stream) video.srcObject = stream;
    video.muted = !!muted;
    video.play().catch(() => {});
    return video;
  }

  detach(id) {
    const video = this.tiles.get(id)?.querySelector('video');
    if (video) /** @type {HTMLVideoElement} */ (video).srcObject = null;
  }

  remove(id) {
    this.tiles.get(id)?.remove();
    this.tiles.delete(id);
  }

  speaking(id) {
    for (const [pid, tile] of this.tiles) tile.classList.toggle('speaking', pid === id);
  }
}

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
