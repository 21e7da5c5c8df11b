//! Dynacast on the loop's allocation tick: each simulcast video's publisher is told (through the
//! edge) which layers some viewer needs; its page stops encoding the others (`crate::dynacast`).

use std::sync::atomic::Ordering::Relaxed;

use edgemeet_protocol::node::{NodeEvent, TrackStatus};

use super::driver::MediaLoop;
use crate::dynacast::SentLayers;

impl MediaLoop {
    pub(super) fn dynacast_tick(&mut self, now_ms: u64) {
        for pid in 0..self.pubs.len() {
            let Some(p) = self.pubs[pid].as_ref() else {
                continue;
            };
            if !p.video || p.rids.len() < 2 {
                continue;
            }
            // A recording or composition follows the best layer: it needs them all.
            let needed = if p.taps.is_empty() {
                p.pulls
                    .iter()
                    .filter_map(|&id| self.pulls.get(id)?.as_ref())
                    .filter(|pull| pull.view.shown && pull.status != TrackStatus::Inactive)
                    .map(|pull| pull.wanted_rank(p))
                    .max()
            } else {
                Some(p.rids.len() - 1)
            };
            let p = self.pubs[pid].as_mut().expect("checked");
            let sent = p
                .sent
                .get_or_insert_with(|| SentLayers::new(p.rids.len(), now_ms));
            let before = sent.top();
            let Some(top) = sent.step(needed, now_ms) else {
                continue;
            };
            if top < before {
                self.setup.metrics.layers_turned_off.fetch_add(1, Relaxed);
            }
            let Some(owner) = self.conns[p.conn].as_ref().map(|c| &c.owner) else {
                continue;
            };
            tracing::debug!(publication = pid, top, "layers sent by the publisher");
            let _ = self.setup.events.send(NodeEvent::LayersNeeded {
                route: owner.route.clone(),
                room: owner.room.clone(),
                publisher: owner.participant.clone(),
                track: p.name.clone(),
                rids: p.rids[..=top].to_vec(),
            });
        }
    }
}
