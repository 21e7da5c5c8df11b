// SDP repairs between browsers. Firefox's `setCodecPreferences` (the VP8 preference under E2EE)
// leaves `a=rtcp-fb` (and sometimes `a=fmtp`/`a=rtpmap`) lines of the codecs it removed from the
// m-line; Chromium refuses such a description ("Failed to parse codecs correctly"). A line about
// a payload type the m-line does not list says nothing anyway: it is dropped, both on the way out
// and on the way in (a peer page of another version may still send them).

const PT_ATTRIBUTES = /^a=(rtcp-fb|fmtp|rtpmap):(\d+)[\s]/;

/**
 * `sdp` without attribute lines about payload types its m-lines do not list.
 * @param {string} sdp
 */
export function withoutOrphanCodecLines(sdp) {
  const eol = sdp.includes('\r\n') ? '\r\n' : '\n';
  /** @type {Set<string> | null} the payload types of the current m-line */
  let listed = null;
  const out = [];
  for (const line of sdp.split(/\r?\n/)) {
    if (line.startsWith('m=')) listed = new Set(line.split(' ').slice(3));
    const m = listed && PT_ATTRIBUTES.exec(line);
    if (m && listed && !listed.has(m[2])) continue;
    out.push(line);
  }
  return out.join(eol);
}

/**
 * A session description with its orphan codec lines dropped.
 * @param {RTCSessionDescriptionInit} desc
 * @returns {RTCSessionDescriptionInit}
 */
export function cleanDescription(desc) {
  return desc.sdp ? { type: desc.type, sdp: withoutOrphanCodecLines(desc.sdp) } : desc;
}
