// The lobby on the page: what someone knocking sees while they wait, and the moderators' list of
// who knocks with "Admit" and "Refuse" for each or all. The rules are the edge's
// (edge/core/src/room/lobby.rs); this only shows them and sends the moderators' choices.
import { $, toast } from './ui.js';

/**
 * @typedef {import('./protocol.js').Knocker} Knocker
 * @typedef {import('./protocol.js').ClientMessage} ClientMessage
 */

/**
 * The waiting screen's words for why we wait.
 * @param {'host_absent' | 'lobby'} reason
 */
export function showWaiting(reason) {
  $('waiting-title').textContent = reason === 'lobby' ? 'Waiting to be let in' : 'Waiting for the host';
  $('waiting-text').textContent = reason === 'lobby'
    ? 'A moderator has been told you are here and will let you in.'
    : 'You will be asked in as soon as a moderator joins.';
}

/** The name a knocker typed, or a placeholder. @param {Knocker} k */
const knockerName = (k) => k.name || 'Someone without a name';

export class LobbyView {
  /** @param {(msg: ClientMessage) => void} send */
  constructor(send) {
    this.send = send;
    this.enabled = false;
    /** @type {Knocker[]} */
    this.knocking = [];
    const toggle = /** @type {HTMLInputElement} */ ($('lobby-toggle'));
    toggle.addEventListener('change', () => this.send({ type: 'set_lobby', enabled: toggle.checked }));
    $('admit-all').addEventListener('click', () => this.send({ type: 'admit_all' }));
    $('refuse-all').addEventListener('click', () => this.send({ type: 'refuse_all' }));
  }

  /**
   * A `lobby` message (moderators get who knocks; others only whether it is on).
   * @param {{enabled: boolean, knocking: Knocker[]}} msg
   * @param {boolean} moderator
   */
  update(msg, moderator) {
    if (msg.enabled !== this.enabled) toast(msg.enabled ? 'The lobby is on: newcomers knock' : 'The lobby is off');
    const before = new Set(this.knocking.map((k) => k.id));
    const arrived = msg.knocking.filter((k) => !before.has(k.id));
    this.enabled = msg.enabled;
    this.knocking = msg.knocking;
    if (moderator && arrived.length) toast(`${arrived.map(knockerName).join(', ')} ${arrived.length === 1 ? 'is' : 'are'} asking to join`);
    this.render(moderator);
  }

  /** @param {boolean} moderator */
  render(moderator) {
    /** @type {HTMLInputElement} */ ($('lobby-toggle')).checked = this.enabled;
    const section = $('lobby-section');
    const list = $('knocking');
    const shown = moderator ? this.knocking : [];
    section.hidden = !moderator || shown.length === 0;
    list.replaceChildren(...shown.map((k) => {
      const li = document.createElement('li');
      li.dataset.knock = k.id;
      const name = document.createElement('span');
      name.textContent = knockerName(k);
      li.append(name);
      for (const [label, type] of /** @type {[string, 'admit' | 'refuse'][]} */ ([['Admit', 'admit'], ['Refuse', 'refuse']])) {
        const b = document.createElement('button');
        b.type = 'button';
        b.className = type;
        b.textContent = label;
        b.setAttribute('aria-label', `${label} ${knockerName(k)}`);
        b.addEventListener('click', () => this.send({ type, target: k.id }));
        li.append(b);
      }
      return li;
    }));
    $('knock-count').textContent = shown.length ? `${shown.length} waiting` : '';
    const people = $('toggle-people');
    people.textContent = shown.length ? `People (${shown.length} waiting)` : 'People';
  }
}
