#![no_main]
//! What the media node reads from a caller before anything else: the bearer token
//! (`TokenVerifier::verify`, raw headers and well-signed tokens with the fuzzer's claims), every
//! request body of the HTTP API through the node's own `parse_body`, and an SDP offer or answer
//! as the node reads it (`parse_sdp`, `find_mid`, `primary_codec`) and as webrtc-rs parses it
//! next (`SessionDescription::unmarshal`). Also what the edge reads from nodes (heartbeats,
//! events).

use std::io::Cursor;

use base64::Engine;
use edgemeet_core::{Location, Need, Registry};
use edgemeet_media_node::inbound::{TokenVerifier, find_mid, parse_body, parse_sdp};
use edgemeet_protocol::node::{
    CloseTracksRequest, Heartbeat, NewSessionRequest, NodeEvents, RenegotiateRequest,
    SessionDescription, StartRecordingRequest, TracksRequest, UpdateTracksRequest, check_region,
};
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;

const SECRET: &str = "node-secret-0123456789abcdef0123456789";
const NOW_MS: u64 = 1_700_000_000_000;

fn sign(header: &str, claims: &str) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// The node's reading of an SDP, then webrtc-rs's.
fn read_sdp(sdp: &str) {
    if let Ok(sections) = parse_sdp(sdp) {
        for s in &sections {
            let _ = s.primary_codec();
            if let Some(mid) = &s.mid {
                assert!(find_mid(&sections, mid).is_some());
            }
        }
    }
    let _ = rtc::sdp::SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()));
}

fn offer(d: Option<&SessionDescription>) {
    if let Some(d) = d {
        read_sdp(&d.sdp);
    }
}

// The first byte picks what the rest is, so seeds are plain files (fuzz/seeds/node_api).
fuzz_target!(|data: &[u8]| {
    let Some((&mode, body)) = data.split_first() else {
        return;
    };
    let text = std::str::from_utf8(body).ok();
    let verifier = TokenVerifier::new(SECRET, "n1");
    match mode % 12 {
        0 => {
            if let Some(header) = text {
                let _ = verifier.verify(Some(header));
            }
        }
        // Claims JSON under a standard HS256 header, signed with the node secret.
        1 => {
            if let Some(claims) = text {
                let bearer = format!("Bearer {}", sign(r#"{"alg":"HS256","typ":"JWT"}"#, claims));
                let _ = verifier.verify(Some(&bearer));
            }
        }
        2 => {
            if let Ok(r) = parse_body::<NewSessionRequest>(body) {
                offer(r.session_description.as_ref());
            }
        }
        3 => {
            if let Ok(r) = parse_body::<TracksRequest>(body) {
                offer(r.session_description.as_ref());
            }
        }
        4 => {
            if let Ok(r) = parse_body::<RenegotiateRequest>(body) {
                offer(Some(&r.session_description));
            }
        }
        5 => {
            let _ = parse_body::<CloseTracksRequest>(body);
        }
        6 => {
            let _ = parse_body::<UpdateTracksRequest>(body);
        }
        7 => {
            let _ = serde_json::from_slice::<StartRecordingRequest>(body);
        }
        8 => {
            let _ = serde_json::from_slice::<NodeEvents>(body);
        }
        9 => {
            if let Some(sdp) = text {
                read_sdp(sdp);
            }
        }
        // A heartbeat, then node selection for a caller whose location headers (continent,
        // country, latitude, longitude: one a line after the heartbeat) are the fuzzer's.
        _ => {
            let Some(text) = text else {
                return;
            };
            let mut lines = text.split('\n');
            let Ok(hb) = serde_json::from_str::<Heartbeat>(lines.next().unwrap_or_default()) else {
                return;
            };
            let _ = check_region(&hb.region);
            let draining = hb.draining;
            let mut registry = Registry::default();
            registry.heartbeat(hb, NOW_MS);
            let mut header = || lines.next().filter(|l| !l.is_empty());
            let at = Location::from_parts(header(), header(), header(), header());
            // A live node is always a choice, wherever the caller is.
            assert_eq!(
                registry.select(Some(&at), Need::Media, NOW_MS).is_some(),
                !draining
            );
        }
    }
});
