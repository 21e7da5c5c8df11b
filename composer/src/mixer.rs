//! The meeting's sound: each participant's decoded audio (48 kHz mono) queued as it arrives and
//! summed, 20 ms at a time, with saturation. A participant whose audio is late is silent for that
//! frame, not waited for; a queue longer than `MAX_QUEUE` loses its oldest samples (latency stays
//! bounded when a source runs fast).

use std::collections::{BTreeMap, VecDeque};

pub const RATE: usize = 48_000;
/// Samples in one mixed frame (20 ms).
pub const FRAME: usize = RATE / 50;
/// At most 200 ms queued per participant.
const MAX_QUEUE: usize = RATE / 5;

#[derive(Default)]
pub struct Mixer {
    queues: BTreeMap<String, VecDeque<i16>>,
}

impl Mixer {
    pub fn push(&mut self, participant: &str, samples: &[i16]) {
        let q = self.queues.entry(participant.to_string()).or_default();
        q.extend(samples);
        let over = q.len().saturating_sub(MAX_QUEUE);
        q.drain(..over);
    }

    /// A participant left: their queued audio goes with them.
    pub fn remove(&mut self, participant: &str) {
        self.queues.remove(participant);
    }

    /// The next 20 ms of the mix.
    pub fn mix(&mut self) -> [i16; FRAME] {
        let mut acc = [0i32; FRAME];
        for q in self.queues.values_mut() {
            for (a, s) in acc.iter_mut().zip(q.drain(..q.len().min(FRAME))) {
                *a += i32::from(s);
            }
        }
        acc.map(|a| a.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voices_add_up_and_saturate_instead_of_wrapping() {
        let mut m = Mixer::default();
        m.push("a", &[1000; FRAME]);
        m.push("b", &[-300; FRAME]);
        assert!(m.mix().iter().all(|&s| s == 700));
        m.push("a", &[30_000; FRAME]);
        m.push("b", &[30_000; FRAME]);
        assert!(m.mix().iter().all(|&s| s == i16::MAX));
        assert!(m.mix().iter().all(|&s| s == 0), "nothing queued: silence");
    }

    #[test]
    fn a_late_source_is_silent_and_a_fast_one_is_bounded() {
        let mut m = Mixer::default();
        m.push("a", &[5; FRAME / 2]);
        let out = m.mix();
        assert!(out[..FRAME / 2].iter().all(|&s| s == 5));
        assert!(out[FRAME / 2..].iter().all(|&s| s == 0));
        m.push("fast", &vec![1; RATE]);
        assert_eq!(m.queues["fast"].len(), MAX_QUEUE);
        m.remove("fast");
        assert!(m.mix().iter().all(|&s| s == 0));
    }
}
