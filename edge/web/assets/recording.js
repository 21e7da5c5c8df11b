// Recording: what the server offers (GET /api/config), and connecting the recorder's Dropbox with
// OAuth 2 + PKCE (S256, token_access_type=offline) entirely in the browser: the authorization
// page opens in a popup that comes back to this origin's root with a code; the code is exchanged
// here, at Dropbox's token endpoint, with the verifier. The grant stays in this page's memory
// and goes to the edge only with start_recording.

const CHANNEL = 'edgemeet-dropbox-oauth';

/**
 * @typedef {{available: boolean, destination?: 'dropbox' | 'local',
 *   dropbox?: {app_key: string, authorize_url: string, token_url: string},
 *   status_url?: string, files?: 'per_person' | 'composite' | 'both'}} RecordingConfig
 *   `status_url`: where a recording's delivery status is read, `{status_url}{token}`.
 *   `files`: the operator's default choice of files (`recording.files`).
 * @typedef {{access_token: string, refresh_token?: string, app_key: string}} DropboxGrant
 * @typedef {{type: 'recording_status_link', token: string}} RecordingStatusLinkMessage
 *   To the recorder only: the delivery-status capability of the recording they started.
 * @typedef {'recording' | 'queued' | 'uploading' | 'retrying' | 'delivered' | 'failed'} DeliveryState
 * @typedef {'dropbox_unreachable' | 'dropbox_refused' | 'grant_revoked' | 'dropbox_full'
 *   | 'delivery_mismatch' | 'storage_unreachable' | 'storage_mismatch' | 'invalid_manifest'
 *   | 'local_folder'} DeliveryProblem
 * @typedef {{state: DeliveryState, problem?: DeliveryProblem | null, files: number,
 *   files_delivered: number, next_attempt_at_ms?: number | null, delivered_at_ms?: number | null,
 *   purge_at_ms: number}} DeliveryStatus
 *   What `GET {status_url}{token}` answers (the uploader's `DeliveryStatus`).
 */

/** @returns {Promise<RecordingConfig>} */
export async function recordingConfig() {
  try {
    const res = await fetch('/api/config', { cache: 'no-store' });
    if (!res.ok) return { available: false };
    const body = await res.json();
    return body.recording || { available: false };
  } catch {
    return { available: false };
  }
}

/**
 * The popup's side: when this page is the OAuth redirect (`/?code=...&state=...` or `?error=`),
 * hand the result to the meeting page (same origin) and close. True when it was.
 */
export function finishOAuthRedirect() {
  const p = new URLSearchParams(location.search);
  if (location.pathname !== '/' || !p.has('state') || !(p.has('code') || p.has('error'))) return false;
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage({ code: p.get('code'), state: p.get('state'), error: p.get('error'), description: p.get('error_description') });
  channel.close();
  // Nothing of the code stays in this window's history.
  history.replaceState(null, '', '/');
  document.body.textContent = 'Dropbox connected. You can close this window.';
  setTimeout(() => window.close(), 50);
  return true;
}

/** @param {Uint8Array} bytes */
function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** @param {number} n random bytes */
function randomString(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

/** RFC 7636: BASE64URL(SHA-256(verifier)). @param {string} verifier */
export async function pkceChallenge(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * Connects the recorder's Dropbox. Call from a click (the popup needs the user's gesture).
 * @param {{app_key: string, authorize_url: string, token_url: string}} cfg
 * @returns {Promise<DropboxGrant>}
 */
export async function connectDropbox(cfg) {
  // Opened at once, inside the click: popup blockers allow that.
  const popup = window.open('about:blank', 'edgemeet-dropbox', 'popup,width=640,height=720');
  if (!popup) throw new Error('Allow pop-ups for this site to connect Dropbox.');
  const verifier = randomString(64); // 86 characters of [A-Za-z0-9-_]
  const state = randomString(24);
  const redirectUri = `${location.origin}/`;
  const url = new URL(cfg.authorize_url);
  url.search = new URLSearchParams({
    client_id: cfg.app_key,
    response_type: 'code',
    redirect_uri: redirectUri,
    state,
    code_challenge: await pkceChallenge(verifier),
    code_challenge_method: 'S256',
    token_access_type: 'offline',
  }).toString();
  popup.location.href = url.toString();

  const result = await new Promise((resolve, reject) => {
    const channel = new BroadcastChannel(CHANNEL);
    /** @param {(v: any) => void} fn @param {unknown} v */
    const done = (fn, v) => { channel.close(); clearInterval(watch); fn(v); };
    channel.onmessage = (ev) => {
      const m = ev.data || {};
      if (m.state !== state) return; // not our request: ignore (and never use its code)
      if (m.error) done(reject, new Error(`Dropbox said no: ${m.description || m.error}`));
      else done(resolve, m);
    };
    const watch = setInterval(() => {
      if (popup.closed) setTimeout(() => done(reject, new Error('Dropbox window closed before connecting.')), 500);
    }, 500);
  });

  const res = await fetch(cfg.token_url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: result.code,
      client_id: cfg.app_key,
      code_verifier: verifier,
      redirect_uri: redirectUri,
    }),
    referrerPolicy: 'no-referrer',
    credentials: 'omit',
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok || !body.access_token) {
    throw new Error(`Dropbox did not grant access (${body.error || res.status}).`);
  }
  return { access_token: body.access_token, refresh_token: body.refresh_token, app_key: cfg.app_key };
}

// ---- Delivery status: the recorder's link ------------------------------------------------------

/**
 * The recording's status link (absolute), or null when the server gave no place to read it.
 * @param {RecordingConfig} cfg @param {string} token
 */
export function statusLink(cfg, token) {
  if (!cfg.status_url || !/^[0-9a-f]{32}$/.test(token)) return null;
  try {
    return new URL(`${cfg.status_url}${token}`, location.href).toString();
  } catch {
    return null;
  }
}

/** @type {Record<DeliveryProblem, string>} */
const PROBLEMS = {
  grant_revoked: 'access to your Dropbox was revoked, so the files cannot be delivered',
  dropbox_full: 'your Dropbox is full; free some space and delivery is tried again',
  dropbox_unreachable: 'Dropbox is not answering',
  dropbox_refused: 'Dropbox refused the upload',
  delivery_mismatch: 'what arrived differed from what was sent',
  storage_unreachable: 'our storage is not answering',
  storage_mismatch: 'the stored files are incomplete',
  invalid_manifest: "the recording's description is unusable",
  local_folder: 'the recordings folder cannot be written',
};

/** "today at 14:05", "tomorrow at 09:30", or a date and time. @param {number} ms */
export function when(ms) {
  const d = new Date(ms);
  const time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const day = (/** @type {number} */ t) => new Date(t).toDateString();
  if (day(ms) === day(Date.now())) return `today at ${time}`;
  if (day(ms) === day(Date.now() + 86_400_000)) return `tomorrow at ${time}`;
  return `${d.toLocaleDateString([], { weekday: 'short', day: 'numeric', month: 'short' })} at ${time}`;
}

/**
 * A delivery status in plain words.
 * @param {DeliveryStatus} s @param {'dropbox' | 'local' | undefined} destination
 */
export function describeDelivery(s, destination) {
  const to = destination === 'dropbox' ? 'to your Dropbox' : 'to the recordings folder';
  const files = `${s.files_delivered} of ${s.files} file${s.files === 1 ? '' : 's'}`;
  const why = (s.problem && PROBLEMS[s.problem]) || 'something went wrong';
  const purge = when(s.purge_at_ms);
  switch (s.state) {
    case 'recording': return `Recording. Afterwards the files are delivered ${to}; our copy is deleted ${purge} at the latest.`;
    case 'queued': case 'uploading': return `Delivering ${to} (${files} so far). Our copy is deleted ${purge} at the latest.`;
    case 'retrying': return `Not delivered yet: ${why}. Next try ${s.next_attempt_at_ms ? when(s.next_attempt_at_ms) : 'soon'}; ${files} delivered. Undelivered files are deleted ${purge}.`;
    case 'delivered': return `Delivered ${to} (${s.files} file${s.files === 1 ? '' : 's'}). Our copy is deleted; this link stops working ${purge}.`;
    case 'failed': return `Delivery failed: ${why}.${s.next_attempt_at_ms ? ` Next try ${when(s.next_attempt_at_ms)}.` : ''} ${files} delivered; the rest is deleted from our storage ${purge}.`;
    default: return 'Status unknown.';
  }
}

/** Whether a status will not change any more (delivered, or failed with no next try). @param {DeliveryStatus} s */
export function deliverySettled(s) {
  return s.state === 'delivered' || (s.state === 'failed' && !s.next_attempt_at_ms);
}

/**
 * Reads a status link: the status, `'gone'` (unknown or purged: 404), or null (not reachable now).
 * @param {string} url @returns {Promise<DeliveryStatus | 'gone' | null>}
 */
export async function readDeliveryStatus(url) {
  try {
    const res = await fetch(url, {
      headers: { accept: 'application/json' },
      cache: 'no-store',
      credentials: 'omit',
      referrerPolicy: 'no-referrer',
    });
    if (res.status === 404) return 'gone';
    if (!res.ok) return null;
    return /** @type {DeliveryStatus} */ (await res.json());
  } catch {
    return null;
  }
}
