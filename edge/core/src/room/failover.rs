//! Moving a room off its media node: the node died (the registry heard no heartbeat for
//! `node_stale_after_ms`, or a page reported it and the edge's own check failed) or is drained
//! with `migrate`. The room asks for another node (the registry no longer offers the old one);
//! once it has one, every participant hears `node_moved`, then a `media_mode` with a grant for the
//! new node, and opens its session there. Tracks published on the old node are gone with it; a
//! recording goes on as a further file on the new node.

use edgemeet_protocol::server::MoveReason;
use edgemeet_protocol::{ErrorCode, ProtocolError};

use super::media::Mode;
use super::{Effect, Env, Out, Room};
use crate::registry::{Location, Need};

/// A room asks the host to check its node at most this often, however many pages report it.
pub const PROBE_INTERVAL_MS: u64 = 2_000;

impl Room {
    /// `node_unreachable` from a participant: check the node if it is the room's (at most once
    /// per [`PROBE_INTERVAL_MS`]); a report about any other node is refused.
    pub(super) fn node_unreachable(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        node_id: &str,
    ) -> Result<(), ProtocolError> {
        let media = self
            .meeting
            .as_mut()
            .map(|m| &mut m.media)
            .filter(|m| m.mode != Mode::None);
        let Some(media) = media else {
            return Err(ProtocolError::new(
                ErrorCode::NotInSfu,
                "the room is not using a media node",
            ));
        };
        if media.node.is_none() && media.node_retry.is_some() {
            // The room already left that node and waits for another (`node_retry.rs`): the
            // page's link to the dead one is still failing, which is nothing new.
            return Ok(());
        }
        let Some(node) = media.node.clone().filter(|n| n.id == node_id) else {
            // A report that came after a move (or names a node the room never used).
            return Err(ProtocolError::new(
                ErrorCode::UnknownNode,
                "that is not the room's media node",
            ));
        };
        let recent = media
            .probed_at
            .is_some_and(|at| env.now_ms.saturating_sub(at) < PROBE_INTERVAL_MS);
        if !recent {
            media.probed_at = Some(env.now_ms);
            out.0.push(Effect::ProbeNode { node });
        }
        Ok(())
    }

    /// Node `node_id` is gone or drained: if it is the room's, ask for another and remember to
    /// announce the move.
    pub(super) fn move_off_node(&mut self, out: &mut Out, node_id: &str, reason: MoveReason) {
        let location = self.room_location();
        let Some(meeting) = self.meeting.as_mut() else {
            return;
        };
        let media = &mut meeting.media;
        if media.node.as_ref().is_none_or(|n| n.id != node_id) {
            return;
        }
        let old = media.node.take().expect("checked above");
        media.probed_at = None;
        media.moving = Some(reason);
        // A drained node still holds the participants' sessions until the pages close them;
        // a leave must revoke their grants there too. A dead node needs no word.
        if reason == MoveReason::Drain && !media.former_nodes.iter().any(|n| n.id == old.id) {
            media.former_nodes.push(old);
        }
        // What was published on the old node cannot be pulled on the new one: pages publish
        // again and announce their new sessions.
        for m in meeting.members.values_mut() {
            m.tracks = None;
        }
        self.recording_needs_new_node();
        self.livestream_needs_new_node();
        let meeting = self.meeting.as_mut().expect("checked above");
        if !meeting.media.node_requested {
            meeting.media.node_requested = true;
            out.0.push(Effect::RequestNode {
                location,
                need: Need::Media,
            });
        }
    }

    /// The first participant's location (in join order) that the host knows: where the room's
    /// node should be near.
    pub(super) fn room_location(&self) -> Option<Location> {
        let meeting = self.meeting.as_ref()?;
        meeting
            .order
            .iter()
            .filter_map(|id| meeting.members.get(id))
            .find_map(|m| {
                self.conns
                    .get(&m.conn)
                    .and_then(|c| c.client.location.clone())
            })
    }
}
