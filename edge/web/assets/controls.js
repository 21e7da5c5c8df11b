// Everyday controls around the meeting: joining with the microphone or camera off, the invite
// link, the unread badge on Chat, the keyboard shortcuts panel. Each is a labelled button or
// checkbox, usable from the keyboard.
import { $, toast } from './ui.js';

/** The shortcuts the meeting answers to (outside text fields), as the help panel lists them. */
export const SHORTCUTS = [
  ['M', 'Microphone on or off'],
  ['V', 'Camera on or off'],
  ['C', 'Chat panel'],
  ['?', 'This list of shortcuts'],
  ['Escape', 'Close this list'],
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
    if (ev.key === 'Escape' && !panel.hidden) { toggle(false); return; }
    if (ev.key === '?' && !['INPUT', 'SELECT', 'TEXTAREA'].includes(target.tagName)) toggle(panel.hidden);
  });
}
