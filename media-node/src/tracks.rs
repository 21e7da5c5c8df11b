//! The checks of a request's tracks (count, names, a push's mid against the offer) and the
//! ids the node makes; the media loop's `sessions.rs` does the pushing and pulling.

use edgemeet_protocol::node::{TrackObject, TrackResult};
use rand::RngCore;

use crate::error::ApiError;
use crate::sdp;

/// Most tracks one request may add, and one session may hold.
const MAX_TRACKS_PER_REQUEST: usize = 32;
pub(crate) const MAX_TRACKS_PER_SESSION: usize = 128;

/// 128 random bits, hex: session ids are unguessable.
pub fn random_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

pub(crate) fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
}

pub(crate) fn result(t: &TrackObject) -> TrackResult {
    TrackResult {
        mid: t.mid.clone(),
        track_name: Some(t.track_name.clone()),
        session_id: t.session_id.clone(),
        error: None,
    }
}

/// How many tracks one request may name, and their names.
pub(crate) fn check_tracks(tracks: &[TrackObject]) -> Result<(), ApiError> {
    if tracks.is_empty() || tracks.len() > MAX_TRACKS_PER_REQUEST {
        return Err(ApiError::BadRequest(format!(
            "a request adds 1 to {MAX_TRACKS_PER_REQUEST} tracks"
        )));
    }
    if tracks.iter().any(|t| !valid_name(&t.track_name, 31)) {
        return Err(ApiError::BadRequest(
            "trackName must be 1-31 characters of A-Z a-z 0-9 _ . -".into(),
        ));
    }
    Ok(())
}

/// A pushed (local) track's mid, checked against the client's offer: valid, present and sending.
pub(crate) fn pushed_mid<'a>(
    offered: &[sdp::MediaSection],
    t: &'a TrackObject,
) -> Result<&'a str, ApiError> {
    let mid = t
        .mid
        .as_deref()
        .ok_or_else(|| ApiError::BadRequest("a local track needs its mid".into()))?;
    if !valid_name(mid, 16) {
        return Err(ApiError::BadRequest("invalid mid".into()));
    }
    let sec = sdp::find_mid(offered, mid)
        .ok_or_else(|| ApiError::BadRequest(format!("mid {mid} is not in the offer")))?;
    if !matches!(sec.direction.as_str(), "sendonly" | "sendrecv") || sec.port_zero {
        return Err(ApiError::BadRequest(format!("mid {mid} does not send")));
    }
    Ok(mid)
}
