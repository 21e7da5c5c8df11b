//! Reads the FLV stream ffmpeg writes (`-f flv pipe:1`) as tags: their payloads are exactly
//! RTMP's audio, video and data messages, so `rtmp.rs` publishes them as they are.

use std::io::{self, Read};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagKind {
    Audio,
    Video,
    Script,
}

#[derive(Debug)]
pub struct Tag {
    pub kind: TagKind,
    /// Milliseconds.
    pub timestamp: u32,
    pub data: Vec<u8>,
}

/// Tags bigger than this are refused (ffmpeg's at 1080p stay far below).
const MAX_TAG: usize = 16 << 20;

pub struct FlvReader<R> {
    inner: R,
    started: bool,
}

impl<R: Read> FlvReader<R> {
    pub fn new(inner: R) -> Self {
        Self {
            inner,
            started: false,
        }
    }

    /// The next tag; `None` at the end of the stream.
    pub fn next_tag(&mut self) -> io::Result<Option<Tag>> {
        if !self.started {
            let mut header = [0u8; 9];
            if !read_or_eof(&mut self.inner, &mut header)? {
                return Ok(None);
            }
            if &header[..3] != b"FLV" {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "not an FLV stream",
                ));
            }
            let offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as usize;
            // Skip any header extension, then the first "previous tag size" (0).
            let mut skip = vec![0u8; offset.saturating_sub(9) + 4];
            self.inner.read_exact(&mut skip)?;
            self.started = true;
        }
        loop {
            let mut h = [0u8; 11];
            if !read_or_eof(&mut self.inner, &mut h)? {
                return Ok(None);
            }
            let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
            if size > MAX_TAG {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "FLV tag too large",
                ));
            }
            let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            let mut data = vec![0u8; size];
            self.inner.read_exact(&mut data)?;
            let mut prev = [0u8; 4];
            self.inner.read_exact(&mut prev)?;
            let kind = match h[0] & 0x1f {
                8 => TagKind::Audio,
                9 => TagKind::Video,
                18 => TagKind::Script,
                _ => continue,
            };
            return Ok(Some(Tag {
                kind,
                timestamp,
                data,
            }));
        }
    }
}

/// Fills `buf`; false if the stream ended before its first byte.
fn read_or_eof(r: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(kind: u8, ts: u32, data: &[u8]) -> Vec<u8> {
        let mut t = vec![kind];
        t.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
        let b = ts.to_be_bytes();
        t.extend_from_slice(&[b[1], b[2], b[3], b[0], 0, 0, 0]);
        t.extend_from_slice(data);
        t.extend_from_slice(&(11 + data.len() as u32).to_be_bytes());
        t
    }

    #[test]
    fn tags_come_out_with_their_kind_time_and_bytes() {
        let mut s = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        s.extend(tag(18, 0, b"meta"));
        s.extend(tag(9, 0x0100_0010, &[0x17, 0, 1, 2]));
        s.extend(tag(7, 5, b"unknown kind: skipped"));
        s.extend(tag(8, 40, &[0xaf, 1, 9]));
        let mut r = FlvReader::new(&s[..]);
        let kinds: Vec<(TagKind, u32, usize)> = std::iter::from_fn(|| r.next_tag().unwrap())
            .map(|t| (t.kind, t.timestamp, t.data.len()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (TagKind::Script, 0, 4),
                (TagKind::Video, 0x0100_0010, 4),
                (TagKind::Audio, 40, 3),
            ]
        );
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        assert!(
            FlvReader::new(&b"NOTFLV\x00\x00\x00\x09\x00\x00\x00\x00"[..])
                .next_tag()
                .is_err()
        );
        let mut s = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        s.extend(&tag(9, 0, &[1, 2, 3, 4])[..13]);
        assert!(FlvReader::new(&s[..]).next_tag().is_err());
        assert!(FlvReader::new(&b""[..]).next_tag().unwrap().is_none());
    }
}
