//! Reading a client's opening offer for the pulls it names. Pure: SDP sections in, kinds out.

use crate::error::ApiError;
use crate::sdp::MediaSection;

/// The kind (`audio`/`video`) of the m-line each pull names. Each must be the first receive-only
/// m-line of its kind not taken by an earlier pull (the node's tracks land on them in that
/// order, as on the old path, `tracks.rs`).
pub fn pulled_kinds<'a>(
    offered: &'a [MediaSection],
    mids: &[&str],
) -> Result<Vec<&'a str>, ApiError> {
    let mut free: Vec<&MediaSection> = offered
        .iter()
        .filter(|m| m.direction == "recvonly" && !m.port_zero)
        .collect();
    let mut kinds = Vec::new();
    for mid in mids {
        let Some(i) = free.iter().position(|m| m.mid.as_deref() == Some(mid)) else {
            return Err(ApiError::BadRequest(
                "a remote track in an offer names one of its recvonly m-lines (mid)".into(),
            ));
        };
        if free[..i].iter().any(|m| m.kind == free[i].kind) {
            return Err(ApiError::BadRequest(
                "remote tracks in an offer take its recvonly m-lines of their kind in order".into(),
            ));
        }
        kinds.push(free.remove(i).kind.as_str());
    }
    Ok(kinds)
}
