//! The duration of a fragmented MP4, written into its head once known. A composite recording is
//! encoded as fragmented MP4 (no seek: it streams into storage as it is made), whose head says
//! "duration 0": players then show the length of the first fragment. The recording keeps its
//! first part in memory until the end (as the WebM files do) and sets the real duration in
//! `mvhd`, `mehd`, each `tkhd` and `mdhd` before storing it. Pure.

/// Boxes that hold other boxes on the way to the ones patched.
const CONTAINERS: [&[u8; 4]; 4] = [b"moov", b"trak", b"mdia", b"mvex"];

/// Sets `secs` as the duration in the movie's head found in `head` (the file's first bytes,
/// `ftyp` then `moov`). Returns false (and changes nothing) if no `moov` with an `mvhd` is there.
pub fn set_duration(head: &mut [u8], secs: f64) -> bool {
    let Some(moov) = find(head, 0, head.len(), b"moov") else {
        return false;
    };
    let Some(mvhd) = find(head, moov.0, moov.1, b"mvhd") else {
        return false;
    };
    let Some(movie_scale) = timescale(head, mvhd.0, 12, 20) else {
        return false;
    };
    patch(head, moov.0, moov.1, secs, movie_scale);
    true
}

/// The content range of the first box named `name` among those in `start..end`.
fn find(b: &[u8], start: usize, end: usize, name: &[u8; 4]) -> Option<(usize, usize)> {
    boxes(b, start, end)
        .find(|(n, _, _)| n == name)
        .map(|(_, s, e)| (s, e))
}

/// The boxes in `start..end`: (name, content start, content end). Stops at a malformed one.
fn boxes(b: &[u8], start: usize, end: usize) -> impl Iterator<Item = ([u8; 4], usize, usize)> + '_ {
    let mut at = start;
    std::iter::from_fn(move || {
        let header = b.get(at..at + 8)?;
        let size = u32::from_be_bytes(header[..4].try_into().ok()?) as usize;
        let name: [u8; 4] = header[4..8].try_into().ok()?;
        let (content, box_end) = match size {
            // A 64-bit size follows the name.
            1 => {
                let big = b.get(at + 8..at + 16)?;
                let size = u64::from_be_bytes(big.try_into().ok()?) as usize;
                (at + 16, at.checked_add(size)?)
            }
            // To the end of the enclosing box.
            0 => (at + 8, end),
            s => (at + 8, at.checked_add(s)?),
        };
        if box_end > end || box_end < content {
            return None;
        }
        at = box_end;
        Some((name, content, box_end))
    })
}

/// A full box's version: its content's first byte.
fn version(b: &[u8], content: usize) -> Option<u8> {
    b.get(content).copied()
}

/// The u32 timescale at `v0` (version 0) or `v1` (version 1) bytes into a full box's content.
fn timescale(b: &[u8], content: usize, v0: usize, v1: usize) -> Option<u32> {
    let off = content + if version(b, content)? == 1 { v1 } else { v0 };
    let v = u32::from_be_bytes(b.get(off..off + 4)?.try_into().ok()?);
    (v > 0).then_some(v)
}

/// Writes `units` at `v0` / `v1` bytes into a full box's content (u32 in version 0, u64 in 1).
fn put_duration(b: &mut [u8], content: usize, v0: usize, v1: usize, units: u64) {
    match version(b, content) {
        Some(1) => {
            if let Some(d) = b.get_mut(content + v1..content + v1 + 8) {
                d.copy_from_slice(&units.to_be_bytes());
            }
        }
        Some(0) => {
            if let Some(d) = b.get_mut(content + v0..content + v0 + 4) {
                d.copy_from_slice(&(units.min(u64::from(u32::MAX)) as u32).to_be_bytes());
            }
        }
        _ => {}
    }
}

fn patch(b: &mut [u8], start: usize, end: usize, secs: f64, movie_scale: u32) {
    let list: Vec<_> = boxes(b, start, end).collect();
    let units = |scale: u32| (secs * f64::from(scale)).round().max(0.0) as u64;
    for (name, s, e) in list {
        match &name {
            // Full-box offsets (after version and flags) of the duration, v0 / v1.
            b"mvhd" => put_duration(b, s, 16, 24, units(movie_scale)),
            b"tkhd" => put_duration(b, s, 20, 28, units(movie_scale)),
            b"mehd" => put_duration(b, s, 4, 4, units(movie_scale)),
            b"mdhd" => {
                if let Some(scale) = timescale(b, s, 12, 20) {
                    put_duration(b, s, 16, 24, units(scale));
                }
            }
            n if CONTAINERS.contains(&n) => patch(b, s, e, secs, movie_scale),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(name: &[u8; 4], content: &[u8]) -> Vec<u8> {
        let mut v = ((content.len() + 8) as u32).to_be_bytes().to_vec();
        v.extend_from_slice(name);
        v.extend_from_slice(content);
        v
    }

    /// A version-0 full box with `timescale` at `ts_at` and a zero duration at `d_at`.
    fn full(name: &[u8; 4], len: usize, ts_at: Option<(usize, u32)>) -> Vec<u8> {
        let mut c = vec![0u8; len];
        if let Some((at, ts)) = ts_at {
            c[at..at + 4].copy_from_slice(&ts.to_be_bytes());
        }
        bx(name, &c)
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn every_duration_of_the_head_is_set_in_its_own_timescale() {
        let mvhd = full(b"mvhd", 100, Some((12, 1000)));
        let tkhd = full(b"tkhd", 84, None);
        let mdhd = full(b"mdhd", 24, Some((12, 90_000)));
        let mdia = bx(b"mdia", &[mdhd, bx(b"hdlr", &[0; 8])].concat());
        let trak = bx(b"trak", &[tkhd, mdia].concat());
        let mvex = bx(b"mvex", &full(b"mehd", 8, None));
        let moov = bx(b"moov", &[mvhd, trak, mvex].concat());
        let mut file = [bx(b"ftyp", b"isom\0\0\0\0"), moov, bx(b"moof", &[0; 16])].concat();
        assert!(set_duration(&mut file, 12.5));
        // ftyp 16 bytes, moov header 8, mvhd header 8: mvhd content at 32.
        assert_eq!(u32_at(&file, 32 + 16), 12_500, "mvhd in ms");
        let tkhd = 32 + 100 + 8 + 8;
        assert_eq!(
            u32_at(&file, tkhd + 20),
            12_500,
            "tkhd in the movie's scale"
        );
        let mdhd = tkhd + 84 + 8 + 8;
        assert_eq!(
            u32_at(&file, mdhd + 16),
            1_125_000,
            "mdhd in its own 90 kHz"
        );
        let mehd = mdhd + 24 + 16 + 8 + 8;
        assert_eq!(u32_at(&file, mehd + 4), 12_500, "mehd");
    }

    #[test]
    fn a_head_without_a_movie_is_left_alone() {
        let mut junk = vec![0xffu8; 64];
        assert!(!set_duration(&mut junk, 3.0));
        let mut short = bx(b"ftyp", b"isom");
        short.truncate(6);
        assert!(!set_duration(&mut short, 3.0));
        let mut no_mvhd = bx(b"moov", &bx(b"trak", &[]));
        let before = no_mvhd.clone();
        assert!(!set_duration(&mut no_mvhd, 3.0));
        assert_eq!(no_mvhd, before);
    }
}
