//! Reading a client's opening offer for the pulls it names. Pure: SDP sections in, kinds out.

use crate::error::ApiError;
use crate::sdp::MediaSection;

/// The kind (`audio`/`video`) of the m-line each pull names. Each must be the first receive-only
/// m-line of its kind not taken by an earlier pull (the node's tracks land on them in that
/// order).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn offer() -> Vec<MediaSection> {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:1\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:2\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:3\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\n";
        crate::sdp::parse(sdp).unwrap()
    }

    #[test]
    fn pulls_take_the_receiving_m_lines_of_their_kind_in_order() {
        let o = offer();
        assert_eq!(
            pulled_kinds(&o, &["1", "2", "3"]).unwrap(),
            ["audio", "video", "video"]
        );
        // Kinds interleave freely; within a kind the order is the offer's.
        assert_eq!(pulled_kinds(&o, &["2", "1"]).unwrap(), ["video", "audio"]);
        let err = pulled_kinds(&o, &["3"]).unwrap_err().to_string();
        assert!(err.contains("in order"), "{err}");
        // A sending m-line, an unknown mid, or one taken twice: refused.
        for mids in [&["0"][..], &["7"], &["1", "1"]] {
            let err = pulled_kinds(&o, mids).unwrap_err().to_string();
            assert!(err.contains("recvonly m-lines"), "{mids:?}: {err}");
        }
    }
}
