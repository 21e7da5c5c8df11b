// Codec preferences of a transceiver (Chromium and Firefox take `setCodecPreferences`; a browser
// without it keeps its defaults).

/**
 * Put VP8 first on a video transceiver: the clear-header sizes are VP8's, and an H.264 packetizer
 * would have to parse the (encrypted) NAL units.
 * @param {RTCRtpTransceiver} transceiver
 */
export function preferVp8(transceiver) {
  const caps = RTCRtpReceiver.getCapabilities?.('video');
  if (!caps || !transceiver.setCodecPreferences) return;
  const vp8 = caps.codecs.filter((c) => /\/vp8$/i.test(c.mimeType));
  const rest = caps.codecs.filter((c) => /\/(rtx|red|ulpfec)$/i.test(c.mimeType));
  try { transceiver.setCodecPreferences([...vp8, ...rest]); } catch { /* keep the defaults */ }
}

/**
 * Audio without RED: Chromium hands a RED payload whole to the receiver's frame transform, which
 * cannot decrypt it (the media node wraps audio in RED for subscribers that offer it).
 * @param {RTCRtpTransceiver} transceiver
 */
export function withoutRed(transceiver) {
  const caps = RTCRtpReceiver.getCapabilities?.('audio');
  if (!caps || !transceiver.setCodecPreferences) return;
  try { transceiver.setCodecPreferences(caps.codecs.filter((c) => !/\/red$/i.test(c.mimeType))); } catch { /* keep the defaults */ }
}

/**
 * Audio with RED first (RFC 2198: each packet carries the previous one's payload too), when the
 * browser has it: a lost packet is rebuilt from the next, so audio survives random loss (through
 * the node the node wraps audio in RED itself; this is for a direct call). Not under E2EE (see
 * `withoutRed`).
 * @param {RTCRtpTransceiver} transceiver
 */
export function preferRed(transceiver) {
  const caps = RTCRtpReceiver.getCapabilities?.('audio');
  if (!caps || !transceiver.setCodecPreferences) return;
  const red = caps.codecs.filter((c) => /\/red$/i.test(c.mimeType));
  if (!red.length) return;
  const rest = caps.codecs.filter((c) => !/\/red$/i.test(c.mimeType));
  try { transceiver.setCodecPreferences([...red, ...rest]); } catch { /* keep the defaults */ }
}
