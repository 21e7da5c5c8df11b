//! Room names: a generator of readable random names and a strength check for names people type.

mod words;

use rand_core::RngCore;
use serde::{Deserialize, Serialize};

pub use words::{ADJECTIVES, ADVERBS, NOUNS, VERBS};

/// How many different names [`generate`] can produce.
pub fn combinations() -> u128 {
    [
        ADJECTIVES.len(),
        NOUNS.len(),
        VERBS.len(),
        NOUNS.len(),
        ADVERBS.len(),
    ]
    .iter()
    .map(|&n| n as u128)
    .product()
}

/// A readable name such as `brave-otters-paint-lanterns-gently`, drawn uniformly with the caller's
/// CSPRNG (the host passes its OS random source).
pub fn generate(rng: &mut dyn RngCore) -> String {
    let lists = [ADJECTIVES, NOUNS, VERBS, NOUNS, ADVERBS];
    lists
        .iter()
        .map(|list| list[uniform(rng, list.len())])
        .collect::<Vec<_>>()
        .join("-")
}

/// An unbiased index below `n` (rejection sampling; `n` is far below 2^32).
fn uniform(rng: &mut dyn RngCore, n: usize) -> usize {
    let n = n as u64;
    let zone = u64::from(u32::MAX) + 1 - (u64::from(u32::MAX) + 1) % n;
    loop {
        let x = u64::from(rng.next_u32());
        if x < zone {
            return (x % n) as usize;
        }
    }
}

/// What the join page shows while someone types a room name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameCheck {
    /// False: warn before joining, the name is guessable.
    pub strong: bool,
    /// Estimated guesses to find the name, as log10 (zxcvbn's estimate).
    pub guesses_log10: f64,
    /// zxcvbn score 0 (trivial) to 4 (very hard).
    pub score: u8,
    /// A short warning for the user, when weak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// Names below this many guesses (log10) get a warning: 10^10 is zxcvbn's top score.
pub const STRONG_GUESSES_LOG10: f64 = 10.0;
const MAX_CHECKED_CHARS: usize = 128;

/// Estimate how guessable a room name is, as zxcvbn does for passwords.
pub fn check(name: &str) -> NameCheck {
    let name: String = name.trim().chars().take(MAX_CHECKED_CHARS).collect();
    if name.is_empty() {
        return NameCheck {
            strong: false,
            guesses_log10: 0.0,
            score: 0,
            warning: Some("Pick a room name.".into()),
        };
    }
    let entropy = zxcvbn::zxcvbn(
        &name,
        &["meet", "meeting", "room", "edgemeet", "call", "chat"],
    );
    let guesses_log10 = entropy.guesses_log10();
    let score = u8::from(entropy.score());
    let strong = guesses_log10 >= STRONG_GUESSES_LOG10;
    let warning = (!strong).then(|| {
        let why = entropy.feedback().and_then(|f| f.warning()).map(|w| format!(" {}.", w.to_string().trim_end_matches('.'))).unwrap_or_default();
        format!("Others could guess this room name and walk in.{why} Use a generated name or a longer, unusual one.")
    });
    NameCheck {
        strong,
        guesses_log10,
        score,
        warning,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::collections::HashSet;

    #[test]
    fn at_least_a_trillion_names_from_unique_lowercase_words() {
        assert!(
            combinations() >= 1_000_000_000_000,
            "only {} combinations",
            combinations()
        );
        for list in [ADJECTIVES, NOUNS, VERBS, ADVERBS] {
            let set: HashSet<_> = list.iter().collect();
            assert_eq!(set.len(), list.len(), "duplicate word");
            assert!(
                list.iter()
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
            );
        }
    }

    #[test]
    fn generated_names_are_valid_strong_and_differ() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let names: Vec<String> = (0..50).map(|_| generate(&mut rng)).collect();
        assert_eq!(names.iter().collect::<HashSet<_>>().len(), 50);
        for n in &names {
            assert_eq!(n.split('-').count(), 5);
            assert!(crate::address::normalize_room(n).is_ok());
            assert!(check(n).strong, "{n}: {:?}", check(n));
        }
    }

    #[test]
    fn common_names_are_weak_random_ones_strong() {
        for weak in [
            "test",
            "meeting",
            "standup",
            "team-meeting",
            "room1",
            "password123",
            "daily-sync",
        ] {
            let c = check(weak);
            assert!(!c.strong && c.warning.is_some(), "{weak}: {c:?}");
            assert!(
                !c.warning.unwrap().contains(".."),
                "one full stop per sentence"
            );
        }
        for strong in [
            "6f1c0a9e-3b7d-4f2a-9c8e-1d2b3c4d5e6f",
            "correct-horse-battery-staple-orbit",
            "qz7-Xw2p-Lm9r-Tk4",
        ] {
            assert!(check(strong).strong, "{strong}: {:?}", check(strong));
        }
    }
}
