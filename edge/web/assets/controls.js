// Everyday controls around the meeting: joining with the microphone or camera off, the invite
// link, the unread badge on Chat, the keyboard shortcuts panel. Each is a labelled button or
// checkbox, usable from the keyboard.
import { $, toast } from './ui.js';

/** The shortcuts the meeting answers to (outside text fields), as the help panel lists them. */
export const SHORTCUTS = [
  ['M', 'Microphone on or off'],
  ['V', 'Camera on or off'],
  ['C', 'Chat panel'],
  ['H', 'Raise or lower your hand'],
  ['D', 'Devices: camera, microphone, speaker'],
  ['G', 'Grid or speaker view'],
  ['A', 'Audio-only mode: receive no video (saves bandwidth)'],
  ['?', 'This list of shortcuts'],
  ['Escape', 'Close this list or the Devices panel'],
];

/**
 * Pre-join: the choices to join with the microphone or camera off, applied to `media` at the click.
 * @param {import('./media.js').LocalMedia} media
 */
export function applyJoinChoices(media) {
  media.audioEnabled = !(/** @type {HTMLInputElement} */ ($('join-mic-off')).checked);
  media.videoEnabled = !(/** @type {HTMLInputElement} */ ($('join-cam-off')).checked);
  media.apply();
}

/** The meeting's address to invite others: never with our own token or other query. */
export function inviteLink() {
  return `${location.origin}${location.pathname}`;
}

export async function copyInviteLink() {
  const link = inviteLink();
  try {
    await navigator.clipboard.writeText(link);
    toast('Invite link copied');
  } catch {
    toast(`Invite link: ${link}`);
  }
}

/** The Chat button's count of messages that came while the panel was closed. */
export class ChatBadge {
  constructor() {
    this.unread = 0;
  }

  /** A chat message arrived. @param {boolean} mine */
  message(mine) {
    if (mine || !$('chat-panel').hidden) return;
    this.unread += 1;
    this.render();
  }

  /** The panel opened: all read. */
  opened() {
    this.unread = 0;
    this.render();
  }

  render() {
    const button = $('toggle-chat');
    const badge = $('chat-unread');
    badge.textContent = this.unread ? String(this.unread) : '';
    badge.hidden = !this.unread;
    button.setAttribute('aria-label', this.unread ? `Chat, ${this.unread} unread` : 'Chat');
  }
}

/** The shortcuts help panel: filled once, opened with "?" or its button, closed with Escape. */
export function bindShortcutsHelp() {
  const panel = $('shortcuts-panel');
  const list = $('shortcuts-list');
  list.replaceChildren(...SHORTCUTS.flatMap(([key, what]) => {
    const dt = document.createElement('dt');
    const kbd = document.createElement('kbd');
    kbd.textContent = key;
    dt.append(kbd);
    const dd = document.createElement('dd');
    dd.textContent = what;
    return [dt, dd];
  }));
  const toggle = (/** @type {boolean} */ open) => {
    panel.hidden = !open;
    $('show-shortcuts').setAttribute('aria-expanded', String(open));
    if (open) $('close-shortcuts').focus();
  };
  $('show-shortcuts').addEventListener('click', () => toggle(panel.hidden));
  $('close-shortcuts').addEventListener('click', () => { toggle(false); $('show-shortcuts').focus(); });
  document.addEventListener('keydown', (ev) => {
    const target = /** @type {HTMLElement} */ (ev.target);
    if ($('meeting').hidden || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (ev.key === 'Escape' && !panel.hidden) { toggle(false); $('show-shortcuts').focus(); return; }
    if (ev.key === '?' && !['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) toggle(panel.hidden);
  });
}

/**
 * The raised hands in the order they went up: participant id -> place (1 = first).
 * @param {Iterable<import('./protocol.js').Participant>} people
 */
export function handOrder(people) {
  const up = [...people].filter((p) => p.hand != null).sort((a, b) => (a.hand ?? 0) - (b.hand ?? 0));
  return new Map(up.map((p, i) => [p.id, i + 1]));
}

/** "Hand raised, 2nd in line" for place 2. @param {number} place */
export function handText(place) {
  const suffix = place % 10 === 1 && place % 100 !== 11 ? 'st' : place % 10 === 2 && place % 100 !== 12 ? 'nd' : place % 10 === 3 && place % 100 !== 13 ? 'rd' : 'th';
  return `Hand raised, ${place}${suffix} in line`;
}

/**
 * Show each raised hand on its tile, with its place in line.
 * @param {Map<string, number>} order from `handOrder`
 */
export function renderHands(order) {
  for (const tile of /** @type {NodeListOf<HTMLElement>} */ (document.querySelectorAll('#grid .tile'))) {
    const place = order.get(tile.dataset.participant || '');
    let mark = /** @type {HTMLElement | null} */ (tile.querySelector('.hand'));
    if (!place) { mark?.remove(); continue; }
    if (!mark) {
      mark = document.createElement('span');
      mark.className = 'hand';
      tile.append(mark);
    }
    mark.textContent = handText(place);
  }
}

/** @typedef {import('./protocol.js').Reaction} Reaction */

/** The reactions: wire name, what it says (also to screen readers), and its sign. */
export const REACTIONS = /** @type {[Reaction, string, string][]} */ ([
  ['thumbs_up', 'Thumbs up', '\u{1F44D}'],
  ['applause', 'Applause', '\u{1F44F}'],
  ['laugh', 'Laughter', '\u{1F602}'],
  ['surprise', 'Surprise', '\u{1F62E}'],
  ['heart', 'Love', '\u{2764}\u{FE0F}'],
  ['celebrate', 'Celebration', '\u{1F389}'],
]);

/** How long a reaction stays on its tile. */
const REACTION_MS = 4000;

/** The reaction buttons. @param {(reaction: Reaction) => void} send */
export function bindReactions(send) {
  $('reactions').replaceChildren(...REACTIONS.map(([name, label, sign]) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.reaction = name;
    b.textContent = sign;
    b.title = label;
    b.setAttribute('aria-label', `React: ${label}`);
    b.addEventListener('click', () => send(name));
    return b;
  }));
}

/**
 * Someone reacted: for a moment on their tile, and said once in the live region. Kept nowhere.
 * @param {string} participant @param {string} who their display name @param {Reaction} reaction
 */
export function showReaction(participant, who, reaction) {
  const [, label, sign] = REACTIONS.find(([name]) => name === reaction) || [reaction, reaction, ''];
  const tile = document.querySelector(`#grid .tile[data-participant="${CSS.escape(participant)}"]`);
  if (tile) {
    const mark = document.createElement('span');
    mark.className = 'reaction';
    mark.textContent = `${sign} ${label}`;
    tile.append(mark);
    setTimeout(() => mark.remove(), REACTION_MS);
  }
  $('reactions-live').textContent = `${who}: ${label}`;
}

/**
 * What to tell the person when sharing the screen failed for another reason than their own
 * cancel (headless Firefox, for one, has no screen: `NotFoundError`).
 * @param {unknown} err
 */
export function screenShareProblem(err) {
  const name = /** @type {any} */ (err)?.name;
  if (!navigator.mediaDevices?.getDisplayMedia) return 'This browser cannot share a screen.';
  if (name === 'NotFoundError') return 'There is no screen or window this browser can share.';
  if (name === 'NotReadableError') return 'The screen could not be captured (another program may hold it).';
  return `Screen sharing failed: ${name || err}`;
}
