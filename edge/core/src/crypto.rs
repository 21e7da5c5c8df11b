//! The two small primitives every part of the edge needs once: comparing secrets without telling
//! how much of a guess was right, and random hex from the host's random source.

use rand_core::RngCore;
use sha2::{Digest, Sha256};

/// Whether `a` equals `b`, in time that depends on neither their contents nor how long a common
/// prefix they share. Both sides are hashed first, so the length of the secret does not show
/// either (a plain byte fold returns early on a length mismatch).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let (a, b) = (Sha256::digest(a), Sha256::digest(b));
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// `bytes` random bytes as lowercase hex (ids, capabilities, generated credentials).
pub fn random_hex(rng: &mut dyn RngCore, bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rng.fill_bytes(&mut buf);
    hex::encode(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha8Rng;
    use rand_core::SeedableRng;

    #[test]
    fn equal_only_when_equal() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cret", b"s3cre"));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn random_hex_has_the_asked_length_and_varies() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let a = random_hex(&mut rng, 16);
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, random_hex(&mut rng, 16));
    }
}
