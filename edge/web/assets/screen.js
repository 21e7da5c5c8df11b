// Screen sharing: a screen is a video track of its own, sent beside the camera (never in its
// place): at the size it was captured, up to 1920x1080, at a low frame rate, with the `detail`
// hint (the encoder keeps the resolution and lowers the frame rate when short of bits), in one
// encoding rather than the camera's simulcast (whose lower layers would halve and quarter it).
// Viewers show it large (layout.js: the presenter view) with the cameras beside it.

/** What `getDisplayMedia` is asked for: text stays readable, motion may be jerky. */
export const SCREEN_CAPTURE = { width: { max: 1920 }, height: { max: 1080 }, frameRate: { max: 5 } };

/**
 * The screen's one encoding: enough bits for sharp text at 1080p and 5 fps (a slide or a page of
 * code is 0.3-1 Mbit/s at this rate; scrolling peaks higher).
 * @type {RTCRtpEncodingParameters}
 */
export const SCREEN_ENCODING = { maxBitrate: 2_500_000, maxFramerate: 5 };

/** The tile id of a participant's screen (next to their own tile's id). @param {string} id */
export const screenTileId = (id) => `screen:${id}`;

/** @param {string} tileId @returns {string | null} whose screen a tile shows (null: a camera tile) */
export function screenOwner(tileId) {
  return tileId.startsWith('screen:') ? tileId.slice('screen:'.length) : null;
}
