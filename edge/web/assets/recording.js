// Recording: what the server offers (GET /api/config), and connecting the recorder's Dropbox with
// OAuth 2 + PKCE (S256, token_access_type=offline) entirely in the browser: the authorization
// page opens in a popup that comes back to this origin's root with a code; the code is exchanged
// here, at Dropbox's token endpoint, with the verifier. The grant stays in this page's memory
// and goes to the edge only with start_recording.

const CHANNEL = 'edgemeet-dropbox-oauth';

/**
 * @typedef {{available: boolean, destination?: 'dropbox' | 'local',
 *   dropbox?: {app_key: string, authorize_url: string, token_url: string}}} RecordingConfig
 * @typedef {{access_token: string, refresh_token?: string, app_key: string}} DropboxGrant
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

function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString(n) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

/** RFC 7636: BASE64URL(SHA-256(verifier)). */
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
