// Grid or speaker view, and pinning. In speaker view one tile is large and the others form a strip
// beside it: the pinned participant if any, else a shared screen (the presenter view: the newest
// screen large, every camera beside it), else the active speaker (the node's dominant_speaker;
// never ourselves while someone else is there), else the first other participant. A shared screen
// turns speaker view on by itself until the person picks the grid (a new share turns it on
// again). Pinning is this page's own choice: nobody else hears of it. Tiles stay where Grid
// (ui.js) put them; only classes change, so no video element is moved (which would restart its
// playback).
import { $ } from './ui.js';
import { screenOwner } from './screen.js';

export class Layout {
  /** @param {() => string | null} me our participant id @param {(id: string) => string} nameOf */
  constructor(me, nameOf) {
    this.me = me;
    /** @param {string} id a participant's tile id, or a screen's */
    this.nameOf = (id) => {
      const owner = screenOwner(id);
      return owner === null ? nameOf(id) : `${nameOf(owner)}'s screen`;
    };
    /** the person chose the grid while a screen was shared */
    this.gridChosen = false;
    /** @type {Set<string>} the screen tiles the last render saw */
    this.screensSeen = new Set();
    /** speaker view chosen with its button (a pin shows it too) */
    this.speakerView = false;
    /** @type {string | null} */
    this.pinned = null;
    /** @type {string | null} the last dominant speaker the room named */
    this.speaker = null;
  }

  bind() {
    $('toggle-view').addEventListener('click', () => this.toggleView());
    document.addEventListener('keydown', (ev) => {
      const target = /** @type {HTMLElement} */ (ev.target);
      if ($('meeting').hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) return;
      if (ev.key.toLowerCase() === 'g') this.toggleView();
    });
    // Tiles come and go with the roster: each gets its pin button, and the layout follows.
    new MutationObserver(() => this.render()).observe($('grid'), { childList: true });
    this.render();
  }

  /** Grid <-> speaker view; back to the grid also lets go of a pin. */
  toggleView() {
    const on = !this.staged();
    this.speakerView = on;
    this.gridChosen = !on && this.screens().length > 0;
    if (!on) this.pinned = null;
    this.render();
    this.say(on ? 'Speaker view' : 'Grid view');
  }

  /** @param {string} id pin this participant (again: unpin) */
  togglePin(id) {
    this.pinned = this.pinned === id ? null : id;
    this.render();
    this.say(this.pinned ? `${this.nameOf(id)} pinned` : `${this.nameOf(id)} unpinned`);
  }

  /**
   * The room's dominant speaker changed. When it is us, the one before stays large: nobody
   * watches themselves speak.
   * @param {string} id
   */
  speakerChanged(id) {
    if (id === this.me() && this.speaker) return;
    this.speaker = id;
    this.render();
  }

  /** @returns {string[]} the tile ids of shared screens, oldest first */
  screens() {
    return this.tiles().map((t) => t.dataset.participant || '').filter((id) => screenOwner(id) !== null);
  }

  /** Whether one tile is shown large: speaker view, a pin, or a shared screen. */
  staged() {
    return this.speakerView || !!this.pinned || (this.screens().length > 0 && !this.gridChosen);
  }

  /** The tile shown large in speaker view, by participant id (or screen tile id). */
  featured() {
    const tiles = this.tiles();
    const ids = tiles.map((t) => t.dataset.participant || '');
    if (this.pinned && ids.includes(this.pinned)) return this.pinned;
    const screens = this.screens();
    if (screens.length) return screens[screens.length - 1];
    const me = this.me();
    if (this.speaker && this.speaker !== me && ids.includes(this.speaker)) return this.speaker;
    return ids.find((id) => id !== me) ?? ids[0] ?? null;
  }

  /** @returns {HTMLElement[]} */
  tiles() {
    return [.../** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('#grid > .tile'))];
  }

  /** Names changed (roster): the pin buttons say whom they pin. */
  names() {
    this.render();
  }

  render() {
    const grid = $('grid');
    if (this.pinned && !this.tiles().some((t) => t.dataset.participant === this.pinned)) this.pinned = null;
    const screens = this.screens();
    const shared = screens.filter((id) => !this.screensSeen.has(id));
    if (shared.length) this.gridChosen = false;
    this.screensSeen = new Set(screens);
    // Said once to screen readers: the picture that takes the stage.
    if (shared.length && !this.pinned) this.say(`${this.nameOf(shared[shared.length - 1])}, shown large`);
    const stage = this.staged();
    const featured = stage ? this.featured() : null;
    // Class and attribute writes only when they change: the MutationObserver watches children,
    // not attributes, so this never loops.
    grid.classList.toggle('stage', stage);
    for (const tile of this.tiles()) {
      const id = tile.dataset.participant || '';
      tile.classList.toggle('featured', id === featured);
      tile.setAttribute('role', 'group');
      let pin = /** @type {HTMLButtonElement | null} */ (tile.querySelector('button.pin'));
      if (!pin) {
        pin = document.createElement('button');
        pin.type = 'button';
        pin.className = 'pin';
        pin.addEventListener('click', () => this.togglePin(id));
        tile.append(pin);
      }
      const pinned = this.pinned === id;
      const name = this.nameOf(id);
      pin.textContent = pinned ? 'Unpin' : 'Pin';
      pin.setAttribute('aria-pressed', String(pinned));
      pin.setAttribute('aria-label', `${pinned ? 'Unpin' : 'Pin'} ${name}`);
    }
    const button = $('toggle-view');
    button.setAttribute('aria-pressed', String(stage));
    grid.setAttribute('aria-label', stage && featured ? `Participants' video, speaker view: ${this.nameOf(featured)} large` : "Participants' video");
  }

  /** @param {string} text said once to screen readers */
  say(text) {
    $('layout-live').textContent = text;
  }
}
