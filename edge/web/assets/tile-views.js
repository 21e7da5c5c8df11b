// What this page shows of each video it pulls from the media node, told to the node
// (`PUT /v1/sessions/{id}/tracks/view`, docs/media-node-api.md), which sends a tile that is not
// shown no video and picks the layer whose height fits the tile (issue 18). Not shown: a tile
// scrolled out of the grid (IntersectionObserver), a hidden tab (`document.visibilityState`), a
// tile the page shows as an avatar (`last_n`, below). Large: the featured tile (pinned, the
// speaker in speaker view, a shared screen). Changes are gathered for a moment, so a resize storm
// or a layout change is one call, and only what changed goes.
//
// `last_n` (the operator's cap on videos per viewer, from the edge's `welcome`): the most recent
// speakers get video (the featured tile and shared screens always do), the others show their
// avatar and "video paused"; the node gets them as not shown, so it sends them nothing.
import { $ } from './ui.js';
import { screenTileId } from './screen.js';

/** Changes gathered this long before the node hears of them. */
const SETTLE_MS = 150;
/** Looked at again this often anyway: a new pull (its mid known) gets its view. */
const RECHECK_MS = 2000;

/**
 * @typedef {{shown: boolean, height?: number, pinned: boolean}} TileView
 * @typedef {import('./sfu.js').SfuLink} SfuLink
 * @typedef {import('./layout.js').Layout} Layout
 */

export class TileViews {
  /**
   * @param {() => SfuLink | null} sfu the link to the room's node, if any
   * @param {Layout} layout which tile is featured, who spoke last
   * @param {(capped: Set<string>) => void} onCapped the participants whose camera tile `last_n`
   *   turns to an avatar changed (app.js redraws their tiles)
   */
  constructor(sfu, layout, onCapped) {
    this.sfu = sfu;
    this.layout = layout;
    this.onCapped = onCapped;
    /** @type {number | null} the operator's cap on videos per viewer (null: none) */
    this.lastN = null;
    /** @type {string[]} participants by when they last spoke, latest first */
    this.spoke = [];
    /** @type {Set<string>} camera tiles `last_n` shows as avatars */
    this.capped = new Set();
    /** @type {Set<Element>} tiles in view (inside the grid's scroll area and the window) */
    this.visible = new Set();
    this.timer = 0;
    this.intersections = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) this.visible.add(e.target); else this.visible.delete(e.target);
      this.schedule();
    });
    this.sizes = new ResizeObserver(() => this.schedule());
  }

  bind() {
    const grid = $('grid');
    const watch = () => {
      for (const tile of grid.querySelectorAll(':scope > .tile')) {
        this.intersections.observe(tile);
        this.sizes.observe(tile);
      }
      this.schedule();
    };
    // Tiles come and go with the roster; their classes (featured) change with the layout.
    new MutationObserver(watch).observe(grid, { childList: true, subtree: true, attributes: true, attributeFilter: ['class'] });
    document.addEventListener('visibilitychange', () => this.schedule());
    setInterval(() => this.schedule(), RECHECK_MS);
    watch();
  }

  /** @param {number | null | undefined} n the room's `last_n` (absent: no cap) */
  setLastN(n) {
    this.lastN = n && n > 0 ? n : null;
    this.schedule();
  }

  /** The room named its dominant speaker. @param {string} id */
  spoken(id) {
    this.spoke = [id, ...this.spoke.filter((x) => x !== id)];
    this.schedule();
  }

  schedule() {
    if (this.timer) return;
    this.timer = window.setTimeout(() => {
      this.timer = 0;
      this.apply();
    }, SETTLE_MS);
  }

  /** The camera tiles `last_n` leaves without video: all but the featured one and the latest speakers. */
  cappedTiles() {
    /** @type {Set<string>} */
    const out = new Set();
    const sfu = this.sfu();
    if (!this.lastN || !sfu) return out;
    const cameras = sfu.pulledVideos().filter((v) => v.source !== 'screen').map((v) => v.participant);
    const featured = this.layout.staged() ? this.layout.featured() : null;
    const screens = sfu.pulledVideos().filter((v) => v.source === 'screen').length;
    // Screens count against the cap but are never cut; the featured camera next.
    let room = Math.max(0, this.lastN - screens);
    const order = [...new Set([...(featured && cameras.includes(featured) ? [featured] : []), ...this.spoke.filter((id) => cameras.includes(id)), ...cameras])];
    for (const id of order) {
      if (room > 0) room--;
      else out.add(id);
    }
    return out;
  }

  apply() {
    const sfu = this.sfu();
    const capped = this.cappedTiles();
    if (capped.size !== this.capped.size || [...capped].some((id) => !this.capped.has(id))) {
      this.capped = capped;
      this.onCapped(capped);
    }
    if (!sfu) return;
    const hidden = document.visibilityState === 'hidden';
    const featured = this.layout.staged() ? this.layout.featured() : null;
    /** @type {Map<string, TileView>} */
    const views = new Map();
    for (const v of sfu.pulledVideos()) {
      const id = v.source === 'screen' ? screenTileId(v.participant) : v.participant;
      const tile = document.querySelector(`#grid > .tile[data-participant="${CSS.escape(id)}"]`);
      const shown = !hidden && !!tile && this.visible.has(tile) && !(v.source !== 'screen' && capped.has(v.participant));
      /** @type {TileView} */
      const view = { shown, pinned: id === featured };
      const height = tile ? neededHeight(tile) : 0;
      if (height > 0) view.height = height;
      views.set(v.mid, view);
    }
    sfu.setViews(views);
  }
}

/**
 * The height in device pixels the source needs to fill `tile`'s video as it is drawn (cover:
 * cropped to fill; contain: whole), from the video's own shape once known (16:9 before).
 * @param {Element} tile
 */
function neededHeight(tile) {
  const video = /** @type {HTMLVideoElement | null} */ (tile.querySelector('video'));
  const box = (video || tile).getBoundingClientRect();
  if (box.width <= 0 || box.height <= 0) return 0;
  const aspect = video?.videoWidth && video.videoHeight ? video.videoWidth / video.videoHeight : 16 / 9;
  const contain = video ? getComputedStyle(video).objectFit === 'contain' : false;
  const byWidth = box.width / aspect;
  const css = contain ? Math.min(box.height, byWidth) : Math.max(box.height, byWidth);
  return Math.min(4320, Math.max(1, Math.round(css * (window.devicePixelRatio || 1))));
}
