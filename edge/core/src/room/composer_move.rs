//! Placing a composition (issue 21). A node runs at most `max_compositions` livestreams and
//! composite recordings, and a composition must run where the room's media is. When the room's
//! node refuses a livestream or a composite recording for lack of a composer (429), the room asks
//! the registry for a node with one free and moves there as a drain does: `node_moved` with
//! `composer`, the pages open their sessions on the new node before they close the old ones, the
//! composition starts on the new node, a recording goes on there as a further file. The old node
//! still works: once the pages have switched, the room closes the meeting there (which finalizes
//! its part of a recording). With no node free, or a second refusal, what waited for a composer
//! ends with `livestream_failed` / `recording_failed`.

use edgemeet_protocol::server::MoveReason;

use super::{Effect, Env, NodeScope, Out, Room};
use crate::registry::{Need, NodeInfo};

/// The old node's meeting is closed this long after the move: the pages' handover (5 s at most,
/// `failover.js`) is over by then.
pub const RELEASE_OLD_NODE_AFTER_MS: u64 = 6_000;

const NO_COMPOSER: &str = "no media server can compose the meeting now (every composer is busy)";

impl Room {
    /// The node refused to compose the livestream (or the composite recording): find a node
    /// that can, once per stream or recording.
    pub(super) fn on_no_composer(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        meeting_id: &str,
        livestream: bool,
    ) {
        let location = self.room_location();
        let Some(meeting) = self.meeting.as_mut().filter(|m| m.id == meeting_id) else {
            return;
        };
        let may_move = if livestream {
            let Some(live) = meeting.livestream.as_mut() else {
                return;
            };
            live.refused_for_composer()
        } else {
            let Some(rec) = meeting.recording.as_mut().filter(|r| r.composite) else {
                return;
            };
            rec.refused_for_composer()
        };
        if !may_move {
            if livestream {
                self.end_failed_livestream(env, out, meeting_id, NO_COMPOSER);
            } else {
                self.end_failed_recording(env, out, meeting_id, NO_COMPOSER);
            }
            return;
        }
        if meeting.media.node_requested {
            // The room is already finding a node (its own died meanwhile, or the other
            // composition asked): it starts on that one, or fails there for good.
            return;
        }
        meeting.media.node_requested = true;
        meeting.media.composer_wanted = true;
        out.0.push(Effect::RequestNode {
            location,
            need: Need::Composer,
        });
    }

    /// The registry's answer to a request for a composer: a move to `new` (then the caller goes
    /// on as with any node assigned: `node_moved`, grants, the stream started there), or the end
    /// of the stream when no node has a composer free. Whether the caller goes on.
    pub(super) fn composer_node_assigned(
        &mut self,
        env: &mut Env,
        out: &mut Out,
        new: Option<&NodeInfo>,
    ) -> bool {
        let Some(meeting) = self.meeting.as_mut() else {
            return false;
        };
        let media = &mut meeting.media;
        let old = match (media.node.clone(), new) {
            // The room lost its node meanwhile: any node does, as for any move.
            (None, _) => return true,
            (Some(old), Some(new)) if old.id != new.id => old,
            _ => {
                self.end_what_awaits_a_composer(env, out);
                return false;
            }
        };
        media.node = None;
        media.probed_at = None;
        media.moving = Some(MoveReason::Composer);
        // Grants on the old node live on until the meeting is closed there: a leave revokes
        // there too.
        if !media.former_nodes.iter().any(|n| n.id == old.id) {
            media.former_nodes.push(old.clone());
        }
        media.release_old = Some((env.now_ms + RELEASE_OLD_NODE_AFTER_MS, old));
        // What was published on the old node cannot be pulled on the new one.
        for m in meeting.members.values_mut() {
            m.tracks = None;
        }
        self.recording_needs_new_node();
        self.livestream_needs_new_node();
        true
    }

    pub(super) fn release_old_node_at(&self) -> Option<u64> {
        self.meeting
            .as_ref()
            .and_then(|m| m.media.release_old.as_ref())
            .map(|(at, _)| *at)
    }

    /// The pages have left the node the room moved off for a composer: the meeting is closed
    /// there (its recording's part finalized, sessions the pages left behind closed).
    pub(super) fn on_release_old_node_alarm(&mut self, env: &Env, out: &mut Out) {
        let Some(meeting) = self.meeting.as_mut() else {
            return;
        };
        let due = meeting
            .media
            .release_old
            .as_ref()
            .is_some_and(|(at, _)| *at <= env.now_ms);
        if !due {
            return;
        }
        let (_, node) = meeting.media.release_old.take().expect("checked above");
        // Back on it since (a later move), it is the room's node again: nothing to close.
        if meeting.media.node.as_ref().is_some_and(|n| n.id == node.id) {
            return;
        }
        let id = meeting.id.clone();
        self.push_close(env, out, node, id, NodeScope::Meeting);
    }

    /// No node has a composer free: what waited for one ends, and everyone hears why.
    fn end_what_awaits_a_composer(&mut self, env: &mut Env, out: &mut Out) {
        let Some(meeting) = self.meeting.as_ref() else {
            return;
        };
        let id = meeting.id.clone();
        let live = meeting
            .livestream
            .as_ref()
            .is_some_and(|l| l.awaits_composer());
        let rec = meeting
            .recording
            .as_ref()
            .is_some_and(|r| r.awaits_composer());
        if live {
            self.end_failed_livestream(env, out, &id, NO_COMPOSER);
        }
        if rec {
            self.end_failed_recording(env, out, &id, NO_COMPOSER);
        }
    }
}
