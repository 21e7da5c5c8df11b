//! Just enough SDP reading to learn, per m-line, what the node negotiated: kind, codec, extension
//! ids, simulcast rids. The full parse and validation is webrtc-rs's job.

use std::collections::HashMap;

pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
/// Largest SDP the node accepts (a few dozen m-lines fit comfortably).
pub const MAX_SDP_BYTES: usize = 128 * 1024;

#[derive(Debug, Clone, PartialEq)]
pub struct MediaSection {
    pub kind: String,
    pub mid: Option<String>,
    /// `sendrecv`, `sendonly`, `recvonly`, `inactive`.
    pub direction: String,
    /// A refused section: port 0 without `a=bundle-only`. Under BUNDLE (RFC 8843) an offer may
    /// give every section after the first port 0 with `a=bundle-only` (Firefox does): those are
    /// live, carried on the first section's transport.
    pub port_zero: bool,
    /// Payload types in preference order.
    pub payload_types: Vec<u8>,
    /// pt -> (encoding name, clock rate, channels)
    pub rtpmap: HashMap<u8, (String, u32, u16)>,
    pub fmtp: HashMap<u8, String>,
    /// uri -> id
    pub extmap: HashMap<String, u8>,
    pub rids: Vec<String>,
}

impl MediaSection {
    /// The negotiated (first listed, non-RTX/FEC) codec of this m-line.
    pub fn primary_codec(&self) -> Option<(u8, String, u32, u16, String)> {
        self.payload_types.iter().find_map(|pt| {
            let (name, rate, ch) = self.rtpmap.get(pt)?;
            let lname = name.to_ascii_lowercase();
            if ["rtx", "red", "ulpfec", "flexfec-03"].contains(&lname.as_str()) {
                return None;
            }
            Some((
                *pt,
                format!("{}/{}", self.kind, name),
                *rate,
                *ch,
                self.fmtp.get(pt).cloned().unwrap_or_default(),
            ))
        })
    }
}

/// Splits an SDP into its media sections. Errors only on clearly broken input.
pub fn parse(sdp: &str) -> Result<Vec<MediaSection>, String> {
    if sdp.len() > MAX_SDP_BYTES {
        return Err("SDP too large".into());
    }
    if !sdp.trim_start().starts_with("v=0") {
        return Err("SDP must start with v=0".into());
    }
    let mut out: Vec<MediaSection> = Vec::new();
    for raw in sdp.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(m) = line.strip_prefix("m=") {
            let mut it = m.split_whitespace();
            let kind = it.next().ok_or("empty m-line")?.to_string();
            let port = it.next().ok_or("m-line without port")?;
            let _proto = it.next().ok_or("m-line without protocol")?;
            let payload_types = it.filter_map(|p| p.parse().ok()).collect();
            out.push(MediaSection {
                kind,
                mid: None,
                direction: "sendrecv".into(),
                port_zero: port == "0",
                payload_types,
                rtpmap: HashMap::new(),
                fmtp: HashMap::new(),
                extmap: HashMap::new(),
                rids: Vec::new(),
            });
            continue;
        }
        let Some(sec) = out.last_mut() else { continue };
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        let (name, value) = attr.split_once(':').unwrap_or((attr, ""));
        match name {
            "mid" => sec.mid = Some(value.trim().to_string()),
            "bundle-only" => sec.port_zero = false,
            "sendrecv" | "sendonly" | "recvonly" | "inactive" => sec.direction = name.into(),
            "rtpmap" => {
                if let Some((pt, enc)) = value.split_once(' ')
                    && let Ok(pt) = pt.parse::<u8>()
                {
                    let mut parts = enc.split('/');
                    let codec = parts.next().unwrap_or_default().to_string();
                    let rate = parts.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                    let ch = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
                    sec.rtpmap.insert(pt, (codec, rate, ch));
                }
            }
            "fmtp" => {
                if let Some((pt, params)) = value.split_once(' ')
                    && let Ok(pt) = pt.parse::<u8>()
                {
                    sec.fmtp.insert(pt, params.to_string());
                }
            }
            "extmap" => {
                if let Some((id, rest)) = value.split_once(' ') {
                    let id = id.split('/').next().and_then(|i| i.parse().ok());
                    if let (Some(id), Some(uri)) = (id, rest.split_whitespace().next()) {
                        sec.extmap.insert(uri.to_string(), id);
                    }
                }
            }
            "rid" => {
                if let Some(rid) = value.split_whitespace().next() {
                    sec.rids.push(rid.to_string());
                }
            }
            _ => {}
        }
    }
    Ok(out)
}

pub fn find_mid<'a>(sections: &'a [MediaSection], mid: &str) -> Option<&'a MediaSection> {
    sections.iter().find(|s| s.mid.as_deref() == Some(mid))
}

/// Rewrites host candidates on `local` to announce `public` instead (NAT 1:1), and their port
/// to `port` when given (the shared port of the UDP mux). webrtc-rs 0.21 stores its own NAT 1:1
/// setting but never applies it, so the node does it on the SDP.
pub fn announce_addr(
    sdp: &str,
    local: std::net::IpAddr,
    public: std::net::IpAddr,
    port: Option<u16>,
) -> String {
    let (local, public) = (local.to_string(), public.to_string());
    let port = port.map(|p| p.to_string());
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("a=candidate:") {
            let mut f: Vec<&str> = line.split(' ').collect();
            if f.get(4) == Some(&local.as_str()) && f.len() > 5 {
                f[4] = &public;
                if let Some(p) = &port {
                    f[5] = p;
                }
                out.push_str(&f.join(" "));
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sections() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 97 96\r\na=mid:1\r\na=rtpmap:97 rtx/90000\r\na=rtpmap:96 VP8/90000\r\n\
a=rid:q send\r\na=rid:f send\r\n";
        let s = parse(sdp).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].extmap[AUDIO_LEVEL_URI], 1);
        assert_eq!(s[0].direction, "sendonly");
        let c = s[0].primary_codec().unwrap();
        assert_eq!((c.0, c.1.as_str(), c.2, c.3), (111, "audio/opus", 48000, 2));
        assert_eq!(s[1].primary_codec().unwrap().1, "video/VP8");
        assert_eq!(s[1].rids, vec!["q", "f"]);
        assert!(parse("garbage").is_err());
    }

    #[test]
    fn bundle_only_sections_with_port_zero_are_live() {
        // Firefox's offer: the first section carries the transport, the others ride on it.
        let sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 109\r\na=mid:0\r\na=sendonly\r\na=rtpmap:109 opus/48000/2\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 120\r\na=bundle-only\r\na=mid:1\r\na=sendonly\r\na=rtpmap:120 VP8/90000\r\n\
m=video 0 UDP/TLS/RTP/SAVPF 120\r\na=mid:2\r\na=inactive\r\na=rtpmap:120 VP8/90000\r\n";
        let s = parse(sdp).unwrap();
        assert!(!s[0].port_zero);
        assert!(!s[1].port_zero, "bundle-only: sends on the bundle");
        assert!(s[2].port_zero, "port 0 alone still refuses the section");
    }

    #[test]
    fn announces_the_public_ip() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host\r\na=mid:0\r\n";
        let (local, public) = ("10.0.0.5".parse().unwrap(), "203.0.113.9".parse().unwrap());
        let out = announce_addr(sdp, local, public, None);
        assert_eq!(
            out,
            "v=0\r\na=candidate:1 1 udp 2130706431 203.0.113.9 40000 typ host\r\na=mid:0\r\n"
        );
        let out = announce_addr(sdp, local, public, Some(3478));
        assert_eq!(
            out,
            "v=0\r\na=candidate:1 1 udp 2130706431 203.0.113.9 3478 typ host\r\na=mid:0\r\n"
        );
    }
}
