//! Speaker stats: dominant-speaker changes in, speaking time per participant out.

use std::collections::BTreeMap;

use edgemeet_protocol::ParticipantId;
use edgemeet_protocol::server::SpeakerStat;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SpeakerStats {
    current: Option<(ParticipantId, u64)>,
    totals: BTreeMap<ParticipantId, u64>,
}

impl SpeakerStats {
    /// `id` became the dominant speaker at `now_ms`. Returns false if nothing changed.
    pub fn dominant(&mut self, id: &str, now_ms: u64) -> bool {
        if self.current.as_ref().is_some_and(|(c, _)| c == id) {
            return false;
        }
        self.close_interval(now_ms);
        self.current = Some((id.to_string(), now_ms));
        true
    }

    /// The dominant speaker now, if any.
    pub fn current(&self) -> Option<&str> {
        self.current.as_ref().map(|(id, _)| id.as_str())
    }

    /// A participant left: their stats go with them.
    pub fn forget(&mut self, id: &str, now_ms: u64) {
        if self.current.as_ref().is_some_and(|(c, _)| c == id) {
            self.close_interval(now_ms);
        }
        self.totals.remove(id);
    }

    /// Speaking time of each of `ids`, counting the running interval.
    pub fn report<'a>(
        &self,
        ids: impl Iterator<Item = &'a ParticipantId>,
        now_ms: u64,
    ) -> Vec<SpeakerStat> {
        ids.map(|id| {
            let running = match &self.current {
                Some((c, since)) if c == id => now_ms.saturating_sub(*since),
                _ => 0,
            };
            SpeakerStat {
                id: id.clone(),
                speaking_ms: self.totals.get(id).copied().unwrap_or(0) + running,
            }
        })
        .collect()
    }

    fn close_interval(&mut self, now_ms: u64) {
        if let Some((id, since)) = self.current.take() {
            *self.totals.entry(id).or_default() += now_ms.saturating_sub(since);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulates_time_per_speaker() {
        let mut s = SpeakerStats::default();
        s.dominant("a", 0);
        s.dominant("b", 1_000);
        s.dominant("a", 3_000);
        let ids = ["a".to_string(), "b".to_string()];
        let r = s.report(ids.iter(), 3_500);
        assert_eq!(r[0].speaking_ms, 1_500);
        assert_eq!(r[1].speaking_ms, 2_000);
    }
}
