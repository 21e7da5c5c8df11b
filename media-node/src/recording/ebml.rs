//! A minimal EBML writer: just what a WebM muxer needs (ids, sizes, uints, floats, binary,
//! master elements built in memory so their size is known).

/// Size field meaning "unknown" (8-byte form): for a Segment streamed without seeking back.
pub const UNKNOWN_SIZE: [u8; 8] = [0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

/// Appends an element id (ids carry their own length marker, so they are written as is).
pub fn id(out: &mut Vec<u8>, id: u32) {
    let bytes = id.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(3);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends a data size as the shortest EBML variable-length integer.
pub fn size(out: &mut Vec<u8>, n: u64) {
    // All-ones values are reserved (unknown size), hence the `- 1`.
    let len = (1..=8).find(|l| n < (1u64 << (7 * l)) - 1).unwrap_or(8);
    let v = n | (1u64 << (7 * len));
    out.extend_from_slice(&v.to_be_bytes()[8 - len..]);
}

pub fn uint(out: &mut Vec<u8>, el: u32, v: u64) {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count().min(7);
    id(out, el);
    size(out, (8 - skip) as u64);
    out.extend_from_slice(&bytes[skip..]);
}

pub fn float(out: &mut Vec<u8>, el: u32, v: f64) {
    id(out, el);
    size(out, 8);
    out.extend_from_slice(&v.to_be_bytes());
}

pub fn bytes(out: &mut Vec<u8>, el: u32, v: &[u8]) {
    id(out, el);
    size(out, v.len() as u64);
    out.extend_from_slice(v);
}

pub fn string(out: &mut Vec<u8>, el: u32, v: &str) {
    bytes(out, el, v.as_bytes());
}

/// A master element whose children are built by `f`.
pub fn master(out: &mut Vec<u8>, el: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut body = Vec::new();
    f(&mut body);
    bytes(out, el, &body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_ids() {
        let enc = |n| {
            let mut v = Vec::new();
            size(&mut v, n);
            v
        };
        assert_eq!(enc(0), [0x80]);
        assert_eq!(enc(126), [0xfe]);
        // 127 would be all ones in one byte (unknown): two bytes.
        assert_eq!(enc(127), [0x40, 0x7f]);
        assert_eq!(enc(16382), [0x7f, 0xfe]);
        let mut v = Vec::new();
        id(&mut v, 0x1A45_DFA3);
        id(&mut v, 0xA3);
        assert_eq!(v, [0x1a, 0x45, 0xdf, 0xa3, 0xa3]);
        let mut v = Vec::new();
        uint(&mut v, 0x4286, 1);
        assert_eq!(v, [0x42, 0x86, 0x81, 0x01]);
    }
}
